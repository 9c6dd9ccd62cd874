// server::reload, the data plane's part of a hot reload (README, "Reloading"): endpoints that
// move, go or come under load, and names whose resolver is replaced. The admin API's part is
// tested in tests/admin/reload_test.cpp.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "tests/support/load.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/table_lookup.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

using namespace std::chrono_literals;

config::address at(const upstream_server& u) {
    return {"127.0.0.1", u.port()};
}

TEST(server_reload, endpoints_that_move_go_or_come_under_load_lose_no_request) {
    upstream_server a("A");
    upstream_server b("B");
    upstream_server c("C");
    upstream_server green("green");
    auto cfg = two_slot_config(a.port(), green.port());
    cfg.workers = 2;
    cfg.slots[0].endpoints = {at(a), at(b)};
    running_proxy proxy(cfg);
    load_generator load(proxy.port(), {8, 500'000, 120s});
    ASSERT_TRUE(a.wait_for_requests(100));
    ASSERT_TRUE(b.wait_for_requests(100));

    // A goes, B moves from index 1 to 0, C comes at index 1; a longer timeout rides along.
    cfg.slots[0].endpoints = {at(b), at(c)};
    cfg.timeouts.idle = 90s;
    proxy.server().reload(cfg);
    ASSERT_TRUE(eventually([&] { return c.request_count() >= 200; }));
    const std::size_t a_after = a.request_count();
    const std::size_t b_after = b.request_count();
    ASSERT_TRUE(eventually([&] { return c.request_count() >= 400; }));
    EXPECT_EQ(a.request_count(), a_after);
    EXPECT_GT(b.request_count(), b_after);  // B still takes its turn, under its new index
    EXPECT_TRUE(a.wait_for_open_connections(0));

    load.stop();
    EXPECT_EQ(load.with_status(200), load.answered());
    EXPECT_EQ(load.with_body("green\n"), 0U);
    EXPECT_EQ(load.reconnects(), 0U);
}

TEST(server_reload, a_new_name_gets_a_resolver_that_follows_it) {
    upstream_server a("A", "127.0.0.2", 0);
    upstream_server b("B", "127.0.0.3", a.port());
    upstream_server green("green");
    auto lookup = std::make_shared<table_lookup>();
    lookup->set("app-a", {"127.0.0.2"});
    lookup->set("app-b", {"127.0.0.3"});
    auto cfg = two_slot_config(a.port(), green.port());
    cfg.upstream.resolve_interval = 100ms;
    cfg.slots[0].endpoints = {{"app-a", a.port()}};
    running_proxy proxy(cfg, {0, 0}, lookup);
    EXPECT_EQ(get(proxy.port()).body, "A\n");

    cfg.slots[0].endpoints = {{"app-b", a.port()}};
    proxy.server().reload(cfg);
    EXPECT_EQ(get(proxy.port()).body, "B\n");
    ASSERT_EQ(proxy.server().addresses()->endpoints.size(), 2U);
    EXPECT_EQ(proxy.server().addresses()->endpoints[0].addresses.front().address().to_string(),
              "127.0.0.3");

    // The new resolver looks the new name up again, and the workers take its tables.
    lookup->set("app-b", {"127.0.0.2"});
    EXPECT_TRUE(eventually([&] { return get(proxy.port()).body == "A\n"; }));
}

TEST(server_reload, an_access_log_that_cannot_be_opened_changes_nothing) {
    upstream_server blue("blue");
    upstream_server green("green");
    auto cfg = two_slot_config(blue.port(), green.port());
    running_proxy proxy(cfg);
    auto next = cfg;
    next.slots[0].endpoints = {at(green)};
    next.access_log.to = "/nonexistent-directory/access.log";
    EXPECT_THROW(proxy.server().reload(next), std::runtime_error);
    EXPECT_EQ(get(proxy.port()).body, "blue\n");
}

}  // namespace
}  // namespace switchyard::test
