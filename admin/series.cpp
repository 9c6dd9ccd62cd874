#include "admin/series.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <boost/json.hpp>

namespace switchyard::admin {
namespace {

namespace json = boost::json;

// `v`, finite: JSON has no infinity and no NaN (an e-value saturates at DBL_MAX already).
double finite(double v) noexcept {
    constexpr double top = std::numeric_limits<double>::max();
    return std::isnan(v) ? 0.0 : std::clamp(v, -top, top);
}

}  // namespace

series_slot to_series_slot(const analysis::metrics_window::span& span) {
    return {span.stats.requests, span.rate(), span.stats.error_rate(),
            static_cast<double>(span.stats.upstream_quantile(0.95).count()) / 1e6};
}

series_recorder::series_recorder() : ring_(capacity) {}

void series_recorder::record(std::int64_t unix_second, analysis::traffic_split split,
                             const analysis::per_slot<series_slot>& slots,
                             std::span<const analysis::test_evidence> evidence) {
    // One point a second, in order: the ticks that see a second end come 1 s apart give or take
    // a tick, so two may fall in the same wall-clock second, and the wall clock may step back.
    if (size_ > 0) {
        unix_second =
            std::max(unix_second, ring_[(next_ + capacity - 1) % capacity].unix_second + 1);
    }
    point& p = ring_[next_];
    p.unix_second = unix_second;
    for (analysis::slot_index s = 0; s < analysis::slot_count; ++s) {
        p.weights[s] = split.weight(s);
        p.slots[s] = {finite(slots[s].requests_per_second), finite(slots[s].error_rate),
                      finite(slots[s].latency_p95_seconds), slots[s].requests > 0};
    }
    // The tests with an e-value against a line: the quantile test has bounds instead (they are
    // in /status), and no line to draw.
    std::size_t tests = 0;
    bool same_tests = true;
    for (const analysis::test_evidence& e : evidence) {
        if (e.test == analysis::sequential_test::quantile || tests == max_tests) {
            continue;
        }
        p.evidence[tests] = {finite(e.e_value), finite(e.e_threshold)};
        same_tests = same_tests && tests < tests_.size() && tests_[tests].check == e.check &&
                     tests_[tests].test == e.test;
        ++tests;
    }
    p.tests = static_cast<std::uint8_t>(tests);
    same_tests = same_tests && tests_.size() == tests;
    // The names change with the configuration's checks only; an empty span (the threshold
    // method, or no rollout yet) keeps the last rollout's names for its points still shown.
    if (!same_tests && tests > 0) {
        tests_.clear();
        for (const analysis::test_evidence& e : evidence) {
            if (e.test != analysis::sequential_test::quantile && tests_.size() < tests) {
                tests_.push_back({e.check, e.test});
            }
        }
    }
    next_ = (next_ + 1) % capacity;
    size_ = std::min(size_ + 1, capacity);
}

json::object series_recorder::to_json(const analysis::per_slot<std::string>& names,
                                      std::int64_t since) const {
    json::array tests;
    for (const test_label& t : tests_) {
        tests.emplace_back(json::object{{"check", t.check}, {"test", analysis::test_name(t.test)}});
    }
    json::array points;
    points.reserve(size_);
    const std::size_t first = (next_ + capacity - size_) % capacity;
    for (std::size_t i = 0; i < size_; ++i) {
        const point& p = ring_[(first + i) % capacity];
        if (p.unix_second <= since) {
            continue;
        }
        json::object weights;
        json::object slots;
        for (analysis::slot_index s = 0; s < analysis::slot_count; ++s) {
            const slot_point& sp = p.slots[s];
            weights[names[s]] = p.weights[s];
            slots[names[s]] = {
                {"requests_per_second", sp.requests_per_second},
                {"error_rate", sp.served ? json::value(sp.error_rate) : json::value(nullptr)},
                {"latency_p95_seconds",
                 sp.served ? json::value(sp.latency_p95_seconds) : json::value(nullptr)},
            };
        }
        json::array evidence;
        for (std::size_t t = 0; t < p.tests; ++t) {
            evidence.emplace_back(json::object{{"e_value", p.evidence[t].e_value},
                                               {"threshold", p.evidence[t].threshold}});
        }
        points.emplace_back(json::object{{"t", p.unix_second},
                                         {"weights", std::move(weights)},
                                         {"slots", std::move(slots)},
                                         {"evidence", std::move(evidence)}});
    }
    return {{"seconds", capacity}, {"tests", std::move(tests)}, {"points", std::move(points)}};
}

}  // namespace switchyard::admin
