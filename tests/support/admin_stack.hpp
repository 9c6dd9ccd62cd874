#pragma once
// The whole of Switchyard in one process for end-to-end tests: two loopback upstreams, the proxy,
// the admin server, and a load generator, with short analysis intervals so that a rollout runs
// in seconds. Every wait is on a condition, polled and bounded.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "admin/admin_server.hpp"
#include "tests/support/load.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {

// A configuration fast enough for tests: 400 ms intervals, a short bake. The latency ratio's
// floor is 100 ms rather than 5 ms: a p95 of a few dozen requests on a loaded 2-core machine
// (sanitizers included) can pass 1.5 x 5 ms by chance, and the tests judge 300 ms regressions.
inline config::config fast_config(std::uint16_t blue, std::uint16_t green) {
    auto cfg = two_slot_config(blue, green);
    cfg.workers = 2;
    cfg.analysis.interval = std::chrono::milliseconds(400);
    cfg.analysis.min_requests = 5;
    for (auto& check : cfg.analysis.checks) {
        if (check.kind == config::check_kind::max_ratio_to_stable &&
            config::is_latency(check.metric)) {
            check.floor = 0.1;
        }
    }
    cfg.rollout.bake = std::chrono::milliseconds(400);
    cfg.rollout.health.deadline = std::chrono::seconds(2);
    return cfg;
}

// The kinds of the events, without those that judge and move nothing (check-failed,
// inconclusive): what a test of the steps compares.
inline std::vector<std::string> step_kinds(const boost::json::array& events) {
    std::vector<std::string> out;
    for (const auto& e : events) {
        const std::string kind(e.at("event").as_string());
        if (kind != "check-failed" && kind != "inconclusive") {
            out.push_back(kind);
        }
    }
    return out;
}

// Upstreams, proxy, admin server and a load generator, torn down in reverse.
class admin_stack {
public:
    // `lookup` answers the upstream name lookups (getaddrinfo when null).
    explicit admin_stack(const std::function<void(config::config&)>& adjust = {},
                         std::shared_ptr<proxy::name_lookup> lookup = nullptr) {
        cfg_ = fast_config(blue.port(), green.port());
        if (adjust) {
            adjust(cfg_);
        }
        proxy_ =
            std::make_unique<running_proxy>(cfg_, analysis::traffic_split{0, 0}, std::move(lookup));
        const auto shards = proxy_->server().metrics_shards();
        proxy::server& server = proxy_->server();
        admin_ = std::make_unique<admin::admin_server>(
            cfg_, proxy_->split(), [] { return true; },
            [shards] { return analysis::merge(shards); }, [&server] { return server.addresses(); });
        admin_->use_endpoint_health([&server] { return server.endpoint_health(); });
        admin_->use_hold(server.hold());
        admin_->start();
    }
    ~admin_stack() {
        load_.reset();
        admin_->stop();
    }

    upstream_server blue{"blue"};
    upstream_server green{"green"};

    const config::config& cfg() const { return cfg_; }
    running_proxy& proxy() { return *proxy_; }
    std::uint16_t admin_port() const { return admin_->port(); }
    void start_load(std::size_t clients = 8) {
        load_ = std::make_unique<load_generator>(
            proxy_->port(), load_generator::limits{clients, 500'000, std::chrono::seconds(120)});
    }
    load_generator& load() { return *load_; }
    void stop_load() { load_->stop(); }
    admin::admin_server& admin() { return *admin_; }

    // One admin call on a connection of its own; the body parsed as JSON when it is.
    boost::json::value call(std::string_view method, std::string_view target,
                            std::string_view body = {}, int* status = nullptr) {
        raw_client client(admin_->port());
        client.send(format_request(method, target, {}, body));
        const response r = client.read_response();
        if (status != nullptr) {
            *status = r.status;
        }
        boost::system::error_code ec;
        boost::json::value v = boost::json::parse(r.body, ec);
        return ec ? boost::json::value(r.body) : v;
    }
    boost::json::value status() { return call("GET", "/status"); }
    std::string phase() { return std::string(status().at("rollout").at("phase").as_string()); }
    bool wait_for_phase(std::string_view want,
                        std::chrono::milliseconds limit = std::chrono::seconds(20)) {
        return eventually([&] { return phase() == want; }, limit);
    }
    int green_weight() { return proxy_->split().load().weight(1); }

private:
    config::config cfg_;
    std::unique_ptr<running_proxy> proxy_;
    std::unique_ptr<admin::admin_server> admin_;
    std::unique_ptr<load_generator> load_;
};

}  // namespace switchyard::test
