#include "analysis/sequential.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <numbers>
#include <numeric>

namespace switchyard::analysis {
namespace {

constexpr std::size_t grid = risk_ratio_eprocess::grid_points;

// The Beta prior's concentration c of the quantile confidence sequences: a = c q, b = c (1 - q),
// so the prior is worth about c samples. A conjugate mixture's boundary is tightest at about
// t = c (2 ln(1/alpha) + ln(1 + 2 ln(1/alpha))) samples (Howard, Ramdas, McAuliffe, Sekhon 2021,
// the mixing precision playing the part of c). With the alphas a step gets (alpha_k / 2 of
// 0.01 / 4 is about 8e-4, ln(1/alpha) about 7) that is t near 16 c; c = 64 puts it near 1000
// samples, the middle of the few hundred to few thousand a step collects. The width is flat in c
// around there: for q = 0.95, c = 64 is within 6% of the best c in 16..256 at every t from 100 to
// 10,000 (tests/analysis/fixtures/sequential_fixtures.py --widths prints the table).
constexpr double concentration = quantile_concentration;

// The quantiles of the stable slot's running histogram the exceedance test counts above.
constexpr std::array<double, 3> exceedance_quantiles{0.5, 0.95, 0.99};
constexpr std::size_t exceedance_p95 = 1;  // the one whose counts the evidence shows

// ln of the mean of exp(x): a log-sum-exp shifted by the largest term.
template <std::size_t N>
double log_mean_exp(const std::array<double, N>& x) noexcept {
    const double top = *std::max_element(x.begin(), x.end());
    if (std::isinf(top)) {
        return top;
    }
    double sum = 0;
    for (const double v : x) {
        sum += std::exp(v - top);
    }
    return top + std::log(sum) - std::log(static_cast<double>(N));
}

double saturating_exp(double log_value) noexcept {
    return log_value >= std::log(DBL_MAX) ? DBL_MAX : std::exp(log_value);
}

// ln B(x, y).
double log_beta(double x, double y) noexcept {
    // lgamma_r: std::lgamma writes the global signgam, a data race between judges on threads.
    int sign = 0;
    return ::lgamma_r(x, &sign) + ::lgamma_r(y, &sign) - ::lgamma_r(x + y, &sign);
}

std::uint64_t total_of(std::span<const std::uint64_t> histogram) noexcept {
    return std::accumulate(histogram.begin(), histogram.end(), std::uint64_t{0});
}

// Samples in buckets above `index`.
std::uint64_t count_above(std::span<const std::uint64_t> histogram, std::size_t index) noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = index + 1; i < histogram.size(); ++i) {
        n += histogram[i];
    }
    return n;
}

void add_into(std::vector<std::uint64_t>& into, std::span<const std::uint64_t> from) noexcept {
    const std::size_t n = std::min(into.size(), from.size());
    for (std::size_t i = 0; i < n; ++i) {
        into[i] += from[i];
    }
}

double seconds_of(std::uint64_t micros) noexcept {
    return static_cast<double>(micros) / 1e6;
}

// "310ms", "1.25s", "48µs".
std::string format_latency(double seconds) {
    char buf[32];
    if (seconds < 1e-3) {
        std::snprintf(buf, sizeof buf, "%.4gus", seconds * 1e6);
    } else if (seconds < 1) {
        std::snprintf(buf, sizeof buf, "%.4gms", seconds * 1e3);
    } else {
        std::snprintf(buf, sizeof buf, "%.4gs", seconds);
    }
    return buf;
}

// "812", "12.3", "0.917": e-values and their thresholds.
std::string format_e(double e) {
    char buf[32];
    if (e >= 1e15) {
        std::snprintf(buf, sizeof buf, "%.3g", e);
    } else if (e >= 100) {
        std::snprintf(buf, sizeof buf, "%.0f", e);
    } else {
        std::snprintf(buf, sizeof buf, "%.3g", e);
    }
    return buf;
}

std::string format_percent(double fraction) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g%%", fraction * 100);
    return buf;
}

std::string format_ratio(double r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", r);
    return buf;
}

// "p95" for latency_p95.
std::string quantile_label(config::check_metric m) {
    const std::string_view name = config::metric_name(m);
    constexpr std::string_view prefix = "latency_";
    return std::string(name.starts_with(prefix) ? name.substr(prefix.size()) : name);
}

// The parts one after the other. (Chains of std::string operator+ on temporaries trip GCC 12's
// -Wrestrict at -O3, a false positive.)
std::string join(std::initializer_list<std::string_view> parts) {
    std::size_t size = 0;
    for (const std::string_view p : parts) {
        size += p.size();
    }
    std::string out;
    out.reserve(size);
    for (const std::string_view p : parts) {
        out.append(p);
    }
    return out;
}

// The sentence of a rejection, for the logs and the event.
std::string rejection_reason(const config::check_config& check, const test_evidence& ev,
                             const std::array<risk_ratio_eprocess, 3>& exceedance) {
    if (ev.test == sequential_test::errors) {
        return join({check.name, ": canary errors ", std::to_string(ev.canary_events), " of ",
                     std::to_string(ev.canary_requests), " vs stable ",
                     std::to_string(ev.stable_events), " of ", std::to_string(ev.stable_requests),
                     ", e-value ", format_e(ev.e_value), " >= ", format_e(ev.e_threshold),
                     " (sequential, alpha ", format_percent(ev.alpha), ")"});
    }
    if (ev.test == sequential_test::exceedance) {
        std::string canary_counts;
        std::string stable_counts;
        for (std::size_t q = 0; q < exceedance.size(); ++q) {
            if (q != 0) {
                canary_counts += '/';
                stable_counts += '/';
            }
            canary_counts += std::to_string(exceedance[q].canary_events());
            stable_counts += std::to_string(exceedance[q].stable_events());
        }
        return join({check.name, " exceedance: canary requests above stable's running p50/p95/p99 ",
                     canary_counts, " of ", std::to_string(ev.canary_requests), " vs stable ",
                     stable_counts, " of ", std::to_string(ev.stable_requests), ", e-value ",
                     format_e(ev.e_value), " >= ", format_e(ev.e_threshold), " (sequential, alpha ",
                     format_percent(ev.alpha), ")"});
    }
    const std::string label = quantile_label(check.metric);
    const std::string against =
        check.floor > ev.stable_upper
            ? join({"floor ", format_latency(check.floor)})
            : join({"stable ", label, " <= ", format_latency(ev.stable_upper)});
    return join({check.name, ": canary ", label, " >= ", format_latency(ev.canary_lower), " > ",
                 format_ratio(check.limit), " x ", against, " (sequential, step ",
                 std::to_string(ev.step), ")"});
}

}  // namespace

risk_ratio_eprocess::risk_ratio_eprocess(double r0) : r0_(r0 > 0 ? r0 : DBL_MIN) {
    const double ln_r0 = std::log(r0_);
    const double worse_lo = std::log(1.05) + ln_r0;
    const double worse_hi = std::log(std::max(1000.0, 2 * r0_));
    const double within_hi = ln_r0 - std::log(1.05);
    const double within_lo = ln_r0 - std::log(1000.0);
    for (std::size_t j = 0; j < grid; ++j) {
        const double f = static_cast<double>(j) / static_cast<double>(grid - 1);
        worse_grid_[j] = worse_lo + f * (worse_hi - worse_lo);
        within_grid_[j] = within_hi + f * (within_lo - within_hi);
    }
}

// Given the second's E events, the canary's count is Binomial(E, p(r)) with
// p(r) = w r / (1 + w (r - 1)) when its risk is r times the stable's (both slots' events Poisson
// with rates proportional to their requests). The factor below is that binomial's likelihood
// ratio of p(r_j) against p(r0); it is linear in the true p with expectation 1 at p(r0), so its
// expectation is at most 1 on the null's side of r0 for each grid point, and so for their mean.
void risk_ratio_eprocess::observe(std::uint64_t canary_events, std::uint64_t canary_requests,
                                  std::uint64_t stable_events,
                                  std::uint64_t stable_requests) noexcept {
    canary_events_ += canary_events;
    stable_events_ += stable_events;
    canary_requests_ += canary_requests;
    stable_requests_ += stable_requests;
    const std::uint64_t events = canary_events + stable_events;
    if (canary_requests == 0 || stable_requests == 0 || events == 0) {
        return;
    }
    const double w = static_cast<double>(canary_requests) /
                     static_cast<double>(canary_requests + stable_requests);
    const double e = static_cast<double>(canary_events);
    const double total = static_cast<double>(events);
    const double ln_r0 = std::log(r0_);
    const double base = std::log1p(w * (r0_ - 1));
    for (std::size_t j = 0; j < grid; ++j) {
        worse_log_[j] += e * (worse_grid_[j] - ln_r0) -
                         total * (std::log1p(w * std::expm1(worse_grid_[j])) - base);
        within_log_[j] += e * (within_grid_[j] - ln_r0) -
                          total * (std::log1p(w * std::expm1(within_grid_[j])) - base);
    }
}

double risk_ratio_eprocess::log_e_value() const noexcept {
    return log_mean_exp(worse_log_);
}
double risk_ratio_eprocess::log_e_value_within() const noexcept {
    return log_mean_exp(within_log_);
}
double risk_ratio_eprocess::e_value() const noexcept {
    return saturating_exp(log_e_value());
}
double risk_ratio_eprocess::e_value_within() const noexcept {
    return saturating_exp(log_e_value_within());
}

// For t samples of which k are at or below a value x, M_t(k) = B(a + k, b + t - k) / B(a, b) /
// (q^k (1 - q)^(t - k)) is the Beta(a, b) mixture of the Bernoulli likelihood ratios of
// "P(X <= x) = p" against "= q": a martingale when x is the true quantile, so by Ville's inequality
// {x : M_t(K_t(x)) < 1 / alpha} holds it at every t with probability 1 - alpha. ln M_t is convex in
// k (lgamma is), so that set of k is an interval around its minimum near t q, found by bisection
// on each side; in samples, it is [the k_lo-th smallest, the (k_hi + 1)-th smallest).
quantile_bounds quantile_confidence(std::span<const std::uint64_t> histogram, double q,
                                    double alpha) noexcept {
    quantile_bounds out;
    const std::uint64_t t = total_of(histogram);
    out.samples = t;
    if (t == 0 || !(q > 0 && q < 1) || !(alpha > 0 && alpha < 1)) {
        return out;
    }
    const double a = concentration * q;
    const double b = concentration * (1 - q);
    const double td = static_cast<double>(t);
    const double prior = log_beta(a, b);
    const double ln_q = std::log(q);
    const double ln_not_q = std::log1p(-q);
    const auto log_m = [&](std::uint64_t k) {
        const double kd = static_cast<double>(k);
        return log_beta(a + kd, b + td - kd) - prior - kd * ln_q - (td - kd) * ln_not_q;
    };
    const double threshold = -std::log(alpha);

    // The minimum: the first k whose next step does not go down.
    std::uint64_t lo = 0;
    std::uint64_t hi = t;
    while (lo < hi) {
        const std::uint64_t mid = lo + (hi - lo) / 2;
        if (log_m(mid + 1) >= log_m(mid)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    const std::uint64_t k_min = lo;
    if (log_m(k_min) >= threshold) {
        return out;  // cannot happen (M_t at its minimum is at most 1), but bound nothing if so
    }
    // k_lo: the first k in [0, k_min] inside the set.
    std::uint64_t k_lo = 0;
    if (log_m(0) >= threshold) {
        std::uint64_t outside = 0;
        std::uint64_t inside = k_min;
        while (inside - outside > 1) {
            const std::uint64_t mid = outside + (inside - outside) / 2;
            (log_m(mid) < threshold ? inside : outside) = mid;
        }
        k_lo = inside;
    }
    // k_hi: the last k in [k_min, t] inside the set.
    std::uint64_t k_hi = t;
    if (log_m(t) >= threshold) {
        std::uint64_t inside = k_min;
        std::uint64_t outside = t;
        while (outside - inside > 1) {
            const std::uint64_t mid = inside + (outside - inside) / 2;
            (log_m(mid) < threshold ? inside : outside) = mid;
        }
        k_hi = inside;
    }

    // The buckets of the k_lo-th and (k_hi + 1)-th smallest samples.
    const std::uint64_t lower_rank = k_lo;      // 0: no lower bound
    const std::uint64_t upper_rank = k_hi + 1;  // > t: no upper bound
    std::uint64_t seen = 0;
    const std::size_t buckets = std::min(histogram.size(), latency_buckets::count);
    for (std::size_t i = 0; i < buckets; ++i) {
        const std::uint64_t before = seen;
        seen += histogram[i];
        if (lower_rank >= 1 && before < lower_rank && seen >= lower_rank) {
            out.lower = std::chrono::microseconds{
                static_cast<std::chrono::microseconds::rep>(latency_buckets::lower(i))};
        }
        if (upper_rank <= t && before < upper_rank && seen >= upper_rank) {
            // The last bucket holds everything from 2^27 µs up: its edge bounds nothing.
            if (i + 1 < latency_buckets::count) {
                out.upper = std::chrono::microseconds{
                    static_cast<std::chrono::microseconds::rep>(latency_buckets::upper(i))};
            }
            break;
        }
    }
    return out;
}

std::string_view test_name(sequential_test t) noexcept {
    switch (t) {
        case sequential_test::errors:
            return "errors";
        case sequential_test::exceedance:
            return "exceedance";
        case sequential_test::quantile:
            break;
    }
    return "quantile";
}

sequential_judge::sequential_judge(std::span<const config::check_config> checks, double alpha) {
    std::size_t tests = 0;
    for (const config::check_config& c : checks) {
        if (c.kind != config::check_kind::max_ratio_to_stable) {
            continue;
        }
        if (c.metric == config::check_metric::error_rate) {
            tests += 1;
        } else if (config::is_latency(c.metric)) {
            tests += 2;
        }
    }
    alpha_j_ = tests == 0 ? alpha : alpha / static_cast<double>(tests);
    tests_.reserve(tests);
    evidence_.reserve(tests);
    for (const config::check_config& c : checks) {
        if (c.kind != config::check_kind::max_ratio_to_stable) {
            continue;
        }
        const bool latency = config::is_latency(c.metric);
        if (c.metric != config::check_metric::error_rate && !latency) {
            continue;
        }
        ratio_test& t = tests_.emplace_back();
        t.check = c;
        t.latency = latency;
        t.evidence = evidence_.size();
        test_evidence ev;
        ev.check = c.name;
        ev.alpha = alpha_j_;
        ev.e_threshold = 1 / alpha_j_;
        if (!latency) {
            t.errors = risk_ratio_eprocess(c.limit);
            ev.test = sequential_test::errors;
            ev.within = true;  // nothing to weigh yet
            evidence_.push_back(ev);
            continue;
        }
        for (risk_ratio_eprocess& e : t.exceedance) {
            e = risk_ratio_eprocess(c.limit);
        }
        t.stable_running.assign(latency_buckets::count, 0);
        t.canary_step.assign(latency_buckets::count, 0);
        t.stable_step.assign(latency_buckets::count, 0);
        ev.test = sequential_test::exceedance;
        evidence_.push_back(ev);
        ev.test = sequential_test::quantile;
        ev.e_threshold = 0;
        evidence_.push_back(ev);
        update_quantile(t);
    }
}

bool sequential_judge::empty() const noexcept {
    return tests_.empty();
}

std::optional<sequential_rejection> sequential_judge::observe(const slot_window& canary,
                                                              const slot_window& stable) {
    const std::uint64_t canary_samples = total_of(canary.upstream_latency);
    const std::uint64_t stable_samples = total_of(stable.upstream_latency);
    for (ratio_test& t : tests_) {
        if (!t.latency) {
            observe_errors(t, canary, stable);
            continue;
        }
        observe_exceedance(t, canary, stable, canary_samples, stable_samples);
        if (canary_samples > 0 || stable_samples > 0) {
            add_into(t.canary_step, canary.upstream_latency);
            add_into(t.stable_step, stable.upstream_latency);
            update_quantile(t);
        }
    }
    if (rejection_) {
        return rejection_;
    }
    for (const ratio_test& t : tests_) {
        const std::size_t count = t.latency ? 2 : 1;
        for (std::size_t i = t.evidence; i < t.evidence + count; ++i) {
            const test_evidence& ev = evidence_[i];
            if (!ev.rejected) {
                continue;
            }
            sequential_rejection r;
            r.check = t.check.name;
            r.reason = rejection_reason(t.check, ev, t.exceedance);
            rejection_ = std::move(r);
            return rejection_;
        }
    }
    return std::nullopt;
}

void sequential_judge::observe_errors(ratio_test& t, const slot_window& canary,
                                      const slot_window& stable) {
    t.errors.observe(canary.errors, canary.requests, stable.errors, stable.requests);
    const double log_e = t.errors.log_e_value();
    t.max_log_e = std::max(t.max_log_e, log_e);
    const double crossing = -std::log(alpha_j_);
    test_evidence& ev = evidence_[t.evidence];
    ev.e_value = t.errors.e_value();
    ev.e_value_within = t.errors.e_value_within();
    ev.p_value = std::min(1.0, std::exp(-t.max_log_e));
    ev.canary_requests = t.errors.canary_requests();
    ev.stable_requests = t.errors.stable_requests();
    ev.canary_events = t.errors.canary_events();
    ev.stable_events = t.errors.stable_events();
    ev.rejected = ev.rejected || log_e >= crossing;
    ev.within = (ev.canary_events == 0 && ev.stable_events == 0) ||
                t.errors.log_e_value_within() >= crossing;
}

// Thresholds from the stable slot's seconds before this one only, so that each second's counts
// above them are, under the null, the same draw for both slots: the test stays valid however the
// thresholds move. Both slots are cut at the same bucket edge.
void sequential_judge::observe_exceedance(ratio_test& t, const slot_window& canary,
                                          const slot_window& stable, std::uint64_t canary_samples,
                                          std::uint64_t stable_samples) {
    test_evidence& ev = evidence_[t.evidence];
    const bool have_thresholds = std::any_of(t.stable_running.begin(), t.stable_running.end(),
                                             [](std::uint64_t v) { return v != 0; });
    if (have_thresholds && (canary_samples > 0 || stable_samples > 0)) {
        const auto floor_micros = static_cast<std::uint64_t>(std::llround(t.check.floor * 1e6));
        std::array<double, 3> log_e{};
        double log_within = 0;
        for (std::size_t q = 0; q < exceedance_quantiles.size(); ++q) {
            const auto running = static_cast<std::uint64_t>(
                quantile(t.stable_running, exceedance_quantiles[q]).count());
            const std::size_t cut = latency_buckets::index(std::max(running, floor_micros));
            risk_ratio_eprocess& e = t.exceedance[q];
            e.observe(count_above(canary.upstream_latency, cut), canary_samples,
                      count_above(stable.upstream_latency, cut), stable_samples);
            log_e[q] = e.log_e_value();
            log_within =
                q == 0 ? e.log_e_value_within() : std::min(log_within, e.log_e_value_within());
        }
        // The mean of e-values is an e-value (for the rejecting side, whose null is that the
        // canary is no worse at any threshold); the within side's null is that it is worse at
        // some threshold, which only the least of the three bounds.
        const double mean = log_mean_exp(log_e);
        t.max_log_e = std::max(t.max_log_e, mean);
        const double crossing = -std::log(alpha_j_);
        const risk_ratio_eprocess& shown = t.exceedance[exceedance_p95];
        ev.e_value = saturating_exp(mean);
        ev.e_value_within = saturating_exp(log_within);
        ev.p_value = std::min(1.0, std::exp(-t.max_log_e));
        ev.canary_requests = shown.canary_requests();
        ev.stable_requests = shown.stable_requests();
        ev.canary_events = shown.canary_events();
        ev.stable_events = shown.stable_events();
        ev.rejected = ev.rejected || mean >= crossing;
        ev.within = log_within >= crossing;
    }
    add_into(t.stable_running, stable.upstream_latency);
}

void sequential_judge::update_quantile(ratio_test& t) {
    test_evidence& ev = evidence_[t.evidence + 1];
    const double alpha_k = alpha_j_ * 6 /
                           (std::numbers::pi * std::numbers::pi * static_cast<double>(step_) *
                            static_cast<double>(step_));
    const double q = config::quantile_of(t.check.metric);
    const quantile_bounds canary = quantile_confidence(t.canary_step, q, alpha_k / 2);
    const quantile_bounds stable = quantile_confidence(t.stable_step, q, alpha_k / 2);
    const auto secs = [](const std::optional<std::chrono::microseconds>& v) {
        return v ? seconds_of(static_cast<std::uint64_t>(v->count())) : 0.0;
    };
    ev.alpha = alpha_k;
    ev.step = step_;
    ev.canary_requests = canary.samples;
    ev.stable_requests = stable.samples;
    ev.canary_lower = secs(canary.lower);
    ev.canary_upper = secs(canary.upper);
    ev.stable_lower = secs(stable.lower);
    ev.stable_upper = secs(stable.upper);
    const double ratio = t.check.limit;  // 1 + tau
    ev.limit = stable.upper ? ratio * std::max(ev.stable_upper, t.check.floor) : 0;
    ev.rejected = ev.rejected || (canary.lower && stable.upper && ev.canary_lower > ev.limit);
    ev.within = canary.upper && stable.lower &&
                ev.canary_upper <= ratio * std::max(ev.stable_lower, t.check.floor);
}

void sequential_judge::new_step() {
    ++step_;
    for (ratio_test& t : tests_) {
        if (!t.latency) {
            continue;
        }
        std::fill(t.canary_step.begin(), t.canary_step.end(), 0);
        std::fill(t.stable_step.begin(), t.stable_step.end(), 0);
        update_quantile(t);
    }
}

bool sequential_judge::within_tolerance(std::string& why) const {
    for (const ratio_test& t : tests_) {
        const std::size_t count = t.latency ? 2 : 1;
        for (std::size_t i = t.evidence; i < t.evidence + count; ++i) {
            const test_evidence& ev = evidence_[i];
            if (ev.within) {
                continue;
            }
            const std::string head =
                join({ev.check, " ", test_name(ev.test), ": not yet shown within ",
                      format_ratio(t.check.limit), "x of stable ("});
            if (ev.test != sequential_test::quantile) {
                why = join({head, "within e-value ", format_e(ev.e_value_within), " of ",
                            format_e(ev.e_threshold), ")"});
                return false;
            }
            const std::string label = quantile_label(t.check.metric);
            const std::string canary_upper = ev.canary_upper > 0
                                                 ? join({"<= ", format_latency(ev.canary_upper)})
                                                 : std::string("not yet bounded above");
            const std::string stable_lower = ev.stable_lower > 0
                                                 ? join({">= ", format_latency(ev.stable_lower)})
                                                 : std::string("not yet bounded below");
            why = join({head, "canary ", label, " ", canary_upper, ", stable ", label, " ",
                        stable_lower, ", step ", std::to_string(ev.step), ")"});
            return false;
        }
    }
    return true;
}

}  // namespace switchyard::analysis
