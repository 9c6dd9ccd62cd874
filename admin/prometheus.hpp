#pragma once
// The Prometheus text exposition (format 0.0.4) of what Switchyard measures, with the names and
// labels of the README's "Metrics", written by prometheus-cpp's TextSerializer.
//
// Recording stays in the per-worker shards of analysis/metrics.hpp: prometheus-cpp's Counter is
// an atomic shared by every thread that bumps it, which the request path must not pay for. The
// shards reach prometheus-cpp as a Collectable that merges them at scrape time; only the control
// plane, which is written from the admin thread, uses its Counter and Gauge.

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include "analysis/hold.hpp"
#include "analysis/metrics.hpp"
#include "analysis/traffic_split.hpp"
#include "proxy/health.hpp"

namespace switchyard::admin {

// What a scrape shows, gathered at one moment.
struct scrape_input {
    analysis::per_slot<std::string_view> slot_names;
    analysis::per_slot<analysis::slot_totals> totals;
    analysis::traffic_split split;
};

// The upper bounds, in seconds, of the exposed latency histograms: fixed, from 0.5 ms to 60 s.
// The fine internal histogram stays internal; each of its buckets is counted under the first
// bound at or above its midpoint, so a bound is off by at most half a fine bucket (0.8%).
inline constexpr std::array<double, 16> duration_bounds{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

// The data-plane families of one scrape, in this order: switchyard_http_requests_total,
// switchyard_http_request_duration_seconds, switchyard_upstream_response_seconds,
// switchyard_upstream_errors_total, switchyard_http_requests_in_flight, switchyard_slot_weight,
// switchyard_active_slot, switchyard_tunnels_open, switchyard_tunnels_total,
// switchyard_sticky_requests_total,
// switchyard_mirror_requests_total, switchyard_mirror_response_seconds,
// switchyard_mirror_mismatches_total, switchyard_mirror_dropped_total. Every series is labelled
// `slot` first, but switchyard_mirror_dropped_total's, which has `reason` only.
std::vector<prometheus::MetricFamily> slot_families(const scrape_input& in);

// The proxy's per-slot metrics as a Collectable: Collect() merges the shards and reads the split
// at that moment. Safe to collect from any thread, as often as wanted; the workers never wait.
class shard_collector final : public prometheus::Collectable {
public:
    shard_collector(analysis::per_slot<std::string> slot_names, analysis::metrics_source metrics,
                    const analysis::split_state& split);

    // Nothing when `metrics` is empty (a proxy without shards).
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    analysis::per_slot<std::string> slot_names_;
    analysis::metrics_source metrics_;
    const analysis::split_state& split_;
};

// switchyard_tls_handshake_errors_total{reason} from the proxy's shards, every reason from the
// start (at 0), so that increase() sees each series from its first scrape.
class tls_collector final : public prometheus::Collectable {
public:
    explicit tls_collector(std::function<analysis::tls_failure_totals()> totals);
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    std::function<analysis::tls_failure_totals()> totals_;
};

// switchyard_endpoint_up{slot,endpoint}: 1 while an endpoint is in the rotation, 0 while its
// active checks fail or it is ejected (README, "Health checks and ejection").
class endpoint_collector final : public prometheus::Collectable {
public:
    endpoint_collector(analysis::per_slot<std::string> slot_names, proxy::health_source health);
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    analysis::per_slot<std::string> slot_names_;
    proxy::health_source health_;
};

// switchyard_proxy_protocol_errors_total{reason} from the proxy's shards, every reason from the
// start (at 0), like tls_collector.
class proxy_protocol_collector final : public prometheus::Collectable {
public:
    explicit proxy_protocol_collector(
        std::function<analysis::proxy_protocol_failure_totals()> totals);
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    std::function<analysis::proxy_protocol_failure_totals()> totals_;
};

// switchyard_route_requests_total{route}: requests each route of the configuration in force took
// (README, "Routes"), read from the proxy at scrape time. No family when there are no routes.
class route_collector final : public prometheus::Collectable {
public:
    using route_counts = std::vector<std::pair<std::string, std::uint64_t>>;
    explicit route_collector(std::function<route_counts()> counts);
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    std::function<route_counts()> counts_;
};

// The control plane's counters (rollouts, analysis checks, webhooks) in a registry of their own.
// Written from the admin thread only, never on the request path, so prometheus-cpp's own
// Counter and Gauge are fine here; collecting from another thread is safe (they are atomics, and
// the registry and its families lock).
class control_metrics {
public:
    // `phases`: every rollout phase name; each gets a series of switchyard_rollout_phase, 0 until
    // set_phase names it. Pre-creates switchyard_rollouts_total for every strategy (canary,
    // blue-green) and result (succeeded, rolled-back, aborted) at 0, so that increase() sees each
    // series from the start; the other counters appear on first use.
    explicit control_metrics(std::span<const std::string_view> phases);
    control_metrics(const control_metrics&) = delete;
    control_metrics& operator=(const control_metrics&) = delete;

    // switchyard_rollout_phase{phase}: 1 on `phase`, 0 on the others. A phase missing from the
    // constructor's list gets a series of its own rather than vanishing from the scrape.
    void set_phase(std::string_view phase);
    void count_rollout(std::string_view strategy, std::string_view result);  // rollouts_total
    void count_rollback(std::string_view reason);                            // rollbacks_total
    void count_check(std::string_view check, std::string_view result);   // analysis_checks_total
    void count_webhook(std::string_view kind, std::string_view result);  // webhook_deliveries_total

    const prometheus::Collectable& collectable() const noexcept { return registry_; }

private:
    prometheus::Registry registry_;
    prometheus::Family<prometheus::Gauge>& phase_;
    prometheus::Family<prometheus::Counter>& rollouts_;
    prometheus::Family<prometheus::Counter>& rollbacks_;
    prometheus::Family<prometheus::Counter>& checks_;
    prometheus::Family<prometheus::Counter>& webhooks_;
    prometheus::Gauge* current_phase_ = nullptr;  // the series at 1; null before set_phase
};

// The hold and the maintenance mode (README, "Hold and maintenance"): switchyard_held_requests
// (gauge), switchyard_hold_timeouts_total, switchyard_hold_overflows_total and
// switchyard_maintenance_answers_total (counters), from the board at the moment of the scrape.
class hold_collector final : public prometheus::Collectable {
public:
    explicit hold_collector(const analysis::hold_board& board) noexcept : board_(&board) {}
    // Another board (the proxy's); before the scrapes start.
    void use(const analysis::hold_board& board) noexcept { board_ = &board; }
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    const analysis::hold_board* board_;
};

// The text exposition (format 0.0.4) of every source, in order.
std::string serialize(std::span<const prometheus::Collectable* const> sources);

}  // namespace switchyard::admin
