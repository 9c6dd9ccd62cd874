// Upstream names: looked up at start without stopping it, looked up again every interval and
// after a connect failure, and followed by the proxy as they change. Names are answered by a
// table the test controls; the upstreams are real servers on loopback addresses 127.0.0.2 and
// 127.0.0.3, on one port, so that a changed address is all that tells them apart.

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/resolver.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/table_lookup.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

using namespace std::chrono_literals;
using proxy::address_snapshot;
using proxy::upstream_resolver;

std::vector<std::string> ips(const proxy::endpoint_addresses& e) {
    std::vector<std::string> out;
    for (const auto& a : e.addresses) {
        out.push_back(a.address().to_string());
    }
    return out;
}

// The tables a running resolver publishes, for a test to wait on.
class published {
public:
    void operator()(const address_snapshot& table) {
        const std::lock_guard lock(mutex_);
        tables_.push_back(table);
        changed_.notify_all();
    }
    // The latest table once `n` have been published, or null after 10 s.
    address_snapshot wait_for(std::size_t n) {
        std::unique_lock lock(mutex_);
        if (!changed_.wait_for(lock, 10s, [&] { return tables_.size() >= n; })) {
            return nullptr;
        }
        return tables_.back();
    }
    std::size_t count() {
        const std::lock_guard lock(mutex_);
        return tables_.size();
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<address_snapshot> tables_;
};

// --- the resolver on its own ---

TEST(upstream_resolver, a_name_that_does_not_resolve_leaves_its_endpoint_empty_with_the_reason) {
    auto names = std::make_shared<table_lookup>();
    names->set("app-blue", {"10.0.0.7", "10.0.0.5", "10.0.0.7"});
    upstream_resolver resolver({{"app-blue", 8000}, {"app-green", 8000}}, 1h, names);
    resolver.resolve_now();
    const auto table = resolver.current();
    ASSERT_EQ(table->endpoints.size(), 2U);
    // Sorted and distinct, on the configured port.
    EXPECT_EQ(ips(table->endpoints[0]), (std::vector<std::string>{"10.0.0.5", "10.0.0.7"}));
    EXPECT_EQ(table->endpoints[0].addresses[0].port(), 8000);
    EXPECT_EQ(table->endpoints[0].error, "");
    EXPECT_TRUE(table->endpoints[1].addresses.empty());
    EXPECT_EQ(table->endpoints[1].error, "Name or service not known");
}

TEST(upstream_resolver, ip_literals_are_never_looked_up) {
    auto names = std::make_shared<table_lookup>();
    upstream_resolver resolver({{"127.0.0.1", 81}, {"::1", 82}}, 1h, names);
    resolver.resolve_now();
    EXPECT_EQ(ips(resolver.current()->endpoints[0]), std::vector<std::string>{"127.0.0.1"});
    EXPECT_EQ(ips(resolver.current()->endpoints[1]), std::vector<std::string>{"::1"});
    EXPECT_EQ(names->lookups("127.0.0.1") + names->lookups("::1"), 0U);
}

TEST(upstream_resolver, a_host_named_twice_is_looked_up_once_per_round) {
    auto names = std::make_shared<table_lookup>();
    names->set("app", {"10.0.0.5"});
    upstream_resolver resolver({{"app", 8000}, {"app", 8001}}, 1h, names);
    resolver.resolve_now();
    EXPECT_EQ(names->lookups("app"), 1U);
    EXPECT_EQ(resolver.current()->endpoints[1].addresses[0].port(), 8001);
}

TEST(upstream_resolver, looks_again_every_interval_and_publishes_only_changes) {
    auto names = std::make_shared<table_lookup>();
    names->set("app-green", {"10.0.0.5"});
    published tables;  // outlives the resolver's thread
    upstream_resolver resolver({{"app-green", 8000}}, 10ms, names);
    resolver.resolve_now();
    resolver.start(std::ref(tables));
    // Rounds that find the same address publish nothing.
    ASSERT_TRUE(eventually([&] { return names->lookups("app-green") >= 5; }));
    EXPECT_EQ(tables.count(), 0U);
    names->set("app-green", {"10.0.0.6"});
    const auto table = tables.wait_for(1);
    ASSERT_NE(table, nullptr);
    EXPECT_EQ(ips(table->endpoints[0]), std::vector<std::string>{"10.0.0.6"});
    EXPECT_EQ(resolver.current(), table);
}

TEST(upstream_resolver, a_failed_lookup_keeps_the_addresses_and_a_name_that_is_gone_drops_them) {
    auto names = std::make_shared<table_lookup>();
    names->set("app-green", {"10.0.0.5"});
    published tables;  // outlives the resolver's thread
    upstream_resolver resolver({{"app-green", 8000}}, 10ms, names);
    resolver.resolve_now();
    resolver.start(std::ref(tables));

    names->fail("app-green");  // a DNS timeout says nothing about the container
    auto table = tables.wait_for(1);
    ASSERT_NE(table, nullptr);
    EXPECT_EQ(ips(table->endpoints[0]), std::vector<std::string>{"10.0.0.5"});
    EXPECT_EQ(table->endpoints[0].error,
              "Temporary failure in name resolution; kept the last addresses");

    names->set("app-green", {});  // the container was removed: its name is gone
    table = tables.wait_for(2);
    ASSERT_NE(table, nullptr);
    EXPECT_TRUE(table->endpoints[0].addresses.empty());
    EXPECT_EQ(table->endpoints[0].error, "Name or service not known");
}

TEST(upstream_resolver, refresh_brings_the_next_round_forward) {
    auto names = std::make_shared<table_lookup>();
    published tables;  // outlives the resolver's thread
    upstream_resolver resolver({{"app-green", 8000}}, 1h, names);
    resolver.resolve_now();
    resolver.start(std::ref(tables));
    names->set("app-green", {"10.0.0.5"});
    resolver.refresh();  // an hour early
    const auto table = tables.wait_for(1);
    ASSERT_NE(table, nullptr);
    EXPECT_EQ(ips(table->endpoints[0]), std::vector<std::string>{"10.0.0.5"});
}

TEST(upstream_resolver, unresolved_endpoints_names_each_key_that_does_not_resolve) {
    table_lookup names;
    names.set("app-blue", {"10.0.0.5"});
    config::config cfg = two_slot_config(1, 2);
    cfg.slots[0].endpoints = {{"app-blue", 8000}};
    cfg.slots[1].endpoints = {{"127.0.0.1", 8000}, {"app-green", 8000}};
    EXPECT_EQ(proxy::unresolved_endpoints(cfg, names),
              std::vector<std::string>{"slots.green.endpoints[1]: app-green:8000 does not "
                                       "resolve (Name or service not known)"});
}

// --- through the proxy ---

// Upstreams "old" on 127.0.0.2 and "new" on 127.0.0.3, on the same port, and a proxy whose green
// slot (active) is the endpoint "app-green:<that port>".
struct moving_upstream : ::testing::Test {
    upstream_server old_home{"old", "127.0.0.2", 0};
    upstream_server new_home{"new", "127.0.0.3", old_home.port()};
    std::shared_ptr<table_lookup> names = std::make_shared<table_lookup>();

    config::config cfg(std::chrono::milliseconds resolve_interval) const {
        config::config c = two_slot_config(refused_port(), 1);
        c.slots[1].endpoints = {{"app-green", old_home.port()}};
        c.active = "green";
        c.upstream.resolve_interval = resolve_interval;
        return c;
    }
    static std::uint16_t refused_port() {
        const upstream_server gone("gone");
        return gone.port();
    }
    // The body of a GET through the proxy, or its status when not 200.
    static std::string fetch(const running_proxy& p) {
        const response r = get(p.port());
        return r.status == 200 ? r.body : std::to_string(r.status) + " " + r.body;
    }
};

TEST_F(moving_upstream, starts_with_a_name_that_does_not_resolve_and_follows_it_as_it_moves) {
    running_proxy proxy(cfg(20ms), {1, 0}, names);

    // Not there yet: the slot answers 503 with the resolver's reason, and the proxy runs.
    EXPECT_EQ(fetch(proxy), "503 no endpoint of slot green resolves (app-green:" +
                                std::to_string(old_home.port()) + ": Name or service not known)\n");

    names->set("app-green", {"127.0.0.2"});  // the container started
    ASSERT_TRUE(eventually([&] { return fetch(proxy) == "old\n"; }));
    ASSERT_EQ(old_home.connections_open(), 1U);  // pooled, idle

    names->set("app-green", {"127.0.0.3"});  // recreated under a new address
    ASSERT_TRUE(eventually([&] { return fetch(proxy) == "new\n"; }));
    // The pooled connection to the address that went away was closed, not left to linger.
    EXPECT_TRUE(old_home.wait_for_open_connections(0));
}

TEST_F(moving_upstream, the_addresses_of_a_name_take_turns) {
    names->set("app-green", {"127.0.0.3", "127.0.0.2"});  // a service scaled to two replicas
    running_proxy proxy(cfg(1h), {1, 0}, names);
    std::vector<std::string> bodies;
    for (int i = 0; i < 4; ++i) {
        raw_client client(proxy.port());  // a fresh connection each time, so no pooled reuse
        client.send(format_request("GET", "/", {{"Connection", "close"}}));
        bodies.push_back(client.read_response().body);
    }
    EXPECT_EQ(bodies, (std::vector<std::string>{"old\n", "new\n", "old\n", "new\n"}));
    // Each replica's connection was pooled and reused: one connection to each.
    EXPECT_EQ(old_home.connections_accepted(), 1U);
    EXPECT_EQ(new_home.connections_accepted(), 1U);
}

TEST_F(moving_upstream, a_connection_busy_while_its_address_goes_away_is_not_pooled) {
    std::promise<void> release;
    const std::shared_future<void> released = release.get_future().share();
    old_home.set_handler([released](const upstream_server::request&) {
        released.wait();
        upstream_server::response res;
        res.body = "old\n";
        return res;
    });
    names->set("app-green", {"127.0.0.2"});
    running_proxy proxy(cfg(20ms), {1, 0}, names);
    auto answer = std::async(std::launch::async, [&] { return fetch(proxy); });
    ASSERT_TRUE(old_home.wait_for_requests(1));
    names->set("app-green", {"127.0.0.3"});
    ASSERT_TRUE(eventually([&] {
        return ips(proxy.server().addresses()->endpoints[1]) ==
               std::vector<std::string>{"127.0.0.3"};
    }));
    release.set_value();
    EXPECT_EQ(answer.get(), "old\n");  // the exchange in flight finishes where it started
    EXPECT_TRUE(old_home.wait_for_open_connections(0));  // and its connection is not kept
    EXPECT_EQ(fetch(proxy), "new\n");
}

TEST_F(moving_upstream, a_connect_failure_has_the_name_looked_up_again) {
    names->set("app-green", {"127.0.0.4"});  // nothing listens there: connections are refused
    running_proxy proxy(cfg(1h), {1, 0}, names);
    const std::size_t at_start = names->lookups("app-green");
    EXPECT_EQ(fetch(proxy).substr(0, 3), "502");
    names->set("app-green", {"127.0.0.3"});
    // No interval comes in an hour: only the failure can have brought this lookup on.
    ASSERT_TRUE(eventually([&] { return fetch(proxy) == "new\n"; }));
    EXPECT_GT(names->lookups("app-green"), at_start);
}

}  // namespace
}  // namespace switchyard::test
