// The hold and the maintenance mode on the data plane (README, "Hold and maintenance"), with the
// traffic word set directly.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/proxy_fixture.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

using namespace std::chrono_literals;

TEST(hold, held_requests_go_on_in_arrival_order_after_release) {
    upstream_server blue("blue");
    upstream_server green("green");
    running_proxy proxy(two_slot_config(blue.port(), green.port()));
    proxy.split().set_hold(true);
    constexpr std::size_t n = 5;
    std::vector<std::unique_ptr<raw_client>> clients;
    for (std::size_t i = 0; i < n; ++i) {
        clients.push_back(std::make_unique<raw_client>(proxy.port()));
        clients.back()->send(format_request("GET", "/" + std::to_string(i)));
        ASSERT_TRUE(eventually([&] { return proxy.server().hold().waiting() == i + 1; }));
    }
    EXPECT_EQ(blue.request_count(), 0u);
    proxy.split().set_hold(false);
    proxy.server().hold().release();
    for (auto& c : clients) {
        EXPECT_EQ(c->read_response().status, 200);
    }
    auto seen = blue.requests();
    ASSERT_EQ(seen.size(), n);
    // Connections are opened in the order the requests are released: accept order is that order.
    std::sort(seen.begin(), seen.end(),
              [](const auto& a, const auto& b) { return a.connection_id < b.connection_id; });
    for (std::size_t i = 0; i < n; ++i) {
        EXPECT_EQ(seen[i].target, "/" + std::to_string(i));
    }
    EXPECT_EQ(proxy.server().hold().waiting(), 0u);
}

// A POST /hold that comes before a worker has acted on the release before it: the requests held
// until that release still go on (they are not kept for the new hold's release or max_wait).
TEST(hold, a_new_hold_right_after_a_release_keeps_nothing_the_release_let_go) {
    upstream_server blue("blue");
    upstream_server green("green");
    auto cfg = two_slot_config(blue.port(), green.port());
    cfg.hold.max_wait = std::chrono::minutes(5);  // longer than the test: no 503 by timeout
    running_proxy proxy(cfg);
    proxy.split().set_hold(true);
    raw_client c(proxy.port());
    c.send(format_request("GET", "/held"));
    ASSERT_TRUE(eventually([&] { return proxy.server().hold().waiting() == 1; }));
    proxy.split().set_hold(false);
    proxy.split().set_hold(true);  // held again before the worker sees the release
    proxy.server().hold().release();
    const response r = c.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(blue.request_count(), 1u);
    // A request that comes now waits for the new hold's release.
    raw_client later(proxy.port());
    later.send(format_request("GET", "/later"));
    ASSERT_TRUE(eventually([&] { return proxy.server().hold().waiting() == 1; }));
    proxy.split().set_hold(false);
    proxy.server().hold().release();
    EXPECT_EQ(later.read_response().status, 200);
}

TEST(hold, times_out_with_503_and_retry_after) {
    upstream_server blue("blue");
    upstream_server green("green");
    auto cfg = two_slot_config(blue.port(), green.port());
    cfg.hold.max_wait = 200ms;
    running_proxy proxy(cfg);
    proxy.split().set_hold(true);
    raw_client c(proxy.port());
    c.send(format_request("GET", "/"));
    const response r = c.read_response();
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("Retry-After"), "1");
    EXPECT_EQ(r.body, "held past hold.max_wait\n");
    EXPECT_EQ(blue.request_count(), 0u);
    EXPECT_EQ(proxy.server().hold().totals().timeouts, 1u);
    EXPECT_TRUE(eventually([&] { return proxy.server().hold().waiting() == 0; }));
}

TEST(hold, past_max_requests_is_refused_at_once) {
    upstream_server blue("blue");
    upstream_server green("green");
    auto cfg = two_slot_config(blue.port(), green.port());
    cfg.hold.max_requests = 1;
    running_proxy proxy(cfg);
    proxy.split().set_hold(true);
    raw_client first(proxy.port());
    first.send(format_request("GET", "/first"));
    ASSERT_TRUE(eventually([&] { return proxy.server().hold().waiting() == 1; }));
    raw_client second(proxy.port());
    second.send(format_request("GET", "/second"));
    const response r = second.read_response();
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("Retry-After"), "30");
    EXPECT_EQ(proxy.server().hold().totals().overflows, 1u);
    proxy.split().set_hold(false);
    proxy.server().hold().release();
    EXPECT_EQ(first.read_response().status, 200);
    EXPECT_EQ(blue.request_count(), 1u);
}

TEST(hold, requests_in_flight_are_not_held) {
    upstream_server blue("blue", [](const upstream_server::request&) {
        upstream_server::response r;
        r.delay = 300ms;
        r.body = "slow\n";
        return r;
    });
    upstream_server green("green");
    running_proxy proxy(two_slot_config(blue.port(), green.port()));
    raw_client c(proxy.port());
    c.send(format_request("GET", "/slow"));
    ASSERT_TRUE(blue.wait_for_requests(1));
    proxy.split().set_hold(true);
    const response r = c.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "slow\n");
    EXPECT_EQ(proxy.server().hold().waiting(), 0u);
}

TEST(hold, drain_answers_held_requests_503) {
    upstream_server blue("blue");
    upstream_server green("green");
    running_proxy proxy(two_slot_config(blue.port(), green.port()));
    proxy.split().set_hold(true);
    raw_client c(proxy.port());
    c.send(format_request("GET", "/"));
    ASSERT_TRUE(eventually([&] { return proxy.server().hold().waiting() == 1; }));
    proxy.server().drain(5s);
    const response r = c.read_response();
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "the proxy is shutting down\n");
    EXPECT_EQ(blue.request_count(), 0u);
}

TEST(maintenance, answers_503_with_the_message_until_cleared) {
    upstream_server blue("blue");
    upstream_server green("green");
    running_proxy proxy(two_slot_config(blue.port(), green.port()));
    proxy.server().hold().set_message("back at noon");
    proxy.split().set_maintenance(true);
    raw_client c(proxy.port());
    c.send(format_request("GET", "/"));
    response r = c.read_response();
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "back at noon\n");
    EXPECT_EQ(r.header("Retry-After"), "30");
    EXPECT_EQ(blue.request_count(), 0u);
    EXPECT_EQ(proxy.server().hold().totals().maintenance_answers, 1u);
    // Not recorded against a slot: it never reached one.
    const auto totals = analysis::merge(proxy.server().metrics_shards());
    EXPECT_EQ(totals[0].requests(), 0u);

    proxy.split().set_maintenance(false);
    c.send(format_request("GET", "/"));
    r = c.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(blue.request_count(), 1u);
}

}  // namespace
}  // namespace switchyard::test
