#pragma once
// Workers' metric shards as after a while of real load, for the benchmarks that merge them (the
// scrape, the rollout engine's tick): 20,000 requests per worker over both slots, on every status
// class and hundreds of latency buckets, each with the upstream's own time.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "analysis/metrics.hpp"

namespace switchyard::bench {

inline std::deque<analysis::metrics_shard> busy_shards(std::size_t workers) {
    std::deque<analysis::metrics_shard> shards(workers);
    for (auto& shard : shards) {
        for (std::uint32_t i = 0; i < 20000; ++i) {
            analysis::request_record r;
            r.status = static_cast<std::uint16_t>(i % 50 == 0 ? 503 : i % 7 == 0 ? 404 : 200);
            r.latency = std::chrono::microseconds(100 + (i * 7919) % 2000000);
            r.upstream_time = r.latency - std::chrono::microseconds(50);
            r.bytes_in = 300;
            r.bytes_out = 1200;
            const auto slot = static_cast<analysis::slot_index>(i % analysis::slot_count);
            shard.request_started(slot);
            shard.request_finished(slot, r);
        }
    }
    return shards;
}

// The shards as merge() takes them.
inline std::vector<const analysis::metrics_shard*> pointers_to(
    const std::deque<analysis::metrics_shard>& shards) {
    std::vector<const analysis::metrics_shard*> out;
    for (const auto& s : shards) {
        out.push_back(&s);
    }
    return out;
}

}  // namespace switchyard::bench
