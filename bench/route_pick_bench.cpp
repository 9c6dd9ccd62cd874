// Route pick: what a worker does per request to choose a slot.
//
// One iteration: split_state::load() (one acquire load of the shared split word) plus
// split_picker::pick() (the worker's exact 100-request Bresenham pick). The Arg is the other
// slot's weight in percent: 0 (no canary), 10 (a typical canary) and 50 (an even split).

#include <benchmark/benchmark.h>

#include <cstdint>

#include "analysis/traffic_split.hpp"

namespace {

using switchyard::analysis::slot_index;
using switchyard::analysis::split_picker;
using switchyard::analysis::split_state;
using switchyard::analysis::traffic_split;

void BM_route_pick(benchmark::State& state) {
    const split_state split(traffic_split{0, static_cast<std::uint8_t>(state.range(0))});
    split_picker picker;
    for (auto _ : state) {
        const slot_index slot = picker.pick(split.load());
        benchmark::DoNotOptimize(slot);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_route_pick)->Arg(0)->Arg(10)->Arg(50);

}  // namespace
