// The rollout state machine under an injected clock and synthetic traffic: every transition,
// every manual action in every phase, inconclusive intervals, threshold counting, fast
// rollback, a breach during the bake, and the restart. An hour of rollout runs in milliseconds.

#include "analysis/rollout.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace switchyard::analysis {
namespace {

using namespace std::chrono_literals;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// What the proxy's clients send, and how each slot answers. Errors are spread exactly (the n-th
// request fails when floor(n * rate) steps), so every run is the same.
struct traffic {
    double rps = 400;  // requests per second through the proxy
    per_slot<double> error_rate{0.005, 0.005};
    per_slot<microseconds> latency{8000us, 8000us};
};

// The judge most of these tests drive: one judgement per interval (analysis.method: threshold),
// whose machinery (windows, runs of failures, inconclusive intervals) they are about. The
// sequential judge's tests are at the end.
config::analysis_config interval_judge() {
    config::analysis_config a;
    a.method = config::analysis_method::threshold;
    return a;
}

// Drives a machine the way the controller does: a tick every 100 ms with the merged totals of
// both slots, traffic split the way the machine last asked.
class harness {
public:
    explicit harness(config::analysis_config analysis = interval_judge())
        : machine(std::move(analysis)) {}

    rollout_machine machine;
    instant now{std::chrono::steady_clock::time_point(1000h),
                std::chrono::system_clock::time_point(std::chrono::hours(500'000))};
    per_slot<slot_totals> totals;
    traffic load;
    traffic_split split{0, 0};  // what the controller has applied
    std::vector<rollout_event> events;
    std::function<void()> before_tick;  // after each tick's traffic, before the machine's tick

    void keep(const machine_output& out) {
        for (const rollout_event& e : out.events) {
            events.push_back(e);
            split = e.split;
        }
    }
    command_result act(command_result r) {
        keep(r.out);
        return r;
    }
    phase current() const { return machine.state().current; }
    const rollout_event& last() const { return events.back(); }

    void start(const config::rollout_config& rollout = quick_rollout()) {
        std::string id = "r";
        id += std::to_string(++rollouts_);
        ASSERT_EQ(act(machine.start(now, std::move(id), rollout, split)).refused, "");
    }
    void validate(validation_result result = {}) {
        keep(machine.validated(now, machine.state().id, result));
    }

    // One tick: `d` of traffic under the applied split, then the machine's tick.
    void tick(milliseconds d = 100ms) {
        now.steady += d;
        now.wall += d;
        const double requests = load.rps * static_cast<double>(d.count()) / 1000.0;
        for (slot_index s = 0; s < slot_count; ++s) {
            owed_[s] += requests * split.weight(s) / 100.0;
            const auto n = static_cast<std::uint64_t>(owed_[s]);
            owed_[s] -= static_cast<double>(n);
            for (std::uint64_t i = 0; i < n; ++i) {
                const std::uint64_t k = sent_[s]++;
                const bool failed = std::floor(static_cast<double>(k + 1) * load.error_rate[s]) >
                                    std::floor(static_cast<double>(k) * load.error_rate[s]);
                totals[s].by_status[failed ? 400 : 100] += 1;  // 500 or 200
                totals[s].upstream.buckets[latency_buckets::index(
                    static_cast<std::uint64_t>(load.latency[s].count()))] += 1;
            }
        }
        if (before_tick) {
            before_tick();
        }
        keep(machine.tick(now, totals));
    }
    void run(milliseconds d) {
        for (milliseconds t{0}; t < d; t += 100ms) {
            tick();
        }
    }
    // Ticks until `done` holds or `limit` of simulated time passes; true when it held.
    bool run_until(const std::function<bool()>& done, milliseconds limit = 2h) {
        for (milliseconds t{0}; t < limit; t += 100ms) {
            if (done()) {
                return true;
            }
            tick();
        }
        return done();
    }
    bool run_until_phase(phase p, milliseconds limit = 2h) {
        return run_until([&] { return current() == p; }, limit);
    }

    // A rollout with a short bake, so the tests see it end.
    static config::rollout_config quick_rollout() {
        config::rollout_config r;
        r.bake = 60s;
        return r;
    }

private:
    per_slot<double> owed_{};
    per_slot<std::uint64_t> sent_{};
    int rollouts_ = 0;
};

std::vector<std::string> kinds(const std::vector<rollout_event>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) {
        out.push_back(e.kind);
    }
    return out;
}

config::analysis_config without_fast_rollback() {
    config::analysis_config a = interval_judge();
    a.fast_rollback.enabled = false;
    return a;
}

// --- the happy paths ---

TEST(rollout_machine, canary_steps_through_every_weight_bakes_and_succeeds) {
    harness h;
    h.start();
    EXPECT_EQ(h.current(), phase::waiting);
    EXPECT_EQ(h.split, (traffic_split{0, 0}));  // no traffic moves before validation
    const auto request = h.machine.validation();
    ASSERT_TRUE(request.has_value());
    EXPECT_EQ(request->slot, 1);
    EXPECT_TRUE(request->full);
    h.validate();
    EXPECT_EQ(h.current(), phase::progressing);
    EXPECT_EQ(h.split, (traffic_split{0, 10}));
    EXPECT_FALSE(h.machine.validation().has_value());

    ASSERT_TRUE(h.run_until_phase(phase::succeeded));
    EXPECT_EQ(kinds(h.events), (std::vector<std::string>{"started", "progressing", "step", "step",
                                                         "step", "promoted", "succeeded"}));
    std::vector<std::uint8_t> weights;
    for (const auto& e : h.events) {
        weights.push_back(e.split.weight(1));
    }
    EXPECT_EQ(weights, (std::vector<std::uint8_t>{0, 10, 25, 50, 75, 100, 100}));
    EXPECT_EQ(h.split, (traffic_split{1, 0}));  // green is the active slot now
    // A step takes at least an interval, and the bake its full minute.
    for (std::size_t i = 2; i <= 5; ++i) {
        EXPECT_GE(h.events[i].at - h.events[i - 1].at, 10s) << i;
    }
    EXPECT_GE(h.events[6].at - h.events[5].at, 60s);
    ASSERT_EQ(h.machine.state().history.size(), 1U);
    const rollout_record& r = h.machine.state().history.back();
    EXPECT_EQ(r.result, phase::succeeded);
    EXPECT_EQ(r.from, 0);
    EXPECT_EQ(r.to, 1);
    EXPECT_EQ(r.weight, 100U);
    // The next rollout moves toward the other slot: blue.
    h.start();
    EXPECT_EQ(h.machine.validation()->slot, 0);
    EXPECT_EQ(h.split, (traffic_split{1, 0}));
}

TEST(rollout_machine, every_passing_step_carries_the_judgement_behind_it) {
    harness h;
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until([&] { return h.last().kind == "step"; }));
    ASSERT_EQ(h.last().checks.size(), 4U);
    for (const auto& c : h.last().checks) {
        EXPECT_EQ(c.result, verdict::pass) << c.name;
    }
    ASSERT_TRUE(h.machine.last_judgement().has_value());
    EXPECT_EQ(h.machine.last_judgement()->result, verdict::pass);
}

TEST(rollout_machine, blue_green_switches_at_once_after_validation) {
    harness h;
    auto rollout = harness::quick_rollout();
    rollout.strategy = config::rollout_strategy::blue_green;
    h.start(rollout);
    h.run(30s);  // waiting: the new slot gets nothing
    EXPECT_EQ(h.current(), phase::waiting);
    EXPECT_EQ(h.totals[1].requests(), 0U);
    h.validate();
    EXPECT_EQ(h.current(), phase::baking);
    EXPECT_EQ(h.split, (traffic_split{1, 0}));
    EXPECT_EQ(h.last().kind, "promoted");
    ASSERT_TRUE(h.run_until_phase(phase::succeeded));
    EXPECT_EQ(h.machine.state().history.back().weight, 100U);
}

TEST(rollout_machine, blue_green_without_bake_succeeds_on_the_switch) {
    harness h;
    config::rollout_config rollout;
    rollout.strategy = config::rollout_strategy::blue_green;
    rollout.bake = 0s;
    h.start(rollout);
    h.validate();
    EXPECT_EQ(h.current(), phase::succeeded);
    EXPECT_EQ(h.split, (traffic_split{1, 0}));
}

slot_window smoke_window(std::uint64_t requests, std::uint64_t errors, microseconds latency) {
    slot_window w;
    w.requests = requests;
    w.errors = errors;
    w.upstream_latency[latency_buckets::index(static_cast<std::uint64_t>(latency.count()))] =
        requests;
    return w;
}

TEST(rollout_machine, blue_green_smoke_run_is_judged_before_the_switch) {
    auto rollout = harness::quick_rollout();
    rollout.strategy = config::rollout_strategy::blue_green;
    rollout.smoke.requests = 200;
    {
        harness h;
        h.start(rollout);
        validation_result v;
        v.smoke = {smoke_window(200, 1, 2ms), smoke_window(200, 40, 2ms)};  // green: 20% errors
        h.validate(v);
        EXPECT_EQ(h.current(), phase::aborted);
        EXPECT_EQ(h.split, (traffic_split{0, 0}));
        EXPECT_EQ(h.last().cause, "smoke");
        EXPECT_EQ(h.last().reason, "smoke run: error_rate 20% > 5%");
        EXPECT_FALSE(h.last().checks.empty());
        EXPECT_EQ(h.totals[1].requests(), 0U);
    }
    {
        harness h;
        h.start(rollout);
        validation_result v;
        v.smoke = {smoke_window(200, 0, 2ms), smoke_window(200, 0, 2ms)};
        h.validate(v);
        EXPECT_EQ(h.current(), phase::baking);
        EXPECT_EQ(h.split, (traffic_split{1, 0}));
    }
}

TEST(rollout_machine, failed_validation_never_moves_traffic) {
    harness h;
    h.start();
    h.validate({false, "health gate: 127.0.0.1:9 refused", "health", std::nullopt});
    EXPECT_EQ(h.current(), phase::aborted);
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
    EXPECT_EQ(h.last().reason, "health gate: 127.0.0.1:9 refused");
    EXPECT_EQ(h.machine.state().history.back().result, phase::aborted);
    EXPECT_EQ(h.machine.state().history.back().weight, 0U);
}

TEST(rollout_machine, a_stale_validation_report_is_ignored) {
    harness h;
    h.start();
    const std::string first = h.machine.state().id;
    h.act(h.machine.abort(h.now));
    h.start();
    // The first rollout's gate reports late: it changes nothing for the second.
    EXPECT_TRUE(h.machine.validated(h.now, first, {}).events.empty());
    EXPECT_EQ(h.current(), phase::waiting);
}

// --- judgement ---

TEST(rollout_machine, threshold_failed_judgements_in_a_row_roll_back) {
    harness h(without_fast_rollback());
    h.load.error_rate[1] = 0.2;
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back));
    EXPECT_EQ(kinds(h.events), (std::vector<std::string>{"started", "progressing", "check-failed",
                                                         "check-failed", "rolled-back"}));
    EXPECT_EQ(h.events[2].reason, "error_rate 20% > 5% (1 of 3 failed judgements in a row)");
    EXPECT_EQ(h.last().cause, "error_rate");
    EXPECT_NE(h.last().reason.find("3 of 3"), std::string::npos) << h.last().reason;
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
    EXPECT_EQ(h.machine.state().history.back().result, phase::rolled_back);
    EXPECT_EQ(h.machine.state().history.back().weight, 10U);
}

TEST(rollout_machine, the_call_that_ends_a_rollout_says_so_once) {
    harness h;
    h.start();
    auto out = h.machine.validated(h.now, h.machine.state().id, {});
    EXPECT_FALSE(out.finished.has_value());
    h.keep(out);
    const command_result r = h.act(h.machine.promote(h.now, true));
    EXPECT_FALSE(r.out.finished.has_value());  // baking
    const command_result done = h.act(h.machine.promote(h.now, false));
    ASSERT_TRUE(done.out.finished.has_value());
    EXPECT_EQ(done.out.finished->result, phase::succeeded);
    // A rollback after success changes the record but ends nothing new.
    const command_result back = h.act(h.machine.rollback(h.now));
    EXPECT_FALSE(back.out.finished.has_value());
    EXPECT_EQ(back.out.events.back().cause, "manual");
}

TEST(rollout_machine, a_passing_interval_resets_the_count) {
    harness h(without_fast_rollback());
    h.start();
    h.validate();
    h.load.error_rate[1] = 0.2;
    ASSERT_TRUE(h.run_until([&] { return h.machine.failed_in_a_row() == 2; }));
    h.load.error_rate[1] = 0.0;
    ASSERT_TRUE(h.run_until([&] { return h.last().kind == "step"; }));
    EXPECT_EQ(h.machine.failed_in_a_row(), 0U);
    h.load.error_rate[1] = 0.2;
    ASSERT_TRUE(h.run_until([&] { return h.machine.failed_in_a_row() == 2; }));
    EXPECT_EQ(h.current(), phase::progressing);  // 2 + 2 failures, never 3 in a row
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back));
}

TEST(rollout_machine, a_slower_canary_is_rolled_back_on_the_latency_ratio) {
    harness h;
    h.load.latency[1] = 308ms;  // 300 ms slower than stable's 8 ms
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back));
    EXPECT_EQ(h.last().cause, "latency_p95_ratio");
}

TEST(rollout_machine, inconclusive_intervals_hold_the_weight_then_pause) {
    harness h;
    h.load.rps = 10;  // 1 request per second to the canary: 10 per interval, below 20
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::paused));
    EXPECT_EQ(kinds(h.events),
              (std::vector<std::string>{"started", "progressing", "inconclusive", "inconclusive",
                                        "inconclusive", "inconclusive", "paused"}));
    EXPECT_EQ(h.split, (traffic_split{0, 10}));  // never promoted on no data
    EXPECT_NE(h.last().reason.find("not enough traffic"), std::string::npos) << h.last().reason;
    h.run(10min);
    EXPECT_EQ(h.current(), phase::paused);
    // Resumed with traffic, it goes on.
    h.load.rps = 400;
    h.act(h.machine.resume(h.now));
    EXPECT_EQ(h.current(), phase::progressing);
    ASSERT_TRUE(h.run_until([&] { return h.last().kind == "step"; }));
    EXPECT_EQ(h.split, (traffic_split{0, 25}));
}

TEST(rollout_machine, an_inconclusive_interval_does_not_break_a_run_of_failures) {
    harness h(without_fast_rollback());
    h.start();
    h.validate();
    h.load.error_rate[1] = 0.2;
    ASSERT_TRUE(h.run_until([&] { return h.machine.failed_in_a_row() == 2; }));
    h.load.rps = 10;
    ASSERT_TRUE(h.run_until([&] { return h.last().kind == "inconclusive"; }));
    EXPECT_EQ(h.machine.failed_in_a_row(), 2U);
    h.load.rps = 400;
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back, 11s));
}

TEST(rollout_machine, fast_rollback_does_not_wait_for_the_interval) {
    harness h;
    h.start();
    h.validate();
    h.run(30s);  // two good steps
    EXPECT_EQ(h.split, (traffic_split{0, 50}));
    h.load.error_rate[1] = 1.0;  // green starts failing every request
    const auto failing_since = h.now.steady;
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back, 10s));
    EXPECT_LT(h.now.steady - failing_since, 1s);  // simulated time: 200 canary rps, 10 needed
    EXPECT_EQ(h.last().cause, "fast_rollback");
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
    // The window still holds some good answers from before: the rate crossed 50% on its way up.
    EXPECT_EQ(h.last().reason.substr(0, 26), "fast rollback: error rate ");
}

TEST(rollout_machine, fast_rollback_needs_its_minimum_of_requests_in_the_window) {
    harness h;
    h.load.rps = 40;  // 4 canary requests a second: never 10 in the 1 s window
    h.load.error_rate[1] = 1.0;
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back));
    EXPECT_EQ(h.last().cause, "error_rate");  // the interval judgement caught it instead
}

TEST(rollout_machine, fast_rollback_can_be_turned_off) {
    harness h(without_fast_rollback());
    h.load.error_rate[1] = 1.0;
    h.start();
    h.validate();
    h.run(9s);
    EXPECT_EQ(h.current(), phase::progressing);
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back));
    EXPECT_EQ(h.last().cause, "error_rate");
}

TEST(rollout_machine, a_breach_during_the_bake_switches_everything_back) {
    harness h(without_fast_rollback());
    auto rollout = harness::quick_rollout();
    rollout.bake = 5min;
    h.start(rollout);
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::baking));
    EXPECT_EQ(h.split, (traffic_split{1, 0}));
    h.run(1min);
    h.load.error_rate[1] = 0.2;
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back));
    EXPECT_EQ(h.split, (traffic_split{0, 0}));  // blue active again: it was still running
    EXPECT_EQ(h.last().cause, "error_rate");
    // The old slot had no traffic to compare with: only absolute checks were judged.
    for (const auto& c : h.last().checks) {
        EXPECT_NE(c.kind, config::check_kind::max_ratio_to_stable) << c.name;
    }
    EXPECT_EQ(h.machine.state().history.back().result, phase::rolled_back);
}

TEST(rollout_machine, a_breach_during_the_bake_does_not_wait_for_a_run_of_failures) {
    harness h(without_fast_rollback());
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::baking));
    const std::size_t promoted = h.events.size();
    h.load.error_rate[1] = 0.2;
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back, 11s));  // the first judgement
    EXPECT_EQ(h.events.size(), promoted + 1);                 // no check-failed before it
    EXPECT_NE(h.last().reason.find("during the bake"), std::string::npos) << h.last().reason;
}

TEST(rollout_machine, a_bake_shorter_than_an_interval_is_judged_at_its_end) {
    harness h(without_fast_rollback());
    auto rollout = harness::quick_rollout();
    rollout.bake = 3s;  // the interval is 10 s
    h.start(rollout);
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::baking));
    h.load.error_rate[1] = 0.2;
    ASSERT_TRUE(h.run_until([&] { return !is_running(h.current()); }, 4s));
    EXPECT_EQ(h.current(), phase::rolled_back);
    EXPECT_EQ(h.last().cause, "error_rate");
}

TEST(rollout_machine, a_bake_without_traffic_does_not_succeed_on_its_own) {
    harness h;
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::baking));
    h.load.rps = 0;  // nothing to judge for the whole bake
    ASSERT_TRUE(h.run_until_phase(phase::paused, 2min));
    EXPECT_NE(h.last().reason.find("not enough traffic during the bake"), std::string::npos)
        << h.last().reason;
    EXPECT_EQ(h.split, (traffic_split{1, 0}));  // everything stays on the new slot
    h.run(10min);
    EXPECT_EQ(h.current(), phase::paused);
    // A person decides: promote ends it; or resume with traffic, which gets an interval more.
    h.load.rps = 400;
    h.act(h.machine.resume(h.now));
    EXPECT_EQ(h.current(), phase::baking);
    ASSERT_TRUE(h.run_until_phase(phase::succeeded, 11s));
}

TEST(rollout_machine, pause_and_resume_during_the_bake_keep_what_remained) {
    harness h;
    auto rollout = harness::quick_rollout();
    rollout.bake = 5min;
    h.start(rollout);
    h.validate();
    h.act(h.machine.promote(h.now, true));
    h.run(2min);
    h.act(h.machine.pause(h.now));
    h.run(30min);  // paused: the bake's clock stands still
    EXPECT_EQ(h.current(), phase::paused);
    h.act(h.machine.resume(h.now));
    const auto resumed = h.now.steady;
    ASSERT_TRUE(h.run_until_phase(phase::succeeded));
    EXPECT_GE(h.now.steady - resumed, 3min);
    EXPECT_LT(h.now.steady - resumed, 3min + 1s);
}

TEST(rollout_machine, blue_green_approval_holds_before_the_switch) {
    harness h;
    auto rollout = harness::quick_rollout();
    rollout.strategy = config::rollout_strategy::blue_green;
    rollout.approval = true;
    h.start(rollout);
    h.validate();
    EXPECT_EQ(h.current(), phase::awaiting_approval);
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
    const std::size_t waiting = h.events.size();
    h.run(5min);  // nothing to judge at 0%: no events
    EXPECT_EQ(h.events.size(), waiting);
    h.act(h.machine.approve(h.now));
    EXPECT_EQ(h.current(), phase::baking);
    EXPECT_EQ(h.split, (traffic_split{1, 0}));
}

TEST(rollout_machine, a_failed_judgement_is_an_event_but_not_a_transition) {
    harness h(without_fast_rollback());
    h.start();
    h.validate();
    const auto progressing_since = h.machine.state().last_transition;
    h.load.error_rate[1] = 0.2;
    ASSERT_TRUE(h.run_until([&] { return h.last().kind == "check-failed"; }));
    EXPECT_EQ(h.machine.state().last_transition, progressing_since);
    EXPECT_NE(h.machine.state().reason.find("1 of 3"), std::string::npos);
}

TEST(rollout_machine, fast_rollback_is_armed_during_the_bake) {
    harness h;
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::baking));
    h.load.error_rate[1] = 1.0;
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back, 2s));
    EXPECT_EQ(h.last().cause, "fast_rollback");
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
}

TEST(rollout_machine, approval_holds_before_the_last_step) {
    harness h;
    auto rollout = harness::quick_rollout();
    rollout.steps = {10, 50, 100};
    rollout.approval = true;
    h.start(rollout);
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::awaiting_approval));
    EXPECT_EQ(h.split, (traffic_split{0, 50}));
    h.run(10min);  // passing intervals do not promote
    EXPECT_EQ(h.current(), phase::awaiting_approval);
    EXPECT_EQ(h.split, (traffic_split{0, 50}));
    h.act(h.machine.approve(h.now));
    EXPECT_EQ(h.current(), phase::baking);
    EXPECT_EQ(h.split, (traffic_split{1, 0}));
}

TEST(rollout_machine, a_canary_awaiting_approval_is_still_judged) {
    harness h(without_fast_rollback());
    auto rollout = harness::quick_rollout();
    rollout.steps = {10, 100};
    rollout.approval = true;
    h.start(rollout);
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::awaiting_approval));
    h.load.error_rate[1] = 0.2;
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back));
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
}

TEST(rollout_machine, a_single_step_with_approval_waits_at_zero) {
    harness h;
    auto rollout = harness::quick_rollout();
    rollout.steps = {100};
    rollout.approval = true;
    h.start(rollout);
    h.validate();
    EXPECT_EQ(h.current(), phase::awaiting_approval);
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
    h.act(h.machine.approve(h.now));
    EXPECT_EQ(h.current(), phase::baking);
}

// --- windows ---

TEST(rollout_machine, pause_holds_everything_and_resume_starts_a_new_window) {
    harness h(without_fast_rollback());
    h.start();
    h.validate();
    h.run(5s);
    h.act(h.machine.pause(h.now));
    EXPECT_EQ(h.current(), phase::paused);
    h.load.error_rate[1] = 0.3;  // bad while paused: not judged, not carried over
    h.run(10min);
    EXPECT_EQ(h.current(), phase::paused);
    EXPECT_EQ(h.split, (traffic_split{0, 10}));
    h.load.error_rate[1] = 0.0;
    h.act(h.machine.resume(h.now));
    ASSERT_TRUE(h.run_until([&] { return h.last().kind == "step"; }, 11s));
    EXPECT_EQ(h.machine.failed_in_a_row(), 0U);
}

TEST(rollout_machine, a_weight_change_starts_a_new_window) {
    harness h(without_fast_rollback());
    h.start();
    h.validate();
    h.load.error_rate[1] = 0.3;
    h.run(8s);  // most of an interval of bad traffic...
    h.load.error_rate[1] = 0.0;
    h.act(h.machine.promote(h.now, false));  // ...then the weight changes
    EXPECT_EQ(h.split, (traffic_split{0, 25}));
    ASSERT_TRUE(h.run_until([&] { return h.machine.last_judgement().has_value(); }, 11s));
    EXPECT_EQ(h.machine.last_judgement()->result, verdict::pass);  // the bad 8 s are not in it
}

TEST(rollout_machine, fast_rollback_stays_armed_while_paused) {
    harness h;
    h.start();
    h.validate();
    h.act(h.machine.pause(h.now));
    h.load.error_rate[1] = 1.0;
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back, 2s));
    EXPECT_EQ(h.last().cause, "fast_rollback");
}

// --- manual actions in every phase ---

enum class action { start, promote, promote_full, pause, resume, approve, abort, rollback };

const char* name(action a) {
    switch (a) {
        case action::start:
            return "start";
        case action::promote:
            return "promote";
        case action::promote_full:
            return "promote?full=true";
        case action::pause:
            return "pause";
        case action::resume:
            return "resume";
        case action::approve:
            return "approve";
        case action::abort:
            return "abort";
        case action::rollback:
            return "rollback";
    }
    return "?";
}

// A harness whose machine is in phase `p`, reached the way a user would.
void reach(harness& h, phase p) {
    auto rollout = harness::quick_rollout();
    rollout.steps = {10, 25, 100};
    rollout.approval = p == phase::awaiting_approval;
    switch (p) {
        case phase::idle:
            return;
        case phase::waiting:
            h.start(rollout);
            return;
        case phase::progressing:
            h.start(rollout);
            h.validate();
            return;
        case phase::paused:
            reach(h, phase::progressing);
            h.act(h.machine.pause(h.now));
            return;
        case phase::awaiting_approval:
            h.start(rollout);
            h.validate();
            ASSERT_TRUE(h.run_until_phase(phase::awaiting_approval));
            return;
        case phase::baking:
            reach(h, phase::progressing);
            h.act(h.machine.promote(h.now, true));
            return;
        case phase::succeeded:
            reach(h, phase::baking);
            h.act(h.machine.promote(h.now, false));
            return;
        case phase::rolled_back:
            reach(h, phase::progressing);
            h.act(h.machine.rollback(h.now));
            return;
        case phase::aborted:
            reach(h, phase::waiting);
            h.act(h.machine.abort(h.now));
            return;
    }
}

command_result apply(harness& h, action a) {
    switch (a) {
        case action::start:
            return h.act(h.machine.start(h.now, "next", harness::quick_rollout(), h.split));
        case action::promote:
            return h.act(h.machine.promote(h.now, false));
        case action::promote_full:
            return h.act(h.machine.promote(h.now, true));
        case action::pause:
            return h.act(h.machine.pause(h.now));
        case action::resume:
            return h.act(h.machine.resume(h.now));
        case action::approve:
            return h.act(h.machine.approve(h.now));
        case action::abort:
            return h.act(h.machine.abort(h.now));
        case action::rollback:
            return h.act(h.machine.rollback(h.now));
    }
    return {};
}

TEST(rollout_machine, every_manual_action_in_every_phase) {
    // The phase each action leads to from each phase; absent: refused (409), nothing changes.
    const std::map<phase, std::map<action, phase>> table{
        {phase::idle, {{action::start, phase::waiting}}},
        {phase::waiting, {{action::abort, phase::aborted}, {action::rollback, phase::rolled_back}}},
        {phase::progressing,
         {{action::promote, phase::progressing},
          {action::promote_full, phase::baking},
          {action::pause, phase::paused},
          {action::abort, phase::aborted},
          {action::rollback, phase::rolled_back}}},
        {phase::paused,
         {{action::promote, phase::progressing},
          {action::promote_full, phase::baking},
          {action::resume, phase::progressing},
          {action::abort, phase::aborted},
          {action::rollback, phase::rolled_back}}},
        {phase::awaiting_approval,
         {{action::promote, phase::baking},
          {action::promote_full, phase::baking},
          {action::pause, phase::paused},
          {action::approve, phase::baking},
          {action::abort, phase::aborted},
          {action::rollback, phase::rolled_back}}},
        {phase::baking,
         {{action::promote, phase::succeeded},
          {action::promote_full, phase::succeeded},
          {action::pause, phase::paused},
          {action::abort, phase::aborted},
          {action::rollback, phase::rolled_back}}},
        {phase::succeeded,
         {{action::start, phase::waiting}, {action::rollback, phase::rolled_back}}},
        {phase::rolled_back, {{action::start, phase::waiting}}},
        {phase::aborted, {{action::start, phase::waiting}}},
    };
    const action actions[] = {action::start, action::promote, action::promote_full,
                              action::pause, action::resume,  action::approve,
                              action::abort, action::rollback};
    for (const auto& [from, allowed] : table) {
        for (const action a : actions) {
            harness h;
            reach(h, from);
            ASSERT_EQ(h.current(), from) << name_of(from);
            const auto before_state = h.machine.state();
            const auto before_split = h.split;
            const std::size_t before_events = h.events.size();
            const command_result r = apply(h, a);
            const auto it = allowed.find(a);
            const std::string what = std::string(name(a)) + " in " + std::string(name_of(from));
            if (it == allowed.end()) {
                EXPECT_NE(r.refused, "") << what;
                EXPECT_NE(r.refused.find(name_of(from)), std::string::npos) << r.refused;
                EXPECT_EQ(h.current(), from) << what;
                EXPECT_EQ(h.split, before_split) << what;
                EXPECT_EQ(h.machine.split(), before_split) << what;
                EXPECT_EQ(h.machine.state().weight, before_state.weight) << what;
                EXPECT_EQ(h.events.size(), before_events) << what;
                EXPECT_EQ(h.machine.state().events.size(), before_state.events.size()) << what;
            } else {
                EXPECT_EQ(r.refused, "") << what;
                EXPECT_EQ(h.current(), it->second) << what;
                EXPECT_EQ(h.split, h.machine.split()) << what;
            }
        }
    }
}

TEST(rollout_machine, manual_promotions_move_the_weight) {
    harness h;
    h.start();
    h.validate();
    h.act(h.machine.promote(h.now, false));
    EXPECT_EQ(h.split, (traffic_split{0, 25}));
    h.act(h.machine.pause(h.now));
    h.act(h.machine.promote(h.now, false));  // from paused: the next step, progressing again
    EXPECT_EQ(h.split, (traffic_split{0, 50}));
    EXPECT_EQ(h.current(), phase::progressing);
    h.act(h.machine.promote(h.now, true));
    EXPECT_EQ(h.split, (traffic_split{1, 0}));
    EXPECT_EQ(h.current(), phase::baking);
}

TEST(rollout_machine, abort_and_rollback_send_everything_to_stable) {
    for (const bool abort : {true, false}) {
        harness h;
        h.start();
        h.validate();
        h.act(h.machine.promote(h.now, false));
        EXPECT_EQ(h.split, (traffic_split{0, 25}));
        h.act(abort ? h.machine.abort(h.now) : h.machine.rollback(h.now));
        EXPECT_EQ(h.split, (traffic_split{0, 0}));
        EXPECT_EQ(h.last().cause, "manual");
        EXPECT_EQ(h.machine.state().history.back().result,
                  abort ? phase::aborted : phase::rolled_back);
    }
}

TEST(rollout_machine, rollback_after_success_returns_to_the_previous_slot) {
    harness h;
    auto rollout = harness::quick_rollout();
    rollout.bake = 0s;
    h.start(rollout);
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::succeeded));
    EXPECT_EQ(h.split, (traffic_split{1, 0}));
    h.act(h.machine.rollback(h.now));
    EXPECT_EQ(h.current(), phase::rolled_back);
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
    ASSERT_EQ(h.machine.state().history.size(), 1U);
    EXPECT_EQ(h.machine.state().history.back().result, phase::rolled_back);
    // Only once: the previous slot is already back.
    EXPECT_NE(h.act(h.machine.rollback(h.now)).refused, "");
}

// --- restart ---

TEST(rollout_machine, a_restored_rollout_runs_its_gate_then_resumes_at_its_step) {
    harness h;
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until([&] { return h.split.weight(1) == 25; }));
    const rollout_state saved = h.machine.state();

    harness after;
    after.split = h.split;              // what the state file put in force before the first request
    after.now.wall = h.now.wall + 30s;  // the restart took a while
    after.keep(after.machine.restore(saved, after.now));
    EXPECT_EQ(after.current(), phase::waiting);
    EXPECT_EQ(after.last().kind, "restarted");
    EXPECT_EQ(after.machine.split(), (traffic_split{0, 25}));  // the weight stays in force
    ASSERT_TRUE(after.machine.validation().has_value());
    EXPECT_FALSE(after.machine.validation()->full);  // the gate only: hooks ran before
    after.run(1min);                                 // no judging while the gate runs
    EXPECT_EQ(after.current(), phase::waiting);
    after.validate();
    EXPECT_EQ(after.current(), phase::progressing);
    EXPECT_EQ(after.split, (traffic_split{0, 25}));
    ASSERT_TRUE(after.run_until_phase(phase::succeeded));
    EXPECT_EQ(after.machine.state().history.back().id, saved.id);
}

TEST(rollout_machine, a_restored_rollout_whose_gate_fails_is_rolled_back) {
    harness h;
    h.start();
    h.validate();
    const rollout_state saved = h.machine.state();
    harness after;
    after.split = h.split;
    after.keep(after.machine.restore(saved, after.now));
    after.validate({false, "health gate: 127.0.0.1:9002 status 503", "health", std::nullopt});
    EXPECT_EQ(after.current(), phase::rolled_back);
    EXPECT_EQ(after.split, (traffic_split{0, 0}));
    EXPECT_EQ(after.last().cause, "health");
    EXPECT_EQ(after.last().reason, "after a restart: health gate: 127.0.0.1:9002 status 503");
}

TEST(rollout_machine, fast_rollback_is_armed_while_a_restored_rollout_runs_its_gate) {
    harness h;
    h.start();
    h.validate();
    harness after;
    after.split = h.split;
    after.keep(after.machine.restore(h.machine.state(), after.now));
    ASSERT_EQ(after.current(), phase::waiting);
    after.load.error_rate[1] = 1.0;  // green at 10% fails everything while the gate runs
    ASSERT_TRUE(after.run_until_phase(phase::rolled_back, 2s));
    EXPECT_EQ(after.last().cause, "fast_rollback");
    EXPECT_EQ(after.split, (traffic_split{0, 0}));
}

TEST(rollout_machine, a_restored_paused_rollout_stays_paused) {
    harness h;
    h.start();
    h.validate();
    h.act(h.machine.pause(h.now));
    harness after;
    after.split = h.split;
    EXPECT_TRUE(after.machine.restore(h.machine.state(), after.now).events.empty());
    EXPECT_EQ(after.current(), phase::paused);
    EXPECT_FALSE(after.machine.validation().has_value());
    EXPECT_EQ(after.machine.split(), (traffic_split{0, 10}));
}

TEST(rollout_machine, a_restored_bake_finishes_what_remained) {
    harness h;
    auto rollout = harness::quick_rollout();
    rollout.bake = 5min;
    h.start(rollout);
    h.validate();
    h.act(h.machine.promote(h.now, true));
    h.run(2min);
    harness after;
    after.split = h.split;
    after.now.wall = h.now.wall + 1min;  // down for a minute
    after.keep(after.machine.restore(h.machine.state(), after.now));
    EXPECT_EQ(after.machine.split(), (traffic_split{1, 0}));
    after.validate();
    EXPECT_EQ(after.current(), phase::baking);
    const auto resumed = after.now.steady;
    ASSERT_TRUE(after.run_until_phase(phase::succeeded));
    // 5 minutes of bake, of which 3 had passed in wall time.
    EXPECT_GE(after.now.steady - resumed, 2min);
    EXPECT_LT(after.now.steady - resumed, 2min + 1s);
}

TEST(rollout_machine, a_restored_paused_rollout_runs_its_gate_when_resumed) {
    harness h;
    h.start();
    h.validate();
    h.act(h.machine.promote(h.now, false));
    h.act(h.machine.pause(h.now));
    harness after;
    after.split = h.split;
    after.keep(after.machine.restore(h.machine.state(), after.now));
    after.act(after.machine.resume(after.now));
    EXPECT_EQ(after.current(), phase::waiting);
    EXPECT_EQ(after.machine.split(), (traffic_split{0, 25}));
    ASSERT_TRUE(after.machine.validation().has_value());
    EXPECT_FALSE(after.machine.validation()->full);
    after.validate();
    EXPECT_EQ(after.current(), phase::progressing);
    EXPECT_EQ(after.split, (traffic_split{0, 25}));
}

TEST(rollout_machine, finished_rollouts_stay_as_they_were_after_a_restart) {
    harness h;
    h.start();
    h.act(h.machine.abort(h.now));
    harness after;
    EXPECT_TRUE(after.machine.restore(h.machine.state(), after.now).events.empty());
    EXPECT_EQ(after.current(), phase::aborted);
    EXPECT_EQ(after.machine.state().history.size(), 1U);
}

TEST(rollout_machine, history_and_events_keep_the_last_50) {
    harness h;
    config::rollout_config rollout;
    rollout.strategy = config::rollout_strategy::blue_green;
    rollout.bake = 0s;
    for (int i = 0; i < 60; ++i) {
        h.start(rollout);
        h.validate();
    }
    EXPECT_EQ(h.machine.state().history.size(), 50U);
    EXPECT_EQ(h.machine.state().events.size(), 50U);
    EXPECT_EQ(h.machine.state().history.back().id, "r60");
    EXPECT_EQ(h.machine.state().history.front().id, "r11");
}

TEST(rollout_machine, phase_names_round_trip) {
    for (std::size_t i = 0; i < phase_names.size(); ++i) {
        const auto p = static_cast<phase>(i);
        EXPECT_EQ(phase_named(name_of(p)), p);
    }
    EXPECT_FALSE(phase_named("running").has_value());
    EXPECT_TRUE(is_running(phase::awaiting_approval));
    EXPECT_FALSE(is_running(phase::succeeded));
}

}  // namespace
}  // namespace switchyard::analysis

// --- reload ---

namespace switchyard::analysis {
namespace {

TEST(rollout_machine_reload, new_steps_keep_the_weight_in_force_and_go_on_above_it) {
    harness h;
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until([&] { return h.machine.state().weight == 25; }));
    const std::size_t events = h.events.size();
    auto rollout = harness::quick_rollout();
    rollout.steps = {5, 30, 100};
    h.machine.reconfigure(h.now, h.machine.analysis(), rollout);

    EXPECT_TRUE(h.events.size() == events);  // nothing moved
    EXPECT_EQ(h.current(), phase::progressing);
    EXPECT_EQ(h.machine.state().weight, 25U);
    EXPECT_EQ(h.machine.state().config.steps, (std::vector<std::uint32_t>{5, 25, 30, 100}));
    EXPECT_EQ(h.machine.state().step, 1U);
    ASSERT_TRUE(h.run_until([&] { return h.machine.state().weight != 25; }));
    EXPECT_EQ(h.machine.state().weight, 30U);
    EXPECT_EQ(h.last().kind, "step");
}

TEST(rollout_machine_reload, the_strategy_of_a_running_rollout_stays) {
    harness h;
    h.start();
    auto rollout = harness::quick_rollout();
    rollout.strategy = config::rollout_strategy::blue_green;
    rollout.steps = {50, 100};
    h.machine.reconfigure(h.now, h.machine.analysis(), rollout);
    EXPECT_EQ(h.machine.state().config.strategy, config::rollout_strategy::canary);
    EXPECT_EQ(h.machine.state().config.steps, (std::vector<std::uint32_t>{50, 100}));
    h.validate();
    EXPECT_EQ(h.machine.state().weight, 50U);  // a fresh rollout starts at the new first step
}

TEST(rollout_machine_reload, new_analysis_settings_wait_for_the_next_interval) {
    harness h(without_fast_rollback());
    h.start();
    h.validate();
    h.tick();  // opens the first interval
    auto analysis = without_fast_rollback();
    analysis.interval = 20s;
    h.machine.reconfigure(h.now, analysis, h.machine.state().config);
    EXPECT_EQ(h.machine.analysis().interval, config::analysis_config{}.interval);
    ASSERT_TRUE(h.run_until([&] { return h.machine.state().weight == 25; }));
    EXPECT_EQ(h.machine.analysis().interval, 20s);
}

// --- judging a blue-green rollout on mirrored traffic (README, "Mirroring") ---

// Copies every request the stable slot (blue) answered to green's mirror counts, answered with
// `status` in 5 ms; a copy whose status class differs from 2xx is a mismatch (blue's rare 500s
// are left out of the comparison here, as they make no difference to the rates judged).
void mirror_blue_to_green(harness& h, const int& status) {
    h.before_tick = [&h, &status, seen = std::uint64_t{0}]() mutable {
        const std::uint64_t now = h.totals[0].requests();
        auto& m = h.totals[1].mirror;
        for (; seen < now; ++seen) {
            m.by_status[static_cast<std::size_t>(status - 100)] += 1;
            m.mismatches += status / 100 != 2 ? 1 : 0;
            m.response.buckets[latency_buckets::index(5000)] += 1;
        }
    };
}

config::rollout_config blue_green_rollout() {
    auto rollout = harness::quick_rollout();
    rollout.strategy = config::rollout_strategy::blue_green;
    return rollout;
}

TEST(rollout_machine, blue_green_with_mirror_is_judged_on_mirrored_traffic_before_the_switch) {
    harness h;
    int status = 200;
    mirror_blue_to_green(h, status);
    h.machine.set_mirror(true);
    h.start(blue_green_rollout());
    h.validate();
    EXPECT_EQ(h.current(), phase::progressing);
    EXPECT_TRUE(h.machine.shadow_judging());
    EXPECT_EQ(h.split, (traffic_split{0, 0}));  // no user request goes to green yet
    ASSERT_TRUE(h.run_until_phase(phase::baking));
    EXPECT_EQ(h.totals[1].requests(), 0U);  // the switch came before any user request
    EXPECT_EQ(h.split, (traffic_split{1, 0}));
    ASSERT_TRUE(h.machine.last_judgement().has_value());
    const judgement& j = *h.machine.last_judgement();
    EXPECT_EQ(j.result, verdict::pass);
    EXPECT_GE(j.canary_requests, 20U);  // the mirrored answers were judged
    EXPECT_EQ(kinds(h.events), (std::vector<std::string>{"started", "progressing", "promoted"}));
    EXPECT_NE(h.events[1].reason.find("mirrored traffic"), std::string::npos);
    EXPECT_EQ(h.events[2].reason.rfind("passed on mirrored traffic", 0), 0U);
}

TEST(rollout_machine, blue_green_judged_on_a_mirror_answering_500_rolls_back) {
    harness h(without_fast_rollback());
    int status = 500;
    mirror_blue_to_green(h, status);
    h.machine.set_mirror(true);
    h.start(blue_green_rollout());
    h.validate();
    ASSERT_TRUE(h.run_until([&] { return !is_running(h.current()); }));
    EXPECT_EQ(h.current(), phase::rolled_back);
    EXPECT_EQ(h.last().cause, "error_rate");
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
    EXPECT_EQ(h.totals[1].requests(), 0U);  // green never took a user request
    EXPECT_EQ(h.machine.failed_in_a_row(), 3U);
}

TEST(rollout_machine, blue_green_judged_on_mirrored_traffic_fast_rolls_back_on_mirror_errors) {
    harness h;
    int status = 503;
    mirror_blue_to_green(h, status);
    h.machine.set_mirror(true);
    h.start(blue_green_rollout());
    h.validate();
    ASSERT_TRUE(h.run_until([&] { return !is_running(h.current()); }, 5s));
    EXPECT_EQ(h.current(), phase::rolled_back);
    EXPECT_EQ(h.last().cause, "fast_rollback");
}

TEST(rollout_machine, mirror_mismatch_rate_rolls_back_a_mirror_that_answers_otherwise) {
    config::analysis_config a = without_fast_rollback();
    config::check_config mismatch;
    mismatch.name = "mirror_mismatch_rate";
    mismatch.metric = config::check_metric::mirror_mismatch_rate;
    mismatch.limit = 0.05;
    a.checks = {mismatch};
    harness h(a);
    int status = 404;  // no error, but not what blue answered
    mirror_blue_to_green(h, status);
    h.machine.set_mirror(true);
    h.start(blue_green_rollout());
    h.validate();
    ASSERT_TRUE(h.run_until([&] { return !is_running(h.current()); }));
    EXPECT_EQ(h.current(), phase::rolled_back);
    EXPECT_EQ(h.last().cause, "mirror_mismatch_rate");
    ASSERT_FALSE(h.last().checks.empty());
    EXPECT_DOUBLE_EQ(h.last().checks[0].value, 1.0);
}

TEST(rollout_machine, blue_green_without_mirror_switches_unjudged_as_before) {
    harness h;
    h.start(blue_green_rollout());
    h.validate();
    EXPECT_EQ(h.current(), phase::baking);
    EXPECT_FALSE(h.machine.shadow_judging());
}

TEST(rollout_machine, shadow_judging_pauses_when_a_reload_turns_mirror_off) {
    harness h;
    int status = 200;
    mirror_blue_to_green(h, status);
    h.machine.set_mirror(true);
    h.start(blue_green_rollout());
    h.validate();
    h.tick();
    h.machine.set_mirror(false);
    h.tick();
    EXPECT_EQ(h.current(), phase::paused);
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
    h.machine.set_mirror(true);
    h.act(h.machine.resume(h.now));
    EXPECT_EQ(h.current(), phase::progressing);
    ASSERT_TRUE(h.run_until_phase(phase::baking));
}

TEST(judge, mirror_mismatch_rate_is_judged_on_shadow_windows_only) {
    config::check_config mismatch;
    mismatch.name = "mirror_mismatch_rate";
    mismatch.metric = config::check_metric::mirror_mismatch_rate;
    mismatch.limit = 0.05;
    const std::vector<config::check_config> checks{mismatch};
    slot_window canary = smoke_window(100, 0, 2ms);
    canary.mismatches = 10;
    const slot_window stable = smoke_window(100, 0, 2ms);
    // Not a shadow window: the check is left out.
    EXPECT_TRUE(judge(checks, 20, canary, stable).checks.empty());
    canary.shadow = true;
    const judgement j = judge(checks, 20, canary, stable);
    ASSERT_EQ(j.checks.size(), 1U);
    EXPECT_EQ(j.result, verdict::fail);
    EXPECT_DOUBLE_EQ(j.checks[0].value, 0.1);
    canary.mismatches = 5;
    EXPECT_EQ(judge(checks, 20, canary, stable).result, verdict::pass);
}

TEST(metrics, mirror_difference_builds_a_shadow_window_from_the_mirror_counts) {
    slot_totals before;
    slot_totals after;
    after.by_status[100] = 7;  // the slot's own traffic is not in a shadow window
    after.mirror.by_status[100] = 30;
    after.mirror.by_status[400] = 5;
    after.mirror.failures[0] = 2;
    after.mirror.mismatches = 7;
    after.mirror.response.buckets[latency_buckets::index(5000)] = 35;
    before.mirror.by_status[100] = 10;
    const slot_window w = mirror_difference(after, before);
    EXPECT_TRUE(w.shadow);
    EXPECT_EQ(w.requests, 27U);
    EXPECT_EQ(w.errors, 7U);
    EXPECT_EQ(w.mismatches, 7U);
    EXPECT_EQ(w.upstream_quantile(0.5),
              microseconds(latency_buckets::lower(latency_buckets::index(5000)) +
                           (latency_buckets::upper(latency_buckets::index(5000)) -
                            latency_buckets::lower(latency_buckets::index(5000))) /
                               2));
}

// --- the sequential judge (README, "Sequential judgement") ---

config::analysis_config sequential(config::promote_rule promote = config::promote_rule::interval) {
    config::analysis_config a;
    a.method = config::analysis_method::sequential;
    a.promote = promote;
    a.fast_rollback.enabled = false;  // what is judged here is the sequential tests
    return a;
}

const check_result* check_named(const std::vector<check_result>& checks, std::string_view name) {
    for (const check_result& c : checks) {
        if (c.name == name) {
            return &c;
        }
    }
    return nullptr;
}

TEST(rollout_sequential, identical_slots_step_every_interval_and_succeed) {
    harness h(sequential());
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until_phase(phase::succeeded));
    EXPECT_EQ(kinds(h.events), (std::vector<std::string>{"started", "progressing", "step", "step",
                                                         "step", "promoted", "succeeded"}));
    // Each step's judgement carries the ratio checks' evidence, short of its line.
    const rollout_event& step = h.events[2];
    const check_result* errors = check_named(step.checks, "error_rate_ratio");
    ASSERT_NE(errors, nullptr);
    EXPECT_EQ(errors->result, verdict::pass);
    ASSERT_EQ(errors->evidence.size(), 1U);
    EXPECT_EQ(errors->evidence[0].test, sequential_test::errors);
    EXPECT_LT(errors->evidence[0].e_value, errors->evidence[0].e_threshold);
    EXPECT_GT(errors->evidence[0].canary_requests, 0U);
    const check_result* latency = check_named(step.checks, "latency_p95_ratio");
    ASSERT_NE(latency, nullptr);
    ASSERT_EQ(latency->evidence.size(), 2U);
    EXPECT_EQ(latency->evidence[0].test, sequential_test::exceedance);
    EXPECT_EQ(latency->evidence[1].test, sequential_test::quantile);
    // The absolute checks are judged per interval as before, with no evidence.
    const check_result* guard = check_named(step.checks, "error_rate");
    ASSERT_NE(guard, nullptr);
    EXPECT_TRUE(guard->evidence.empty());
    // alpha is spread over the three tests.
    ASSERT_EQ(h.machine.evidence().size(), 3U);
    EXPECT_DOUBLE_EQ(h.machine.evidence()[0].alpha, 0.01 / 3);
}

TEST(rollout_sequential, a_canary_with_20_percent_errors_is_rolled_back_within_the_first_interval) {
    harness h(sequential());
    h.load.error_rate[1] = 0.2;
    h.start();
    h.validate();
    const auto progressing = h.now.wall;
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back));
    // The threshold judge needs three failed intervals; the sequential one looks every second.
    EXPECT_LT(h.last().at - progressing, 10s);
    EXPECT_EQ(h.last().cause, "error_rate_ratio");
    EXPECT_EQ(h.split, (traffic_split{0, 0}));
    const check_result* errors = check_named(h.last().checks, "error_rate_ratio");
    ASSERT_NE(errors, nullptr);
    EXPECT_EQ(errors->result, verdict::fail);
    ASSERT_EQ(errors->evidence.size(), 1U);
    EXPECT_GE(errors->evidence[0].e_value, errors->evidence[0].e_threshold);
    EXPECT_TRUE(errors->evidence[0].rejected);
    EXPECT_LE(errors->evidence[0].p_value, 0.01 / 3);
    EXPECT_NE(h.last().reason.find("error_rate_ratio"), std::string::npos) << h.last().reason;
}

TEST(rollout_sequential, a_canary_300ms_slower_is_rolled_back_on_latency_within_seconds) {
    harness h(sequential());
    h.load.latency[1] = 308ms;
    h.start();
    h.validate();
    const auto progressing = h.now.wall;
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back));
    EXPECT_LT(h.last().at - progressing, 10s);
    EXPECT_EQ(h.last().cause, "latency_p95_ratio");
}

TEST(rollout_sequential, a_pause_holds_the_sequential_judgement_and_resume_takes_it_up) {
    harness h(sequential());
    h.start();
    h.validate();
    h.run(3s);
    ASSERT_EQ(h.act(h.machine.pause(h.now)).refused, "");
    h.load.error_rate[1] = 0.3;
    h.run(30s);
    EXPECT_EQ(h.current(), phase::paused);  // nothing judged while paused
    EXPECT_EQ(h.split, (traffic_split{0, 10}));
    ASSERT_EQ(h.act(h.machine.resume(h.now)).refused, "");
    const auto resumed = h.now.wall;
    ASSERT_TRUE(h.run_until_phase(phase::rolled_back, 30s));
    EXPECT_LT(h.last().at - resumed, 10s);
    EXPECT_EQ(h.last().cause, "error_rate_ratio");
}

TEST(rollout_sequential, the_threshold_method_keeps_no_evidence) {
    harness h;
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until([&] { return h.last().kind == "step"; }));
    EXPECT_TRUE(h.machine.evidence().empty());
    for (const check_result& c : h.last().checks) {
        EXPECT_TRUE(c.evidence.empty()) << c.name;
    }
}

// promote: evidence, on the error checks alone: identical error rates are shown within 2x in
// time; a canary at exactly twice the stable's rate never is, and the step pauses.
config::analysis_config evidence_on_errors(std::chrono::milliseconds max_step) {
    config::analysis_config a = sequential(config::promote_rule::evidence);
    a.checks = {config::default_checks()[0], config::default_checks()[2]};
    a.max_step_duration = max_step;
    return a;
}

TEST(rollout_sequential, promote_evidence_waits_for_the_canary_shown_within_tolerance) {
    harness h(evidence_on_errors(1h));
    h.load.error_rate = {0.03, 0.03};
    h.start();
    h.validate();
    ASSERT_TRUE(h.run_until([&] { return h.last().kind == "step"; }));
    // Before the step, intervals that passed the guard rails waited for the evidence.
    std::size_t waited = 0;
    for (const rollout_event& e : h.events) {
        if (e.kind == "inconclusive") {
            EXPECT_EQ(e.reason.rfind("waiting for evidence: error_rate_ratio", 0), 0U) << e.reason;
            ++waited;
        }
    }
    EXPECT_GT(waited, 0U);
    const check_result* errors = check_named(h.last().checks, "error_rate_ratio");
    ASSERT_NE(errors, nullptr);
    ASSERT_EQ(errors->evidence.size(), 1U);
    EXPECT_TRUE(errors->evidence[0].within);
    EXPECT_GE(errors->evidence[0].e_value_within, errors->evidence[0].e_threshold);
    ASSERT_TRUE(h.run_until_phase(phase::succeeded));
}

TEST(rollout_sequential, promote_evidence_pauses_after_max_step_duration_with_the_reason) {
    harness h(evidence_on_errors(2min));
    h.load.error_rate = {0.02, 0.04};  // at the 2x tolerance: never shown within, nor worse
    h.start();
    h.validate();
    const auto progressing = h.now.wall;
    ASSERT_TRUE(h.run_until_phase(phase::paused));
    EXPECT_GE(h.last().at - progressing, 2min);
    EXPECT_EQ(h.split, (traffic_split{0, 10}));  // the weight held
    EXPECT_NE(h.last().reason.find("no evidence after 2m at 10%"), std::string::npos)
        << h.last().reason;
    EXPECT_NE(h.last().reason.find("error_rate_ratio"), std::string::npos) << h.last().reason;
}

TEST(rollout_sequential, a_restart_starts_the_evidence_afresh) {
    harness h(sequential());
    h.load.error_rate = {0.05, 0.05};
    h.start();
    h.validate();
    h.run(30s);
    ASSERT_EQ(h.current(), phase::progressing);
    ASSERT_GT(h.machine.evidence()[0].canary_requests, 0U);
    harness restarted(sequential());
    restarted.now = h.now;
    restarted.totals = h.totals;
    restarted.keep(restarted.machine.restore(h.machine.state(), restarted.now));
    ASSERT_EQ(restarted.current(), phase::waiting);
    ASSERT_EQ(restarted.machine.evidence().size(), 3U);
    EXPECT_EQ(restarted.machine.evidence()[0].canary_requests, 0U);
}

}  // namespace
}  // namespace switchyard::analysis
