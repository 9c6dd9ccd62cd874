// How good are the judges? The seeded simulation of analysis/simulation.hpp, through the real
// judge and rollout machine, with the default analysis and rollout, latencies and errors drawn
// per request:
// - threshold: identical slots (A/A, 0.5% errors on both) must never be rolled back; a canary
//   answering 20% errors, or 300 ms slower, must always be. 200 runs each.
// - sequential, on the same seeds: the same (A/A on 50 runs), the hard failures caught within
//   40 and 30 canary requests at the median, and, promoting on evidence, a canary whose latencies
//   are all 20% higher (inside every threshold) caught in at least 95% of 50 runs within 3,000
//   canary requests.
// The tables of outcomes and detection times are printed (README, "Judgement");
// bench/judge_quality runs the full table with more runs.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "analysis/simulation.hpp"

namespace switchyard::analysis::simulation {
namespace {

constexpr std::size_t runs = 200;

unsigned threads() {
    return std::max(std::thread::hardware_concurrency(), 1U);
}

std::string cause_list(const summary& s) {
    std::string list;
    for (const auto& [cause, n] : s.causes) {
        list += cause + " " + std::to_string(n) + " ";
    }
    return list;
}

void print_header() {
    std::printf("\n%-26s %5s %10s %9s %9s %15s  %s\n", "scenario", "runs", "rollbacks", "median s",
                "p90 s", "canary requests", "rollback causes");
}

// Seconds and canary requests run from the first canary traffic to the end of the rollout:
// the detection for a rollback, the promotion and bake for a success.
summary run_row(const scenario& s, const config::analysis_config& analysis,
                std::uint64_t first_seed, std::size_t count, std::vector<run_result>& results) {
    results = simulate_runs(s, analysis, first_seed, count, threads());
    const summary sum = summarize(results);
    std::printf("%-26.26s %5zu %10zu %9.1f %9.1f %15.0f  %s\n", std::string(s.name).c_str(),
                sum.runs, sum.rollbacks, sum.median_seconds_to_end, sum.p90_seconds_to_end,
                sum.median_requests_to_end, cause_list(sum).c_str());
    return sum;
}

// The bench runs seeds on as many threads as the machine has: its table must not depend on it.
TEST(judge_quality, runs_are_the_same_on_any_number_of_threads) {
    const auto analysis = default_analysis(config::analysis_method::threshold);
    const auto alone = simulate_runs(canary_20_percent_errors, analysis, 7, 6, 1);
    const auto shared = simulate_runs(canary_20_percent_errors, analysis, 7, 6, 4);
    ASSERT_EQ(alone.size(), 6U);
    ASSERT_EQ(shared.size(), 6U);
    for (std::size_t i = 0; i < alone.size(); ++i) {
        EXPECT_TRUE(alone[i] == shared[i]) << i;
        EXPECT_TRUE(alone[i] == simulate(canary_20_percent_errors, analysis, 7 + i)) << i;
    }
}

TEST(judge_quality, the_threshold_judge_on_200_seeded_runs_per_scenario) {
    const auto analysis = default_analysis(config::analysis_method::threshold);
    print_header();
    std::vector<run_result> results;
    EXPECT_EQ(run_row(a_a, analysis, 0, runs, results).rollbacks, 0U);
    EXPECT_EQ(run_row(canary_20_percent_errors, analysis, 200, runs, results).rollbacks, runs);
    EXPECT_EQ(run_row(canary_300_ms_slower, analysis, 400, runs, results).rollbacks, runs);
}

// Fewer runs than the threshold rows where a run lasts the whole rollout: the sequential judge
// evaluates every second, which at -O0 costs about four times the threshold judge's run.
TEST(judge_quality, the_sequential_judge_keeps_a_a_and_catches_hard_failures_at_the_first_step) {
    const auto analysis = default_analysis(config::analysis_method::sequential);
    print_header();
    std::vector<run_result> results;
    EXPECT_EQ(run_row(a_a, analysis, 0, 50, results).rollbacks, 0U);
    const summary errors = run_row(canary_20_percent_errors, analysis, 200, runs, results);
    EXPECT_EQ(errors.rollbacks, runs);
    EXPECT_LE(errors.median_requests, 40);
    const summary slower = run_row(canary_300_ms_slower, analysis, 400, runs, results);
    EXPECT_EQ(slower.rollbacks, runs);
    EXPECT_LE(slower.median_requests, 30);
}

// All latencies 20% higher: inside the 1.5x tolerance of the p95 ratio, but the share of answers
// above the stable slot's p95 and p99 is over 2.5 times the stable slot's. With promote:
// interval the rollout reaches 100% after about 1,600 canary requests (four steps of 10 s), and
// without stable traffic there is nothing left to compare with: bench/judge_quality reports that
// row. Promoting on evidence, a step waits until the canary is shown within tolerance, so the
// judge has the requests it needs.
TEST(judge_quality,
     the_sequential_judge_promoting_on_evidence_catches_latencies_20_percent_higher) {
    auto analysis = default_analysis(config::analysis_method::sequential);
    analysis.promote = config::promote_rule::evidence;
    print_header();
    std::vector<run_result> results;
    run_row(canary_p95_20_percent_slower, analysis, 600, 50, results);
    EXPECT_GE(rolled_back_within(results, 3000) * 100, results.size() * 95);
}

}  // namespace
}  // namespace switchyard::analysis::simulation
