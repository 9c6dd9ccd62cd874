// What the rollout engine costs the admin thread, several times a second while a rollout runs.
//
// BM_engine_tick/N: one iteration merges N workers' shards (traffic on many statuses and latency
// buckets) and runs the machine's tick 100 ms later: the fast-rollback check, no judgement.
// BM_engine_tick_judging/N: the same, with a whole interval passed each time, so every
// iteration also judges the window (four checks, quantiles from the fine histograms).
// Budget: under 1 ms with 16 workers.

#include <benchmark/benchmark.h>

#include <chrono>
#include <deque>
#include <limits>
#include <vector>

#include "analysis/metrics.hpp"
#include "analysis/rollout.hpp"
#include "bench/busy_shards.hpp"

namespace {

using namespace switchyard;
using namespace std::chrono_literals;

// A machine with a rollout in progress that never moves on: every judgement is inconclusive
// (min_requests out of reach) and never pauses it, so each iteration costs the same.
analysis::rollout_machine progressing_machine(analysis::instant now) {
    config::analysis_config a;
    a.min_requests = std::numeric_limits<std::uint32_t>::max();
    a.inconclusive_limit = std::numeric_limits<std::uint32_t>::max();
    analysis::rollout_machine m(a);
    m.start(now, "bench", {}, {0, 0});
    m.validated(now, "bench", {});
    return m;
}

void run(benchmark::State& state, std::chrono::milliseconds step) {
    const auto shards = bench::busy_shards(static_cast<std::size_t>(state.range(0)));
    const auto pointers = bench::pointers_to(shards);
    analysis::instant now{std::chrono::steady_clock::now(), std::chrono::system_clock::now()};
    auto machine = progressing_machine(now);
    machine.tick(now, analysis::merge(pointers));  // the first window's start
    for (auto _ : state) {
        now.steady += step;
        now.wall += step;
        const auto out = machine.tick(now, analysis::merge(pointers));
        benchmark::DoNotOptimize(out.events.size());
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_engine_tick(benchmark::State& state) {
    run(state, 100ms);
}
BENCHMARK(BM_engine_tick)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMicrosecond);

void BM_engine_tick_judging(benchmark::State& state) {
    run(state, 10s);
}
BENCHMARK(BM_engine_tick_judging)->Arg(1)->Arg(16)->Unit(benchmark::kMicrosecond);

}  // namespace
