// judge_quality: the threshold and the sequential judge on the same seeded rollouts (README,
// "Judgement"). Each row is a scenario of analysis/simulation.hpp run through the real rollout
// machine once per seed with each method (the default analysis otherwise, promote: interval);
// it prints how often each judge rolled back and, for regressions, how many canary requests and
// seconds it took, with the sequential judge's requirement for the row and whether it holds.
//
//   judge_quality [--rps R] [--runs N] [--seed S] [--threads N] [--promote interval|evidence]
//                 [--markdown]
//
// --rps R: requests per second through the proxy (default 100). A default rollout (four steps of
// 10 s) gives the canary about 16 R requests before it is promoted: 1,600 at 100, fewer than the
// 3,000 that the 20%-slower row counts within, which 200 gives; but each one-second look then
// covers twice the requests, which the 20%-errors and +300 ms rows count.
// --promote evidence: the sequential judge promotes on evidence (default interval; the threshold
// judge always promotes per interval). --runs N: runs per row (default 1,000 for the A/A rows, 200
// for the others); --seed S: the first seed (default 0; row k takes the seeds after row k - 1's);
// --threads N: seeds run in parallel (default: the hardware's); --markdown: a README-ready table.
// Exits 0 when every sequential requirement holds, 1 when one does not, 2 on a bad argument.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "analysis/simulation.hpp"

namespace {

using namespace switchyard;
using namespace switchyard::analysis::simulation;

struct options {
    std::size_t runs = 0;  // 0: each row's default
    std::uint64_t seed = 0;
    unsigned threads = std::max(std::thread::hardware_concurrency(), 1U);
    bool markdown = false;
    double rps = 100;
    config::promote_rule promote = config::promote_rule::interval;  // the sequential judge's
};

// The sequential judge's requirement for a row: whether its runs meet it.
using requirement = std::function<bool(const summary&, std::span<const run_result>, double alpha)>;

struct row {
    scenario s;
    std::size_t default_runs;
    std::string_view must;  // the requirement, in words
    requirement holds;
};

bool at_most_alpha(const summary& s, std::span<const run_result>, double alpha) {
    return static_cast<double>(s.rollbacks) <= alpha * static_cast<double>(s.runs) + 1e-9;
}

requirement all_caught_median_within(double requests) {
    return [requests](const summary& s, std::span<const run_result>, double) {
        return s.rollbacks == s.runs && s.median_requests <= requests;
    };
}

const row rows[] = {
    {a_a, 1000, "at most alpha x runs rolled back", at_most_alpha},
    {canary_20_percent_errors, 200, "all caught, median <= 40 canary requests",
     all_caught_median_within(40)},
    {canary_300_ms_slower, 200, "all caught, median <= 30 canary requests",
     all_caught_median_within(30)},
    {canary_p95_20_percent_slower, 200, ">= 95% caught within 3,000 canary requests",
     [](const summary& s, std::span<const run_result> results, double) {
         return static_cast<double>(rolled_back_within(results, 3000)) >=
                0.95 * static_cast<double>(s.runs);
     }},
    {canary_twice_the_errors, 200, "report",
     [](const summary&, std::span<const run_result>, double) {
         return true;
     }},
    {canary_5_percent_slower, 200, "<= 1% rolled back",
     [](const summary& s, std::span<const run_result>, double) {
         return static_cast<double>(s.rollbacks) <= 0.01 * static_cast<double>(s.runs) + 1e-9;
     }},
    {a_a_drifting, 1000, "at most alpha x runs rolled back", at_most_alpha},
};

// 31602 -> "31,602"
std::string thousands(std::uint64_t n) {
    const std::string digits = std::to_string(n);
    std::string text;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) {
            text.push_back(',');
        }
        text.push_back(digits[i]);
    }
    return text;
}

std::string fixed(double value, int decimals) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
    return text;
}

std::string rolled_back(const summary& s) {
    return thousands(s.rollbacks) + " of " + thousands(s.runs) + " (" +
           fixed(100 * s.rollback_rate, 1) + "%)";
}

// "median / p90" of the rolled-back runs; a dash where a rollback was the wrong answer or none
// happened.
std::string detection_requests(const row& r, const summary& s) {
    if (!r.s.regression || s.rollbacks == 0) {
        return "-";
    }
    return thousands(static_cast<std::uint64_t>(s.median_requests)) + " / " +
           thousands(static_cast<std::uint64_t>(s.p90_requests));
}

std::string detection_seconds(const row& r, const summary& s) {
    if (!r.s.regression || s.rollbacks == 0) {
        return "-";
    }
    return fixed(s.median_seconds, 1) + " / " + fixed(s.p90_seconds, 1);
}

std::string causes(const summary& s) {
    std::string list;
    for (const auto& [cause, n] : s.causes) {
        if (!list.empty()) {
            list.append(", ");
        }
        list.append(cause).append(" ").append(thousands(n));
    }
    return list;
}

struct row_outcome {
    std::size_t runs = 0;
    summary threshold;
    summary sequential;
    double threshold_took = 0;  // seconds of simulation, on all threads
    double sequential_took = 0;
    bool pass = false;
};

void print_plain_header() {
    std::printf("%-34s %-10s %19s %17s %15s %7s  %s\n", "scenario", "method", "rolled back",
                "requests med/p90", "s med/p90", "took s", "causes");
}

void print_plain(const row& r, const row_outcome& o) {
    const std::string name(r.s.name);
    std::printf("%-34s %-10s %19s %17s %15s %7.1f  %s\n", name.c_str(), "threshold",
                rolled_back(o.threshold).c_str(), detection_requests(r, o.threshold).c_str(),
                detection_seconds(r, o.threshold).c_str(), o.threshold_took,
                causes(o.threshold).c_str());
    std::printf("%-34s %-10s %19s %17s %15s %7.1f  %s\n", "", "sequential",
                rolled_back(o.sequential).c_str(), detection_requests(r, o.sequential).c_str(),
                detection_seconds(r, o.sequential).c_str(), o.sequential_took,
                causes(o.sequential).c_str());
    if (r.must != "report") {
        std::printf("%-34s %-10s %s: %s\n", "", "", std::string(r.must).c_str(),
                    o.pass ? "PASS" : "MISS");
    }
    std::fflush(stdout);
}

void print_markdown(std::span<const row> table, std::span<const row_outcome> outcomes) {
    std::printf(
        "| scenario | runs | threshold: rolled back | canary requests to rollback, median / p90 "
        "| s, median / p90 | sequential: rolled back | canary requests to rollback, median / p90 "
        "| s, median / p90 | sequential must | |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    for (std::size_t i = 0; i < table.size(); ++i) {
        const row& r = table[i];
        const row_outcome& o = outcomes[i];
        const std::string name(r.s.name);
        const std::string must(r.must);
        std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name.c_str(),
                    thousands(o.runs).c_str(), rolled_back(o.threshold).c_str(),
                    detection_requests(r, o.threshold).c_str(),
                    detection_seconds(r, o.threshold).c_str(), rolled_back(o.sequential).c_str(),
                    detection_requests(r, o.sequential).c_str(),
                    detection_seconds(r, o.sequential).c_str(), must.c_str(),
                    r.must == "report" ? ""
                    : o.pass           ? "PASS"
                                       : "MISS");
    }
}

template <typename T>
bool parse_number(std::string_view text, T& value) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc{} && end == text.data() + text.size();
}

int usage(const char* program) {
    std::fprintf(stderr,
                 "usage: %s [--rps R] [--runs N] [--seed S] [--threads N] "
                 "[--promote interval|evidence] [--markdown]\n",
                 program);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    options opts;
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        const bool has_value = i + 1 < args.size();
        if (arg == "--markdown") {
            opts.markdown = true;
        } else if (arg == "--runs" && has_value && parse_number(args[i + 1], opts.runs) &&
                   opts.runs > 0) {
            ++i;
        } else if (arg == "--rps" && has_value && parse_number(args[i + 1], opts.rps) &&
                   opts.rps >= 1) {
            ++i;
        } else if (arg == "--seed" && has_value && parse_number(args[i + 1], opts.seed)) {
            ++i;
        } else if (arg == "--threads" && has_value && parse_number(args[i + 1], opts.threads) &&
                   opts.threads > 0) {
            ++i;
        } else if (arg == "--promote" && has_value &&
                   (args[i + 1] == "interval" || args[i + 1] == "evidence")) {
            opts.promote = args[i + 1] == "evidence" ? config::promote_rule::evidence
                                                     : config::promote_rule::interval;
            ++i;
        } else {
            return usage(argv[0]);
        }
    }

    const auto threshold = default_analysis(config::analysis_method::threshold);
    auto sequential = default_analysis(config::analysis_method::sequential);
    sequential.promote = opts.promote;
    const auto began = std::chrono::steady_clock::now();
    if (!opts.markdown) {
        print_plain_header();
    }
    std::vector<row_outcome> outcomes;
    std::uint64_t seed = opts.seed;
    bool all_pass = true;
    for (const row& r : rows) {
        row_outcome o;
        o.runs = opts.runs > 0 ? opts.runs : r.default_runs;
        const auto t0 = std::chrono::steady_clock::now();
        const auto by_threshold =
            simulate_runs(r.s, threshold, seed, o.runs, opts.threads, opts.rps);
        const auto t1 = std::chrono::steady_clock::now();
        const auto by_sequential =
            simulate_runs(r.s, sequential, seed, o.runs, opts.threads, opts.rps);
        const auto t2 = std::chrono::steady_clock::now();
        o.threshold_took = std::chrono::duration<double>(t1 - t0).count();
        o.sequential_took = std::chrono::duration<double>(t2 - t1).count();
        seed += o.runs;
        o.threshold = summarize(by_threshold);
        o.sequential = summarize(by_sequential);
        o.pass = r.holds(o.sequential, by_sequential, sequential.alpha);
        all_pass = all_pass && o.pass;
        if (!opts.markdown) {
            print_plain(r, o);
        }
        outcomes.push_back(o);
    }
    if (opts.markdown) {
        print_markdown(rows, outcomes);
    }
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    std::printf(
        "\n%s in %.1f s on %u threads; %g requests/s; first seed %llu; sequential "
        "promote: %s\n",
        all_pass ? "every sequential requirement holds" : "a sequential requirement missed", took,
        opts.threads, opts.rps, static_cast<unsigned long long>(opts.seed),
        opts.promote == config::promote_rule::evidence ? "evidence" : "interval");
    return all_pass ? 0 : 1;
}
