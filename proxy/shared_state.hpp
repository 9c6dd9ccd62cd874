#pragma once
// What a worker shares with the server and the other workers: the settings it reads, published
// as immutable snapshots, and the few values shared on purpose. Its own header, so that
// worker.hpp need not include server.hpp.

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "analysis/hold.hpp"
#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "proxy/access_log.hpp"
#include "proxy/health.hpp"
#include "proxy/resolver.hpp"
#include "proxy/routes.hpp"
#include "proxy/sticky.hpp"
#include "proxy/tls.hpp"

namespace switchyard::proxy {

// An upstream endpoint of a slot, as configured; its addresses are in the resolver's table.
struct endpoint {
    analysis::slot_index slot = 0;
    std::string name;     // "backend-blue:8000", as configured; also the Host for HTTP/1.0 requests
    tls_context_ptr tls;  // its slot's `tls` context; null for plain TCP
    std::string tls_name;  // with tls: the SNI and the name its certificate must hold
    bool tls_verify = true;

    // A reload that leaves a slot's `tls` as it was keeps its context, so that its endpoints
    // compare equal and keep their pools.
    friend bool operator==(const endpoint&, const endpoint&) = default;
};

// The access log's destination and one buffer per worker, replaced together when a reload
// changes access_log. Each worker flushes its buffer before it lets go of the set.
struct access_log_outputs {
    access_log_outputs(const config::access_log_config& cfg, std::size_t workers) : sink(cfg.to) {
        for (std::size_t i = 0; i < workers; ++i) {
            buffers.emplace_back(sink, cfg.format);
        }
    }

    access_log_sink sink;
    std::deque<access_log_buffer> buffers;  // by worker index
};

// Everything a reload can change that the workers read (README, "Reloading"). Never changed
// once published: the server builds a new one and posts it to every worker, which swaps it in
// on its own thread between requests. A session keeps the one its request was routed with, so
// a request in flight finishes on the settings it started with.
struct live_settings {
    config::timeouts_config timeouts;
    config::limits_config limits;
    config::upstream_config upstream;
    config::upgrade_config upgrade;
    std::optional<sticky_cookies> sticky;  // absent without `sticky`
    config::hold_config hold;
    // The TLS listener's certificate and key, loaded again at every reload; null without one.
    // A connection keeps the context it was accepted with.
    tls_context_ptr certificates;
    // Per slot, its `tls` settings and the context made from them (null for plain TCP).
    analysis::per_slot<std::optional<config::upstream_tls_config>> slot_tls;
    analysis::per_slot<tls_context_ptr> slot_tls_context;
    std::vector<endpoint> endpoints;  // the first slot's, then the second's
    analysis::per_slot<std::vector<std::size_t>> slot_endpoints;  // endpoint indexes per slot
    // Changes only when the endpoint list does: an endpoint index, a pooled connection or an
    // address table of another generation means nothing under this one.
    std::uint64_t generation = 0;
    // The names of `endpoints`, looked up on its own thread; asked to look again after a
    // connect failure. One that is no longer current has been stopped: asking it does nothing.
    std::shared_ptr<upstream_resolver> resolver;
    std::shared_ptr<access_log_outputs> access_log;  // null when access_log.to is off
    // `routes:` and `preview:`, compiled (README, "Routes").
    route_table routes;
    preview_rule preview;
    // Shadow traffic; absent when off (no `mirror`, or percent 0). README, "Mirroring".
    std::optional<config::mirror_config> mirror;
    std::uint32_t mirror_queue = 0;  // each worker's share of mirror.queue, rounded up
    // Per slot, its `health_check` and `passive` settings; and the monitor that runs them for
    // `endpoints`, replaced (and the checks started again) when either or the endpoints change.
    analysis::per_slot<std::optional<config::health_check_config>> slot_health_check;
    analysis::per_slot<std::optional<config::passive_config>> slot_passive;
    std::shared_ptr<health_monitor> health;
};
using settings_snapshot = std::shared_ptr<const live_settings>;

// What the workers share for as long as the server runs.
struct shared_state {
    analysis::per_slot<std::string> slot_names;
    analysis::split_state* split = nullptr;
    // The PROXY protocol header each new client connection starts with (restart-only).
    config::proxy_protocol_version proxy_protocol = config::proxy_protocol_version::off;
    // Open client connections across workers: touched once per connection, never per request.
    mutable std::atomic<std::uint32_t> connections{0};
    // The hold's count of waiting requests, the maintenance message and their counters (README,
    // "Hold and maintenance"); touched only by requests that are held or refused.
    mutable analysis::hold_board hold;
};

}  // namespace switchyard::proxy
