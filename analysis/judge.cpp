#include "analysis/judge.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace switchyard::analysis {
namespace {

using config::check_kind;

std::uint64_t samples_of(config::check_metric metric, const slot_window& w) noexcept {
    if (!config::is_latency(metric)) {
        return w.requests;
    }
    return std::accumulate(w.upstream_latency.begin(), w.upstream_latency.end(), std::uint64_t{0});
}

// "20.3%" for rates, "310ms" or "1.25s" for latencies.
std::string format_value(config::check_metric metric, double v) {
    char buf[32];
    if (!config::is_latency(metric)) {
        std::snprintf(buf, sizeof buf, "%.4g%%", v * 100);
    } else if (v < 1) {
        std::snprintf(buf, sizeof buf, "%.4gms", v * 1000);
    } else {
        std::snprintf(buf, sizeof buf, "%.4gs", v);
    }
    return buf;
}

check_result judge_one(const config::check_config& check, std::uint32_t min_requests,
                       const slot_window& canary, const slot_window& stable) {
    check_result r;
    r.name = check.name;
    r.metric = check.metric;
    r.kind = check.kind;
    r.samples = samples_of(check.metric, canary);
    r.value = metric_value(check.metric, canary);
    switch (check.kind) {
        case check_kind::max:
        case check_kind::min:
            r.threshold = check.limit;
            break;
        case check_kind::max_ratio_to_stable:
            r.stable = metric_value(check.metric, stable);
            r.threshold = check.limit * std::max(r.stable, check.floor);
            break;
    }
    const bool enough =
        r.samples >= min_requests && (check.kind != check_kind::max_ratio_to_stable ||
                                      samples_of(check.metric, stable) >= min_requests);
    if (!enough) {
        r.result = verdict::inconclusive;  // no data is not a pass
    } else if (check.kind == check_kind::min) {
        r.result = r.value < r.threshold ? verdict::fail : verdict::pass;
    } else {
        r.result = r.value > r.threshold ? verdict::fail : verdict::pass;
    }
    return r;
}

}  // namespace

std::string_view verdict_name(verdict v) noexcept {
    switch (v) {
        case verdict::pass:
            return "pass";
        case verdict::fail:
            return "fail";
        case verdict::inconclusive:
            break;
    }
    return "inconclusive";
}

const check_result* judgement::first_failure() const noexcept {
    const auto it = std::find_if(checks.begin(), checks.end(),
                                 [](const check_result& c) { return c.result == verdict::fail; });
    return it == checks.end() ? nullptr : &*it;
}

double metric_value(config::check_metric metric, const slot_window& w) noexcept {
    switch (metric) {
        case config::check_metric::error_rate:
            return w.error_rate();
        case config::check_metric::success_rate:
            return w.success_rate();
        case config::check_metric::mirror_mismatch_rate:
            return w.mismatch_rate();
        default:
            return static_cast<double>(w.upstream_quantile(config::quantile_of(metric)).count()) /
                   1e6;
    }
}

bool judged_sequentially(config::check_metric metric, config::check_kind kind) noexcept {
    return kind == check_kind::max_ratio_to_stable &&
           (metric == config::check_metric::error_rate || config::is_latency(metric));
}

judgement judge(std::span<const config::check_config> checks, std::uint32_t min_requests,
                const slot_window& canary, const slot_window& stable, bool absolute_only) {
    judgement j;
    j.canary_requests = canary.requests;
    j.stable_requests = stable.requests;
    bool any_fail = false;
    bool any_inconclusive = false;
    for (const config::check_config& check : checks) {
        if (absolute_only && check.kind == check_kind::max_ratio_to_stable) {
            continue;
        }
        // Mismatches exist only between a mirror and its primary (README, "Mirroring").
        if (check.metric == config::check_metric::mirror_mismatch_rate && !canary.shadow) {
            continue;
        }
        check_result r = judge_one(check, min_requests, canary, stable);
        any_fail = any_fail || r.result == verdict::fail;
        any_inconclusive = any_inconclusive || r.result == verdict::inconclusive;
        j.checks.push_back(std::move(r));
    }
    j.result = any_fail ? verdict::fail : any_inconclusive ? verdict::inconclusive : verdict::pass;
    return j;
}

std::string describe(const check_result& r) {
    std::string out = r.name + " " + format_value(r.metric, r.value);
    if (r.result == verdict::inconclusive) {
        return out + " (inconclusive: " + std::to_string(r.samples) + " samples)";
    }
    const bool held = r.result == verdict::pass;
    if (r.kind == check_kind::min) {
        out += held ? " >= " : " < ";
    } else {
        out += held ? " <= " : " > ";
    }
    out += format_value(r.metric, r.threshold);
    if (r.kind == check_kind::max_ratio_to_stable) {
        out += " (stable " + format_value(r.metric, r.stable) + ")";
    }
    return out;
}

}  // namespace switchyard::analysis
