#include "analysis/sequential.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <numbers>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/analysis/allocations.hpp"

namespace switchyard::analysis {
namespace {

using std::chrono::microseconds;

// tests/analysis/fixtures/sequential_fixtures.txt, written by sequential_fixtures.py.
struct fixture_second {
    std::uint64_t canary_events = 0;
    std::uint64_t canary_requests = 0;
    std::uint64_t stable_events = 0;
    std::uint64_t stable_requests = 0;
    double log_e = 0;
    double log_e_within = 0;
};
struct eprocess_fixture {
    std::string name;
    double r0 = 1;
    std::vector<fixture_second> seconds;
};
struct quantile_fixture {
    std::uint64_t t = 0;
    double q = 0;
    double alpha = 0;
    std::uint64_t k_lo = 0;
    std::uint64_t k_hi = 0;
};
struct fixtures {
    double concentration = 0;
    std::size_t grid_points = 0;
    std::vector<eprocess_fixture> eprocesses;
    std::vector<quantile_fixture> quantiles;
};

fixtures load_fixtures() {
    std::ifstream in(SWITCHYARD_SEQUENTIAL_FIXTURES);
    EXPECT_TRUE(in) << SWITCHYARD_SEQUENTIAL_FIXTURES;
    fixtures f;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string kind;
        words >> kind;
        if (kind == "concentration") {
            std::string key;
            words >> f.concentration >> key >> f.grid_points;
        } else if (kind == "eprocess") {
            eprocess_fixture e;
            std::size_t n = 0;
            words >> e.name >> e.r0 >> n;
            f.eprocesses.push_back(e);
        } else if (kind == "second") {
            fixture_second s;
            words >> s.canary_events >> s.canary_requests >> s.stable_events >> s.stable_requests >>
                s.log_e >> s.log_e_within;
            f.eprocesses.back().seconds.push_back(s);
        } else if (kind == "quantile") {
            quantile_fixture q;
            words >> q.t >> q.q >> q.alpha >> q.k_lo >> q.k_hi;
            f.quantiles.push_back(q);
        }
        EXPECT_FALSE(words.fail()) << line;
    }
    return f;
}

void expect_relative(double got, double want, const std::string& what) {
    EXPECT_LE(std::abs(got - want), 1e-9 * std::abs(want)) << what << ": " << got << " vs " << want;
}

config::check_config ratio_check(config::check_metric metric, double limit, double floor = 0) {
    config::check_config c;
    c.name = std::string(config::metric_name(metric)) + "_ratio";
    c.metric = metric;
    c.kind = config::check_kind::max_ratio_to_stable;
    c.limit = limit;
    c.floor = floor;
    return c;
}

const std::vector<config::check_config>& error_check() {
    static const std::vector<config::check_config> checks{
        ratio_check(config::check_metric::error_rate, 2.0)};
    return checks;
}

const std::vector<config::check_config>& latency_check() {
    static const std::vector<config::check_config> checks{
        ratio_check(config::check_metric::latency_p95, 1.5, 0.005)};
    return checks;
}

// A second of one slot: `requests`, `errors`, and one latency sample per request at the values
// given (cycled).
slot_window second_of(std::uint64_t requests, std::uint64_t errors,
                      const std::vector<std::uint64_t>& latencies_micros = {}) {
    slot_window w;
    w.requests = requests;
    w.errors = errors;
    if (!latencies_micros.empty()) {
        for (std::uint64_t i = 0; i < requests; ++i) {
            ++w.upstream_latency[latency_buckets::index(
                latencies_micros[i % latencies_micros.size()])];
        }
    }
    return w;
}

// n values at the quantiles (i + 0.5) / n of 5 ms + an exponential of mean 20 ms, times `scale`.
std::vector<std::uint64_t> exponential_latencies(std::size_t n, double scale = 1.0) {
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < n; ++i) {
        const double u = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
        const double micros = (5000.0 - 20000.0 * std::log1p(-u)) * scale;
        out.push_back(static_cast<std::uint64_t>(micros));
    }
    return out;
}

// n values evenly spread over [from, to) microseconds.
std::vector<std::uint64_t> spread(std::size_t n, std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(from + (to - from) * i / n);
    }
    return out;
}

const test_evidence& evidence_of(const sequential_judge& j, sequential_test t) {
    const auto ev = j.evidence();
    const auto it =
        std::find_if(ev.begin(), ev.end(), [t](const test_evidence& e) { return e.test == t; });
    EXPECT_NE(it, ev.end());
    return *it;
}

TEST(sequential_fixtures, eprocess_matches_both_sides_after_every_second) {
    const fixtures f = load_fixtures();
    ASSERT_EQ(f.grid_points, risk_ratio_eprocess::grid_points);
    ASSERT_GE(f.eprocesses.size(), 5U);
    for (const eprocess_fixture& c : f.eprocesses) {
        risk_ratio_eprocess e(c.r0);
        ASSERT_FALSE(c.seconds.empty()) << c.name;
        for (std::size_t i = 0; i < c.seconds.size(); ++i) {
            const fixture_second& s = c.seconds[i];
            e.observe(s.canary_events, s.canary_requests, s.stable_events, s.stable_requests);
            const std::string what = c.name + " second " + std::to_string(i + 1);
            expect_relative(e.e_value(), std::exp(s.log_e), what + " against worse");
            expect_relative(e.e_value_within(), std::exp(s.log_e_within), what + " within");
        }
    }
}

// t samples on the exact buckets below 64 µs: sample j (from 0) is floor(64 j / t) µs, so the
// k-th smallest is floor(64 (k - 1) / t) and the bounds can be read back as ranks.
TEST(sequential_fixtures, quantile_bounds_match_the_ranks_on_exact_values) {
    const fixtures f = load_fixtures();
    ASSERT_EQ(f.concentration, quantile_concentration);
    ASSERT_GE(f.quantiles.size(), 5U);
    for (const quantile_fixture& c : f.quantiles) {
        std::vector<std::uint64_t> histogram(latency_buckets::count);
        for (std::uint64_t j = 0; j < c.t; ++j) {
            ++histogram[latency_buckets::index(64 * j / c.t)];
        }
        const quantile_bounds b = quantile_confidence(histogram, c.q, c.alpha);
        const std::string what = "t " + std::to_string(c.t) + " q " + std::to_string(c.q);
        EXPECT_EQ(b.samples, c.t) << what;
        if (c.k_lo >= 1) {
            ASSERT_TRUE(b.lower) << what;
            EXPECT_EQ(static_cast<std::uint64_t>(b.lower->count()), 64 * (c.k_lo - 1) / c.t)
                << what;
        } else {
            EXPECT_FALSE(b.lower) << what;
        }
        if (c.k_hi + 1 <= c.t) {
            ASSERT_TRUE(b.upper) << what;
            EXPECT_EQ(static_cast<std::uint64_t>(b.upper->count()), 64 * c.k_hi / c.t + 1) << what;
        } else {
            EXPECT_FALSE(b.upper) << what;
        }
    }
}

TEST(sequential_quantile, bounds_hold_the_true_quantile_and_tighten) {
    // 5 ms + exponential(20 ms): the true p95 is 5 + 20 ln 20 = 64.9 ms.
    std::vector<std::uint64_t> histogram(latency_buckets::count);
    const auto values = exponential_latencies(100);
    double last_width = 1e9;
    for (int second = 0; second < 30; ++second) {
        for (const std::uint64_t v : values) {
            ++histogram[latency_buckets::index(v)];
        }
        const quantile_bounds b = quantile_confidence(histogram, 0.95, 0.001);
        if (!b.lower || !b.upper) {
            continue;
        }
        EXPECT_LE(b.lower->count(), 64915);
        EXPECT_GE(b.upper->count(), 64915);
        const auto width = static_cast<double>(b.upper->count() - b.lower->count());
        EXPECT_LE(width, last_width);
        last_width = width;
    }
    EXPECT_LT(last_width, 20000);  // 3000 samples pin the p95 within 20 ms
    EXPECT_FALSE(
        quantile_confidence(std::vector<std::uint64_t>(latency_buckets::count), 0.95, 0.001).lower);
}

TEST(sequential_judge, only_ratio_checks_are_its_business) {
    config::check_config absolute = error_check()[0];
    absolute.kind = config::check_kind::max;
    const std::vector<config::check_config> none{absolute};
    EXPECT_TRUE(sequential_judge(none, 0.01).empty());

    const auto checks = config::default_checks();
    const sequential_judge j(checks, 0.01);
    ASSERT_FALSE(j.empty());
    const auto ev = j.evidence();
    ASSERT_EQ(ev.size(), 3U);  // error_rate_ratio; latency_p95_ratio twice
    EXPECT_EQ(ev[0].check, "error_rate_ratio");
    EXPECT_EQ(ev[0].test, sequential_test::errors);
    EXPECT_EQ(ev[1].test, sequential_test::exceedance);
    EXPECT_EQ(ev[2].test, sequential_test::quantile);
    EXPECT_EQ(ev[1].check, "latency_p95_ratio");
    EXPECT_DOUBLE_EQ(ev[0].alpha, 0.01 / 3);
    EXPECT_DOUBLE_EQ(ev[0].e_threshold, 300);
    EXPECT_DOUBLE_EQ(ev[2].alpha, 0.01 / 3 * 6 / (std::numbers::pi * std::numbers::pi));
    EXPECT_EQ(ev[2].step, 1U);
    EXPECT_EQ(test_name(sequential_test::exceedance), "exceedance");
}

TEST(sequential_judge, aa_counts_keep_e_near_one_and_never_reject) {
    const auto checks = config::default_checks();
    sequential_judge j(checks, 0.01);
    const auto latencies = spread(100, 10000, 30000);
    for (int second = 0; second < 600; ++second) {
        // The canary gets 10% of the requests and exactly its share of the errors and latencies.
        const auto out = j.observe(second_of(100, 1, latencies), second_of(900, 9, latencies));
        ASSERT_FALSE(out) << "second " << second << ": " << out->reason;
        for (const test_evidence& ev : j.evidence()) {
            EXPECT_FALSE(ev.rejected) << ev.check;
            if (ev.test != sequential_test::quantile) {
                EXPECT_LE(ev.e_value, 1.0) << ev.check << " " << test_name(ev.test);
            }
        }
    }
}

TEST(sequential_judge, aa_random_traffic_does_not_reject) {
    const auto checks = config::default_checks();
    sequential_judge j(checks, 0.01);
    std::mt19937_64 rng(20261128);
    std::binomial_distribution<std::uint64_t> canary_errors(50, 0.01);
    std::binomial_distribution<std::uint64_t> stable_errors(450, 0.01);
    std::exponential_distribution<double> latency(1.0 / 20000);
    double max_e = 0;
    for (int second = 0; second < 600; ++second) {
        slot_window canary = second_of(50, canary_errors(rng));
        slot_window stable = second_of(450, stable_errors(rng));
        for (slot_window* w : {&canary, &stable}) {
            for (std::uint64_t i = 0; i < w->requests; ++i) {
                ++w->upstream_latency[latency_buckets::index(
                    5000 + static_cast<std::uint64_t>(latency(rng)))];
            }
        }
        const auto out = j.observe(canary, stable);
        ASSERT_FALSE(out) << "second " << second << ": " << out->reason;
        max_e = std::max(max_e, j.evidence()[0].e_value);
    }
    EXPECT_LT(max_e, 30);  // far below the 300 it would need
}

TEST(sequential_judge, canary_with_20_percent_errors_rejects_within_40_canary_requests) {
    sequential_judge j(error_check(), 0.01);
    std::uint64_t canary_requests = 0;
    std::optional<sequential_rejection> out;
    while (!out && canary_requests < 1000) {
        // w = 0.1: the canary 20 requests with 4 errors, the stable 180 with 1 (0.56%).
        out = j.observe(second_of(20, 4), second_of(180, 1));
        canary_requests += 20;
    }
    ASSERT_TRUE(out);
    EXPECT_LE(canary_requests, 40U);
    EXPECT_EQ(out->check, "error_rate_ratio");
    EXPECT_NE(out->reason.find("error_rate_ratio: canary errors 8 of 40 vs stable 2 of 360, "
                               "e-value "),
              std::string::npos)
        << out->reason;
    EXPECT_NE(out->reason.find(">= 100 (sequential, alpha 1%)"), std::string::npos) << out->reason;
    EXPECT_TRUE(j.evidence()[0].rejected);
    EXPECT_GE(j.evidence()[0].e_value, 100);

    // Once rejected, it keeps answering the same, whatever comes next.
    const auto again = j.observe(second_of(20, 0), second_of(180, 1));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->reason, out->reason);
}

TEST(sequential_judge, canary_300ms_slower_rejects_through_exceedance_in_seconds) {
    sequential_judge j(latency_check(), 0.01);
    const auto stable = spread(100, 10000, 30000);
    std::vector<std::uint64_t> slower;
    for (const std::uint64_t v : stable) {
        slower.push_back(v + 300000);
    }
    int seconds = 0;
    std::optional<sequential_rejection> out;
    while (!out && seconds < 60) {
        out = j.observe(second_of(10, 0, slower), second_of(90, 0, stable));
        ++seconds;
    }
    ASSERT_TRUE(out);
    EXPECT_LE(seconds, 5);
    EXPECT_EQ(out->check, "latency_p95_ratio");
    EXPECT_NE(out->reason.find("latency_p95_ratio exceedance: "), std::string::npos) << out->reason;
    EXPECT_TRUE(evidence_of(j, sequential_test::exceedance).rejected);

    // The quantile test sees it too once the bounds have the samples.
    for (int i = 0; i < 60; ++i) {
        j.observe(second_of(10, 0, slower), second_of(90, 0, stable));
    }
    const test_evidence& q = evidence_of(j, sequential_test::quantile);
    EXPECT_TRUE(q.rejected);
    EXPECT_GT(q.canary_lower, q.limit);
    EXPECT_GT(q.canary_lower, 0.3);
    EXPECT_LT(q.stable_upper, 0.035);
}

TEST(sequential_judge, quantile_test_rejects_with_its_reason) {
    // In the first second the exceedance test has no thresholds yet (no stable history), so only
    // the quantile test can reject; 500 stable samples are enough to bound its p95 above.
    sequential_judge j(latency_check(), 0.01);
    const auto stable = spread(100, 10000, 12000);
    const auto slow = spread(100, 310000, 320000);
    const auto out = j.observe(second_of(100, 0, slow), second_of(500, 0, stable));
    ASSERT_TRUE(out);
    EXPECT_EQ(out->check, "latency_p95_ratio");
    EXPECT_NE(out->reason.find("latency_p95_ratio: canary p95 >= "), std::string::npos)
        << out->reason;
    EXPECT_NE(out->reason.find(" > 1.5 x stable p95 <= "), std::string::npos) << out->reason;
    EXPECT_NE(out->reason.find("(sequential, step 1)"), std::string::npos) << out->reason;
    const test_evidence& q = evidence_of(j, sequential_test::quantile);
    EXPECT_TRUE(q.rejected);
    EXPECT_FALSE(evidence_of(j, sequential_test::exceedance).rejected);
    EXPECT_GE(q.canary_lower, 0.3);
    EXPECT_LE(q.stable_upper, 0.0125);
}

TEST(sequential_judge, canary_20_percent_slower_is_caught_by_exceedance_within_3000_requests) {
    sequential_judge j(latency_check(), 0.01);
    const auto stable = exponential_latencies(200);
    const auto canary = exponential_latencies(20, 1.2);
    std::uint64_t canary_requests = 0;
    std::optional<sequential_rejection> out;
    while (!out && canary_requests < 3000) {
        out = j.observe(second_of(20, 0, canary), second_of(200, 0, stable));
        canary_requests += 20;
    }
    ASSERT_TRUE(out) << "e-value " << evidence_of(j, sequential_test::exceedance).e_value;
    EXPECT_NE(out->reason.find("exceedance"), std::string::npos) << out->reason;
    EXPECT_LE(canary_requests, 3000U);
}

TEST(sequential_judge, changing_weights_do_not_matter_for_aa) {
    const auto checks = config::default_checks();
    sequential_judge j(checks, 0.01);
    const auto latencies = spread(100, 10000, 30000);
    const std::uint64_t canary_sizes[] = {100, 500, 1000, 50, 200, 2000, 300};
    for (int second = 0; second < 300; ++second) {
        const std::uint64_t n = canary_sizes[static_cast<std::size_t>(second) % 7];
        const auto out =
            j.observe(second_of(n, n / 100, latencies), second_of(1000, 10, latencies));
        ASSERT_FALSE(out) << out->reason;
        for (const test_evidence& ev : j.evidence()) {
            if (ev.test != sequential_test::quantile) {
                EXPECT_LE(ev.e_value, 1.0) << ev.check << " second " << second;
            }
        }
    }
}

TEST(sequential_judge, zero_traffic_seconds_add_nothing) {
    const auto checks = config::default_checks();
    sequential_judge j(checks, 0.01);
    const auto latencies = spread(100, 10000, 30000);
    std::vector<std::uint64_t> slower;
    for (const std::uint64_t v : latencies) {
        slower.push_back(v * 11 / 10);
    }
    for (int second = 0; second < 5; ++second) {
        j.observe(second_of(20, 1, slower), second_of(100, 1, latencies));
    }
    const std::vector<test_evidence> before(j.evidence().begin(), j.evidence().end());
    j.observe(second_of(0, 0), second_of(0, 0));
    j.observe(second_of(0, 0), second_of(100, 2, latencies));  // the canary served nothing
    const auto after = j.evidence();
    ASSERT_EQ(after.size(), before.size());
    for (std::size_t i = 0; i < before.size(); ++i) {
        EXPECT_EQ(after[i].e_value, before[i].e_value) << i;
        EXPECT_EQ(after[i].e_value_within, before[i].e_value_within) << i;
        EXPECT_EQ(after[i].canary_requests, before[i].canary_requests) << i;
    }
    EXPECT_EQ(after[0].stable_requests, before[0].stable_requests + 100);
}

TEST(sequential_judge, identical_canary_is_shown_within_tolerance_with_enough_data) {
    const auto checks = config::default_checks();
    sequential_judge j(checks, 0.01);
    std::string why;
    EXPECT_FALSE(j.within_tolerance(why));
    // No error yet: nothing to weigh for the errors test; the exceedance test is first.
    EXPECT_EQ(why.rfind("latency_p95_ratio exceedance: not yet shown within 1.5x of stable "
                        "(within e-value 1 of 300)",
                        0),
              0U)
        << why;

    const auto latencies = spread(100, 10000, 30000);
    int seconds = 0;
    bool named_errors = false;  // once both slots have had errors, the errors test must show it
    while (!j.within_tolerance(why) && seconds < 3600) {
        ASSERT_FALSE(j.observe(second_of(100, 1, latencies), second_of(100, 1, latencies)));
        named_errors = named_errors || why.starts_with("error_rate_ratio errors: not yet shown");
        ++seconds;
    }
    EXPECT_TRUE(named_errors);
    EXPECT_TRUE(j.within_tolerance(why)) << why;
    EXPECT_GT(seconds, 1);
    for (const test_evidence& ev : j.evidence()) {
        EXPECT_TRUE(ev.within) << ev.check << " " << test_name(ev.test);
        EXPECT_FALSE(ev.rejected);
    }
    const test_evidence& q = evidence_of(j, sequential_test::quantile);
    EXPECT_LE(q.canary_upper, 1.5 * q.stable_lower);
}

TEST(sequential_judge, error_test_with_errors_is_not_within_until_shown) {
    sequential_judge j(error_check(), 0.01);
    std::string why;
    EXPECT_TRUE(j.within_tolerance(why));  // no errors anywhere: nothing to weigh
    j.observe(second_of(100, 1), second_of(100, 1));
    EXPECT_FALSE(j.within_tolerance(why));
    EXPECT_EQ(why.rfind("error_rate_ratio errors: not yet shown within 2x of stable (within "
                        "e-value ",
                        0),
              0U)
        << why;
    int seconds = 1;
    while (!j.within_tolerance(why) && seconds < 600) {
        j.observe(second_of(100, 1), second_of(100, 1));
        ++seconds;
    }
    EXPECT_TRUE(j.within_tolerance(why)) << why;
    EXPECT_GE(j.evidence()[0].e_value_within, 100);
}

TEST(sequential_judge, new_step_restarts_the_quantile_bounds_with_a_lower_alpha) {
    const auto checks = config::default_checks();
    sequential_judge j(checks, 0.01);
    const auto latencies = spread(100, 10000, 30000);
    for (int second = 0; second < 20; ++second) {
        j.observe(second_of(100, 1, latencies), second_of(100, 1, latencies));
    }
    const test_evidence step1 = evidence_of(j, sequential_test::quantile);
    const test_evidence exceedance1 = evidence_of(j, sequential_test::exceedance);
    EXPECT_EQ(step1.step, 1U);
    EXPECT_EQ(step1.canary_requests, 2000U);
    EXPECT_GT(step1.canary_lower, 0);
    EXPECT_GT(step1.stable_upper, 0);

    j.new_step();
    const test_evidence& step2 = evidence_of(j, sequential_test::quantile);
    EXPECT_EQ(step2.step, 2U);
    EXPECT_DOUBLE_EQ(step2.alpha, step1.alpha / 4);
    EXPECT_EQ(step2.canary_requests, 0U);
    EXPECT_EQ(step2.canary_lower, 0);
    EXPECT_EQ(step2.stable_upper, 0);
    EXPECT_EQ(step2.limit, 0);
    // The e-processes run on across steps.
    EXPECT_EQ(evidence_of(j, sequential_test::exceedance).e_value, exceedance1.e_value);

    j.observe(second_of(100, 1, latencies), second_of(100, 1, latencies));
    EXPECT_EQ(evidence_of(j, sequential_test::quantile).canary_requests, 100U);
    // With fewer samples and a smaller alpha, the bounds are wider than at the end of step 1.
    const test_evidence& now = evidence_of(j, sequential_test::quantile);
    EXPECT_TRUE(now.canary_upper == 0 || now.canary_upper > step1.canary_upper);
}

TEST(sequential_judge, p_value_is_one_over_the_largest_e_and_never_rises) {
    sequential_judge j(error_check(), 0.01);
    double max_e = 1;
    double last_p = 1;
    for (int second = 0; second < 40; ++second) {
        // A bad start, then a canary better than the stable.
        const bool bad = second < 2;
        j.observe(second_of(20, bad ? 3 : 0), second_of(180, 2));
        const test_evidence& ev = j.evidence()[0];
        max_e = std::max(max_e, ev.e_value);
        EXPECT_NEAR(ev.p_value, std::min(1.0, 1 / max_e), 1e-12 / max_e);
        EXPECT_LE(ev.p_value, last_p);
        last_p = ev.p_value;
    }
    EXPECT_GT(max_e, 2);                             // it rose ...
    EXPECT_LT(j.evidence()[0].e_value, max_e / 10);  // ... and fell again
    EXPECT_DOUBLE_EQ(j.evidence()[0].p_value, 1 / max_e);
}

TEST(sequential_judge, observe_allocates_nothing_once_the_first_second_is_seen) {
    const auto checks = config::default_checks();
    sequential_judge j(checks, 0.01);
    const auto latencies = spread(100, 10000, 30000);
    const slot_window canary = second_of(100, 1, latencies);
    const slot_window stable = second_of(900, 9, latencies);
    const slot_window empty = second_of(0, 0);
    j.observe(canary, stable);
    const std::size_t n = test::allocations_in([&] {
        for (int second = 0; second < 20; ++second) {
            EXPECT_FALSE(j.observe(canary, stable));
            EXPECT_FALSE(j.observe(empty, empty));
        }
        j.new_step();
        EXPECT_FALSE(j.observe(canary, stable));
    });
    EXPECT_EQ(n, 0U);
    // The counter does see the judge's allocations: a rejection's strings.
    const slot_window bad = second_of(100, 50, latencies);
    EXPECT_GT(test::allocations_in([&] {
                  for (int second = 0; second < 5; ++second) {
                      j.observe(bad, stable);
                  }
              }),
              0U);
    EXPECT_TRUE(j.evidence()[0].rejected);
}

TEST(sequential_judge, the_first_rejecting_test_in_configuration_order_is_returned) {
    // Both checks cross in the second second; the latency check comes first in the configuration.
    const std::vector<config::check_config> checks{latency_check()[0], error_check()[0]};
    sequential_judge j(checks, 0.01);
    const auto stable = spread(100, 10000, 30000);
    std::vector<std::uint64_t> slower;
    for (const std::uint64_t v : stable) {
        slower.push_back(v + 300000);
    }
    std::optional<sequential_rejection> out;
    int seconds = 0;
    while (!out && seconds < 10) {
        out = j.observe(second_of(20, 4, slower), second_of(180, 1, stable));
        ++seconds;
    }
    ASSERT_TRUE(out);
    EXPECT_EQ(out->check, "latency_p95_ratio");
    const auto ev = j.evidence();
    ASSERT_EQ(ev.size(), 3U);
    EXPECT_TRUE(ev[1].rejected);  // exceedance
    EXPECT_TRUE(ev[2].rejected);  // errors, behind it in order
    EXPECT_EQ(ev[2].check, "error_rate_ratio");
}

}  // namespace
}  // namespace switchyard::analysis
