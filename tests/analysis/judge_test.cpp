// The threshold judge: each check kind, the ratio floor, and "no data is not a pass".

#include "analysis/judge.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

namespace switchyard::analysis {
namespace {

using config::check_config;
using config::check_kind;
using config::check_metric;
using std::chrono::microseconds;

// A window of `requests` answers, `errors` of them failed, every answer taking `micros`.
slot_window window(std::uint64_t requests, std::uint64_t errors, std::uint64_t micros = 2000) {
    slot_window w;
    w.requests = requests;
    w.errors = errors;
    w.upstream_latency[latency_buckets::index(micros)] = requests;
    return w;
}

check_config check(check_metric metric, check_kind kind, double limit, double floor = 0) {
    check_config c;
    c.name = std::string(config::metric_name(metric)) +
             (kind == check_kind::max_ratio_to_stable ? "_ratio" : "");
    c.metric = metric;
    c.kind = kind;
    c.limit = limit;
    c.floor = floor;
    return c;
}

verdict one(const check_config& c, const slot_window& canary, const slot_window& stable = {},
            std::uint32_t min_requests = 20) {
    const std::vector<check_config> checks{c};
    const judgement j = judge(checks, min_requests, canary, stable);
    EXPECT_EQ(j.checks.size(), 1U);
    return j.result;
}

TEST(judge, max_and_min_bound_the_canary) {
    const auto max5 = check(check_metric::error_rate, check_kind::max, 0.05);
    EXPECT_EQ(one(max5, window(100, 5)), verdict::pass);  // at the limit passes
    EXPECT_EQ(one(max5, window(100, 6)), verdict::fail);
    const auto min99 = check(check_metric::success_rate, check_kind::min, 0.99);
    EXPECT_EQ(one(min99, window(100, 1)), verdict::pass);
    EXPECT_EQ(one(min99, window(100, 2)), verdict::fail);
    const auto p95 = check(check_metric::latency_p95, check_kind::max, 0.1);  // 100 ms
    EXPECT_EQ(one(p95, window(100, 0, 90'000)), verdict::pass);
    EXPECT_EQ(one(p95, window(100, 0, 120'000)), verdict::fail);
}

// A stable slot with no errors must not make every canary error a failure: the ratio is taken
// against max(stable, floor).
TEST(judge, ratio_to_stable_has_a_floor) {
    const auto ratio = check(check_metric::error_rate, check_kind::max_ratio_to_stable, 2.0, 0.01);
    const auto stable_clean = window(1000, 0);
    EXPECT_EQ(one(ratio, window(200, 3), stable_clean), verdict::pass);  // 1.5% <= 2 x 1%
    EXPECT_EQ(one(ratio, window(200, 4), stable_clean), verdict::pass);  // 2% <= 2%
    EXPECT_EQ(one(ratio, window(200, 5), stable_clean), verdict::fail);  // 2.5% > 2%
    // Above the floor, the stable's own rate counts: 5% x 2 = 10%.
    EXPECT_EQ(one(ratio, window(200, 19), window(1000, 50)), verdict::pass);
    EXPECT_EQ(one(ratio, window(200, 21), window(1000, 50)), verdict::fail);

    // Latency: stable answers in 1 ms, floor 5 ms, ratio 1.5: the canary may take 7.5 ms.
    const auto slow = check(check_metric::latency_p95, check_kind::max_ratio_to_stable, 1.5, 0.005);
    EXPECT_EQ(one(slow, window(100, 0, 7'000), window(100, 0, 1'000)), verdict::pass);
    EXPECT_EQ(one(slow, window(100, 0, 8'000), window(100, 0, 1'000)), verdict::fail);
    // A slower stable raises the bar: 40 ms x 1.5 = 60 ms.
    EXPECT_EQ(one(slow, window(100, 0, 55'000), window(100, 0, 40'000)), verdict::pass);
    EXPECT_EQ(one(slow, window(100, 0, 70'000), window(100, 0, 40'000)), verdict::fail);
}

TEST(judge, no_data_is_not_a_pass) {
    const auto max5 = check(check_metric::error_rate, check_kind::max, 0.05);
    EXPECT_EQ(one(max5, window(19, 0)), verdict::inconclusive);
    EXPECT_EQ(one(max5, window(0, 0)), verdict::inconclusive);
    EXPECT_EQ(one(max5, window(20, 0)), verdict::pass);
    // A ratio needs both sides.
    const auto ratio = check(check_metric::error_rate, check_kind::max_ratio_to_stable, 2.0, 0.01);
    EXPECT_EQ(one(ratio, window(100, 0), window(19, 0)), verdict::inconclusive);
    // Latency counts answers that have an upstream time; failed connects have none.
    slot_window failed_connects = window(100, 90);
    failed_connects.upstream_latency[latency_buckets::index(2000)] = 10;
    const auto p95 = check(check_metric::latency_p95, check_kind::max, 1.0);
    EXPECT_EQ(one(p95, failed_connects), verdict::inconclusive);
}

TEST(judge, fails_when_any_check_fails_else_inconclusive_when_any_is) {
    const std::vector<check_config> checks{
        check(check_metric::error_rate, check_kind::max, 0.05),
        check(check_metric::latency_p95, check_kind::max, 1.0),
        check(check_metric::error_rate, check_kind::max_ratio_to_stable, 2.0, 0.01),
    };
    EXPECT_EQ(judge(checks, 20, window(100, 0), window(100, 0)).result, verdict::pass);
    // The ratio cannot be judged (stable too small): inconclusive overall.
    EXPECT_EQ(judge(checks, 20, window(100, 0), window(5, 0)).result, verdict::inconclusive);
    // A failure wins over an inconclusive check.
    const judgement j = judge(checks, 20, window(100, 10), window(5, 0));
    EXPECT_EQ(j.result, verdict::fail);
    ASSERT_NE(j.first_failure(), nullptr);
    EXPECT_EQ(j.first_failure()->name, "error_rate");
    EXPECT_EQ(j.checks[2].result, verdict::inconclusive);
    EXPECT_EQ(j.canary_requests, 100U);
    EXPECT_EQ(j.stable_requests, 5U);
}

TEST(judge, absolute_only_leaves_ratio_checks_out) {
    const std::vector<check_config> checks{
        check(check_metric::error_rate, check_kind::max, 0.05),
        check(check_metric::error_rate, check_kind::max_ratio_to_stable, 2.0, 0.01),
    };
    // During the bake the old slot has no traffic: without the ratio check this passes.
    const judgement j = judge(checks, 20, window(100, 1), window(0, 0), true);
    EXPECT_EQ(j.result, verdict::pass);
    ASSERT_EQ(j.checks.size(), 1U);
    EXPECT_EQ(j.checks[0].name, "error_rate");
}

// Any quantile, read from the fine histogram: 1000 answers at 1..1000 ms.
TEST(judge, reads_every_latency_quantile_from_the_fine_histogram) {
    slot_window w;
    w.requests = 1000;
    for (std::uint64_t ms = 1; ms <= 1000; ++ms) {
        ++w.upstream_latency[latency_buckets::index(ms * 1000)];
    }
    const std::pair<check_metric, double> expected[] = {
        {check_metric::latency_p50, 0.500},  {check_metric::latency_p90, 0.900},
        {check_metric::latency_p95, 0.950},  {check_metric::latency_p99, 0.990},
        {check_metric::latency_p999, 0.999},
    };
    for (const auto& [metric, seconds] : expected) {
        const double got = metric_value(metric, w);
        EXPECT_NEAR(got, seconds, seconds * 0.02) << config::metric_name(metric);
    }
    EXPECT_DOUBLE_EQ(metric_value(check_metric::error_rate, window(200, 10)), 0.05);
    EXPECT_DOUBLE_EQ(metric_value(check_metric::success_rate, window(200, 10)), 0.95);
}

TEST(judge, describes_a_verdict_in_one_line) {
    const std::vector<check_config> checks{
        check(check_metric::error_rate, check_kind::max, 0.05),
        check(check_metric::latency_p95, check_kind::max_ratio_to_stable, 1.5, 0.005),
        check(check_metric::success_rate, check_kind::min, 0.99),
    };
    const judgement j = judge(checks, 20, window(200, 40, 300'000), window(200, 0, 1'000));
    ASSERT_EQ(j.checks.size(), 3U);
    EXPECT_EQ(describe(j.checks[0]), "error_rate 20% > 5%");
    // Bucket midpoints: 300 ms reads 299 ms, 1 ms reads 1 ms.
    EXPECT_EQ(describe(j.checks[1]), "latency_p95_ratio 299ms > 7.5ms (stable 1ms)");
    EXPECT_EQ(describe(j.checks[2]), "success_rate 80% < 99%");
    const judgement thin = judge(checks, 20, window(3, 0), window(200, 0));
    EXPECT_EQ(describe(thin.checks[0]), "error_rate 0% (inconclusive: 3 samples)");
}

}  // namespace
}  // namespace switchyard::analysis
