#pragma once
// A Switchyard proxy started in-process on 127.0.0.1 port 0, in front of two loopback
// upstreams (blue and green), for the integration tests.

#include <memory>

#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "proxy/server.hpp"
#include "tests/support/loopback.hpp"

namespace switchyard::test {

// A configuration with two slots, blue and green, one endpoint each, and one worker.
inline config::config two_slot_config(std::uint16_t blue_port, std::uint16_t green_port) {
    config::config cfg;
    cfg.listen = {"127.0.0.1", 0};
    cfg.admin.listen = {"127.0.0.1", 0};
    cfg.workers = 1;
    cfg.slots = {{"blue", {{"127.0.0.1", blue_port}}, {}, {}, {}},
                 {"green", {{"127.0.0.1", green_port}}, {}, {}, {}}};
    cfg.active = "blue";
    cfg.state_file = "off";  // a test that persists names a file of its own
    return cfg;
}

// Owns the split and the server; the server is drained (with no grace) on destruction.
class running_proxy {
public:
    // `lookup` answers the upstream name lookups (getaddrinfo when null).
    explicit running_proxy(const config::config& cfg, analysis::traffic_split initial = {0, 0},
                           std::shared_ptr<proxy::name_lookup> lookup = nullptr)
        : split_(initial),
          server_(std::make_unique<proxy::server>(cfg, split_, std::move(lookup))) {
        server_->start();
    }

    std::uint16_t port() const { return server_->port(); }
    analysis::split_state& split() { return split_; }
    proxy::server& server() { return *server_; }

private:
    analysis::split_state split_;
    std::unique_ptr<proxy::server> server_;
};

}  // namespace switchyard::test
