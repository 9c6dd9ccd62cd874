#include "analysis/rollout.hpp"

#include <algorithm>
#include <cstdio>

namespace switchyard::analysis {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::string percent(std::uint32_t weight) {
    return std::to_string(weight) + "%";
}

// "1.5s", "250ms", "5m": how long, for reasons.
std::string format_duration(milliseconds d) {
    char buf[32];
    if (d.count() % 60000 == 0 && d.count() >= 60000) {
        std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(d.count() / 60000));
    } else if (d.count() >= 1000) {
        std::snprintf(buf, sizeof buf, "%gs", static_cast<double>(d.count()) / 1000);
    } else {
        std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(d.count()));
    }
    return buf;
}

std::uint64_t gain(std::uint64_t now, std::uint64_t before) noexcept {
    return now > before ? now - before : 0;
}

template <class T>
void keep_last(std::deque<T>& items, std::size_t limit) {
    while (items.size() > limit) {
        items.pop_front();
    }
}

}  // namespace

std::string_view name_of(phase p) noexcept {
    return phase_names[static_cast<std::size_t>(p)];
}

std::optional<phase> phase_named(std::string_view name) noexcept {
    for (std::size_t i = 0; i < phase_names.size(); ++i) {
        if (phase_names[i] == name) {
            return static_cast<phase>(i);
        }
    }
    return std::nullopt;
}

bool is_running(phase p) noexcept {
    return p == phase::waiting || p == phase::progressing || p == phase::paused ||
           p == phase::awaiting_approval || p == phase::baking;
}

rollout_machine::rollout_machine(config::analysis_config analysis)
    : analysis_(std::move(analysis)) {}

traffic_split rollout_machine::split() const noexcept {
    // Paused, and waiting for the gate after a restart, hold the traffic of the phase they
    // return to.
    phase p = state_.current;
    if (p == phase::paused || (p == phase::waiting && state_.resume_to != phase::idle)) {
        p = state_.resume_to;
    }
    switch (p) {
        case phase::progressing:
        case phase::awaiting_approval:
            return {state_.stable, static_cast<std::uint8_t>(std::min(state_.weight, 100U))};
        case phase::baking:
        case phase::succeeded:
            return {state_.canary, 0};
        case phase::idle:
        case phase::waiting:
        case phase::paused:
        case phase::rolled_back:
        case phase::aborted:
            break;
    }
    return {state_.stable, 0};
}

std::optional<validation_request> rollout_machine::validation() const {
    if (state_.current != phase::waiting) {
        return std::nullopt;
    }
    return validation_request{state_.id, state_.canary, state_.resume_to == phase::idle};
}

// --- transitions ---

void rollout_machine::emit(instant now, machine_output& out, std::string kind, phase to,
                           std::string reason, std::string cause, bool transition) {
    state_.current = to;
    if (transition) {
        state_.last_transition = now.wall;
    }
    state_.reason = reason;
    rollout_event e;
    e.rollout = state_.id;
    e.kind = std::move(kind);
    e.to = to;
    e.at = now.wall;
    e.split = split();
    e.reason = std::move(reason);
    e.cause = std::move(cause);
    out.events.push_back(std::move(e));
}

void rollout_machine::remember(const machine_output& out) {
    for (const rollout_event& e : out.events) {
        state_.events.push_back(e);
    }
    keep_last(state_.events, rollout_state::events_limit);
}

void rollout_machine::new_window() noexcept {
    window_base_.reset();  // the next tick starts it from the totals of that moment
}

void rollout_machine::adopt_pending_analysis() {
    if (!pending_analysis_) {
        return;
    }
    const config::analysis_config& next = *pending_analysis_;
    // Evidence gathered under other tests says nothing about these: a rollout that a reload
    // gives new checks, alpha or method starts its sequential tests over.
    const bool new_tests = next.method != analysis_.method || next.alpha != analysis_.alpha ||
                           next.checks != analysis_.checks;
    analysis_ = std::move(*pending_analysis_);
    pending_analysis_.reset();
    if (new_tests && is_running(state_.current)) {
        restart_evidence();
    }
}

void rollout_machine::restart_evidence() {
    sequential_.reset();
    second_base_.reset();
    if (analysis_.method == config::analysis_method::sequential) {
        sequential_.emplace(analysis_.checks, analysis_.alpha);
    }
}

std::span<const test_evidence> rollout_machine::evidence() const noexcept {
    return sequential_ ? sequential_->evidence() : std::span<const test_evidence>{};
}

void rollout_machine::reconfigure(instant now, config::analysis_config analysis,
                                  const config::rollout_config& rollout) {
    pending_analysis_ = std::move(analysis);
    if (!window_base_ || !is_running(state_.current)) {
        adopt_pending_analysis();  // no interval in progress
    }
    if (!is_running(state_.current)) {
        return;  // state().config records the last rollout as it ran; the next one starts anew
    }
    config::rollout_config next = rollout;
    next.strategy = state_.config.strategy;  // a canary does not turn blue-green half way
    const std::uint32_t weight = state_.weight;
    const bool fresh_wait = state_.current == phase::waiting && state_.resume_to == phase::idle;
    if (fresh_wait || weight == 0) {
        state_.step = 0;  // nothing moved yet: the rollout starts at the new first step
    } else {
        // The weight in force stays the current step, so that the next one is the new list's
        // first above it, and `step` keeps naming the weight in force.
        next.steps.clear();
        for (const std::uint32_t w : rollout.steps) {
            if (w < weight) {
                next.steps.push_back(w);
            }
        }
        state_.step = next.steps.size();
        next.steps.push_back(weight);
        for (const std::uint32_t w : rollout.steps) {
            if (w > weight) {
                next.steps.push_back(w);
            }
        }
    }
    const bool new_bake = next.bake != state_.config.bake;
    state_.config = std::move(next);
    if (new_bake && state_.current == phase::baking) {
        resume_bake(now);
    }
}

void rollout_machine::await_approval(instant now, machine_output& out, std::string reason) {
    new_window();
    emit(now, out, "awaiting-approval", phase::awaiting_approval,
         reason + "; waiting for approval before " + percent(state_.config.steps.back()));
}

void rollout_machine::go_to_step(instant now, machine_output& out, std::size_t step,
                                 std::string reason, bool approved) {
    const auto& steps = state_.config.steps;
    step = std::min(step, steps.size() - 1);
    if (step + 1 == steps.size() && state_.config.approval && !approved) {
        await_approval(now, out, std::move(reason));
        return;
    }
    const bool first = state_.current == phase::waiting;
    if (sequential_ && state_.weight != steps[step] && state_.weight > 0) {
        // The quantile bounds hold for one split. The second in progress goes on: at most a
        // second of the old split in the new step's bounds, rather than a step shorter than a
        // second never judged.
        sequential_->new_step();
    }
    state_.step = step;
    state_.weight = steps[step];
    state_.max_weight = std::max(state_.max_weight, state_.weight);
    if (state_.weight >= 100) {
        promote_fully(now, out, std::move(reason));
        return;
    }
    new_window();
    emit(now, out, first ? "progressing" : "step", phase::progressing,
         reason + "; new slot at " + percent(state_.weight));
}

void rollout_machine::promote_fully(instant now, machine_output& out, std::string reason) {
    if (state_.weight == 0) {
        fast_.clear();  // its samples counted mirrored answers (shadow_judging), or nothing
    }
    if (sequential_ && state_.weight < 100) {
        sequential_->new_step();
    }
    state_.step = state_.config.steps.size() - 1;
    state_.weight = 100;
    state_.max_weight = 100;
    if (state_.config.bake.count() <= 0) {
        finish(now, out, phase::succeeded, "succeeded", reason + "; new slot active", "");
        return;
    }
    state_.bake_started = now.wall;
    bake_ends_ = now.steady + state_.config.bake;
    bake_passes_ = 0;
    new_window();
    emit(now, out, "promoted", phase::baking,
         reason + "; new slot active, baking for " + format_duration(state_.config.bake));
}

void rollout_machine::finish(instant now, machine_output& out, phase result, std::string kind,
                             std::string reason, std::string cause) {
    emit(now, out, std::move(kind), result, reason, std::move(cause));
    rollout_record r;
    r.id = state_.id;
    r.strategy = state_.config.strategy;
    r.from = state_.stable;
    r.to = state_.canary;
    r.result = result;
    r.reason = std::move(reason);
    r.started = state_.started;
    r.finished = now.wall;
    r.weight = state_.max_weight;
    out.finished = r;
    state_.history.push_back(std::move(r));
    keep_last(state_.history, rollout_state::history_limit);
    state_.resume_to = phase::idle;
    window_base_.reset();
    fast_.clear();
}

void rollout_machine::reset_judgement() noexcept {
    window_base_.reset();
    fast_.clear();
    last_judgement_.reset();
    failed_in_a_row_ = 0;
    inconclusive_in_a_row_ = 0;
}

// --- commands ---

std::string rollout_machine::refuse(std::string_view action) const {
    std::string why =
        std::string(action) + " does not apply in phase " + std::string(name_of(state_.current));
    if (!state_.id.empty() && state_.current != phase::idle) {
        why += " (rollout " + state_.id + ")";
    }
    return why;
}

command_result rollout_machine::start(instant now, std::string id,
                                      const config::rollout_config& rollout,
                                      traffic_split current) {
    command_result r;
    if (is_running(state_.current)) {
        r.refused = "a rollout is already running: " + refuse("start");
        return r;
    }
    state_.id = std::move(id);
    state_.config = rollout;
    state_.stable = current.active;
    state_.canary = current.other();
    state_.step = 0;
    state_.weight = 0;
    state_.max_weight = 0;
    state_.started = now.wall;
    state_.resume_to = phase::idle;
    reset_judgement();
    adopt_pending_analysis();
    restart_evidence();
    const bool blue_green = rollout.strategy == config::rollout_strategy::blue_green;
    emit(now, r.out, "started", phase::waiting,
         std::string(config::strategy_name(rollout.strategy)) +
             " rollout: validating the new slot (health gate, pre_rollout hooks" +
             (blue_green && rollout.smoke.requests > 0 ? ", smoke run)" : ")"));
    remember(r.out);
    return r;
}

command_result rollout_machine::promote(instant now, bool full) {
    command_result r;
    const phase p = state_.current;
    const phase holding = p == phase::paused ? state_.resume_to : p;
    if (p != phase::progressing && p != phase::paused && p != phase::awaiting_approval &&
        p != phase::baking) {
        r.refused = refuse("promote");
        return r;
    }
    failed_in_a_row_ = 0;
    inconclusive_in_a_row_ = 0;
    if (holding == phase::baking) {
        finish(now, r.out, phase::succeeded, "succeeded", "bake ended early by hand", "");
    } else if (full || blue_green()) {
        promote_fully(now, r.out, "promoted to 100% by hand");
    } else if (holding == phase::awaiting_approval) {
        go_to_step(now, r.out, state_.config.steps.size() - 1, "promoted by hand", true);
    } else {
        go_to_step(now, r.out, state_.step + 1, "promoted by hand", true);
    }
    remember(r.out);
    return r;
}

command_result rollout_machine::pause(instant now) {
    command_result r;
    const phase p = state_.current;
    if (p != phase::progressing && p != phase::awaiting_approval && p != phase::baking) {
        r.refused = refuse("pause");
        return r;
    }
    state_.resume_to = p;
    new_window();
    emit(now, r.out, "paused", phase::paused, "paused by hand");
    remember(r.out);
    return r;
}

command_result rollout_machine::resume(instant now) {
    command_result r;
    if (state_.current != phase::paused) {
        r.refused = refuse("resume");
        return r;
    }
    failed_in_a_row_ = 0;
    inconclusive_in_a_row_ = 0;
    new_window();
    if (state_.resume_to == phase::baking) {
        // The bake's clock stood still while paused.
        state_.bake_started += now.wall - state_.last_transition;
    }
    if (gate_on_resume_) {
        // Paused when the process stopped: the new slot's health is not known since, so its
        // gate runs again before the rollout goes on (resume_to stays where it returns).
        gate_on_resume_ = false;
        emit(now, r.out, "resumed", phase::waiting,
             "resumed by hand; the health gate runs again first, as after every restart");
        remember(r.out);
        return r;
    }
    const phase to = state_.resume_to;
    state_.resume_to = phase::idle;
    if (to == phase::baking) {
        resume_bake(now);
    }
    emit(now, r.out, "resumed", to, "resumed by hand");
    remember(r.out);
    return r;
}

command_result rollout_machine::approve(instant now) {
    command_result r;
    if (state_.current != phase::awaiting_approval) {
        r.refused = refuse("approve");
        return r;
    }
    if (blue_green()) {
        promote_fully(now, r.out, "approved");
    } else {
        go_to_step(now, r.out, state_.config.steps.size() - 1, "approved", true);
    }
    remember(r.out);
    return r;
}

command_result rollout_machine::abort(instant now) {
    command_result r;
    if (!is_running(state_.current)) {
        r.refused = refuse("abort");
        return r;
    }
    finish(now, r.out, phase::aborted, "aborted", "aborted by hand; all traffic to the stable slot",
           "manual");
    remember(r.out);
    return r;
}

command_result rollout_machine::rollback(instant now) {
    command_result r;
    if (state_.current == phase::succeeded) {
        // After success the old slot is still there: send everything back to it, and let the
        // history say how the rollout ended after all.
        emit(now, r.out, "rolled-back", phase::rolled_back,
             "rolled back by hand after success; all traffic to the previous slot", "manual");
        if (!state_.history.empty() && state_.history.back().id == state_.id) {
            state_.history.back().result = phase::rolled_back;
            state_.history.back().reason = state_.reason;
        }
    } else if (is_running(state_.current)) {
        finish(now, r.out, phase::rolled_back, "rolled-back",
               "rolled back by hand; all traffic to the stable slot", "manual");
    } else {
        r.refused = refuse("rollback");
        return r;
    }
    remember(r.out);
    return r;
}

// --- inputs ---

machine_output rollout_machine::validated(instant now, const std::string& id,
                                          const validation_result& result) {
    machine_output out;
    if (state_.current != phase::waiting || id != state_.id) {
        return out;  // aborted meanwhile, or a stale report
    }
    const phase restored_to = state_.resume_to;
    if (restored_to != phase::idle) {
        // Traffic had moved before the restart: a failing gate now is a rollback.
        if (!result.ok) {
            finish(now, out, phase::rolled_back, "rolled-back", "after a restart: " + result.reason,
                   result.cause);
        } else {
            state_.resume_to = phase::idle;
            if (restored_to == phase::baking) {
                resume_bake(now);
            }
            reset_judgement();
            emit(now, out, "resumed", restored_to,
                 "health gate passed after a restart; resuming with fresh windows");
        }
    } else if (!result.ok) {
        finish(now, out, phase::aborted, "aborted", result.reason, result.cause);
    } else if (blue_green()) {
        on_validated_blue_green(now, out, result);
    } else {
        fast_.clear();
        go_to_step(now, out, 0, "validated", false);
    }
    remember(out);
    return out;
}

void rollout_machine::on_validated_blue_green(instant now, machine_output& out,
                                              const validation_result& result) {
    if (result.smoke) {
        const auto& smoke = *result.smoke;
        // The smoke run sends a fixed number of requests; never ask for more than it sent.
        const std::uint32_t min_requests =
            std::min(analysis_.min_requests, std::max(state_.config.smoke.requests, 1U));
        judgement j =
            judge(analysis_.checks, min_requests, smoke[state_.canary], smoke[state_.stable]);
        out.judged.push_back(j);
        last_judgement_ = j;
        if (j.result != verdict::pass) {
            const check_result* failed = j.first_failure();
            finish(now, out, phase::aborted, "aborted",
                   failed != nullptr ? "smoke run: " + describe(*failed)
                                     : "smoke run inconclusive: too few answers to judge",
                   "smoke");
            out.events.back().checks = j.checks;
            return;
        }
    }
    fast_.clear();
    const std::string why = result.smoke ? "validated and smoke run passed" : "validated";
    if (mirror_) {
        // No user request reaches the new slot before the switch: it is judged on copies of the
        // stable slot's requests (README, "Mirroring").
        new_window();
        emit(now, out, "progressing", phase::progressing,
             why + "; judging the new slot on mirrored traffic before the switch");
        return;
    }
    if (state_.config.approval) {
        await_approval(now, out, why);
    } else {
        promote_fully(now, out, why);
    }
}

machine_output rollout_machine::tick(instant now, const per_slot<slot_totals>& totals) {
    machine_output out;
    const phase p = state_.current;
    // A fresh rollout moves no traffic while it waits; one restored after a restart holds its
    // weight while its gate runs again, so hard failures are watched then too.
    const bool fresh_wait = p == phase::waiting && state_.resume_to == phase::idle;
    if (!is_running(p) || fresh_wait) {
        return out;
    }
    const bool shadow = shadow_judging();
    const slot_totals& canary = totals[state_.canary];
    std::string why;
    if (analysis_.fast_rollback.enabled &&
        fast_rollback_due(now, shadow ? canary.mirror.requests() : canary.requests(),
                          shadow ? canary.mirror.errors() : canary.errors(), why)) {
        finish(now, out, phase::rolled_back, "rolled-back", std::move(why), "fast_rollback");
        remember(out);
        return out;
    }
    if (p == phase::waiting || p == phase::paused) {
        // Neither is judged by the sequential tests (a pause holds the judgement); the seconds
        // start afresh after, rather than as one long second.
        second_base_.reset();
    }
    if (p == phase::waiting) {
        return out;  // no judging until the gate has passed
    }
    if (sequential_ && p != phase::paused && observe_second(now, totals, shadow, out)) {
        remember(out);
        return out;
    }
    // The end of the bake judges what its last, partial interval holds; a new slot that gets no
    // traffic (blue-green awaiting approval, at 0%) has nothing to judge.
    const bool bake_over = p == phase::baking && now.steady >= bake_ends_;
    if (shadow && !mirror_ && p == phase::progressing) {
        // A reload turned mirroring off: nothing reaches the new slot to judge it on.
        state_.resume_to = phase::progressing;
        window_base_.reset();
        emit(now, out, "paused", phase::paused,
             "mirror is off: no traffic to judge the new slot on before the switch; promote, "
             "roll back, or turn mirror on and resume");
        remember(out);
        return out;
    }
    const bool judged_slot_gets_traffic = split().weight(state_.canary) > 0 || shadow;
    if (window_base_ && p != phase::paused && judged_slot_gets_traffic &&
        (now.steady - window_started_ >= analysis_.interval || bake_over)) {
        const slot_totals& base = (*window_base_)[state_.canary];
        judgement j = judge(analysis_.checks, analysis_.min_requests,
                            shadow ? mirror_difference(canary, base) : difference(canary, base),
                            difference(totals[state_.stable], (*window_base_)[state_.stable]),
                            p == phase::baking);
        std::string awaiting_evidence;
        if (sequential_) {
            overlay_evidence(j, awaiting_evidence);
        }
        window_base_.reset();
        on_judgement(now, out, std::move(j), awaiting_evidence);
    }
    if (state_.current == phase::baking && bake_over) {
        end_bake(now, out);
    }
    // Every interval starts from the totals of the moment the previous one ended or the split
    // changed, so no window mixes traffic from before and after a change.
    if (!window_base_ && is_running(state_.current)) {
        adopt_pending_analysis();
        window_base_ = totals;
        window_started_ = now.steady;
    }
    remember(out);
    return out;
}

bool rollout_machine::observe_second(instant now, const per_slot<slot_totals>& totals, bool shadow,
                                     machine_output& out) {
    if (second_base_ && now.steady - second_started_ < std::chrono::seconds(1)) {
        return false;
    }
    if (!second_base_) {
        second_base_ = totals;
        second_started_ = now.steady;
        return false;
    }
    const per_slot<slot_totals>& base = *second_base_;
    const slot_totals& canary = totals[state_.canary];
    // A canary judged before the switch is judged on its mirrored answers (shadow_judging).
    const slot_window canary_second = shadow ? mirror_difference(canary, base[state_.canary])
                                             : difference(canary, base[state_.canary]);
    const slot_window stable_second = difference(totals[state_.stable], base[state_.stable]);
    *second_base_ = totals;
    second_started_ = now.steady;
    const auto rejected = sequential_->observe(canary_second, stable_second);
    if (!rejected) {
        return false;
    }
    finish(now, out, phase::rolled_back, "rolled-back", rejected->reason, rejected->check);
    out.events.back().checks = evidence_results(rejected->check);
    return true;
}

namespace {

// An errors test with no error on either slot has nothing to weigh: it stands in no step's way.
bool shown_within(const test_evidence& e) noexcept {
    return e.within ||
           (e.test == sequential_test::errors && e.canary_events + e.stable_events == 0);
}

}  // namespace

void rollout_machine::overlay_evidence(judgement& j, std::string& awaiting_evidence) const {
    const bool need_evidence =
        analysis_.promote == config::promote_rule::evidence && state_.current == phase::progressing;
    bool any_fail = false;
    bool short_of_samples = false;
    bool short_of_evidence = false;
    for (check_result& r : j.checks) {
        if (!judged_sequentially(r.metric, r.kind)) {
            any_fail = any_fail || r.result == verdict::fail;
            short_of_samples = short_of_samples || r.result == verdict::inconclusive;
            continue;
        }
        bool within = true;
        for (const test_evidence& e : sequential_->evidence()) {
            if (e.check == r.name) {
                r.evidence.push_back(e);
                within = within && shown_within(e);
            }
        }
        if (r.result == verdict::inconclusive) {
            short_of_samples = true;  // min_requests holds for every check
        } else if (need_evidence && !within) {
            r.result = verdict::inconclusive;
            short_of_evidence = true;
        } else {
            // Not rejected: a rejection ends the rollout in the second it comes.
            r.result = verdict::pass;
        }
    }
    j.result = any_fail                                ? verdict::fail
               : short_of_samples || short_of_evidence ? verdict::inconclusive
                                                       : verdict::pass;
    if (j.result == verdict::inconclusive && !short_of_samples) {
        sequential_->within_tolerance(awaiting_evidence);
    }
}

std::vector<check_result> rollout_machine::evidence_results(std::string_view failed) const {
    std::vector<check_result> results;
    for (const config::check_config& check : analysis_.checks) {
        if (!judged_sequentially(check.metric, check.kind)) {
            continue;
        }
        check_result r;
        r.name = check.name;
        r.metric = check.metric;
        r.kind = check.kind;
        r.result = check.name == failed ? verdict::fail : verdict::pass;
        for (const test_evidence& e : sequential_->evidence()) {
            if (e.check == check.name) {
                r.evidence.push_back(e);
                r.samples = std::max(r.samples, e.canary_requests);
            }
        }
        results.push_back(std::move(r));
    }
    return results;
}

void rollout_machine::on_judgement(instant now, machine_output& out, judgement j,
                                   const std::string& awaiting_evidence) {
    out.judged.push_back(j);
    last_judgement_ = j;
    const std::size_t first_event = out.events.size();
    if (!awaiting_evidence.empty()) {
        // The guard rails held and there was traffic enough; the step waits for the sequential
        // tests to show the canary within tolerance (promote: evidence), at most
        // max_step_duration.
        failed_in_a_row_ = 0;
        inconclusive_in_a_row_ = 0;
        const auto waited = duration_cast<milliseconds>(now.wall - state_.last_transition);
        if (waited >= analysis_.max_step_duration) {
            state_.resume_to = phase::progressing;
            emit(now, out, "paused", phase::paused,
                 "no evidence after " + format_duration(analysis_.max_step_duration) + " at " +
                     percent(state_.weight) + " that the new slot is within tolerance: " +
                     awaiting_evidence + "; promote, roll back, or resume to wait longer");
        } else {
            emit(now, out, "inconclusive", state_.current,
                 "waiting for evidence: " + awaiting_evidence, "", false);
        }
        for (std::size_t i = first_event; i < out.events.size(); ++i) {
            out.events[i].checks = j.checks;
        }
        return;
    }
    switch (j.result) {
        case verdict::pass:
            failed_in_a_row_ = 0;
            inconclusive_in_a_row_ = 0;
            bake_passes_ += state_.current == phase::baking ? 1 : 0;
            if (state_.current == phase::progressing && blue_green()) {
                // Judged on mirrored traffic (shadow_judging): one passing interval switches.
                if (state_.config.approval) {
                    await_approval(now, out, "passed on mirrored traffic");
                } else {
                    promote_fully(now, out, "passed on mirrored traffic");
                }
            } else if (state_.current == phase::progressing) {
                go_to_step(now, out, state_.step + 1, "interval passed", false);
            }
            break;
        case verdict::fail: {
            // An inconclusive interval neither adds to the run of failures nor breaks it.
            ++failed_in_a_row_;
            inconclusive_in_a_row_ = 0;
            const check_result& failed = *j.first_failure();
            const std::string count = std::to_string(failed_in_a_row_) + " of " +
                                      std::to_string(analysis_.threshold) +
                                      " failed judgements in a row";
            if (state_.current == phase::baking) {
                // Everything is on the new slot and the old one still runs: a breach switches
                // back at once rather than after `threshold` intervals of full traffic.
                finish(now, out, phase::rolled_back, "rolled-back",
                       describe(failed) + " during the bake", failed.name);
            } else if (failed_in_a_row_ >= analysis_.threshold) {
                finish(now, out, phase::rolled_back, "rolled-back",
                       describe(failed) + " (" + count + ")", failed.name);
            } else {
                emit(now, out, "check-failed", state_.current,
                     describe(failed) + " (" + count + ")", "", false);
            }
            break;
        }
        case verdict::inconclusive: {
            ++inconclusive_in_a_row_;
            const std::string count = std::to_string(inconclusive_in_a_row_) + " interval" +
                                      (inconclusive_in_a_row_ == 1 ? "" : "s") + " in a row";
            if (state_.current == phase::progressing &&
                inconclusive_in_a_row_ >= analysis_.inconclusive_limit) {
                state_.resume_to = phase::progressing;
                emit(now, out, "paused", phase::paused,
                     "not enough traffic: fewer than " + std::to_string(analysis_.min_requests) +
                         " requests to judge for " + count);
            } else {
                emit(now, out, "inconclusive", state_.current,
                     "not enough traffic to judge (" + count + ")", "", false);
            }
            break;
        }
    }
    for (std::size_t i = first_event; i < out.events.size(); ++i) {
        out.events[i].checks = j.checks;
    }
}

void rollout_machine::resume_bake(instant now) {
    // What remains of the bake, and at least one interval, so that a bake resumed near its end
    // (or paused for want of data) can still be judged.
    const auto elapsed = std::clamp(duration_cast<milliseconds>(now.wall - state_.bake_started),
                                    milliseconds(0), state_.config.bake);
    bake_ends_ = now.steady + std::max(state_.config.bake - elapsed, analysis_.interval);
}

void rollout_machine::end_bake(instant now, machine_output& out) {
    if (bake_passes_ == 0) {
        // Promotion happened on evidence; success needs some too. With no passing judgement in
        // the whole bake the rollout holds everything on the new slot and asks a person.
        state_.resume_to = phase::baking;
        emit(now, out, "paused", phase::paused,
             "not enough traffic during the bake to judge the new slot; promote to finish, or "
             "roll back");
        return;
    }
    finish(now, out, phase::succeeded, "succeeded",
           "baked for " + format_duration(state_.config.bake) + " without a breach", "");
}

bool rollout_machine::shadow_judging() const noexcept {
    if (!blue_green() || state_.weight != 0) {
        return false;
    }
    const phase p = state_.current;
    return p == phase::progressing ||
           ((p == phase::paused || p == phase::waiting) && state_.resume_to == phase::progressing);
}

bool rollout_machine::fast_rollback_due(instant now, std::uint64_t requests, std::uint64_t errors,
                                        std::string& reason) {
    const auto& f = analysis_.fast_rollback;
    fast_.push_back({now.steady, requests, errors});
    // Keep the newest sample at or before the window's start as the base, and the ones after it.
    while (fast_.size() >= 2 && fast_[1].at <= now.steady - f.window) {
        fast_.pop_front();
    }
    const fast_sample& base = fast_.front();
    const fast_sample& last = fast_.back();
    const std::uint64_t in_window = gain(last.requests, base.requests);
    const std::uint64_t failed = gain(last.errors, base.errors);
    if (in_window < f.min_requests ||
        static_cast<double>(failed) < f.error_rate * static_cast<double>(in_window)) {
        return false;
    }
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "fast rollback: error rate %.1f%% over the last %s (%llu of %llu requests) >= "
                  "%.4g%%",
                  100.0 * static_cast<double>(failed) / static_cast<double>(in_window),
                  format_duration(duration_cast<milliseconds>(last.at - base.at)).c_str(),
                  static_cast<unsigned long long>(failed),
                  static_cast<unsigned long long>(in_window), f.error_rate * 100);
    reason = buf;
    return true;
}

machine_output rollout_machine::restore(rollout_state saved, instant now) {
    machine_output out;
    state_ = std::move(saved);
    keep_last(state_.history, rollout_state::history_limit);
    keep_last(state_.events, rollout_state::events_limit);
    reset_judgement();
    if (is_running(state_.current)) {
        restart_evidence();  // the evidence of before the restart was not kept: start afresh
    }
    const phase p = state_.current;
    gate_on_resume_ = p == phase::paused;
    if (p == phase::progressing || p == phase::awaiting_approval || p == phase::baking) {
        state_.resume_to = p;
        emit(now, out, "restarted", phase::waiting,
             "resuming after a restart at " + percent(state_.weight) +
                 " once the health gate "
                 "passes again");
    }
    remember(out);
    return out;
}

}  // namespace switchyard::analysis
