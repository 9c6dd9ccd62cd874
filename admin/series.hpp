#pragma once
// The live page's data (README, "Live page"): the last ten minutes, one point a second, of the
// weights, each slot's rate, error rate and p95, and each sequential test's evidence, for
// GET /series.
//
// A ring of fixed-size points allocated once: the per-second metrics window keeps whole
// histograms per second, too much to hold for ten minutes just to draw three numbers.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "analysis/metrics.hpp"
#include "analysis/sequential.hpp"
#include "analysis/traffic_split.hpp"

namespace switchyard::admin {

// What one slot did in one second.
struct series_slot {
    std::uint64_t requests = 0;
    double requests_per_second = 0;
    double error_rate = 0;           // of those requests; not shown when there were none
    double latency_p95_seconds = 0;  // the upstream's own time; not shown without requests
};

// One slot's share of a span of the metrics window.
series_slot to_series_slot(const analysis::metrics_window::span& span);

class series_recorder {
public:
    static constexpr std::size_t capacity = 600;  // ten minutes of seconds
    // Tests beyond this many (two per ratio check) are not recorded.
    static constexpr std::size_t max_tests = 8;

    series_recorder();

    // The second that ended at `unix_second` (seconds since the epoch, the point's time), once a
    // second from the controller's tick; a time not after the last point's becomes the one after
    // it. Allocates nothing unless the tests' names changed.
    void record(std::int64_t unix_second, analysis::traffic_split split,
                const analysis::per_slot<series_slot>& slots,
                std::span<const analysis::test_evidence> evidence);

    std::size_t size() const noexcept { return size_; }

    // {"seconds": 600, "tests": [...], "points": [...]}: the points after `since` (unix seconds;
    // 0: all of them), oldest first.
    boost::json::object to_json(const analysis::per_slot<std::string>& names,
                                std::int64_t since = 0) const;

private:
    struct evidence_point {
        double e_value = 0;
        double threshold = 0;
    };
    struct slot_point {
        double requests_per_second = 0;
        double error_rate = 0;
        double latency_p95_seconds = 0;
        bool served = false;
    };
    struct point {
        std::int64_t unix_second = 0;
        analysis::per_slot<slot_point> slots{};
        std::array<evidence_point, max_tests> evidence{};
        analysis::per_slot<std::uint8_t> weights{};
        std::uint8_t tests = 0;  // of `evidence`, those recorded
    };
    struct test_label {
        std::string check;
        analysis::sequential_test test = analysis::sequential_test::errors;
    };

    std::vector<point> ring_;  // capacity points, allocated once
    std::size_t next_ = 0;     // where the next point goes
    std::size_t size_ = 0;
    std::vector<test_label> tests_;  // the names of the latest point's tests
};

}  // namespace switchyard::admin
