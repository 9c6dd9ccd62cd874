// A blue-green rollout judged on mirrored traffic (README, "Mirroring"), end to end: real proxy,
// admin server and upstreams on loopback, steady client traffic. Every wait is on a condition.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <boost/json.hpp>

#include "tests/support/admin_stack.hpp"

namespace switchyard::test {
namespace {

namespace json = boost::json;
using upstream_response = upstream_server::response;

// Mirror every request of the stable slot, and judge mismatches too. Copies are open loop: with
// the default 1000 places, a burst puts hundreds in flight at once on green's one-thread-per-
// connection test upstream, and its p95 becomes queueing (close to a second under TSan on two
// cores) against blue's 8 closed-loop clients. Four places in each of the two workers keep
// green's concurrency at blue's, so the latency checks compare like with like; copies beyond
// them are dropped and counted, as in production.
void mirror_everything(config::config& cfg) {
    cfg.mirror.emplace();
    cfg.mirror->percent = 100;
    cfg.mirror->queue = 4;
    config::check_config mismatch;
    mismatch.name = "mirror_mismatch_rate";
    mismatch.metric = config::check_metric::mirror_mismatch_rate;
    mismatch.limit = 0.05;
    cfg.analysis.checks.push_back(mismatch);
}

bool is_copy(const upstream_server::request& r) {
    return r.header("X-Switchyard-Mirror") == "1";
}

TEST(mirror_e2e, a_blue_green_rollout_judged_on_a_mirror_answering_500_is_rolled_back) {
    admin_stack s(mirror_everything);
    s.green.set_handler([](const upstream_server::request& r) {
        upstream_response res;
        res.body = "green\n";
        res.status = r.target == "/health" ? 200 : 500;
        return res;
    });
    s.start_load();
    int code = 0;
    s.call("POST", "/rollout", R"({"strategy": "blue-green"})", &code);
    ASSERT_EQ(code, 200);
    ASSERT_TRUE(s.wait_for_phase("rolled-back")) << json::serialize(s.status());
    const json::value status = s.status();
    const std::string cause(status.at("events").as_array().back().at("cause").as_string());
    EXPECT_TRUE(cause == "fast_rollback" || cause == "error_rate" ||
                cause == "mirror_mismatch_rate")
        << cause;
    EXPECT_EQ(status.at("active"), "blue");
    EXPECT_EQ(s.green_weight(), 0);
    s.stop_load();
    // No user request ever reached green: only health probes and marked copies.
    EXPECT_EQ(s.load().with_status(200), s.load().answered());
    EXPECT_EQ(s.load().with_body("green\n"), 0U);
    std::size_t copies = 0;
    for (const auto& r : s.green.requests()) {
        EXPECT_TRUE(r.target == "/health" || is_copy(r)) << r.target << " reached green unmarked";
        copies += is_copy(r) ? 1U : 0U;
    }
    EXPECT_GT(copies, 0U);
    // The copies' answers are in /metrics, with their mismatches.
    const std::string metrics(s.call("GET", "/metrics").as_string());
    EXPECT_NE(metrics.find("switchyard_mirror_requests_total{slot=\"green\",code=\"500\"}"),
              std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("switchyard_mirror_mismatches_total{slot=\"green\"}"),
              std::string::npos);
    EXPECT_NE(metrics.find("switchyard_mirror_dropped_total{reason=\"queue_full\"}"),
              std::string::npos);
    EXPECT_NE(metrics.find("switchyard_mirror_response_seconds_bucket{slot=\"green\""),
              std::string::npos);
}

TEST(mirror_e2e, a_blue_green_rollout_whose_mirror_agrees_switches_after_judging_it) {
    admin_stack s(mirror_everything);
    s.start_load();
    int code = 0;
    s.call("POST", "/rollout", R"({"strategy": "blue-green"})", &code);
    ASSERT_EQ(code, 200);
    ASSERT_TRUE(s.wait_for_phase("succeeded")) << json::serialize(s.status());
    const json::value status = s.status();
    EXPECT_EQ(step_kinds(status.at("events").as_array()),
              (std::vector<std::string>{"started", "progressing", "promoted", "succeeded"}));
    EXPECT_EQ(status.at("active"), "green");
    s.stop_load();
    EXPECT_EQ(s.load().with_status(200), s.load().answered());
}

}  // namespace
}  // namespace switchyard::test
