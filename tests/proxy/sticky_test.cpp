// Sticky sessions (README, "Sticky sessions"): the cookie, the exact split of new clients, and
// pins that follow rollbacks and promotions. Through a real proxy and real upstreams.

#include "proxy/sticky.hpp"

#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "analysis/metrics.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"

namespace switchyard::proxy {
namespace {

using analysis::slot_index;
using analysis::traffic_state;
using test::field;

std::vector<http1::header_field> fields_of(std::initializer_list<http1::header_field> f) {
    return f;
}

TEST(find_cookie, finds_a_cookie_among_others_and_ignores_lookalikes) {
    const auto f = fields_of({{"Accept", "*/*"},
                              {"Cookie", "xsy_slot=1; sy_slotx=2;  sy_slot = abc ; other=3"},
                              {"cookie", "sy_slot=later"}});
    EXPECT_EQ(find_cookie(f, "sy_slot"), std::optional<std::string_view>("abc"));
    EXPECT_EQ(find_cookie(f, "other"), std::optional<std::string_view>("3"));
    EXPECT_EQ(find_cookie(f, "missing"), std::nullopt);
}

TEST(find_cookie, reads_quoted_values_later_fields_and_flags) {
    const auto f = fields_of({{"Cookie", "flag; a=\"quoted\""}, {"Cookie", "b=2"}});
    EXPECT_EQ(find_cookie(f, "a"), std::optional<std::string_view>("quoted"));
    EXPECT_EQ(find_cookie(f, "b"), std::optional<std::string_view>("2"));
    EXPECT_EQ(find_cookie(f, "flag"), std::nullopt);  // no '=': not a name-value pair
    EXPECT_EQ(find_cookie(fields_of({}), "a"), std::nullopt);
}

TEST(sticky_cookies, values_are_opaque_distinct_and_stable) {
    const config::sticky_config cfg;
    const sticky_cookies a(cfg, {"blue", "green"});
    const sticky_cookies b(cfg, {"blue", "green"});
    EXPECT_NE(a.value(0), a.value(1));
    EXPECT_EQ(a.value(1), b.value(1));  // the same across restarts and reloads
    EXPECT_EQ(a.value(1).find("green"), std::string_view::npos);
    EXPECT_EQ(a.set_cookie(1, false), "sy_slot=" + std::string(a.value(1)) +
                                          "; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax");
    EXPECT_EQ(a.set_cookie(1, true), std::string(a.set_cookie(1, false)) + "; Secure");

    const std::string cookie = "sy_slot=" + std::string(a.value(1));
    EXPECT_EQ(a.pinned(fields_of({{"Cookie", cookie}})), std::optional<slot_index>(1));
    EXPECT_EQ(a.pinned(fields_of({{"Cookie", "sy_slot=green"}})), std::nullopt);
    EXPECT_EQ(a.pinned(fields_of({{"Cookie", "sy_slot=1"}})), std::nullopt);
}

TEST(pin_honoured, while_the_slot_takes_traffic_or_bakes_as_the_old_stable) {
    traffic_state t;
    t.split = {0, 0};  // all on blue, no rollout
    EXPECT_TRUE(pin_honoured(t, 0));
    EXPECT_FALSE(pin_honoured(t, 1));

    t.rollout = true;  // a canary of green, waiting for its gate: green takes nothing yet
    t.canary = 1;
    EXPECT_FALSE(pin_honoured(t, 1));
    t.split = {0, 10};  // progressing at 10%
    EXPECT_TRUE(pin_honoured(t, 0));
    EXPECT_TRUE(pin_honoured(t, 1));

    t.split = {1, 0};  // promoted, baking: blue's clients stay until the bake ends
    EXPECT_TRUE(pin_honoured(t, 0));
    EXPECT_TRUE(pin_honoured(t, 1));
    t.rollout = false;  // succeeded
    EXPECT_FALSE(pin_honoured(t, 0));
    EXPECT_TRUE(pin_honoured(t, 1));

    t.split = {0, 0};  // rolled back: green takes nothing, and nothing runs
    EXPECT_FALSE(pin_honoured(t, 1));
}

// A proxy with `sticky` in front of two upstreams that name themselves.
class sticky_proxy : public ::testing::Test {
protected:
    sticky_proxy() {
        auto cfg = test::two_slot_config(blue_.port(), green_.port());
        cfg.sticky.emplace();
        proxy_.emplace(cfg);
        cookies_.emplace(*cfg.sticky, analysis::per_slot<std::string>{"blue", "green"});
    }

    struct answer {
        std::string upstream;    // which slot answered
        std::string set_cookie;  // "" when none
    };
    // One request on a new connection, with the sticky cookie of `pin` when given.
    answer send(std::optional<slot_index> pin = std::nullopt) {
        std::vector<field> extra;
        if (pin) {
            extra.push_back(
                {"Cookie", "theme=dark; sy_slot=" + std::string(cookies_->value(*pin))});
        }
        const auto r = test::get(proxy_->port(), "/", extra);
        EXPECT_EQ(r.status, 200);
        return {r.header("X-Upstream"), r.header("Set-Cookie")};
    }
    std::string cookie_for(slot_index s) const {
        return std::string(cookies_->set_cookie(s, false));
    }
    analysis::per_slot<analysis::slot_totals> totals() {
        const auto shards = proxy_->server().metrics_shards();
        return analysis::merge(shards);
    }

    test::upstream_server blue_{"blue"};
    test::upstream_server green_{"green"};
    std::optional<test::running_proxy> proxy_;
    std::optional<sticky_cookies> cookies_;
};

// 1,000 new clients at weight 10, with pinned clients' requests in between: every 100 new ones
// split exactly 90/10, and each is told the slot it got.
TEST_F(sticky_proxy, new_clients_follow_the_weight_exactly_whatever_pinned_clients_do) {
    proxy_->split().store({0, 10});
    for (int hundred = 0; hundred < 10; ++hundred) {
        int green = 0;
        for (int i = 0; i < 100; ++i) {
            const answer a = send();
            const slot_index slot = a.upstream == "green" ? 1 : 0;
            green += slot;
            EXPECT_EQ(a.set_cookie, cookie_for(slot));
            if (i % 7 == 0) {
                // A returning client pinned to green: it stays there, and the split does not
                // count it.
                const answer p = send(1);
                EXPECT_EQ(p.upstream, "green");
                EXPECT_EQ(p.set_cookie, "");
            }
        }
        EXPECT_EQ(green, 10) << "new clients " << hundred * 100 << " to " << hundred * 100 + 99;
    }
    const auto t = totals();
    EXPECT_EQ(t[1].pinned, 150U);  // 10 hundreds x 15 returning requests
    EXPECT_EQ(t[0].pinned, 0U);
}

TEST_F(sticky_proxy, a_rollback_moves_every_pinned_client_off_the_rolled_back_slot) {
    proxy_->split().set_rollout(true, 1);
    proxy_->split().store({0, 25});
    EXPECT_EQ(send(1).upstream, "green");
    EXPECT_EQ(send(0).upstream, "blue");

    // Rolled back: green's weight is 0 and no rollout runs.
    proxy_->split().store({0, 0});
    proxy_->split().set_rollout(false, 0);
    const answer moved = send(1);
    EXPECT_EQ(moved.upstream, "blue");
    EXPECT_EQ(moved.set_cookie, cookie_for(0));  // re-pinned where it now is
}

TEST_F(sticky_proxy, after_a_promotion_old_clients_stay_until_the_bake_ends) {
    proxy_->split().set_rollout(true, 1);
    proxy_->split().store({1, 0});  // green promoted, baking
    EXPECT_EQ(send(0).upstream, "blue");
    const answer fresh = send();
    EXPECT_EQ(fresh.upstream, "green");
    EXPECT_EQ(fresh.set_cookie, cookie_for(1));

    proxy_->split().set_rollout(false, 0);  // the bake ended: succeeded
    const answer moved = send(0);
    EXPECT_EQ(moved.upstream, "green");
    EXPECT_EQ(moved.set_cookie, cookie_for(1));
}

TEST_F(sticky_proxy, an_unknown_or_forged_value_is_a_new_client) {
    proxy_->split().store({0, 0});
    const auto r = test::get(proxy_->port(), "/", {{"Cookie", "sy_slot=green"}});
    EXPECT_EQ(r.header("X-Upstream"), "blue");
    EXPECT_EQ(r.header("Set-Cookie"), cookie_for(0));
}

TEST(sticky_off, no_cookie_is_set_and_the_cookie_is_ignored) {
    test::upstream_server blue("blue");
    test::upstream_server green("green");
    test::running_proxy proxy(test::two_slot_config(blue.port(), green.port()));
    const sticky_cookies cookies(config::sticky_config{},
                                 analysis::per_slot<std::string>{"blue", "green"});
    const auto r =
        test::get(proxy.port(), "/", {{"Cookie", "sy_slot=" + std::string(cookies.value(1))}});
    EXPECT_EQ(r.header("X-Upstream"), "blue");
    EXPECT_FALSE(r.has("Set-Cookie"));
}

}  // namespace
}  // namespace switchyard::proxy
