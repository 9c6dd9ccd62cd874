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

namespace {

using namespace switchyard;

// Shards with traffic spread over statuses and latencies, as after a while of real load.
std::deque<analysis::metrics_shard> busy_shards(std::size_t workers) {
    std::deque<analysis::metrics_shard> shards(workers);
    for (auto& shard : shards) {
        for (std::uint32_t i = 0; i < 20000; ++i) {
            analysis::request_record r;
            r.status = static_cast<std::uint16_t>(i % 50 == 0 ? 503 : i % 7 == 0 ? 404 : 200);
            r.latency = std::chrono::microseconds(100 + (i * 7919) % 2000000);
            r.upstream_time = r.latency - std::chrono::microseconds(50);
            r.bytes_in = 300;
            r.bytes_out = 1200;
            shard.request_started(static_cast<analysis::slot_index>(i % 2));
            shard.request_finished(static_cast<analysis::slot_index>(i % 2), r);
        }
    }
    return shards;
}

// What GET /metrics serializes: the shards, through the collector.
std::string scrape(const admin::shard_collector& collector) {
    const std::array<const prometheus::Collectable*, 1> sources{&collector};
    return admin::serialize(sources);
}

void BM_scrape(benchmark::State& state) {
    const auto shards = busy_shards(static_cast<std::size_t>(state.range(0)));
    std::vector<const analysis::metrics_shard*> pointers;
    for (const auto& s : shards) {
        pointers.push_back(&s);
    }
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
    auto shards = busy_shards(1);
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
