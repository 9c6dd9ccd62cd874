#include "analysis/simulation.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numbers>
#include <random>
#include <thread>

#include "analysis/rollout.hpp"

namespace switchyard::analysis::simulation {

using namespace std::chrono_literals;

run_result simulate(const scenario& s, const config::analysis_config& analysis, std::uint64_t seed,
                    double requests_per_second) {
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> latency(std::log(8000.0), std::log(14.0 / 8.0) / 1.645);
    std::uniform_real_distribution<double> unit(0, 1);
    // Drawn only when the base drifts, so that the steady scenarios' draws do not depend on it.
    const double phase = s.base.amplitude > 0 ? unit(rng) * 2 * std::numbers::pi : 0.0;
    const config::rollout_config rollout;
    rollout_machine machine(analysis);
    instant now{std::chrono::steady_clock::time_point(1h), std::chrono::system_clock::now()};
    per_slot<slot_totals> totals;
    split_picker picker;

    machine.start(now, "sim", rollout, {0, 0});
    machine.validated(now, "sim", {});
    const auto started = now.steady;
    const double tick_seconds = std::chrono::duration<double>(tick).count();
    const double period_seconds = std::chrono::duration<double>(s.base.period).count();
    double owed = 0;  // requests due but not yet sent: the fraction a drifting rate leaves
    run_result r;
    while (is_running(machine.state().current) && now.steady - started < 2h) {
        const double t = std::chrono::duration<double>(now.steady - started).count();
        const double load =
            s.base.amplitude > 0
                ? 1 + s.base.amplitude * std::sin(2 * std::numbers::pi * t / period_seconds + phase)
                : 1.0;
        now.steady += tick;
        now.wall += tick;
        owed += requests_per_second * load * tick_seconds;
        const double due = std::floor(owed);
        owed -= due;
        const traffic_split split = machine.split();
        for (auto i = static_cast<std::uint64_t>(due); i > 0; --i) {
            const slot_index slot = picker.pick(split);
            const slot_model& m = slot == 1 ? s.canary : s.stable;  // green is the new version
            const bool failed = unit(rng) < m.error_rate * load;
            totals[slot].by_status[failed ? 400 : 100] += 1;
            const auto micros = static_cast<std::uint64_t>(latency(rng) * m.latency_scale) +
                                static_cast<std::uint64_t>(m.extra.count());
            totals[slot].upstream.buckets[latency_buckets::index(micros)] += 1;
        }
        const machine_output out = machine.tick(now, totals);
        for (const auto& e : out.events) {
            if (e.kind == "rolled-back") {
                r.rolled_back = true;
                r.cause = e.cause;
            }
        }
    }
    r.seconds = std::chrono::duration<double>(now.steady - started).count();
    r.canary_requests = totals[1].requests();
    r.max_weight = machine.state().max_weight;
    return r;
}

std::vector<run_result> simulate_runs(const scenario& s, const config::analysis_config& analysis,
                                      std::uint64_t first_seed, std::size_t runs, unsigned threads,
                                      double requests_per_second) {
    std::vector<run_result> results(runs);
    if (runs == 0) {
        return results;
    }
    std::atomic<std::size_t> next{0};
    const auto work = [&] {
        for (std::size_t i = next.fetch_add(1); i < runs; i = next.fetch_add(1)) {
            results[i] = simulate(s, analysis, first_seed + i, requests_per_second);
        }
    };
    std::vector<std::thread> pool;
    const auto helpers = std::min<std::size_t>(std::max(threads, 1U), runs) - 1;
    for (std::size_t i = 0; i < helpers; ++i) {
        pool.emplace_back(work);
    }
    work();
    for (auto& t : pool) {
        t.join();
    }
    return results;
}

double percentile(std::vector<double> values, double q) {
    if (values.empty()) {
        return 0;
    }
    std::sort(values.begin(), values.end());
    return values[static_cast<std::size_t>(q * static_cast<double>(values.size() - 1))];
}

summary summarize(std::span<const run_result> results) {
    summary s;
    s.runs = results.size();
    std::vector<double> requests;
    std::vector<double> seconds;
    std::vector<double> requests_to_end;
    std::vector<double> seconds_to_end;
    for (const run_result& r : results) {
        requests_to_end.push_back(static_cast<double>(r.canary_requests));
        seconds_to_end.push_back(r.seconds);
        if (r.rolled_back) {
            ++s.rollbacks;
            ++s.causes[r.cause];
            requests.push_back(static_cast<double>(r.canary_requests));
            seconds.push_back(r.seconds);
        }
    }
    s.rollback_rate =
        s.runs == 0 ? 0 : static_cast<double>(s.rollbacks) / static_cast<double>(s.runs);
    s.median_requests = percentile(requests, 0.5);
    s.p90_requests = percentile(requests, 0.9);
    s.median_seconds = percentile(seconds, 0.5);
    s.p90_seconds = percentile(seconds, 0.9);
    s.median_requests_to_end = percentile(requests_to_end, 0.5);
    s.median_seconds_to_end = percentile(seconds_to_end, 0.5);
    s.p90_seconds_to_end = percentile(seconds_to_end, 0.9);
    return s;
}

std::size_t rolled_back_within(std::span<const run_result> results, std::uint64_t canary_requests) {
    return static_cast<std::size_t>(std::count_if(
        results.begin(), results.end(),
        [&](const auto& r) { return r.rolled_back && r.canary_requests <= canary_requests; }));
}

config::analysis_config default_analysis(config::analysis_method method) {
    config::analysis_config analysis;
    analysis.method = method;
    analysis.promote = config::promote_rule::interval;
    return analysis;
}

}  // namespace switchyard::analysis::simulation
