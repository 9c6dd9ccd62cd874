#pragma once
// The data plane: a listener per worker thread, the sessions they serve and their upstreams.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "analysis/metrics.hpp"
#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "proxy/access_log.hpp"
#include "proxy/resolver.hpp"
#include "proxy/shared_state.hpp"

namespace switchyard::proxy {

class worker;

class server {
public:
    // Looks the upstream names up once (one that does not resolve is logged, not fatal) and binds
    // the listener(s); throws std::runtime_error with a message for the operator when the
    // listener cannot be had. `lookup` answers name lookups (getaddrinfo when null).
    server(const config::config& cfg, analysis::split_state& split,
           std::shared_ptr<name_lookup> lookup = nullptr);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Starts the worker threads.
    void start();
    // The ports the listeners are bound to (useful with port 0); 0 for one that is off.
    std::uint16_t port() const noexcept { return port_; }
    std::uint16_t tls_port() const noexcept { return tls_port_; }
    // Stops accepting, closes idle connections, lets requests in flight finish for up to
    // `deadline`, then closes what is left and joins the workers. Safe to call more than once.
    void drain(std::chrono::milliseconds deadline);
    // The hot reload's data-plane part (README, "Reloading"): puts `next`'s endpoints, timeouts,
    // limits, upstream settings, upgrades, access log and TLS settings in force, and reads the
    // TLS listener's certificate and key again (connections accepted from then on use them;
    // those open keep theirs). Workers take them between requests; a
    // request in flight finishes on the settings it began with, and no connection is dropped.
    // Keys that need a restart (listen, workers) are not read: the caller keeps them as they
    // run (config::live_part). Throws std::runtime_error, having changed nothing, when a part
    // cannot be had (an access log file that cannot be opened, a certificate that does not
    // load). Any thread but a worker's; a
    // change of endpoint names looks them up on the calling thread first, as the start does.
    void reload(const config::config& next);
    // timeouts.drain as now in force.
    std::chrono::milliseconds drain_timeout() const;
    // Open client connections, all workers together.
    std::uint32_t connections() const noexcept { return shared_.connections.load(); }
    // The hold and maintenance board the admin API drives (README, "Hold and maintenance").
    analysis::hold_board& hold() noexcept { return shared_.hold; }
    // Every worker's metrics shard, for readers that merge them (/metrics, the analysis).
    std::vector<const analysis::metrics_shard*> metrics_shards() const;
    // Where the upstream names point now, in the order of the endpoint list now in force; any
    // thread.
    address_snapshot addresses() const;
    // Every endpoint's health now (README, "Health checks and ejection"), in the order of the
    // endpoint list now in force; any thread.
    health_snapshot endpoint_health() const;
    // SIGUSR1: reopens the access log file at its path (after logrotate renamed it). True when
    // the log is off or not a file; false (logged) when the path cannot be opened.
    bool reopen_access_log();

private:
    // Builds the settings of `cfg`, reusing from `before` (null at start) what has not changed.
    settings_snapshot build_settings(const config::config& cfg, const live_settings* before,
                                     std::size_t workers) const;
    // Starts the resolver's thread, which posts each new table to every worker.
    void start_resolver(upstream_resolver& resolver);
    // Starts the health monitor's thread, which posts each new table to every worker.
    void start_health(health_monitor& monitor);

    shared_state shared_;
    std::shared_ptr<name_lookup> lookup_;
    std::deque<analysis::metrics_shard> metrics_;  // one per worker; outlives the workers
    // The settings in force: the workers' copies are posted to them. Guarded by mutex_, which
    // orders reload() against drain(), addresses() and reopen_access_log() on other threads.
    mutable std::mutex mutex_;
    settings_snapshot settings_;
    config::access_log_config access_log_config_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::thread> threads_;
    std::uint16_t port_ = 0;
    std::uint16_t tls_port_ = 0;
    bool stopped_ = false;
};

}  // namespace switchyard::proxy
