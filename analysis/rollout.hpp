#pragma once
// The rollout: canary and blue-green rollouts that step up, promote, or roll back from the
// judge's verdicts on the proxy's own measurements.
//
// Like traffic_split, the machine takes time and metrics as inputs and returns decisions: no
// sockets, no clocks, no threads. The controller on the admin thread drives it. The controller
// calls tick() several times a second with the merged totals, runs the validation the machine
// asks for (health gate, pre_rollout hooks, smoke run) and reports back, applies split() after
// every event, and persists state(). A test drives an hour of rollout in milliseconds.
//
// Phases (README, "Rollouts"): idle -> waiting (validation) -> progressing (canary steps) ->
// [awaiting-approval] -> baking (100% on the new slot, still judged) -> succeeded; or
// rolled-back / aborted, which send everything back to the stable slot. paused holds the split
// and the interval judgement; fast rollback stays armed in every phase that moves traffic.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/judge.hpp"
#include "analysis/metrics.hpp"
#include "analysis/sequential.hpp"
#include "analysis/traffic_split.hpp"
#include "config/config.hpp"

namespace switchyard::analysis {

enum class phase : std::uint8_t {
    idle,
    waiting,
    progressing,
    paused,
    awaiting_approval,
    baking,
    succeeded,
    rolled_back,
    aborted,
};

// The names of every phase, in enum order: the `phase` label of switchyard_rollout_phase.
inline constexpr std::array<std::string_view, 9> phase_names{
    "idle",   "waiting",   "progressing", "paused",  "awaiting-approval",
    "baking", "succeeded", "rolled-back", "aborted",
};
std::string_view name_of(phase p) noexcept;
std::optional<phase> phase_named(std::string_view name) noexcept;
// A rollout owns the split from waiting through baking; the other phases leave it to the API.
bool is_running(phase p) noexcept;

// One moment: intervals run on the steady clock, records show wall time.
struct instant {
    std::chrono::steady_clock::time_point steady;
    std::chrono::system_clock::time_point wall;
};

// One thing that happened to a rollout: logged, sent to the events webhooks, kept for /status.
struct rollout_event {
    std::string rollout;  // the rollout's id
    // started, progressing, step, check-failed, inconclusive, paused, resumed, restarted,
    // awaiting-approval, promoted, succeeded, rolled-back, aborted
    std::string kind;
    phase to = phase::idle;  // the phase after it
    std::chrono::system_clock::time_point at;
    traffic_split split;  // the split after it
    std::string reason;   // why, in a sentence
    std::string cause;    // rolled-back: the `reason` label of switchyard_rollbacks_total
    std::vector<check_result> checks;  // the judgement behind it, if one was
};

// A finished rollout, for GET /rollout/history.
struct rollout_record {
    std::string id;
    config::rollout_strategy strategy = config::rollout_strategy::canary;
    slot_index from = 0;              // the stable slot
    slot_index to = 1;                // the slot the rollout moved toward
    phase result = phase::succeeded;  // succeeded, rolled-back or aborted
    std::string reason;
    std::chrono::system_clock::time_point started;
    std::chrono::system_clock::time_point finished;
    std::uint32_t weight = 0;  // the highest weight the new slot reached
};

// What validation found: the health gate, the pre_rollout hooks and the smoke run.
struct validation_result {
    bool ok = true;
    std::string reason;  // when not ok: which endpoint or hook failed, and how
    std::string cause;   // when not ok: "health", "pre_rollout" or "smoke"
    // The smoke run's answers per slot (by slot index); absent when none ran.
    std::optional<per_slot<slot_window>> smoke;
};

// What the machine asks the controller to validate while it waits.
struct validation_request {
    std::string rollout;  // its id, to hand back with the result
    slot_index slot = 1;  // the slot traffic moves toward
    bool full = true;     // health gate, hooks and smoke; false: a restored rollout's gate only
};

// Everything about rollouts that survives a restart (the controller persists it).
struct rollout_state {
    std::string id;  // of the current or last rollout; empty when none has run
    config::rollout_config config;
    phase current = phase::idle;
    // paused: where resume returns; waiting after a restart: where the rollout returns once its
    // health gate passes again (idle for a fresh rollout, which starts at its first step).
    phase resume_to = phase::idle;
    slot_index stable = 0;
    slot_index canary = 1;
    std::size_t step = 0;      // the index in config.steps of the weight in force
    std::uint32_t weight = 0;  // the new slot's weight now
    std::uint32_t max_weight = 0;
    std::chrono::system_clock::time_point started;
    std::chrono::system_clock::time_point last_transition;
    std::chrono::system_clock::time_point bake_started;
    std::string reason;                  // of the last transition
    std::deque<rollout_record> history;  // oldest first, at most history_limit
    std::deque<rollout_event> events;    // oldest first, at most events_limit

    static constexpr std::size_t history_limit = 50;
    static constexpr std::size_t events_limit = 50;
};

// What one call produced: the events in order, the judgements made (for the metrics), and the
// rollout that ended, if one did.
struct machine_output {
    std::vector<rollout_event> events;
    std::vector<judgement> judged;
    std::optional<rollout_record> finished;
};

// A command's answer: refused (the API's 409, with the phase) and nothing changed, or done.
struct command_result {
    std::string refused;  // empty when the command was carried out
    machine_output out;
};

class rollout_machine {
public:
    explicit rollout_machine(config::analysis_config analysis);

    const rollout_state& state() const noexcept { return state_; }
    // The split the rollout last asked for; the controller applies it after every event.
    traffic_split split() const noexcept;
    // What to validate while waiting and no validation for it has been reported.
    std::optional<validation_request> validation() const;
    // The last interval's judgement, for /status; absent before the first.
    const std::optional<judgement>& last_judgement() const noexcept { return last_judgement_; }
    std::uint32_t failed_in_a_row() const noexcept { return failed_in_a_row_; }
    std::uint32_t inconclusive_in_a_row() const noexcept { return inconclusive_in_a_row_; }
    // The sequential tests of the rollout running or last run (analysis.method: sequential);
    // empty with the threshold method, or before a rollout's first second of traffic.
    std::span<const test_evidence> evidence() const noexcept;

    // --- commands (the admin API) ---
    // Starts a rollout toward current.other(), with `rollout` (overrides applied). `id` names it.
    command_result start(instant now, std::string id, const config::rollout_config& rollout,
                         traffic_split current);
    command_result promote(instant now, bool full);
    command_result pause(instant now);
    command_result resume(instant now);
    command_result approve(instant now);
    command_result abort(instant now);
    command_result rollback(instant now);

    // --- inputs ---
    // The outcome of the validation requested for rollout `id`; ignored when that rollout is no
    // longer waiting for it.
    machine_output validated(instant now, const std::string& id, const validation_result& result);
    // Several times a second: the merged totals of both slots at `now`. Judges each interval,
    // watches for hard failures, ends the bake.
    machine_output tick(instant now, const per_slot<slot_totals>& totals);

    // After a restart, takes over `saved`. A rollout that was moving traffic goes back to waiting
    // for its health gate, then resumes where it was with fresh windows; a paused one stays
    // paused; finished ones stay as they were. The bake counts wall time since promotion, pauses
    // left out.
    machine_output restore(rollout_state saved, instant now);

    // A reload (README, "Reloading"). `analysis` applies from the next judgement interval: the
    // one in progress is judged on the settings it began with. A running rollout takes `rollout`
    // for what is still ahead of it and keeps its phase, step, weight and its runs of failed and
    // inconclusive judgements; its strategy stays. New steps keep the weight in force as the
    // current step and go on with the new list's steps above it; a new bake counts from the
    // promotion (at least one interval from now). Emits nothing: the split does not change.
    void reconfigure(instant now, config::analysis_config analysis,
                     const config::rollout_config& rollout);
    // The analysis settings judging now (a reload's wait for the next interval).
    const config::analysis_config& analysis() const noexcept { return analysis_; }

    // Whether the proxy mirrors (mirror with a percent above 0), at start and at every reload.
    // With it, a blue-green rollout judges the new slot on mirrored traffic before the switch
    // (README, "Mirroring"): once validated it is progressing at 0%, each interval's window of
    // the new slot is made of the mirrored answers (mirror_difference), the stable slot's of its
    // own traffic; a pass switches (or waits for approval), `threshold` failures in a row roll
    // back, and fast rollback watches the mirrored answers.
    void set_mirror(bool on) noexcept { mirror_ = on; }
    // True while a blue-green rollout judges, or holds to judge, the new slot on mirrored
    // traffic: progressing at 0%, or paused or restored to return there.
    bool shadow_judging() const noexcept;

private:
    struct fast_sample {
        std::chrono::steady_clock::time_point at;
        std::uint64_t requests = 0;
        std::uint64_t errors = 0;
    };

    // Moves to phase `to` and appends the event to `out`; its split is split() after the move.
    // `transition`: false for events that change neither phase nor weight (check-failed,
    // inconclusive), which leave last_transition alone.
    void emit(instant now, machine_output& out, std::string kind, phase to, std::string reason,
              std::string cause = {}, bool transition = true);
    // Keeps the events of `out` in state().events.
    void remember(const machine_output& out);
    void await_approval(instant now, machine_output& out, std::string reason);
    // Puts the new slot at steps[step], or holds for approval before the last step.
    void go_to_step(instant now, machine_output& out, std::size_t step, std::string reason,
                    bool approved);
    void promote_fully(instant now, machine_output& out, std::string reason);
    void finish(instant now, machine_output& out, phase result, std::string kind,
                std::string reason, std::string cause);
    void on_validated_blue_green(instant now, machine_output& out, const validation_result& result);
    // `awaiting_evidence` (promote: evidence): the interval passed but the sequential tests have
    // not shown the canary within tolerance yet; why not, in a sentence.
    void on_judgement(instant now, machine_output& out, judgement j,
                      const std::string& awaiting_evidence = {});
    // analysis.method: sequential. Fresh tests for the rollout (at its start, after a restart,
    // when a reload changes what they test); none with the threshold method.
    void restart_evidence();
    // Feeds the sequential judge once a second of traffic has passed; true when it rolled back.
    bool observe_second(instant now, const per_slot<slot_totals>& totals, bool shadow,
                        machine_output& out);
    // Puts the sequential verdicts and evidence on the interval's ratio checks; sets
    // `awaiting_evidence` as on_judgement() takes it.
    void overlay_evidence(judgement& j, std::string& awaiting_evidence) const;
    // The sequential checks with their evidence now, `failed` failing: a rollback event's.
    std::vector<check_result> evidence_results(std::string_view failed) const;
    // The bake's time is up: success, or a pause when not one judgement passed in it.
    void end_bake(instant now, machine_output& out);
    // Sets the bake's end when it goes on after a pause or a restart.
    void resume_bake(instant now);
    bool blue_green() const noexcept {
        return state_.config.strategy == config::rollout_strategy::blue_green;
    }
    void new_window() noexcept;
    // Puts a reload's analysis settings in force, before a window opens.
    void adopt_pending_analysis();
    void reset_judgement() noexcept;
    bool fast_rollback_due(instant now, std::uint64_t requests, std::uint64_t errors,
                           std::string& reason);
    std::string refuse(std::string_view action) const;

    config::analysis_config analysis_;
    std::optional<config::analysis_config> pending_analysis_;  // a reload's, for the next window
    rollout_state state_;
    // The judgement window: the totals it started from, and when.
    std::optional<per_slot<slot_totals>> window_base_;
    std::chrono::steady_clock::time_point window_started_{};
    std::chrono::steady_clock::time_point bake_ends_{};
    std::optional<judgement> last_judgement_;
    std::uint32_t failed_in_a_row_ = 0;
    std::uint32_t inconclusive_in_a_row_ = 0;
    std::uint32_t bake_passes_ = 0;  // passing judgements since the bake began (or resumed after
                                     // a restart)
    bool gate_on_resume_ = false;    // restored while paused: resume runs the health gate first
    std::deque<fast_sample> fast_;   // the canary's counts over the fast rollback window
    bool mirror_ = false;            // see set_mirror
    // analysis.method: sequential: the tests, and the totals their current second started from.
    std::optional<sequential_judge> sequential_;
    std::optional<per_slot<slot_totals>> second_base_;
    std::chrono::steady_clock::time_point second_started_{};
};

}  // namespace switchyard::analysis
