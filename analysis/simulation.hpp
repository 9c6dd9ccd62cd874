#pragma once
// A seeded simulation of canary rollouts through the real judge and rollout machine: how often a
// judge rolls back a canary that is no worse, and how soon it catches one that is (README,
// "Judgement"). tests/analysis/judge_quality_test.cpp and bench/judge_quality.cpp run this code.
//
// Each run starts a rollout with the default rollout settings (steps 10, 25, 50, 75, 100, then
// the bake) and the analysis settings it is given, draws every request of a steady rate (100
// requests a second unless told; its slot from the split, its latency and whether it failed from
// the slot's model), and ticks the machine every 250 ms of simulated time with the totals, until
// the rollout ends. Nothing here reads a clock or sleeps: a run is a function of its scenario,
// settings and seed.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace switchyard::analysis::simulation {

inline constexpr double default_requests_per_second = 100;
inline constexpr std::chrono::milliseconds tick{250};

// One slot's behaviour: answers take lognormal time (median 8 ms, p95 about 14 ms, as a small
// web service) times `latency_scale`, plus `extra`, and fail with probability `error_rate`.
struct slot_model {
    double error_rate = 0.005;
    double latency_scale = 1.0;
    std::chrono::microseconds extra{0};
};

// A slow swing of the base load during the rollout: the request rate and both slots' error
// rates are multiplied by 1 + amplitude * sin(2 pi t / period + phase), the phase drawn per run.
// Both slots follow the same curve, so a canary that behaves as the stable slot stays so.
struct drift {
    double amplitude = 0;  // 0: steady; 0.5: +-50%
    std::chrono::seconds period{240};
};

struct scenario {
    std::string_view name;
    slot_model stable;
    slot_model canary;
    bool regression = false;  // true: a rollback is the right answer
    drift base;
};

// The scenarios of the judge-quality table.
inline constexpr scenario a_a{"A/A, 0.5% errors on both", {}, {}, false, {}};
inline constexpr scenario canary_20_percent_errors{"canary 20% errors", {}, {0.20}, true, {}};
inline constexpr scenario canary_300_ms_slower{
    "canary +300 ms", {}, {0.005, 1.0, std::chrono::microseconds(300'000)}, true, {}};
inline constexpr scenario canary_p95_20_percent_slower{
    "canary p95 +20%", {}, {0.005, 1.2}, true, {}};
inline constexpr scenario canary_twice_the_errors{
    "canary 2x errors (1% vs 0.5%)", {}, {0.01}, true, {}};
inline constexpr scenario canary_5_percent_slower{
    "canary +5% latency (within 1.5x)", {}, {0.005, 1.05}, false, {}};
inline constexpr scenario a_a_drifting{
    "A/A, base rate drifting +-50%", {}, {}, false, {0.5, std::chrono::seconds(240)}};

struct run_result {
    bool rolled_back = false;
    // From the first canary traffic to the end of the rollout: the rollback, or the promotion
    // and bake of a rollout that succeeded.
    double seconds = 0;
    std::uint64_t canary_requests = 0;  // until then
    std::uint32_t max_weight = 0;       // the highest weight the canary reached
    std::string cause;                  // of the rollback

    friend bool operator==(const run_result&, const run_result&) = default;
};

// One rollout of `s` judged with `analysis` (its method among them), drawn from `seed`, at
// `requests_per_second` through the proxy.
run_result simulate(const scenario& s, const config::analysis_config& analysis, std::uint64_t seed,
                    double requests_per_second = default_requests_per_second);

// Runs seeds first_seed .. first_seed + runs - 1 on `threads` threads (at least one). The results
// are in seed order and the same for any number of threads.
std::vector<run_result> simulate_runs(const scenario& s, const config::analysis_config& analysis,
                                      std::uint64_t first_seed, std::size_t runs, unsigned threads,
                                      double requests_per_second = default_requests_per_second);

// The q-quantile (0..1) of `values` by rank: the element at q * (n - 1), rounded down; 0 when
// empty.
double percentile(std::vector<double> values, double q);

// What a set of runs shows. The detection figures cover the rolled-back runs only.
struct summary {
    std::size_t runs = 0;
    std::size_t rollbacks = 0;
    double rollback_rate = 0;  // rollbacks / runs
    double median_requests = 0;
    double p90_requests = 0;
    double median_seconds = 0;
    double p90_seconds = 0;
    // Over every run, rolled back or not: to the end of the rollout.
    double median_seconds_to_end = 0;
    double p90_seconds_to_end = 0;
    double median_requests_to_end = 0;
    std::map<std::string, std::size_t> causes;  // rollbacks by cause
};
summary summarize(std::span<const run_result> results);

// Runs rolled back with at most `canary_requests` canary requests served.
std::size_t rolled_back_within(std::span<const run_result> results, std::uint64_t canary_requests);

// The default analysis with `method` (promote: interval, alpha 1%).
config::analysis_config default_analysis(config::analysis_method method);

}  // namespace switchyard::analysis::simulation
