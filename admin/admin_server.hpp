#pragma once
// The admin API of PRODUCT.md: slot switching, manual weights, health and readiness, on a
// listener and thread of its own, away from the data plane.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "analysis/metrics.hpp"
#include "analysis/traffic_split.hpp"
#include "config/config.hpp"

namespace switchyard::admin {

// Totals merged from the proxy's shards at the moment of the call.
using metrics_source = std::function<std::array<analysis::slot_totals, 2>()>;

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
    admin_api(const config::config& cfg, analysis::split_state& split, std::function<bool()> ready,
              metrics_source metrics = {});

    // `authorization` is the Authorization field value ("" when absent).
    admin_response handle(std::string_view method, std::string_view target,
                          std::string_view authorization, std::string_view body);

private:
    admin_response put_active_slot(std::string_view body);
    admin_response put_weights(std::string_view body);
    admin_response weights() const;
    // The slot named `name`, or -1.
    int slot_by_name(std::string_view name) const noexcept;
    bool authorized(std::string_view authorization) const noexcept;

    std::array<std::string, 2> slot_names_;
    std::string token_;
    analysis::split_state& split_;
    std::function<bool()> ready_;
    metrics_source metrics_;
};

class admin_server {
public:
    // Binds the listener (throws std::runtime_error naming the address when it cannot).
    admin_server(const config::config& cfg, analysis::split_state& split,
                 std::function<bool()> ready, metrics_source metrics = {});
    ~admin_server();
    admin_server(const admin_server&) = delete;
    admin_server& operator=(const admin_server&) = delete;

    void start();
    void stop();
    std::uint16_t port() const noexcept { return port_; }

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::uint16_t port_ = 0;
};

}  // namespace switchyard::admin
