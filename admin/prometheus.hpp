#pragma once
// The Prometheus text exposition (format 0.0.4) of what Switchyard measures, with the names and
// labels of PRODUCT.md.

#include <array>
#include <string>
#include <string_view>

#include "analysis/metrics.hpp"
#include "analysis/traffic_split.hpp"

namespace switchyard::admin {

// What a scrape shows, gathered at one moment.
struct scrape_input {
    std::array<std::string_view, 2> slot_names;
    std::array<analysis::slot_totals, 2> totals;
    analysis::traffic_split split;
};

// The upper bounds, in seconds, of the exposed latency histogram: fixed, from 0.5 ms to 60 s.
// The fine internal histogram stays internal; each of its buckets is counted under the first
// bound at or above its midpoint, so a bound is off by at most half a fine bucket (0.8%).
inline constexpr std::array<double, 16> duration_bounds{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

// Appends the exposition to `out`.
void write_prometheus(const scrape_input& in, std::string& out);

}  // namespace switchyard::admin
