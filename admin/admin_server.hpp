#pragma once
// The admin API (README, "Admin API"): slot switching, manual weights, rollouts, status, metrics,
// health and readiness, on a listener and thread of its own, away from the data plane.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "admin/controller.hpp"
#include "analysis/hold.hpp"
#include "analysis/metrics.hpp"
#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "proxy/resolver.hpp"

namespace switchyard::admin {

struct admin_response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::string allow;  // for 405: the methods the path takes
    // The Content-Security-Policy field (GET /, README, "Live page"); none when empty.
    std::string content_security_policy = {};
};

// The endpoints, without transport: one call per request. Refused calls change nothing and
// answer JSON {"error": "..."}. Used from the admin thread only.
class admin_api {
public:
    // `scrape` writes the /metrics text; `reload` answers POST /reload (absent: 409).
    admin_api(const config::config& cfg, controller& control, std::function<bool()> ready,
              std::function<std::string()> scrape, std::function<admin_response()> reload = {});

    // A reload's admin.token: it authorises the calls after the one that reloaded.
    void set_token(std::string token) { token_ = std::move(token); }
    // Where POST /hold, /release and /maintenance act (README, "Hold and maintenance").
    void use_hold(analysis::split_state& split, analysis::hold_board& board) noexcept {
        split_ = &split;
        hold_ = &board;
    }

    // `authorization` is the Authorization field value ("" when absent).
    admin_response handle(std::string_view method, std::string_view target,
                          std::string_view authorization, std::string_view body);

private:
    admin_response put_active_slot(std::string_view body);
    admin_response put_weights(std::string_view body);
    admin_response weights() const;
    admin_response rollout_action(std::string_view action, std::string_view query,
                                  std::string_view body);
    // The slot named `name`, or -1.
    int slot_by_name(std::string_view name) const noexcept;
    bool authorized(std::string_view authorization) const noexcept;

    std::string token_;
    controller& control_;
    std::function<bool()> ready_;
    std::function<std::string()> scrape_;
    std::function<admin_response()> reload_;
    analysis::split_state* split_ = nullptr;
    analysis::hold_board* hold_ = nullptr;
};

// What POST /reload and SIGHUP re-read, and where the data plane's part of a reload goes
// (README, "Reloading").
struct reload_source {
    std::string config_path;  // the file switchyard was started with; empty: nothing to reload
    // The data plane's part: proxy::server::reload. Throws std::runtime_error, having changed
    // nothing, when the configuration cannot be put in force.
    std::function<void(const config::config&)> apply_proxy;
};

class admin_server {
public:
    // Binds the listener and restores the state file into `split`, so that the split is in
    // force before the proxy serves. Throws std::runtime_error naming the address or the path
    // when either cannot be used.
    // `addresses` gives /status where the endpoint names point (the proxy's resolver).
    // `reload` says what POST /reload and reload() re-read and apply.
    admin_server(const config::config& cfg, analysis::split_state& split,
                 std::function<bool()> ready, analysis::metrics_source metrics = {},
                 proxy::address_source addresses = {}, reload_source reload = {});
    ~admin_server();
    admin_server(const admin_server&) = delete;
    admin_server& operator=(const admin_server&) = delete;

    // More metrics for /metrics, after the proxy's and the control plane's; before start().
    // `c` must outlive the server.
    void add_metrics(const prometheus::Collectable& c);
    // Where /status, POST /rollout and switchyard_endpoint_up read each endpoint's health (the
    // proxy's health monitor); before start().
    void use_endpoint_health(proxy::health_source source);
    // The proxy's hold board (proxy::server::hold()), so that POST /release wakes its held
    // requests and /status and /metrics count them; before start(). Without it the admin API
    // keeps a board of its own: the flags still work, and the workers notice a release at their
    // next tick.
    void use_hold(analysis::hold_board& board);
    void start();
    void stop();
    std::uint16_t port() const noexcept { return port_; }
    // SIGHUP; any thread. Re-reads the configuration file on the admin thread, as POST /reload
    // does, and logs the outcome: one reload path, on one thread.
    void reload();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::uint16_t port_ = 0;
};

}  // namespace switchyard::admin
