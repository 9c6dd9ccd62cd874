#pragma once
// The data plane: a listener per worker thread, the sessions they serve and their upstreams.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
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
    // Loads the TLS listener's certificate and key again (SIGHUP, POST /reload): connections
    // accepted from then on use them, those open keep theirs. On failure the running ones stay
    // and the reason is returned.
    std::optional<std::string> reload_certificates(const config::tls_config& cfg);
    // Stops accepting, closes idle connections, lets requests in flight finish for up to
    // `deadline`, then closes what is left and joins the workers. Safe to call more than once.
    void drain(std::chrono::milliseconds deadline);
    // Open client connections, all workers together.
    std::uint32_t connections() const noexcept { return shared_.connections.load(); }
    // Every worker's metrics shard, for readers that merge them (/metrics, the analysis).
    std::vector<const analysis::metrics_shard*> metrics_shards() const;
    // Where the upstream names point now; any thread.
    address_snapshot addresses() const { return resolver_->current(); }
    // SIGUSR1: reopens the access log file at its path (after logrotate renamed it). True when
    // the log is off or not a file; false (logged) when the path cannot be opened.
    bool reopen_access_log();

private:
    shared_state shared_;
    std::unique_ptr<upstream_resolver> resolver_;
    std::deque<analysis::metrics_shard> metrics_;       // one per worker; outlives the workers
    std::unique_ptr<access_log_sink> access_log_;       // null when access_log.to is off
    std::deque<access_log_buffer> access_log_buffers_;  // one per worker when on; outlive them
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::thread> threads_;
    std::uint16_t port_ = 0;
    std::uint16_t tls_port_ = 0;
    bool stopped_ = false;
};

}  // namespace switchyard::proxy
