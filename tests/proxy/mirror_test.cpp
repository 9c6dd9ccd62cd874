// Shadow traffic (README, "Mirroring"): copies of the stable slot's requests sent to the other
// slot, fire and forget, counted per slot. Real proxy, real loopback upstreams; every wait is on
// a condition.

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "analysis/metrics.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

using upstream_response = upstream_server::response;
constexpr analysis::slot_index blue_slot = 0;
constexpr analysis::slot_index green_slot = 1;

// Holds every handler that waits on it until release(), which the destructor calls too, so that
// no upstream thread is left blocked when the servers are destroyed.
class gate {
public:
    gate() : opened_(open_.get_future().share()) {}
    ~gate() { release(); }
    void release() {
        if (!released_) {
            released_ = true;
            open_.set_value();
        }
    }
    void wait() const { opened_.wait(); }

private:
    std::promise<void> open_;
    std::shared_future<void> opened_;
    bool released_ = false;
};

struct mirror_test : ::testing::Test {
    // Released in TearDown, before the upstreams are destroyed (they join their held threads).
    gate held;
    upstream_server blue{"blue"};
    upstream_server green{"green"};

    void TearDown() override { held.release(); }

    config::config cfg(std::uint32_t percent = 100) const {
        config::config c = two_slot_config(blue.port(), green.port());
        c.mirror.emplace();
        c.mirror->percent = percent;
        return c;
    }

    // Green holds every request until the test releases it.
    void hold_green() {
        green.set_handler([this](const upstream_server::request&) {
            held.wait();
            upstream_response r;
            r.body = "green\n";
            return r;
        });
    }
};

analysis::mirror_totals mirrored(running_proxy& proxy, analysis::slot_index slot) {
    const auto shards = proxy.server().metrics_shards();
    return analysis::merge(shards)[slot].mirror;
}

std::uint64_t mirrored_with(running_proxy& proxy, analysis::slot_index slot, int status) {
    return mirrored(proxy, slot).by_status[static_cast<std::size_t>(status - 100)];
}

bool is_copy(const upstream_server::request& r) {
    return r.header("X-Switchyard-Mirror") == "1";
}

// Sends `n` requests one after another on one connection; every answer must be 200.
void send_all(std::uint16_t port, std::string_view method, int n, std::string_view body = {}) {
    raw_client c(port);
    for (int i = 0; i < n; ++i) {
        c.send(format_request(method, "/r" + std::to_string(i), {}, body));
        const response r = c.read_response(method == "HEAD");
        ASSERT_EQ(r.status, 200) << method << " " << i;
    }
}

TEST_F(mirror_test, a_copy_carries_the_marker_and_the_request_id_to_the_other_slot) {
    running_proxy proxy(cfg());
    const response r = get(proxy.port(), "/page", {{"X-Request-Id", "req-42"}});
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "blue\n");
    ASSERT_TRUE(green.wait_for_requests(1));
    const auto copy = green.requests().at(0);
    EXPECT_TRUE(is_copy(copy));
    EXPECT_EQ(copy.method, "GET");
    EXPECT_EQ(copy.target, "/page");
    EXPECT_EQ(copy.header("X-Request-Id"), "req-42");
    EXPECT_FALSE(is_copy(blue.requests().at(0)));
    ASSERT_TRUE(eventually([&] { return mirrored_with(proxy, green_slot, 200) == 1; }));
    EXPECT_EQ(mirrored(proxy, green_slot).mismatches, 0U);
    EXPECT_EQ(mirrored(proxy, blue_slot).requests(), 0U);
}

TEST_F(mirror_test, the_client_is_answered_while_the_mirror_still_holds_the_copy) {
    hold_green();
    running_proxy proxy(cfg());
    raw_client c(proxy.port());
    c.send(format_request("GET", "/slow"));
    // Green holds the copy until released below: the whole answer arrives before that.
    const response r = c.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "blue\n");
    ASSERT_TRUE(green.wait_for_requests(1));
    EXPECT_EQ(mirrored(proxy, green_slot).requests(), 0U);  // still held
    // The next request on the same connection is not held up either.
    c.send(format_request("GET", "/next"));
    EXPECT_EQ(c.read_response().status, 200);
    held.release();
    EXPECT_TRUE(eventually([&] { return mirrored_with(proxy, green_slot, 200) == 2; }));
}

TEST_F(mirror_test, a_full_queue_drops_copies_and_counts_them) {
    hold_green();
    auto c = cfg();
    c.mirror->queue = 2;
    running_proxy proxy(c);
    send_all(proxy.port(), "GET", 10);
    ASSERT_TRUE(green.wait_for_requests(2));
    // Two copies in flight, held by green; the other eight found the queue full.
    const auto m = mirrored(proxy, green_slot);
    EXPECT_EQ(m.dropped[static_cast<std::size_t>(analysis::mirror_drop::queue_full)], 8U);
    EXPECT_EQ(m.requests(), 0U);
    held.release();
    EXPECT_TRUE(eventually([&] { return mirrored_with(proxy, green_slot, 200) == 2; }));
    EXPECT_EQ(blue.request_count(), 10U);
}

TEST_F(mirror_test, bodies_over_max_body_are_not_mirrored) {
    auto c = cfg();
    c.mirror->methods = {"POST"};
    c.mirror->max_body = 10;
    running_proxy proxy(c);
    send_all(proxy.port(), "POST", 1, "small");
    send_all(proxy.port(), "POST", 1, "a body of twenty b..");
    ASSERT_TRUE(eventually([&] { return mirrored_with(proxy, green_slot, 200) == 1; }));
    const auto m = mirrored(proxy, green_slot);
    EXPECT_EQ(m.dropped[static_cast<std::size_t>(analysis::mirror_drop::body_too_large)], 1U);
    ASSERT_EQ(green.request_count(), 1U);
    EXPECT_EQ(green.requests()[0].body, "small");
    EXPECT_EQ(blue.request_count(), 2U);
}

TEST_F(mirror_test, only_the_configured_methods_are_mirrored) {
    running_proxy proxy(cfg());  // methods: GET, HEAD
    send_all(proxy.port(), "POST", 1, "x");
    send_all(proxy.port(), "GET", 1);
    send_all(proxy.port(), "DELETE", 1);
    send_all(proxy.port(), "HEAD", 1);
    ASSERT_TRUE(eventually([&] { return mirrored_with(proxy, green_slot, 200) == 2; }));
    std::vector<std::string> methods;
    for (const auto& r : green.requests()) {
        methods.push_back(r.method);
    }
    std::sort(methods.begin(), methods.end());
    EXPECT_EQ(methods, (std::vector<std::string>{"GET", "HEAD"}));
}

TEST_F(mirror_test, exactly_percent_of_eligible_requests_are_mirrored) {
    running_proxy proxy(cfg(30));
    send_all(proxy.port(), "GET", 100);
    ASSERT_TRUE(eventually([&] { return mirrored_with(proxy, green_slot, 200) == 30; }));
    send_all(proxy.port(), "GET", 10);
    ASSERT_TRUE(eventually([&] { return mirrored_with(proxy, green_slot, 200) == 33; }));
    EXPECT_EQ(green.request_count(), 33U);
    EXPECT_EQ(blue.request_count(), 110U);
}

TEST_F(mirror_test, only_requests_to_the_stable_slot_are_copied) {
    running_proxy proxy(cfg(), {0, 50});  // half to green, no rollout: blue is stable
    send_all(proxy.port(), "GET", 10);
    // Five went to blue and were copied to green; green's own five were not copied to blue.
    ASSERT_TRUE(eventually([&] { return mirrored_with(proxy, green_slot, 200) == 5; }));
    EXPECT_EQ(blue.request_count(), 5U);
    for (const auto& r : blue.requests()) {
        EXPECT_FALSE(is_copy(r));
    }
    EXPECT_EQ(mirrored(proxy, blue_slot).requests(), 0U);
    EXPECT_EQ(green.request_count(), 10U);
}

TEST_F(mirror_test, a_mirror_answering_500_to_a_primary_200_is_a_mismatch) {
    green.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.status = 500;
        r.body = "broken\n";
        return r;
    });
    running_proxy proxy(cfg());
    send_all(proxy.port(), "GET", 5);
    ASSERT_TRUE(eventually([&] { return mirrored(proxy, green_slot).mismatches == 5; }));
    const auto m = mirrored(proxy, green_slot);
    EXPECT_EQ(m.by_status[400], 5U);  // status 500
    EXPECT_EQ(m.errors(), 5U);
    EXPECT_EQ(m.response.count(), 5U);
    // The clients' answers are blue's, and so are the slot's own counts.
    const auto totals = analysis::merge(proxy.server().metrics_shards());
    EXPECT_EQ(totals[blue_slot].by_status[100], 5U);
    EXPECT_EQ(totals[green_slot].requests(), 0U);
}

TEST_F(mirror_test, a_mirror_that_cannot_connect_counts_a_failure_and_a_mismatch) {
    auto c = two_slot_config(blue.port(), 0);
    {
        const upstream_server gone("gone");
        c.slots[1].endpoints[0].port = gone.port();
    }
    c.mirror.emplace();
    c.mirror->percent = 100;
    running_proxy proxy(c);
    send_all(proxy.port(), "GET", 3);
    ASSERT_TRUE(eventually([&] {
        const auto m = mirrored(proxy, green_slot);
        return m.failures[static_cast<std::size_t>(analysis::upstream_failure::connect) - 1] == 3 &&
               m.mismatches == 3;
    }));
}

}  // namespace
}  // namespace switchyard::test
