// Routes and the preview header (README, "Routes"): the matcher on parsed heads, then through a
// running proxy in front of two loopback upstreams.

#include "proxy/routes.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/http1.hpp"
#include "proxy/sticky.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::proxy {
namespace {

using test::field;

const analysis::per_slot<std::string> slot_names{"blue", "green"};

// A configuration of two slots, blue and green, with `extra` (routes, preview) after them.
config::config parse(const std::string& extra) {
    auto r = config::parse_config(
        "slots:\n"
        "  blue:  { endpoints: [\"127.0.0.1:1\"] }\n"
        "  green: { endpoints: [\"127.0.0.1:2\"] }\n" +
        extra);
    std::string errors;
    for (const auto& e : r.errors) {
        errors += config::format_error("routes", e) + "\n";
    }
    EXPECT_TRUE(r.value.has_value()) << errors;
    return r.value ? *r.value : config::config{};
}

route_table table(const std::string& routes_yaml) {
    return route_table(parse("routes:\n" + routes_yaml).routes, slot_names);
}

// A request head parsed in place; its views point into `text`.
class head {
public:
    explicit head(std::string target, std::vector<std::string> lines = {},
                  std::string method = "GET")
        : storage_(100) {
        text_ = method + " " + target + " HTTP/1.1\r\nHost: example.test\r\n";
        for (const auto& l : lines) {
            text_ += l + "\r\n";
        }
        text_ += "\r\n";
        http1::parse_error e = http1::parse_error::none;
        const auto st = http1::parse_request(text_, storage_, {}, req_, e);
        EXPECT_EQ(st, http1::parse_status::complete) << http1::describe(e);
    }
    head(const head&) = delete;
    head& operator=(const head&) = delete;
    const http1::request_head& req() const { return req_; }

private:
    std::string text_;
    std::vector<http1::header_field> storage_;
    http1::request_head req_;
};

const analysis::traffic_state no_rollout{{0, 0}, false, 0, false, false};
const analysis::traffic_state green_rollout{{0, 10}, true, 1, false, false};

// The route index that takes `h`, or -1.
int taken_by(const route_table& t, const head& h,
             const analysis::traffic_state& traffic = no_rollout) {
    const auto pick = t.route_for(h.req(), traffic);
    return pick ? pick->index : -1;
}

TEST(routes, header_exact_ignores_name_case_not_value_case) {
    const auto t =
        table("  - { name: testers, match: { header: { X-Canary: \"true\" } }, to: green }\n");
    EXPECT_EQ(taken_by(t, head("/", {"X-Canary: true"})), 0);
    EXPECT_EQ(taken_by(t, head("/", {"x-canary: true"})), 0);
    EXPECT_EQ(taken_by(t, head("/", {"X-Canary: True"})), -1);
    EXPECT_EQ(taken_by(t, head("/", {"X-Canary: truer"})), -1);
    EXPECT_EQ(taken_by(t, head("/")), -1);
    const auto pick = t.route_for(head("/", {"X-Canary: true"}).req(), no_rollout);
    ASSERT_TRUE(pick);
    EXPECT_EQ(pick->slot, 1);
}

TEST(routes, header_prefix_regex_present_and_absent) {
    const auto t = table(
        "  - { name: p, match: { headers: [ { name: X-A, prefix: tr } ] }, to: green }\n"
        "  - { name: r, match: { headers: [ { name: X-User, regex: \"[a-f0-9]+\" } ] }, to: green "
        "}\n"
        "  - { name: d, match: { headers: [ { name: X-Debug, present: true } ] }, to: green }\n"
        "  - { name: n, match: { headers: [ { name: X-Human, present: false } ] }, to: blue }\n");
    EXPECT_EQ(taken_by(t, head("/", {"X-Human: 1", "X-A: trunk"})), 0);
    EXPECT_EQ(taken_by(t, head("/", {"X-Human: 1", "X-A: atr"})), -1);
    // The regex matches the whole value.
    EXPECT_EQ(taken_by(t, head("/", {"X-Human: 1", "X-User: c0ffee"})), 1);
    EXPECT_EQ(taken_by(t, head("/", {"X-Human: 1", "X-User: c0ffee!"})), -1);
    EXPECT_EQ(taken_by(t, head("/", {"X-Human: 1", "X-Debug:"})), 2);
    EXPECT_EQ(taken_by(t, head("/")), 3);
}

TEST(routes, cookie_exact_and_present) {
    const auto t = table(
        "  - { name: beta, match: { cookie: { beta_user: \"true\" } }, to: green }\n"
        "  - { name: session, match: { cookies: [ { name: sid, present: true } ] }, to: blue }\n");
    EXPECT_EQ(taken_by(t, head("/", {"Cookie: a=1; beta_user=true; c=3"})), 0);
    EXPECT_EQ(taken_by(t, head("/", {"Cookie: beta_user=\"true\""})), 0);
    EXPECT_EQ(taken_by(t, head("/", {"Cookie: a=1", "Cookie: beta_user=true"})), 0);
    EXPECT_EQ(taken_by(t, head("/", {"Cookie: beta_user=false"})), -1);
    EXPECT_EQ(taken_by(t, head("/", {"Cookie: xbeta_user=true"})), -1);
    EXPECT_EQ(taken_by(t, head("/", {"X-Beta-User: true"})), -1);
    EXPECT_EQ(taken_by(t, head("/", {"Cookie: sid=abc"})), 1);
    EXPECT_EQ(taken_by(t, head("/", {"Cookie: sidx=abc"})), -1);
}

TEST(routes, query_parameter_exact_after_decoding) {
    const auto t = table("  - { name: q, match: { query: { variant: \"b c\" } }, to: green }\n");
    EXPECT_EQ(taken_by(t, head("/search?x=1&variant=b+c")), 0);
    EXPECT_EQ(taken_by(t, head("/search?variant=b%20c&x=1")), 0);
    EXPECT_EQ(taken_by(t, head("/search?variant=b")), -1);
    EXPECT_EQ(taken_by(t, head("/search?xvariant=b+c")), -1);
    EXPECT_EQ(taken_by(t, head("/variant=b+c")), -1);
}

TEST(routes, path_prefix_and_method) {
    const auto t = table(
        "  - { name: beta, match: { path_prefix: /beta }, to: green }\n"
        "  - { name: writes, match: { method: [POST, PUT] }, to: green }\n"
        "  - { name: heads, match: { method: HEAD }, to: blue }\n");
    EXPECT_EQ(taken_by(t, head("/beta/x?y=1")), 0);
    EXPECT_EQ(taken_by(t, head("http://example.test/beta/x")), 0);
    EXPECT_EQ(taken_by(t, head("/alpha/beta")), -1);
    EXPECT_EQ(taken_by(t, head("/x", {"Content-Length: 0"}, "PUT")), 1);
    EXPECT_EQ(taken_by(t, head("/x", {}, "HEAD")), 2);
    EXPECT_EQ(taken_by(t, head("/x", {}, "get")), -1);  // methods are case-sensitive
}

TEST(routes, every_condition_must_hold) {
    const auto t = table(
        "  - name: all\n"
        "    to: green\n"
        "    match: { path_prefix: /api, method: GET, header: { X-Canary: \"1\" }, cookie: { b: "
        "\"1\" }, query: { v: \"2\" } }\n");
    EXPECT_EQ(taken_by(t, head("/api?v=2", {"X-Canary: 1", "Cookie: b=1"})), 0);
    EXPECT_EQ(taken_by(t, head("/web?v=2", {"X-Canary: 1", "Cookie: b=1"})), -1);
    EXPECT_EQ(taken_by(t, head("/api?v=3", {"X-Canary: 1", "Cookie: b=1"})), -1);
    EXPECT_EQ(taken_by(t, head("/api?v=2", {"X-Canary: 2", "Cookie: b=1"})), -1);
    EXPECT_EQ(taken_by(t, head("/api?v=2", {"X-Canary: 1", "Cookie: b=2"})), -1);
    EXPECT_EQ(taken_by(t, head("/api?v=2", {"X-Canary: 1", "Cookie: b=1"}, "DELETE")), -1);
}

TEST(routes, the_first_match_wins) {
    const auto t = table(
        "  - { name: first, match: { path_prefix: /a }, to: green }\n"
        "  - { name: second, match: { path_prefix: /a/b }, to: blue }\n"
        "  - { name: third, match: { path_prefix: /c }, to: blue }\n");
    const auto pick = t.route_for(head("/a/b").req(), no_rollout);
    ASSERT_TRUE(pick);
    EXPECT_EQ(pick->index, 0);
    EXPECT_EQ(pick->slot, 1);
    EXPECT_EQ(taken_by(t, head("/c")), 2);
}

TEST(routes, canary_takes_nothing_without_a_rollout_and_evaluation_goes_on) {
    const auto t = table(
        "  - { name: testers, match: { header: { X-Canary: \"true\" } }, to: canary }\n"
        "  - { name: fallback, match: { header: { X-Canary: \"true\" } }, to: stable }\n");
    const head h("/", {"X-Canary: true"});
    const auto during = t.route_for(h.req(), green_rollout);
    ASSERT_TRUE(during);
    EXPECT_EQ(during->index, 0);
    EXPECT_EQ(during->slot, 1);  // the canary
    const auto after = t.route_for(h.req(), no_rollout);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->index, 1);
    EXPECT_EQ(after->slot, 0);  // stable = the active slot
    // Blue as the canary, green active.
    const analysis::traffic_state blue_rollout{{1, 10}, true, 0, false, false};
    EXPECT_EQ(t.route_for(h.req(), blue_rollout)->slot, 0);
}

TEST(routes, stable_is_the_slot_a_rollout_moves_away_from) {
    const auto t = table("  - { name: s, match: { path_prefix: / }, to: stable }\n");
    const head h("/");
    EXPECT_EQ(t.route_for(h.req(), green_rollout)->slot, 0);
    EXPECT_EQ(t.route_for(h.req(), analysis::traffic_state{{1, 0}, false, 0, false, false})->slot,
              1);
    // Half-way through a rollout of green that made green active, stable is still blue.
    EXPECT_EQ(t.route_for(h.req(), analysis::traffic_state{{1, 50}, true, 1, false, false})->slot,
              0);
}

TEST(routes, counters_follow_route_names_across_reloads) {
    auto before = table(
        "  - { name: a, match: { path_prefix: /a }, to: green }\n"
        "  - { name: b, match: { path_prefix: /b }, to: green }\n");
    before.assign_counters(nullptr, {});
    EXPECT_EQ(before.counter(0), 0);
    EXPECT_EQ(before.counter(1), 1);
    analysis::route_totals counts{};
    counts[0] = 7;  // a
    counts[1] = 5;  // b
    // b stays (now first), a goes, c comes and takes a's counter from zero.
    auto after = table(
        "  - { name: b, match: { path_prefix: /b }, to: green }\n"
        "  - { name: c, match: { path_prefix: /c }, to: green }\n");
    after.assign_counters(&before, counts);
    EXPECT_EQ(after.counter(0), 1);
    EXPECT_EQ(after.count(0, counts), 5u);
    EXPECT_EQ(after.counter(1), 0);
    EXPECT_EQ(after.count(1, counts), 0u);
    counts[0] = 9;
    EXPECT_EQ(after.count(1, counts), 2u);
}

TEST(routes, in_range_compares_the_prefix_bits) {
    const auto cfg = parse("preview: { from: [10.1.0.0/16, \"fd00::/8\", 192.168.1.7] }\n");
    const auto& from = cfg.preview.from;
    ASSERT_EQ(from.size(), 3u);
    auto v4 = [](const char* text) {
        return boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped,
                                                boost::asio::ip::make_address_v4(text))
            .to_bytes();
    };
    EXPECT_TRUE(in_range(v4("10.1.200.3"), from[0]));
    EXPECT_FALSE(in_range(v4("10.2.0.1"), from[0]));
    EXPECT_TRUE(in_range(boost::asio::ip::make_address_v6("fd12::1").to_bytes(), from[1]));
    EXPECT_FALSE(in_range(boost::asio::ip::make_address_v6("fe80::1").to_bytes(), from[1]));
    EXPECT_FALSE(in_range(v4("10.1.0.1"), from[1]));
    EXPECT_TRUE(in_range(v4("192.168.1.7"), from[2]));
    EXPECT_FALSE(in_range(v4("192.168.1.8"), from[2]));
}

TEST(routes, preview_needs_the_token_or_an_allowed_address) {
    const preview_rule rule(parse("preview: { from: [10.0.0.0/8] }\n").preview, "s3cret");
    const auto inside = boost::asio::ip::make_address("10.9.8.7");
    const auto outside = boost::asio::ip::make_address("192.0.2.1");
    using outcome = preview_rule::outcome;
    const head with_token("/", {"X-Switchyard-Slot: green", "X-Switchyard-Token: s3cret"});
    EXPECT_EQ(rule.preview_for(with_token.req(), outside, slot_names).what, outcome::slot);
    EXPECT_EQ(rule.preview_for(with_token.req(), outside, slot_names).slot, 1);
    const head wrong_token("/", {"X-Switchyard-Slot: green", "X-Switchyard-Token: s3cre"});
    EXPECT_EQ(rule.preview_for(wrong_token.req(), outside, slot_names).what, outcome::none);
    EXPECT_EQ(rule.preview_for(wrong_token.req(), inside, slot_names).what, outcome::slot);
    const head unknown("/", {"x-switchyard-slot: purple", "X-Switchyard-Token: s3cret"});
    EXPECT_EQ(rule.preview_for(unknown.req(), outside, slot_names).what, outcome::unknown_slot);
    EXPECT_EQ(rule.preview_for(head("/").req(), inside, slot_names).what, outcome::none);
    // Without an admin token only the ranges authorise; an empty token header is no token.
    const preview_rule no_token(config::preview_config{}, "");
    const head empty_token("/", {"X-Switchyard-Slot: green", "X-Switchyard-Token:"});
    EXPECT_EQ(no_token.preview_for(empty_token.req(), inside, slot_names).what, outcome::none);
}

// --- through a running proxy ---

class routed_proxy : public ::testing::Test {
protected:
    test::upstream_server blue{"blue"};
    test::upstream_server green{"green"};

    config::config cfg(const std::string& extra, const std::string& token = "") const {
        auto c = test::two_slot_config(blue.port(), green.port());
        const auto parsed = parse(extra);
        c.routes = parsed.routes;
        c.preview = parsed.preview;
        c.admin.token = token;
        return c;
    }

    // The slot that answered a GET of `target` with `fields`: its name, from the body.
    static std::string answered_by(test::raw_client& client, std::string_view target,
                                   const std::vector<field>& fields = {}) {
        client.send(test::format_request("GET", target, fields));
        const auto r = client.read_response();
        EXPECT_EQ(r.status, 200) << r.body;
        return r.header("X-Upstream");
    }
};

TEST_F(routed_proxy, a_header_route_sends_to_its_slot_and_is_counted) {
    test::running_proxy proxy(
        cfg("routes:\n  - { name: testers, match: { header: { X-Canary: \"true\" } }, to: green "
            "}\n"));
    test::raw_client client(proxy.port());
    EXPECT_EQ(answered_by(client, "/", {{"X-Canary", "true"}}), "green");
    EXPECT_EQ(answered_by(client, "/", {{"X-Canary", "false"}}), "blue");
    EXPECT_EQ(answered_by(client, "/"), "blue");
    EXPECT_EQ(answered_by(client, "/", {{"x-canary", "true"}}), "green");
    using counts = std::vector<std::pair<std::string, std::uint64_t>>;
    EXPECT_TRUE(test::eventually([&] {
        return proxy.server().route_counts() == counts{{"testers", 2}};
    }));
    // The request was recorded on its slot like any other.
    const auto totals = analysis::merge(proxy.server().metrics_shards());
    EXPECT_TRUE(test::eventually([&] {
        return analysis::merge(proxy.server().metrics_shards())[1].requests() == 2;
    })) << totals[1].requests();
}

TEST_F(routed_proxy, a_canary_route_follows_the_rollout) {
    test::running_proxy proxy(
        cfg("routes:\n  - { name: beta, match: { cookie: { beta_user: \"true\" } }, to: canary "
            "}\n"));
    test::raw_client client(proxy.port());
    const std::vector<field> beta{{"Cookie", "beta_user=true"}};
    EXPECT_EQ(answered_by(client, "/", beta), "blue");  // no rollout: the split, all on blue
    proxy.split().set_rollout(true, 1);
    EXPECT_EQ(answered_by(client, "/", beta), "green");
    EXPECT_EQ(answered_by(client, "/"), "blue");
    proxy.split().set_rollout(false, 0);
    EXPECT_EQ(answered_by(client, "/", beta), "blue");
}

TEST_F(routed_proxy, preview_with_the_token_goes_to_the_slot_and_is_never_forwarded) {
    test::running_proxy proxy(cfg("", "s3cret-token"));
    test::raw_client client(proxy.port());
    EXPECT_EQ(answered_by(client, "/",
                          {{"X-Switchyard-Slot", "green"}, {"X-Switchyard-Token", "s3cret-token"}}),
              "green");
    ASSERT_EQ(green.request_count(), 1u);
    const auto sent = green.requests().back();
    EXPECT_FALSE(sent.has("X-Switchyard-Slot")) << sent.raw_head;
    EXPECT_FALSE(sent.has("X-Switchyard-Token")) << sent.raw_head;

    // Without the token the header is ignored, and still not forwarded.
    EXPECT_EQ(
        answered_by(client, "/", {{"X-Switchyard-Slot", "green"}, {"X-Switchyard-Token", "guess"}}),
        "blue");
    ASSERT_EQ(blue.request_count(), 1u);
    const auto ignored = blue.requests().back();
    EXPECT_FALSE(ignored.has("X-Switchyard-Slot")) << ignored.raw_head;
    EXPECT_FALSE(ignored.has("X-Switchyard-Token")) << ignored.raw_head;
}

TEST_F(routed_proxy, preview_from_an_allowed_range_needs_no_token_and_wins_over_routes) {
    test::running_proxy proxy(
        cfg("routes:\n  - { name: all, match: { path_prefix: / }, to: blue }\n"
            "preview: { header: X-Slot, from: [127.0.0.0/8] }\n"));
    test::raw_client client(proxy.port());
    EXPECT_EQ(answered_by(client, "/", {{"X-Slot", "green"}}), "green");
    EXPECT_FALSE(green.requests().back().has("X-Slot"));
    EXPECT_EQ(answered_by(client, "/"), "blue");
}

TEST_F(routed_proxy, preview_from_elsewhere_without_a_token_is_ignored) {
    test::running_proxy proxy(cfg("preview: { from: [10.0.0.0/8] }\n", "s3cret-token"));
    test::raw_client client(proxy.port());
    EXPECT_EQ(answered_by(client, "/", {{"X-Switchyard-Slot", "green"}}), "blue");
}

TEST_F(routed_proxy, an_authorised_preview_of_an_unknown_slot_is_400) {
    test::running_proxy proxy(cfg("", "s3cret-token"));
    test::raw_client client(proxy.port());
    client.send(test::format_request(
        "GET", "/", {{"X-Switchyard-Slot", "purple"}, {"X-Switchyard-Token", "s3cret-token"}}));
    const auto r = client.read_response();
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("preview header"), std::string::npos) << r.body;
    EXPECT_EQ(blue.request_count() + green.request_count(), 0u);
}

TEST_F(routed_proxy, the_split_stays_exact_for_the_requests_no_route_took) {
    test::running_proxy proxy(
        cfg("routes:\n  - { name: testers, match: { header: { X-Canary: \"true\" } }, to: green "
            "}\n"),
        {0, 10});
    test::raw_client client(proxy.port());
    std::size_t unrouted_green = 0;
    for (int i = 0; i < 300; ++i) {
        if (i % 3 == 0) {
            ASSERT_EQ(answered_by(client, "/", {{"X-Canary", "true"}}), "green");
        } else if (answered_by(client, "/") == "green") {
            ++unrouted_green;
        }
    }
    // 200 requests through the split at 10%: exactly 20 on green, whatever the routes took.
    EXPECT_EQ(unrouted_green, 20u);
    using counts = std::vector<std::pair<std::string, std::uint64_t>>;
    EXPECT_TRUE(test::eventually([&] {
        return proxy.server().route_counts() == counts{{"testers", 100}};
    }));
}

TEST_F(routed_proxy, a_route_comes_before_a_sticky_pin_and_sets_none) {
    auto c =
        cfg("routes:\n  - { name: testers, match: { header: { X-Canary: \"true\" } }, to: "
            "green }\n");
    c.sticky.emplace();
    test::running_proxy proxy(c);
    const sticky_cookies cookies(*c.sticky, slot_names);
    const std::string pinned_to_blue = "sy_slot=" + std::string(cookies.value(0));
    // Pinned to blue, but the route takes it: green, and no new pin.
    const auto routed =
        test::get(proxy.port(), "/", {{"Cookie", pinned_to_blue}, {"X-Canary", "true"}});
    EXPECT_EQ(routed.header("X-Upstream"), "green");
    EXPECT_FALSE(routed.has("Set-Cookie"));
    // Without the header the pin holds.
    const auto pinned = test::get(proxy.port(), "/", {{"Cookie", pinned_to_blue}});
    EXPECT_EQ(pinned.header("X-Upstream"), "blue");
}

TEST_F(routed_proxy, a_reload_replaces_the_routes) {
    test::running_proxy proxy(cfg(""));
    test::raw_client client(proxy.port());
    EXPECT_EQ(answered_by(client, "/beta"), "blue");
    proxy.server().reload(
        cfg("routes:\n  - { name: beta, match: { path_prefix: /beta }, to: green }\n"));
    // The worker takes the new settings between requests, after the reload's post.
    EXPECT_TRUE(test::eventually([&] {
        test::raw_client fresh(proxy.port());
        return answered_by(fresh, "/beta") == "green";
    }));
    EXPECT_EQ(answered_by(client, "/alpha"), "blue");
}

}  // namespace
}  // namespace switchyard::proxy
