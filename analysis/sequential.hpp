#pragma once
// The sequential judge: anytime-valid tests of the canary against the stable slot, fed once a
// second with what each slot did in that second (README, "Sequential judgement").
//
// Each test is an e-process: it starts at 1 and, while the canary is no worse than the check
// allows, its expectation never grows, so by Ville's inequality it reaches 1/alpha_j with
// probability at most alpha_j however often it is read (Howard, Ramdas, McAuliffe, Sekhon,
// Annals of Statistics 2021). `analysis.alpha` is split evenly over the tests (Bonferroni).
//
// - errors (an error_rate max_ratio_to_stable check, ratio r0): a mixture over a geometric grid of
//   risk ratios of the likelihood ratio of the canary's share of the second's errors, given the
//   second's observed share of requests (Lindon & Malek, NeurIPS 2022).
// - exceedance (a latency max_ratio_to_stable check, ratio r0): the same test on the requests
//   above the stable slot's running p50, p95 and p99 (taken from seconds already seen), the
//   three e-values averaged.
// - quantile (the same latency check, tolerance tau = ratio - 1): confidence sequences on the
//   check's quantile of each slot from a conjugate Beta mixture (Howard & Ramdas, Bernoulli
//   2022), restarted at each weight step with alpha_k = alpha_j * 6 / (pi^2 k^2) for step k.
//
// The non-inferiority side of each test (promote: evidence) is the mirror image: an e-process
// against "the canary is worse than the check allows" (exceedance: the least of the three
// thresholds' e-values, as it must hold at each), or for quantile the canary's upper bound
// under (1 + tau) * max(stable lower bound, floor).
//
// Pure arithmetic on counts and histograms: no clocks, no threads, no I/O.

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/metrics.hpp"
#include "config/config.hpp"

namespace switchyard::analysis {

// The risk-ratio mixture e-process of one kind of event (errors, or requests above a
// threshold), conditioned each second on both slots' counts.
//
// For a second with canary events e, stable events s, E = e + s, and observed canary share
// w = n_canary / (n_canary + n_stable), each grid point r_j adds
//   e * ln(r_j / r0) - E * (ln(1 + w (r_j - 1)) - ln(1 + w (r0 - 1)))
// to its log-likelihood ratio; the e-value is the mean of exp() of them (log-sum-exp).
// against_worse: grid_points geometric from 1.05 r0 to max(1000, 2 r0); the null is "the canary's
// risk is at most r0 times the stable's". within: grid_points geometric from r0 / 1.05 down to
// r0 / 1000; the null is "at least r0 times" (its e-value is the evidence of non-inferiority).
// A second where either slot served nothing, or with no events, adds nothing.
class risk_ratio_eprocess {
public:
    static constexpr std::size_t grid_points = 30;

    explicit risk_ratio_eprocess(double r0 = 1.0);

    void observe(std::uint64_t canary_events, std::uint64_t canary_requests,
                 std::uint64_t stable_events, std::uint64_t stable_requests) noexcept;

    double r0() const noexcept { return r0_; }
    double log_e_value() const noexcept;         // against "no worse than r0"
    double log_e_value_within() const noexcept;  // against "worse than r0"
    double e_value() const noexcept;             // exp(log_e_value()), saturating at DBL_MAX
    double e_value_within() const noexcept;
    // Events and requests counted so far, per slot.
    std::uint64_t canary_events() const noexcept { return canary_events_; }
    std::uint64_t stable_events() const noexcept { return stable_events_; }
    std::uint64_t canary_requests() const noexcept { return canary_requests_; }
    std::uint64_t stable_requests() const noexcept { return stable_requests_; }

private:
    double r0_ = 1.0;
    std::array<double, grid_points> worse_grid_{};   // ln r_j
    std::array<double, grid_points> within_grid_{};  // ln r_j
    std::array<double, grid_points> worse_log_{};    // accumulated log-likelihood ratios
    std::array<double, grid_points> within_log_{};
    std::uint64_t canary_events_ = 0;
    std::uint64_t stable_events_ = 0;
    std::uint64_t canary_requests_ = 0;
    std::uint64_t stable_requests_ = 0;
};

// A confidence sequence for quantile q of a histogram in latency_buckets: with probability at
// least 1 - alpha the true quantile lies in [lower, upper] at every time at once. From the
// Beta(c q, c (1 - q)) mixture of Bernoulli(q) likelihood ratios over the count at or below a
// value; binning only widens it (lower is a bucket's lower edge, upper a bucket's upper edge).
struct quantile_bounds {
    std::uint64_t samples = 0;
    // Absent when the data cannot bound that side yet (too few samples).
    std::optional<std::chrono::microseconds> lower;
    std::optional<std::chrono::microseconds> upper;
};
quantile_bounds quantile_confidence(std::span<const std::uint64_t> histogram, double q,
                                    double alpha) noexcept;
// The c of the Beta(c q, c (1 - q)) mixture (its choice is argued in sequential.cpp).
inline constexpr double quantile_concentration = 64;

enum class sequential_test : std::uint8_t { errors, exceedance, quantile };
std::string_view test_name(sequential_test t) noexcept;  // "errors", "exceedance", "quantile"

// One test's state, for /status, the events and the live page.
struct test_evidence {
    std::string check;  // the check's name ("error_rate_ratio", "latency_p95_ratio")
    sequential_test test = sequential_test::errors;
    double alpha = 0;  // its share of analysis.alpha (quantile: of this step, alpha_k)
    // errors and exceedance: the e-value now, what it must reach (1 / alpha), the anytime p-value
    // (min over time of 1 / E, at most 1), and the non-inferiority side's e-value (exceedance:
    // the least of the three thresholds' within e-values, since non-inferiority must hold at all
    // three, where the rejecting side averages them).
    double e_value = 1;
    double e_threshold = 0;
    double p_value = 1;
    double e_value_within = 1;
    // quantile: the check's quantile, in seconds, of each slot since the step began; 0 when not
    // bounded yet (see quantile_bounds), and the limit the canary's lower bound is held against:
    // (1 + tau) * max(stable_upper, floor), 0 while stable_upper is not bounded.
    double canary_lower = 0;
    double canary_upper = 0;
    double stable_lower = 0;
    double stable_upper = 0;
    double limit = 0;
    std::uint32_t step = 0;  // quantile: the weight step the bounds belong to, from 1
    // Requests (errors, exceedance: and events) counted: since the rollout began, or for
    // quantile since the step began. Latency tests count latency samples; exceedance's events
    // are the requests above the stable slot's running p95.
    std::uint64_t canary_requests = 0;
    std::uint64_t stable_requests = 0;
    std::uint64_t canary_events = 0;
    std::uint64_t stable_events = 0;
    bool rejected = false;  // the canary was shown worse than the check allows
    bool within = false;    // the canary was shown within tolerance (non-inferiority)
};

// A rollback the judge calls for: the test that crossed, and a sentence for the event.
struct sequential_rejection {
    std::string check;  // the check's name: the rollback's cause
    std::string reason;
};

// The tests of one rollout. The rollout machine makes one at the start of a rollout (and after
// a restart, with fresh evidence), calls new_step() when the canary's weight changes, and
// observe() once per second of traffic.
class sequential_judge {
public:
    // One test per error_rate max_ratio_to_stable check, two per latency one; other checks are
    // not its business (the threshold judge keeps judging them per interval as guard rails).
    sequential_judge(std::span<const config::check_config> checks, double alpha);

    bool empty() const noexcept;  // no ratio checks: nothing to judge

    // What the last second added to each slot (difference(), or mirror_difference() for a
    // canary judged on mirrored traffic). Returns the first test in configuration order that
    // crossed its 1/alpha, or none. Allocates nothing once the first second has been seen.
    std::optional<sequential_rejection> observe(const slot_window& canary,
                                                const slot_window& stable);
    // The canary's weight changed: the quantile bounds start over, with the next step's alpha.
    void new_step();

    // Every test's state, in configuration order (a latency check: exceedance, then quantile).
    std::span<const test_evidence> evidence() const noexcept { return evidence_; }
    // promote: evidence. True when every test has shown the canary within tolerance; an errors
    // test with no error on either slot so far has nothing to weigh and counts as within.
    // Otherwise `why` names the first that has not, with its evidence.
    bool within_tolerance(std::string& why) const;

private:
    // The state of one ratio check: an errors test, or a latency check's two tests.
    struct ratio_test {
        config::check_config check;
        bool latency = false;
        std::size_t evidence = 0;    // index of its (first) entry in evidence_
        risk_ratio_eprocess errors;  // errors
        // exceedance: above the stable slot's running p50, p95, p99.
        std::array<risk_ratio_eprocess, 3> exceedance;
        std::vector<std::uint64_t> stable_running;  // exceedance: the stable slot since the start
        std::vector<std::uint64_t> canary_step;     // quantile: each slot since the step began
        std::vector<std::uint64_t> stable_step;
        double max_log_e = 0;  // errors or exceedance: the largest log e-value seen
    };

    void observe_errors(ratio_test& t, const slot_window& canary, const slot_window& stable);
    void observe_exceedance(ratio_test& t, const slot_window& canary, const slot_window& stable,
                            std::uint64_t canary_samples, std::uint64_t stable_samples);
    void update_quantile(ratio_test& t);

    double alpha_j_ = 0;  // each test's share of alpha
    std::uint32_t step_ = 1;
    std::vector<ratio_test> tests_;
    std::vector<test_evidence> evidence_;
    std::optional<sequential_rejection> rejection_;  // the first, kept once a test has rejected
};

}  // namespace switchyard::analysis
