// How good is the threshold judge? A seeded simulation through the real judge and rollout
// machine, with the default analysis and rollout, latencies and errors drawn per request:
// - identical slots (A/A, 0.5% errors on both) must never be rolled back;
// - a canary answering 20% errors, or 300 ms slower, must always be.
// 200 runs each. The table of outcomes and detection times is printed (README, "Judgement").

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "analysis/rollout.hpp"

namespace switchyard::analysis {
namespace {

using namespace std::chrono_literals;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// One slot's behaviour: answers take lognormal time (median 8 ms, p95 about 14 ms, as a small
// web service) plus `extra`, and fail with probability `error_rate`.
struct slot_model {
    double error_rate = 0.005;
    microseconds extra{0};
};

struct scenario {
    const char* name;
    slot_model stable;
    slot_model canary;
    bool regression;  // true: a rollback is the right answer
};

struct run_result {
    bool rolled_back = false;
    double seconds = 0;                 // from the first canary traffic to the end
    std::uint64_t canary_requests = 0;  // until then
    std::string cause;
};

constexpr double requests_per_second = 100;
constexpr milliseconds tick = 250ms;

run_result simulate(const scenario& s, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> latency(std::log(8000.0), std::log(14.0 / 8.0) / 1.645);
    std::uniform_real_distribution<double> unit(0, 1);
    const config::config defaults;
    rollout_machine machine(defaults.analysis);
    instant now{std::chrono::steady_clock::time_point(1h), std::chrono::system_clock::now()};
    per_slot<slot_totals> totals;
    split_picker picker;

    machine.start(now, "sim", defaults.rollout, {0, 0});
    machine.validated(now, "sim", {});
    const auto started = now.steady;
    const auto per_tick = static_cast<int>(requests_per_second * 0.25);
    run_result r;
    while (is_running(machine.state().current) && now.steady - started < 2h) {
        now.steady += tick;
        now.wall += tick;
        const traffic_split split = machine.split();
        for (int i = 0; i < per_tick; ++i) {
            const slot_index slot = picker.pick(split);
            const slot_model& m = slot == 1 ? s.canary : s.stable;  // green is the new version
            const bool failed = unit(rng) < m.error_rate;
            totals[slot].by_status[failed ? 400 : 100] += 1;
            const auto micros = static_cast<std::uint64_t>(latency(rng)) +
                                static_cast<std::uint64_t>(m.extra.count());
            totals[slot].upstream.buckets[latency_buckets::index(micros)] += 1;
        }
        const machine_output out = machine.tick(now, totals);
        for (const auto& e : out.events) {
            if (e.kind == "rolled-back") {
                r.rolled_back = true;
                r.cause = e.cause;
            }
        }
    }
    r.seconds = std::chrono::duration<double>(now.steady - started).count();
    r.canary_requests = totals[1].requests();
    return r;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

TEST(judge_quality, the_threshold_judge_on_200_seeded_runs_per_scenario) {
    constexpr int runs = 200;
    const scenario scenarios[] = {
        {"A/A, 0.5% errors on both", {0.005, 0us}, {0.005, 0us}, false},
        {"canary 20% errors", {0.005, 0us}, {0.20, 0us}, true},
        {"canary +300 ms", {0.005, 0us}, {0.005, 300'000us}, true},
    };
    // Seconds and canary requests run from the first canary traffic to the end of the rollout:
    // the detection for a rollback, the promotion and bake for a success.
    std::printf("\n%-26s %5s %10s %9s %9s %15s  %s\n", "scenario", "runs", "rollbacks", "median s",
                "p90 s", "canary requests", "rollback causes");
    int seed_base = 0;
    for (const scenario& s : scenarios) {
        int rollbacks = 0;
        std::vector<double> seconds;
        std::vector<double> requests;
        std::map<std::string, int> causes;
        for (int i = 0; i < runs; ++i) {
            const run_result r = simulate(s, static_cast<std::uint64_t>(seed_base + i));
            seconds.push_back(r.seconds);
            requests.push_back(static_cast<double>(r.canary_requests));
            if (r.rolled_back) {
                ++rollbacks;
                ++causes[r.cause];
            }
        }
        seed_base += runs;
        std::string cause_list;
        for (const auto& [cause, n] : causes) {
            cause_list += cause + " " + std::to_string(n) + " ";
        }
        std::printf("%-26s %5d %10d %9.1f %9.1f %15.0f  %s\n", s.name, runs, rollbacks,
                    percentile(seconds, 0.5), percentile(seconds, 0.9), percentile(requests, 0.5),
                    cause_list.c_str());
        EXPECT_EQ(rollbacks, s.regression ? runs : 0) << s.name;
    }
}

}  // namespace
}  // namespace switchyard::analysis
