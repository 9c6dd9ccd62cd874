#pragma once
// The admin API (README, "Admin API"): slot switching, manual weights, rollouts, status, metrics,
// health and readiness, on a listener and thread of its own, away from the data plane.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "admin/controller.hpp"
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
};

// The endpoints, without transport: one call per request. Refused calls change nothing and
// answer JSON {"error": "..."}. Used from the admin thread only.
class admin_api {
public:
    // `scrape` writes the /metrics text.
    admin_api(const config::config& cfg, controller& control, std::function<bool()> ready,
              std::function<std::string()> scrape);

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
};

class admin_server {
public:
    // Binds the listener and restores the state file into `split`, so that the split is in
    // force before the proxy serves. Throws std::runtime_error naming the address or the path
    // when either cannot be used.
    // `addresses` gives /status where the endpoint names point (the proxy's resolver).
    admin_server(const config::config& cfg, analysis::split_state& split,
                 std::function<bool()> ready, analysis::metrics_source metrics = {},
                 proxy::address_source addresses = {});
    ~admin_server();
    admin_server(const admin_server&) = delete;
    admin_server& operator=(const admin_server&) = delete;

    // More metrics for /metrics, after the proxy's and the control plane's; before start().
    // `c` must outlive the server.
    void add_metrics(const prometheus::Collectable& c);
    void start();
    void stop();
    std::uint16_t port() const noexcept { return port_; }

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::uint16_t port_ = 0;
};

}  // namespace switchyard::admin
