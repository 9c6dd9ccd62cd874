// What the sequential judge costs the admin thread once a second while a rollout runs.
//
// BM_sequential_second/N: one iteration is the per-second evaluation: merge N workers' shards
// whose latency histograms have every bucket non-zero, difference() per slot (against an empty
// baseline, so each second's window carries the full histogram), and observe() with the default
// checks (an errors test, and a latency check's exceedance and quantile tests).
// BM_sequential_observe: observe() alone on such a pair of windows.
// Budget: under 1 ms with 16 workers.

#include <benchmark/benchmark.h>

#include <chrono>
#include <deque>
#include <vector>

#include "analysis/metrics.hpp"
#include "analysis/sequential.hpp"
#include "bench/busy_shards.hpp"

namespace {

using namespace switchyard;

// busy_shards(), plus one request per latency bucket on each slot, up to the last (134 s).
std::deque<analysis::metrics_shard> full_shards(std::size_t workers) {
    auto shards = bench::busy_shards(workers);
    for (auto& shard : shards) {
        for (std::size_t i = 0; i < analysis::latency_buckets::count; ++i) {
            analysis::request_record r;
            r.status = 200;
            r.latency = std::chrono::microseconds(
                static_cast<std::int64_t>(analysis::latency_buckets::lower(i)));
            r.upstream_time = r.latency;
            for (analysis::slot_index slot = 0; slot < analysis::slot_count; ++slot) {
                shard.request_started(slot);
                shard.request_finished(slot, r);
            }
        }
    }
    return shards;
}

constexpr analysis::slot_index stable_slot = 0;
constexpr analysis::slot_index canary_slot = 1;

void BM_sequential_second(benchmark::State& state) {
    const auto shards = full_shards(static_cast<std::size_t>(state.range(0)));
    const auto pointers = bench::pointers_to(shards);
    const auto checks = config::default_checks();
    analysis::sequential_judge judge(checks, 0.01);
    const analysis::slot_totals baseline;
    for (auto _ : state) {
        const auto totals = analysis::merge(pointers);
        const auto canary = analysis::difference(totals[canary_slot], baseline);
        const auto stable = analysis::difference(totals[stable_slot], baseline);
        const auto out = judge.observe(canary, stable);
        benchmark::DoNotOptimize(out.has_value());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_sequential_second)->Arg(1)->Arg(16)->Unit(benchmark::kMicrosecond);

void BM_sequential_observe(benchmark::State& state) {
    const auto shards = full_shards(16);
    const auto pointers = bench::pointers_to(shards);
    const auto totals = analysis::merge(pointers);
    const analysis::slot_totals baseline;
    const auto canary = analysis::difference(totals[canary_slot], baseline);
    const auto stable = analysis::difference(totals[stable_slot], baseline);
    const auto checks = config::default_checks();
    analysis::sequential_judge judge(checks, 0.01);
    for (auto _ : state) {
        const auto out = judge.observe(canary, stable);
        benchmark::DoNotOptimize(out.has_value());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_sequential_observe)->Unit(benchmark::kMicrosecond);

}  // namespace
