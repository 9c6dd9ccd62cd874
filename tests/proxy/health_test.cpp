// Active health checks and passive ejection (README, "Health checks and ejection"), with real
// upstreams on loopback: which endpoint requests reach, and what the health table says.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proxy/health.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

using namespace std::chrono_literals;

// An upstream whose /health answers `health_status` and every other path `status`, with its
// name as the body.
struct checked_upstream {
    explicit checked_upstream(const std::string& name)
        : server(name, [this, name](const upstream_server::request& r) {
              upstream_server::response res;
              res.status = r.target == "/health" ? health_status.load() : status.load();
              res.body = name + "\n";
              return res;
          }) {}

    std::atomic<int> health_status{200};
    std::atomic<int> status{200};
    upstream_server server;  // last: its handler reads the atomics
};

std::string at(std::uint16_t port) {
    return "127.0.0.1:" + std::to_string(port);
}

// Blue with endpoints `a` and `b` (by port), green with `green`.
config::config two_endpoint_config(std::uint16_t a, std::uint16_t b, std::uint16_t green) {
    auto cfg = two_slot_config(a, green);
    cfg.slots[0].endpoints.push_back({"127.0.0.1", b});
    return cfg;
}

config::health_check_config fast_checks() {
    config::health_check_config c;
    c.interval = 100ms;
    c.timeout = 100ms;
    c.healthy = 2;
    c.unhealthy = 2;
    return c;
}

// The health of endpoint `name` in slot `slot` now.
std::optional<proxy::endpoint_health_state> health_of(running_proxy& proxy,
                                                      analysis::slot_index slot,
                                                      const std::string& name) {
    const auto table = proxy.server().endpoint_health();
    for (const auto& e : table->endpoints) {
        if (e.slot == slot && e.name == name) {
            return e;
        }
    }
    return std::nullopt;
}

bool is_up(running_proxy& proxy, const std::string& name) {
    const auto h = health_of(proxy, 0, name);
    return h && h->up();
}

TEST(health_active, a_failing_endpoint_leaves_the_rotation_and_comes_back) {
    checked_upstream a("a");
    checked_upstream b("b");
    upstream_server green("green");
    auto cfg = two_endpoint_config(a.server.port(), b.server.port(), green.port());
    cfg.slots[0].health_check = fast_checks();
    running_proxy proxy(cfg);

    b.health_status = 500;
    ASSERT_TRUE(eventually([&] { return !is_up(proxy, at(b.server.port())); }));
    const auto down = health_of(proxy, 0, at(b.server.port()));
    EXPECT_TRUE(down->failing_check);
    EXPECT_FALSE(down->ejected);
    EXPECT_EQ(down->last_failure, "status 500");
    EXPECT_TRUE(is_up(proxy, at(a.server.port())));

    for (int i = 0; i < 20; ++i) {
        const response r = get(proxy.port(), "/");
        ASSERT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.body, "a\n");
    }

    b.health_status = 200;
    ASSERT_TRUE(eventually([&] { return is_up(proxy, at(b.server.port())); }));
    // The failure is kept after it passed.
    EXPECT_EQ(health_of(proxy, 0, at(b.server.port()))->last_failure, "status 500");
    EXPECT_TRUE(eventually([&] { return get(proxy.port(), "/").body == "b\n"; }));
}

TEST(health_active, a_check_goes_to_the_configured_path) {
    checked_upstream a("a");
    upstream_server green("green");
    auto cfg = two_slot_config(a.server.port(), green.port());
    auto checks = fast_checks();
    checks.path = "/ready";
    cfg.slots[0].health_check = checks;
    running_proxy proxy(cfg);
    // Only /health answers 200 here: /ready gets `status`.
    a.status = 404;
    ASSERT_TRUE(eventually([&] { return !is_up(proxy, at(a.server.port())); }));
    EXPECT_EQ(health_of(proxy, 0, at(a.server.port()))->last_failure, "status 404");
    bool saw_ready = false;
    for (const auto& r : a.server.requests()) {
        saw_ready = saw_ready || (r.target == "/ready" && r.method == "GET");
    }
    EXPECT_TRUE(saw_ready);
}

TEST(health_active, an_endpoint_killed_mid_load_leaves_and_comes_back) {
    checked_upstream a("a");
    auto b = std::make_unique<upstream_server>("b", "127.0.0.1", 0);
    const std::uint16_t b_port = b->port();
    upstream_server green("green");
    auto cfg = two_endpoint_config(a.server.port(), b_port, green.port());
    cfg.workers = 2;
    cfg.slots[0].health_check = fast_checks();
    running_proxy proxy(cfg);

    // One client in a loop, noting for each answer whether it was asked for after the endpoint
    // was seen down.
    std::atomic<bool> marked{false};
    std::atomic<bool> stop{false};
    std::mutex m;
    std::vector<std::pair<bool, int>> answers;
    std::thread client([&] {
        while (!stop) {
            const bool after = marked.load();
            const int status = get(proxy.port(), "/").status;
            const std::lock_guard lock(m);
            answers.emplace_back(after, status);
        }
    });
    auto answered_after_mark = [&] {
        const std::lock_guard lock(m);
        std::size_t n = 0;
        for (const auto& [after, status] : answers) {
            n += after ? 1 : 0;
        }
        return n;
    };

    ASSERT_TRUE(eventually([&] { return b->request_count() > 0; }));
    b.reset();  // closes its listener and connections
    const bool went_down = eventually([&] { return !is_up(proxy, at(b_port)); });
    marked = true;
    const bool more = eventually([&] { return answered_after_mark() >= 30; });
    stop = true;
    client.join();
    ASSERT_TRUE(went_down);
    ASSERT_TRUE(more);
    const auto down = health_of(proxy, 0, at(b_port));
    EXPECT_EQ(down->last_failure, "refused");
    for (const auto& [after, status] : answers) {
        if (after) {
            EXPECT_EQ(status, 200);
        }
    }

    upstream_server again("b", "127.0.0.1", b_port);
    ASSERT_TRUE(eventually([&] { return is_up(proxy, at(b_port)); }));
    EXPECT_TRUE(eventually([&] { return get(proxy.port(), "/").body == "b\n"; }));
}

TEST(health_active, a_slot_with_no_healthy_endpoint_answers_503_with_the_reason) {
    upstream_server blue("blue");
    checked_upstream green("green");
    auto cfg = two_slot_config(blue.port(), green.server.port());
    cfg.slots[1].health_check = fast_checks();
    running_proxy proxy(cfg, analysis::traffic_split{1, 0});  // green takes everything
    green.health_status = 500;
    ASSERT_TRUE(eventually([&] {
        const auto h = health_of(proxy, 1, at(green.server.port()));
        return h && !h->up();
    }));
    const response r = get(proxy.port(), "/");
    EXPECT_EQ(r.status, 503);
    EXPECT_NE(r.body.find("slot green has no healthy endpoint (health check failing: status 500)"),
              std::string::npos)
        << r.body;
}

TEST(health_active, an_unresolved_name_fails_its_checks) {
    upstream_server blue("blue");
    upstream_server green("green");
    auto cfg = two_slot_config(blue.port(), green.port());
    cfg.slots[1].endpoints = {{"name-that-does-not-exist.invalid", 8000}};
    cfg.slots[1].health_check = fast_checks();
    running_proxy proxy(cfg);
    ASSERT_TRUE(eventually([&] {
        const auto h = health_of(proxy, 1, "name-that-does-not-exist.invalid:8000");
        return h && !h->up();
    }));
    EXPECT_EQ(health_of(proxy, 1, "name-that-does-not-exist.invalid:8000")->last_failure,
              "unresolved");
}

TEST(health_passive, consecutive_5xx_eject_the_endpoint_until_eject_passes) {
    checked_upstream a("a");
    checked_upstream b("b");
    upstream_server green("green");
    auto cfg = two_endpoint_config(a.server.port(), b.server.port(), green.port());
    cfg.workers = 2;
    config::passive_config passive;
    passive.consecutive_5xx = 3;
    passive.eject = 500ms;
    cfg.slots[0].passive = passive;
    running_proxy proxy(cfg);

    b.status = 500;
    // Requests alternate between a and b: b's 5xx are in a row, whichever worker sent them.
    ASSERT_TRUE(eventually([&] {
        get(proxy.port(), "/");
        return !is_up(proxy, at(b.server.port()));
    }));
    const auto down = health_of(proxy, 0, at(b.server.port()));
    EXPECT_TRUE(down->ejected);
    EXPECT_EQ(down->last_failure, "3 consecutive 5xx");
    for (int i = 0; i < 10; ++i) {
        const response r = get(proxy.port(), "/");
        ASSERT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "a\n");
    }
    b.status = 200;
    ASSERT_TRUE(eventually([&] { return is_up(proxy, at(b.server.port())); }));
    EXPECT_TRUE(eventually([&] { return get(proxy.port(), "/").body == "b\n"; }));
}

TEST(health_passive, a_success_between_5xx_starts_the_count_again) {
    checked_upstream a("a");
    upstream_server green("green");
    auto cfg = two_slot_config(a.server.port(), green.port());
    config::passive_config passive;
    passive.consecutive_5xx = 2;
    cfg.slots[0].passive = passive;
    running_proxy proxy(cfg);
    for (int i = 0; i < 6; ++i) {
        a.status = i % 2 == 0 ? 500 : 200;
        EXPECT_EQ(get(proxy.port(), "/").status, a.status.load());
    }
    EXPECT_TRUE(is_up(proxy, at(a.server.port())));
    EXPECT_EQ(health_of(proxy, 0, at(a.server.port()))->last_failure, "");
}

TEST(health_passive, a_connect_failure_ejects_the_endpoint) {
    checked_upstream a("a");
    std::uint16_t dead_port = 0;
    {
        upstream_server gone("gone");
        dead_port = gone.port();
    }
    upstream_server green("green");
    auto cfg = two_endpoint_config(a.server.port(), dead_port, green.port());
    cfg.workers = 2;
    config::passive_config passive;
    passive.eject = 30s;
    cfg.slots[0].passive = passive;  // consecutive_connect_failures: 1
    running_proxy proxy(cfg);
    ASSERT_TRUE(eventually([&] {
        get(proxy.port(), "/");
        return !is_up(proxy, at(dead_port));
    }));
    const auto down = health_of(proxy, 0, at(dead_port));
    EXPECT_TRUE(down->ejected);
    EXPECT_EQ(down->last_failure, "1 consecutive connect failures");
    for (int i = 0; i < 10; ++i) {
        const response r = get(proxy.port(), "/");
        ASSERT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "a\n");
    }
}

TEST(health_passive, without_the_key_5xx_eject_nothing) {
    checked_upstream a("a");
    upstream_server green("green");
    running_proxy proxy(two_slot_config(a.server.port(), green.port()));
    a.status = 500;
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(get(proxy.port(), "/").status, 500);
    }
    EXPECT_TRUE(is_up(proxy, at(a.server.port())));
}

TEST(health_reload, an_endpoint_that_stays_keeps_its_state_and_checks_restart) {
    checked_upstream a("a");
    checked_upstream b("b");
    upstream_server green("green");
    auto cfg = two_endpoint_config(a.server.port(), b.server.port(), green.port());
    cfg.slots[0].health_check = fast_checks();
    running_proxy proxy(cfg);
    b.health_status = 503;
    ASSERT_TRUE(eventually([&] { return !is_up(proxy, at(b.server.port())); }));

    // New check settings: b keeps its state until the new checks decide.
    auto next = cfg;
    next.slots[0].health_check->healthy = 1;
    proxy.server().reload(next);
    EXPECT_FALSE(is_up(proxy, at(b.server.port())));
    EXPECT_EQ(health_of(proxy, 0, at(b.server.port()))->last_failure, "status 503");
    EXPECT_EQ(get(proxy.port(), "/").body, "a\n");
    b.health_status = 200;
    ASSERT_TRUE(eventually([&] { return is_up(proxy, at(b.server.port())); }));

    // Without health_check the endpoints are up.
    b.health_status = 500;
    ASSERT_TRUE(eventually([&] { return !is_up(proxy, at(b.server.port())); }));
    auto off = cfg;
    off.slots[0].health_check.reset();
    proxy.server().reload(off);
    EXPECT_TRUE(is_up(proxy, at(b.server.port())));
    EXPECT_TRUE(eventually([&] { return get(proxy.port(), "/").body == "b\n"; }));
}

}  // namespace
}  // namespace switchyard::test
