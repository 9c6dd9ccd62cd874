// Rollouts end to end: a real proxy and admin server on loopback between steady client traffic
// and real upstreams, with short intervals so that each scenario runs in seconds. Every wait is
// on a condition (polled, bounded), never on a fixed sleep.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/json.hpp>

#include "tests/support/admin_stack.hpp"
#include "tests/support/table_lookup.hpp"

namespace switchyard::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using upstream_response = upstream_server::response;

TEST(rollout_e2e, a_good_green_is_promoted_through_every_step) {
    admin_stack s;
    s.start_load();
    int code = 0;
    const auto started = s.call("POST", "/rollout", "", &code);
    ASSERT_EQ(code, 200) << json::serialize(started);
    EXPECT_EQ(started.at("phase"), "waiting");
    EXPECT_EQ(started.at("to"), "green");
    ASSERT_TRUE(s.wait_for_phase("succeeded")) << json::serialize(s.status());

    const json::value status = s.status();
    EXPECT_EQ(status.at("active"), "green");
    EXPECT_EQ(status.at("weights"), json::parse(R"({"blue":0,"green":100})"));
    EXPECT_EQ(step_kinds(status.at("events").as_array()),
              (std::vector<std::string>{"started", "progressing", "step", "step", "step",
                                        "promoted", "succeeded"}));
    const json::value history = s.call("GET", "/rollout/history");
    ASSERT_EQ(history.at("rollouts").as_array().size(), 1U);
    EXPECT_EQ(history.at("rollouts").at(0).at("result"), "succeeded");
    EXPECT_EQ(history.at("rollouts").at(0).at("weight"), 100);
    // The health gate probed green's endpoint and saw it answer.
    const auto& endpoint = status.at("slots").at("green").at("endpoints").at(0);
    EXPECT_EQ(endpoint.at("health").at("ok"), true);
    EXPECT_EQ(endpoint.at("health").at("detail"), "status 200");
    s.stop_load();
    EXPECT_EQ(s.load().with_status(200), s.load().answered());
    EXPECT_GT(s.load().with_body("green\n"), 0U);
}

// Green answers every fifth request other than its health probes with a 500.
void fail_every_fifth_request(upstream_server& green) {
    auto served = std::make_shared<std::atomic<std::uint64_t>>(0);
    green.set_handler([served](const upstream_server::request& r) {
        upstream_response res;
        res.body = "green\n";
        if (r.target != "/health" && (*served)++ % 5 == 0) {
            res.status = 500;
        }
        return res;
    });
}

TEST(rollout_e2e, a_green_answering_20_percent_500s_is_rolled_back_on_error_rate) {
    admin_stack s(
        [](config::config& cfg) { cfg.analysis.method = config::analysis_method::threshold; });
    fail_every_fifth_request(s.green);
    s.start_load();
    s.call("POST", "/rollout");
    ASSERT_TRUE(s.wait_for_phase("rolled-back")) << json::serialize(s.status());
    const json::value status = s.status();
    const auto& events = status.at("events").as_array();
    const auto& last = events.back();
    EXPECT_EQ(last.at("event"), "rolled-back");
    EXPECT_EQ(last.at("cause"), "error_rate");
    EXPECT_NE(std::string(last.at("reason").as_string()).find("error_rate"), std::string::npos);
    EXPECT_EQ(status.at("active"), "blue");
    EXPECT_EQ(status.at("weights").at("green"), 0);
    EXPECT_EQ(s.green_weight(), 0);
    // The judgement behind it is in /status: each check's value, threshold and verdict.
    const auto& checks = status.at("rollout").at("checks").as_array();
    ASSERT_FALSE(checks.empty());
    EXPECT_EQ(checks.at(0).at("check"), "error_rate");
    EXPECT_EQ(checks.at(0).at("verdict"), "fail");
    EXPECT_GT(checks.at(0).at("value").as_double(), 0.05);
}

// The default judge: the error test crosses its line in its first seconds, and the rollback
// names it, with the evidence in /status and /metrics.
TEST(rollout_e2e, a_green_answering_20_percent_500s_is_rolled_back_by_the_sequential_error_test) {
    admin_stack s;
    fail_every_fifth_request(s.green);
    s.start_load();
    s.call("POST", "/rollout");
    ASSERT_TRUE(s.wait_for_phase("rolled-back")) << json::serialize(s.status());
    const json::value status = s.status();
    const auto& last = status.at("events").as_array().back();
    EXPECT_EQ(last.at("cause"), "error_rate_ratio") << json::serialize(last);
    EXPECT_NE(std::string(last.at("reason").as_string()).find("e-value"), std::string::npos);
    EXPECT_EQ(s.green_weight(), 0);
    const json::value& rollout = status.at("rollout");
    EXPECT_EQ(rollout.at("method"), "sequential");
    const auto& evidence = rollout.at("evidence").as_array();
    ASSERT_EQ(evidence.size(), 3U) << json::serialize(rollout);
    EXPECT_EQ(evidence.at(0).at("check"), "error_rate_ratio");
    EXPECT_EQ(evidence.at(0).at("rejected"), true);
    EXPECT_GE(evidence.at(0).at("e_value").as_double(),
              evidence.at(0).at("e_threshold").as_double());
    // The event carries the check with its evidence, as the webhooks receive it.
    const auto& checks = last.at("checks").as_array();
    ASSERT_FALSE(checks.empty());
    EXPECT_EQ(checks.at(0).at("check"), "error_rate_ratio");
    EXPECT_EQ(checks.at(0).at("verdict"), "fail");
    EXPECT_TRUE(checks.at(0).as_object().contains("evidence"));
    const std::string metrics(s.call("GET", "/metrics").as_string());
    EXPECT_NE(metrics.find("switchyard_rollbacks_total{reason=\"error_rate_ratio\"} 1"),
              std::string::npos);
}

TEST(rollout_e2e, a_green_300ms_slower_is_rolled_back_on_latency) {
    admin_stack s;
    s.green.set_handler([](const upstream_server::request& r) {
        upstream_response res;
        res.body = "green\n";
        if (r.target != "/health") {
            res.delay = 300ms;
        }
        return res;
    });
    s.start_load(16);
    s.call("POST", "/rollout");
    ASSERT_TRUE(s.wait_for_phase("rolled-back")) << json::serialize(s.status());
    const json::value status = s.status();
    const auto& last = status.at("events").as_array().back();
    EXPECT_EQ(last.at("cause"), "latency_p95_ratio") << json::serialize(last);
    EXPECT_EQ(s.green_weight(), 0);
}

TEST(rollout_e2e, a_blue_green_rollout_with_a_failing_health_gate_never_sends_green_a_request) {
    admin_stack s;
    s.green.set_handler([](const upstream_server::request& r) {
        upstream_response res;
        res.body = "green\n";
        res.status = r.target == "/health" ? 503 : 200;
        return res;
    });
    s.start_load();
    int code = 0;
    // A deadline shorter than the pause between probe rounds (500 ms): one probe, given all of
    // it. At 600 ms a quick first probe was followed by a second with under 100 ms left, which
    // a slow machine (or ThreadSanitizer) could let time out: "timeout" replaced "status 503".
    s.call("POST", "/rollout", R"({"strategy": "blue-green", "health": {"deadline": "400ms"}})",
           &code);
    ASSERT_EQ(code, 200);
    ASSERT_TRUE(s.wait_for_phase("aborted")) << json::serialize(s.status());
    const json::value status = s.status();
    const std::string reason(status.at("rollout").at("reason").as_string());
    EXPECT_NE(reason.find("health gate: 127.0.0.1:" + std::to_string(s.green.port()) +
                          " status 503 on /health"),
              std::string::npos)
        << reason;
    const auto& health = status.at("slots").at("green").at("endpoints").at(0).at("health");
    EXPECT_EQ(health.at("ok"), false);
    EXPECT_EQ(health.at("detail"), "status 503");
    EXPECT_EQ(status.at("active"), "blue");
    s.stop_load();
    EXPECT_GT(s.load().answered(), 0U);
    EXPECT_EQ(s.load().with_body("green\n"), 0U);
    for (const auto& r : s.green.requests()) {
        EXPECT_EQ(r.target, "/health") << "green got a user request";
    }
}

TEST(rollout_e2e, a_slot_whose_name_does_not_resolve_shows_in_status_and_fails_the_health_gate) {
    auto names = std::make_shared<table_lookup>();
    admin_stack s(
        [](config::config& c) {
            c.slots[1].endpoints[0].host = "app-green";  // not deployed yet
            c.upstream.resolve_interval = std::chrono::milliseconds(20);
        },
        names);
    const auto endpoint = [&] {
        return s.status().at("slots").at("green").at("endpoints").at(0);
    };
    EXPECT_EQ(endpoint().at("resolved"), false);
    EXPECT_EQ(endpoint().at("addresses"), json::array{});
    EXPECT_EQ(endpoint().at("resolve_error"), "Name or service not known");

    s.call("POST", "/rollout", R"({"health": {"deadline": "300ms"}})");
    ASSERT_TRUE(s.wait_for_phase("aborted")) << json::serialize(s.status());
    const std::string reason(s.status().at("rollout").at("reason").as_string());
    EXPECT_EQ(reason, "health gate: app-green:" + std::to_string(s.green.port()) +
                          " does not resolve (Name or service not known) on /health (deadline "
                          "300ms)");

    // Deployed: the name resolves, /status shows where, and the gate probes that address.
    names->set("app-green", {"127.0.0.1"});
    ASSERT_TRUE(eventually([&] { return endpoint().at("resolved") == true; }));
    EXPECT_EQ(endpoint().at("addresses"), json::array{"127.0.0.1"});
    EXPECT_FALSE(endpoint().as_object().contains("resolve_error"));
    s.call("POST", "/rollout");
    ASSERT_TRUE(s.wait_for_phase("progressing")) << json::serialize(s.status());
    ASSERT_GE(s.green.request_count(), 1U);
    const auto probe = s.green.requests().front();
    EXPECT_EQ(probe.target, "/health");
    EXPECT_EQ(probe.header("Host"), "app-green:" + std::to_string(s.green.port()));
}

// Not a pass/fail timing: the test asserts the rollback and its cause, and prints how long it
// took on this machine (README, "Performance").
TEST(rollout_e2e, green_failing_every_request_is_at_weight_zero_within_moments) {
    admin_stack s;
    s.start_load();
    s.call("POST", "/rollout");
    ASSERT_TRUE(eventually([&] { return s.green_weight() >= 25; }));
    s.green.set_handler([](const upstream_server::request&) {
        upstream_response res;
        res.status = 500;
        return res;
    });
    const auto failing_since = clock_type::now();
    ASSERT_TRUE(eventually([&] { return s.green_weight() == 0; }, 10s));
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - failing_since);
    std::printf("green failing every request -> green weight 0 in %lld ms\n",
                static_cast<long long>(took.count()));
    RecordProperty("fast_rollback_ms", static_cast<int>(took.count()));
    ASSERT_TRUE(s.wait_for_phase("rolled-back"));
    EXPECT_EQ(s.status().at("events").as_array().back().at("cause"), "fast_rollback");
}

}  // namespace
}  // namespace switchyard::test
