// What a /metrics scrape costs, and what it costs the workers.
//
// BM_scrape: one iteration collects N workers' shards through shard_collector (merge, then the
// prometheus-cpp families) and serializes them with TextSerializer, as GET /metrics does minus
// the socket. The shards hold traffic on every status class and on many latency buckets, with
// the upstream's own time on every request.
// BM_record_while_scraping: one iteration is one request recorded by a worker while another
// thread scrapes in a loop: compare with metrics_record_bench to see the disturbance.

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "admin/prometheus.hpp"
#include "analysis/metrics.hpp"
#include "bench/busy_shards.hpp"

namespace {

using namespace switchyard;

// What GET /metrics serializes: the shards, through the collector.
std::string scrape(const admin::shard_collector& collector) {
    const std::array<const prometheus::Collectable*, 1> sources{&collector};
    return admin::serialize(sources);
}

void BM_scrape(benchmark::State& state) {
    const auto shards = bench::busy_shards(static_cast<std::size_t>(state.range(0)));
    const auto pointers = bench::pointers_to(shards);
    const analysis::split_state split({0, 10});
    const admin::shard_collector collector(
        {"blue", "green"}, [&] { return analysis::merge(pointers); }, split);
    std::string text;
    for (auto _ : state) {
        text = scrape(collector);
        benchmark::DoNotOptimize(text.data());
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["bytes"] = static_cast<double>(text.size());
}
BENCHMARK(BM_scrape)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMicrosecond);

void BM_record_while_scraping(benchmark::State& state) {
    auto shards = bench::busy_shards(1);
    const std::vector<const analysis::metrics_shard*> pointers{&shards.front()};
    const analysis::split_state split({0, 10});
    const admin::shard_collector collector(
        {"blue", "green"}, [&] { return analysis::merge(pointers); }, split);
    std::atomic<bool> stop{false};
    std::thread scraper([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            const std::string text = scrape(collector);
            benchmark::DoNotOptimize(text.data());
        }
    });
    analysis::request_record r;
    r.status = 200;
    r.latency = std::chrono::microseconds(1500);
    for (auto _ : state) {
        shards.front().request_started(0);
        shards.front().request_finished(0, r);
    }
    stop = true;
    scraper.join();
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_record_while_scraping);

}  // namespace
