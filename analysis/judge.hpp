#pragma once
// The threshold judge: one interval's window of the canary slot, and of the stable slot for
// ratio checks, against the configured checks. A pure function of counts and histograms.
//
// The rules (README, "Judgement"):
// - a rate or latency check is inconclusive, never a pass, when the canary's window holds fewer
//   than `min_requests` samples (requests for rates, upstream times for latencies);
// - a ratio check compares the canary with ratio * max(stable, floor), and is inconclusive when
//   the stable slot's window is below `min_requests` too;
// - the judgement fails when any check fails, else is inconclusive when any check is, else
//   passes.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/metrics.hpp"
#include "analysis/sequential.hpp"
#include "config/config.hpp"

namespace switchyard::analysis {

enum class verdict : std::uint8_t { pass, fail, inconclusive };

// "pass", "fail", "inconclusive": the `result` label of switchyard_analysis_checks_total.
std::string_view verdict_name(verdict v) noexcept;

// One check's verdict on one window.
struct check_result {
    std::string name;  // the check's name
    config::check_metric metric = config::check_metric::error_rate;
    config::check_kind kind = config::check_kind::max;
    verdict result = verdict::inconclusive;
    double value = 0;           // the canary's value: a rate, or seconds
    double threshold = 0;       // what the value was held against (for ratios: ratio * base)
    double stable = 0;          // ratio checks: the stable slot's value
    std::uint64_t samples = 0;  // canary samples behind `value`
    // analysis.method: sequential judges this check every second (judged_sequentially): the
    // verdict is the sequential tests', their state is here, and value, threshold and stable
    // show the interval's window for reference.
    std::vector<test_evidence> evidence;
};

struct judgement {
    verdict result = verdict::inconclusive;
    std::uint64_t canary_requests = 0;
    std::uint64_t stable_requests = 0;
    std::vector<check_result> checks;  // in configuration order

    // The first failing check in configuration order; null when none failed.
    const check_result* first_failure() const noexcept;
};

// With analysis.method: sequential, the error_rate and latency max_ratio_to_stable checks are the
// sequential judge's (README, "Sequential judgement"); the others stay per interval.
bool judged_sequentially(config::check_metric metric, config::check_kind kind) noexcept;

// A check's metric read from a window: a rate, or a latency quantile in seconds.
double metric_value(config::check_metric metric, const slot_window& w) noexcept;

// Judges one window. With `absolute_only` (the bake, when the old slot has no traffic to compare
// with) ratio checks are left out of the judgement. mirror_mismatch_rate checks are judged only
// on a shadow window of the canary (slot_window::shadow), and left out otherwise.
judgement judge(std::span<const config::check_config> checks, std::uint32_t min_requests,
                const slot_window& canary, const slot_window& stable, bool absolute_only = false);

// "error_rate 20.3% > 5%" or "latency_p95_ratio 310ms > 7.5ms (stable 1.2ms)": one line for
// logs, events and /status.
std::string describe(const check_result& r);

}  // namespace switchyard::analysis
