#include "admin/prometheus.hpp"

#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>

namespace switchyard::admin {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

using analysis::latency_buckets;

constexpr std::array<std::string_view, analysis::upstream_failure_kinds> failure_names{
    "connect", "timeout", "reset", "protocol"};

// For each bound of duration_bounds, one past the last fine bucket counted under it: the fine
// buckets whose midpoint is at or below the bound. Midpoints grow with the index, so the fine
// buckets under bound b are a prefix, and a scrape sums contiguous runs instead of comparing every
// fine bucket with 16 bounds. Computed at compile time.
constexpr auto fine_end = [] {
    std::array<std::size_t, duration_bounds.size()> end{};
    std::size_t i = 0;
    for (std::size_t b = 0; b < duration_bounds.size(); ++b) {
        while (i < latency_buckets::count &&
               static_cast<double>(latency_buckets::lower(i) + latency_buckets::upper(i) - 1) /
                       2e6 <=
                   duration_bounds[b]) {
            ++i;
        }
        end[b] = i;
    }
    return end;
}();
// 60 s is below the last fine bucket (about 134 s), so the +Inf bucket can hold more than 60 s.
static_assert(fine_end.back() < latency_buckets::count);

MetricFamily family(std::string name, std::string help, MetricType type) {
    MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = type;
    return f;
}

// A series labelled slot="<slot>" and, when `name` is not empty, name="<value>": the README's
// order, which TextSerializer keeps (it writes a ClientMetric's labels as given; only Registry
// families sort them, by name).
ClientMetric series(std::string_view slot, std::string_view name = {},
                    std::string_view value = {}) {
    ClientMetric m;
    m.label.push_back({"slot", std::string(slot)});
    if (!name.empty()) {
        m.label.push_back({std::string(name), std::string(value)});
    }
    return m;
}

// Counts are exposed as doubles (the text format's only number), exact up to 2^53.
double as_value(std::uint64_t v) noexcept {
    return static_cast<double>(v);
}

ClientMetric histogram(std::string_view slot, const analysis::latency_totals& t) {
    ClientMetric m = series(slot);
    auto& h = m.histogram;
    h.bucket.reserve(duration_bounds.size() + 1);
    std::uint64_t cumulative = 0;
    std::size_t i = 0;
    for (std::size_t b = 0; b < duration_bounds.size(); ++b) {
        for (; i < fine_end[b]; ++i) {
            cumulative += t.buckets[i];
        }
        h.bucket.push_back({cumulative, duration_bounds[b]});
    }
    for (; i < t.buckets.size(); ++i) {
        cumulative += t.buckets[i];
    }
    // The text format requires the le="+Inf" bucket (equal to _count); TextSerializer writes it
    // from the last bucket when that bucket's bound is +Inf, and adds its own otherwise.
    h.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    h.sample_count = cumulative;
    h.sample_sum = static_cast<double>(t.sum_micros) / 1e6;
    return m;
}

MetricFamily requests_total(const scrape_input& in) {
    auto f = family("switchyard_http_requests_total",
                    "Requests answered, by slot and status code (code 0: the client left "
                    "unanswered).",
                    MetricType::Counter);
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        const auto& t = in.totals[s];
        for (std::size_t i = 0; i < t.by_status.size(); ++i) {
            if (t.by_status[i] != 0) {
                auto& m = f.metric.emplace_back(
                    series(in.slot_names[s], "code", std::to_string(100 + i)));
                m.counter.value = as_value(t.by_status[i]);
            }
        }
        if (t.no_status != 0) {
            auto& m = f.metric.emplace_back(series(in.slot_names[s], "code", "0"));
            m.counter.value = as_value(t.no_status);
        }
    }
    return f;
}

// A histogram family with one series per slot, from `which` of the slot's totals.
MetricFamily latency_family(const scrape_input& in, std::string name, std::string help,
                            analysis::latency_totals analysis::slot_totals::*which) {
    auto f = family(std::move(name), std::move(help), MetricType::Histogram);
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        f.metric.push_back(histogram(in.slot_names[s], in.totals[s].*which));
    }
    return f;
}

MetricFamily upstream_errors(const scrape_input& in) {
    auto f = family("switchyard_upstream_errors_total",
                    "Exchanges with an upstream that failed, by kind.", MetricType::Counter);
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        for (std::size_t k = 0; k < failure_names.size(); ++k) {
            auto& m = f.metric.emplace_back(series(in.slot_names[s], "kind", failure_names[k]));
            m.counter.value = as_value(in.totals[s].failures[k]);
        }
    }
    return f;
}

// switchyard_mirror_requests_total{slot,code}: the copies sent to each slot by how they ended,
// a status or, when none came, the failure's kind.
MetricFamily mirror_requests(const scrape_input& in) {
    auto f = family("switchyard_mirror_requests_total",
                    "Mirrored copies of requests sent to the slot, by the status of their answer "
                    "or, without one, the failure (connect, timeout, reset, protocol).",
                    MetricType::Counter);
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        const auto& m = in.totals[s].mirror;
        for (std::size_t i = 0; i < m.by_status.size(); ++i) {
            if (m.by_status[i] != 0) {
                auto& c = f.metric.emplace_back(
                    series(in.slot_names[s], "code", std::to_string(100 + i)));
                c.counter.value = as_value(m.by_status[i]);
            }
        }
        for (std::size_t k = 0; k < failure_names.size(); ++k) {
            if (m.failures[k] != 0) {
                auto& c = f.metric.emplace_back(series(in.slot_names[s], "code", failure_names[k]));
                c.counter.value = as_value(m.failures[k]);
            }
        }
    }
    return f;
}

// switchyard_mirror_dropped_total{reason}: copies not sent, summed over the slots they were for,
// every reason from the start (at 0).
MetricFamily mirror_dropped(const scrape_input& in) {
    auto f = family("switchyard_mirror_dropped_total",
                    "Requests chosen for mirroring whose copy was not sent, by reason.",
                    MetricType::Counter);
    for (std::size_t r = 0; r < analysis::mirror_drop_reasons; ++r) {
        std::uint64_t n = 0;
        for (std::size_t s = 0; s < analysis::slot_count; ++s) {
            n += in.totals[s].mirror.dropped[r];
        }
        auto& m = f.metric.emplace_back();
        m.label.push_back({"reason", std::string(analysis::mirror_drop_name(
                                         static_cast<analysis::mirror_drop>(r)))});
        m.counter.value = as_value(n);
    }
    return f;
}

// A gauge family with one series per slot, valued by `value(slot)`.
template <typename Value>
MetricFamily slot_gauge(const scrape_input& in, std::string name, std::string help, Value value) {
    auto f = family(std::move(name), std::move(help), MetricType::Gauge);
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        auto& m = f.metric.emplace_back(series(in.slot_names[s]));
        m.gauge.value = value(static_cast<analysis::slot_index>(s));
    }
    return f;
}

// A counter series, by labels; created at 0 on first use.
prometheus::Counter& counter_series(prometheus::Family<prometheus::Counter>& f, std::string_view a,
                                    std::string_view a_value, std::string_view b = {},
                                    std::string_view b_value = {}) {
    prometheus::Labels labels{{std::string(a), std::string(a_value)}};
    if (!b.empty()) {
        labels.emplace(std::string(b), std::string(b_value));
    }
    return f.Add(labels);
}

}  // namespace

std::vector<MetricFamily> slot_families(const scrape_input& in) {
    std::vector<MetricFamily> out;
    out.reserve(14);
    out.push_back(requests_total(in));
    out.push_back(latency_family(in, "switchyard_http_request_duration_seconds",
                                 "Time from the first byte of the request read to the last byte "
                                 "of the response written.",
                                 &analysis::slot_totals::duration));
    out.push_back(latency_family(in, "switchyard_upstream_response_seconds",
                                 "The upstream's own time, from the request head sent to the "
                                 "last byte of the response read, less time waiting on the "
                                 "client; what latency checks judge.",
                                 &analysis::slot_totals::upstream));
    out.push_back(upstream_errors(in));
    out.push_back(
        slot_gauge(in, "switchyard_http_requests_in_flight", "Requests being served.",
                   [&](analysis::slot_index s) { return as_value(in.totals[s].in_flight); }));
    out.push_back(slot_gauge(
        in, "switchyard_slot_weight", "Percent of new requests sent to the slot.",
        [&](analysis::slot_index s) { return static_cast<double>(in.split.weight(s)); }));
    out.push_back(
        slot_gauge(in, "switchyard_active_slot", "1 on the active slot.",
                   [&](analysis::slot_index s) { return in.split.active == s ? 1.0 : 0.0; }));
    // A tunnel stays on the slot it was opened on whatever the split says since: a slot whose
    // weight is 0 is free to stop once its tunnels_open is 0.
    out.push_back(
        slot_gauge(in, "switchyard_tunnels_open",
                   "Upgraded connections (WebSocket and other tunnels) open, by the slot they "
                   "were opened on.",
                   [&](analysis::slot_index s) { return as_value(in.totals[s].tunnels_open); }));
    auto tunnels =
        family("switchyard_tunnels_total", "Upgraded connections opened.", MetricType::Counter);
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        auto& m = tunnels.metric.emplace_back(series(in.slot_names[s]));
        m.counter.value = as_value(in.totals[s].tunnels_total);
    }
    out.push_back(std::move(tunnels));
    auto pinned =
        family("switchyard_sticky_requests_total",
               "Requests a sticky-session cookie sent to the slot it names.", MetricType::Counter);
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        auto& m = pinned.metric.emplace_back(series(in.slot_names[s]));
        m.counter.value = as_value(in.totals[s].pinned);
    }
    out.push_back(std::move(pinned));
    out.push_back(mirror_requests(in));
    auto mirror_latency = family("switchyard_mirror_response_seconds",
                                 "The mirrored upstream's time, from the copy written to the last "
                                 "byte of its answer read.",
                                 MetricType::Histogram);
    auto mismatches = family("switchyard_mirror_mismatches_total",
                             "Mirrored answers whose status class (2xx, 3xx, 4xx, 5xx or failure) "
                             "differed from the primary's.",
                             MetricType::Counter);
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        mirror_latency.metric.push_back(histogram(in.slot_names[s], in.totals[s].mirror.response));
        auto& m = mismatches.metric.emplace_back(series(in.slot_names[s]));
        m.counter.value = as_value(in.totals[s].mirror.mismatches);
    }
    out.push_back(std::move(mirror_latency));
    out.push_back(std::move(mismatches));
    out.push_back(mirror_dropped(in));
    return out;
}

shard_collector::shard_collector(analysis::per_slot<std::string> slot_names,
                                 analysis::metrics_source metrics,
                                 const analysis::split_state& split)
    : slot_names_(std::move(slot_names)), metrics_(std::move(metrics)), split_(split) {}

std::vector<MetricFamily> shard_collector::Collect() const {
    if (!metrics_) {
        return {};
    }
    return slot_families({{slot_names_[0], slot_names_[1]}, metrics_(), split_.load()});
}

tls_collector::tls_collector(std::function<analysis::tls_failure_totals()> totals)
    : totals_(std::move(totals)) {}

std::vector<MetricFamily> tls_collector::Collect() const {
    auto f = family("switchyard_tls_handshake_errors_total",
                    "Client TLS handshakes that failed, by reason.", MetricType::Counter);
    const auto totals = totals_();
    for (std::size_t i = 0; i < totals.size(); ++i) {
        auto& m = f.metric.emplace_back();
        m.label.push_back({"reason", std::string(analysis::tls_failure_name(
                                         static_cast<analysis::tls_failure>(i)))});
        m.counter.value = as_value(totals[i]);
    }
    return {std::move(f)};
}

endpoint_collector::endpoint_collector(analysis::per_slot<std::string> slot_names,
                                       proxy::health_source health)
    : slot_names_(std::move(slot_names)), health_(std::move(health)) {}

std::vector<MetricFamily> endpoint_collector::Collect() const {
    auto f = family("switchyard_endpoint_up",
                    "1 while an upstream endpoint is in the rotation, 0 while its health checks "
                    "fail or it is ejected.",
                    MetricType::Gauge);
    const proxy::health_snapshot table = health_();
    for (const auto& e : table->endpoints) {
        auto& m = f.metric.emplace_back();
        m.label.push_back({"slot", slot_names_[e.slot]});
        m.label.push_back({"endpoint", e.name});
        m.gauge.value = e.up() ? 1 : 0;
    }
    return {std::move(f)};
}

std::vector<MetricFamily> hold_collector::Collect() const {
    const analysis::hold_totals t = board_->totals();
    std::vector<MetricFamily> out;
    auto& held = out.emplace_back(family("switchyard_held_requests",
                                         "Requests waiting for POST /release.", MetricType::Gauge));
    held.metric.emplace_back().gauge.value = as_value(board_->waiting());
    auto counter = [&out](std::string name, std::string help, std::uint64_t value) {
        auto& f = out.emplace_back(family(std::move(name), std::move(help), MetricType::Counter));
        f.metric.emplace_back().counter.value = as_value(value);
    };
    counter("switchyard_hold_timeouts_total", "Held requests answered 503 at hold.max_wait.",
            t.timeouts);
    counter("switchyard_hold_overflows_total",
            "Requests answered 503 at once during a hold: hold.max_requests were waiting.",
            t.overflows);
    counter("switchyard_maintenance_answers_total",
            "Requests answered 503 by the maintenance mode.", t.maintenance_answers);
    return out;
}

proxy_protocol_collector::proxy_protocol_collector(
    std::function<analysis::proxy_protocol_failure_totals()> totals)
    : totals_(std::move(totals)) {}

std::vector<MetricFamily> proxy_protocol_collector::Collect() const {
    auto f = family("switchyard_proxy_protocol_errors_total",
                    "Client connections closed for a missing or invalid PROXY protocol header, "
                    "by reason.",
                    MetricType::Counter);
    const auto totals = totals_();
    for (std::size_t i = 0; i < totals.size(); ++i) {
        auto& m = f.metric.emplace_back();
        m.label.push_back({"reason", std::string(analysis::proxy_protocol_failure_name(
                                         static_cast<analysis::proxy_protocol_failure>(i)))});
        m.counter.value = as_value(totals[i]);
    }
    return {std::move(f)};
}

route_collector::route_collector(std::function<route_counts()> counts)
    : counts_(std::move(counts)) {}

std::vector<MetricFamily> route_collector::Collect() const {
    const route_counts counts = counts_();
    if (counts.empty()) {
        return {};
    }
    auto f =
        family("switchyard_route_requests_total",
               "Requests a route took before the weighted split, by route.", MetricType::Counter);
    for (const auto& [name, n] : counts) {
        auto& m = f.metric.emplace_back();
        m.label.push_back({"route", name});
        m.counter.value = as_value(n);
    }
    return {std::move(f)};
}

control_metrics::control_metrics(std::span<const std::string_view> phases)
    : phase_(prometheus::BuildGauge()
                 .Name("switchyard_rollout_phase")
                 .Help("1 on the rollout's current phase, 0 on the others.")
                 .Register(registry_)),
      rollouts_(prometheus::BuildCounter()
                    .Name("switchyard_rollouts_total")
                    .Help("Rollouts finished, by strategy and result.")
                    .Register(registry_)),
      rollbacks_(prometheus::BuildCounter()
                     .Name("switchyard_rollbacks_total")
                     .Help("Rollbacks, by reason.")
                     .Register(registry_)),
      checks_(prometheus::BuildCounter()
                  .Name("switchyard_analysis_checks_total")
                  .Help("Analysis checks judged, by check and result.")
                  .Register(registry_)),
      webhooks_(prometheus::BuildCounter()
                    .Name("switchyard_webhook_deliveries_total")
                    .Help("Webhook deliveries, by kind and result.")
                    .Register(registry_)) {
    for (const std::string_view phase : phases) {
        phase_.Add({{"phase", std::string(phase)}});
    }
    for (const std::string_view strategy : {"canary", "blue-green"}) {
        for (const std::string_view result : {"succeeded", "rolled-back", "aborted"}) {
            counter_series(rollouts_, "strategy", strategy, "result", result);
        }
    }
}

void control_metrics::set_phase(std::string_view phase) {
    prometheus::Gauge& next = phase_.Add({{"phase", std::string(phase)}});
    // Clear the old phase before setting the new one: a scrape from another thread in between
    // sees no phase at 1 for an instant, never two.
    if (current_phase_ != nullptr && current_phase_ != &next) {
        current_phase_->Set(0);
    }
    next.Set(1);
    current_phase_ = &next;
}

void control_metrics::count_rollout(std::string_view strategy, std::string_view result) {
    counter_series(rollouts_, "strategy", strategy, "result", result).Increment();
}

void control_metrics::count_rollback(std::string_view reason) {
    counter_series(rollbacks_, "reason", reason).Increment();
}

void control_metrics::count_check(std::string_view check, std::string_view result) {
    counter_series(checks_, "check", check, "result", result).Increment();
}

void control_metrics::count_webhook(std::string_view kind, std::string_view result) {
    counter_series(webhooks_, "kind", kind, "result", result).Increment();
}

std::string serialize(std::span<const prometheus::Collectable* const> sources) {
    std::vector<MetricFamily> families;
    for (const prometheus::Collectable* source : sources) {
        if (source == nullptr) {
            continue;
        }
        auto collected = source->Collect();
        families.insert(families.end(), std::make_move_iterator(collected.begin()),
                        std::make_move_iterator(collected.end()));
    }
    return prometheus::TextSerializer{}.Serialize(families);
}

}  // namespace switchyard::admin
