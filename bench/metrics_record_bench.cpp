// Metrics record: what a worker does when a request finishes.
//
// One iteration: analysis::metrics_shard::request_finished for one slot and one record (status
// 200, bytes in and out, a latency) into slot 0 of the worker's own shard. The latency cycles
// through the first Arg of 1024 fixed values spread log-uniformly from 100 µs to 1 s: Arg 1 hits
// one histogram bucket every time; Arg 1024 spreads over hundreds, as real traffic does. The
// second Arg is 1 when the record carries the upstream's own time too (a second histogram), as
// every answered request does.
// Budget: at most 20 ns.

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "analysis/metrics.hpp"

namespace {

namespace analysis = switchyard::analysis;

constexpr std::size_t latency_count = 1024;

// Latencies 100 µs * 10^(4 * u) for u in [0, 1), visited in a scattered but fixed order.
std::array<std::chrono::microseconds, latency_count> sample_latencies() {
    std::array<std::chrono::microseconds, latency_count> out{};
    for (std::size_t i = 0; i < latency_count; ++i) {
        const std::size_t k = (i * 389) % latency_count;  // 389 is odd: a permutation
        const double u = static_cast<double>(k) / static_cast<double>(latency_count);
        out[i] =
            std::chrono::microseconds(static_cast<std::int64_t>(100.0 * std::pow(10.0, 4 * u)));
    }
    return out;
}

void BM_metrics_request_finished(benchmark::State& state) {
    constexpr analysis::slot_index slot = 0;
    const auto mask = static_cast<std::size_t>(state.range(0)) - 1;  // a power of two
    const bool upstream = state.range(1) != 0;
    const auto latencies = sample_latencies();
    // A shard is tens of KiB of counters: on the heap, as a worker holds it.
    const auto shard = std::make_unique<analysis::metrics_shard>();
    analysis::request_record record;
    record.status = 200;
    record.bytes_in = 512;
    record.bytes_out = 892;
    std::size_t i = 0;
    for (auto _ : state) {
        record.latency = latencies[i++ & mask];
        if (upstream) {
            record.upstream_time = latencies[(i * 7) & mask];
        }
        shard->request_finished(slot, record);
        benchmark::ClobberMemory();
    }
    benchmark::DoNotOptimize(shard->slot(slot).finished.load());
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_metrics_request_finished)->ArgsProduct({{1, 1024}, {0, 1}});

}  // namespace
