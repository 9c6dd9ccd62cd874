#include "admin/controller.hpp"

#include <algorithm>
#include <cstdio>
#include <random>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

namespace switchyard::admin {
namespace {

namespace net = boost::asio;
namespace json = boost::json;
using analysis::phase;
using std::chrono::milliseconds;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// /status shows each slot's traffic over this many complete seconds.
constexpr std::int64_t status_window_seconds = 10;
// /status shows this many of the recent events, newest last.
constexpr std::size_t status_events = 20;

analysis::instant now() {
    return {std::chrono::steady_clock::now(), std::chrono::system_clock::now()};
}

// Several times a second for fast rollback, and at least four ticks per interval so that a
// judgement is late by at most a quarter of one.
milliseconds tick_period_for(const config::analysis_config& a) {
    milliseconds p = std::min(a.interval / 4, milliseconds(100));
    if (a.fast_rollback.enabled) {
        p = std::min(p, a.fast_rollback.window / 4);
    }
    return std::max(p, milliseconds(10));
}

controller::answer conflict(std::string_view message, phase p) {
    json::object body = error_json(message);
    body["phase"] = analysis::name_of(p);
    return {409, std::move(body)};
}

}  // namespace

controller::controller(const config::config& cfg, analysis::split_state& split,
                       analysis::metrics_source metrics, control_metrics& counters,
                       boost::asio::any_io_executor ex, proxy::address_source addresses)
    : cfg_(cfg),
      names_{cfg.slots.at(0).name, cfg.slots.at(1).name},
      split_(split),
      metrics_(std::move(metrics)),
      addresses_(std::move(addresses)),
      counters_(counters),
      ex_(ex),
      tick_timer_(ex),
      tick_period_(tick_period_for(cfg.analysis)),
      machine_(cfg.analysis),
      window_(static_cast<std::size_t>(status_window_seconds) + 2),
      hooks_(ex, cfg.webhooks.events,
             [&counters](std::string_view result) { counters.count_webhook("events", result); }) {
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        health_[s].resize(cfg.slots[s].endpoints.size());
    }
    machine_.set_mirror(cfg.mirror && cfg.mirror->percent > 0);
    counters_.set_phase(analysis::name_of(phase::idle));
}

controller::~controller() = default;

void controller::restore() {
    if (cfg_.state_file == "off") {
        return;
    }
    file_.emplace(cfg_.state_file, names_);
    auto saved = file_->load();
    if (!saved) {
        return;
    }
    put_split(saved->split, "the state file");
    spdlog::info("state file {}: restored; rollout {} {}", file_->path(),
                 saved->rollout.id.empty() ? "(none)" : saved->rollout.id,
                 analysis::name_of(saved->rollout.current));
    counters_.set_phase(analysis::name_of(saved->rollout.current));
    apply(machine_.restore(std::move(saved->rollout), now()));
}

void controller::start() {
    stopped_ = false;
    net::co_spawn(ex_, tick_loop(), net::detached);
    hooks_.start();
    maybe_validate();  // a restored rollout waiting for its gate
}

void controller::stop() {
    stopped_ = true;
    tick_timer_.cancel();
}

void controller::reload(const config::config& next) {
    // The last health of an endpoint that stays in its slot is still news; a new one has none.
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        const auto& before = cfg_.slots[s].endpoints;
        const auto& now = next.slots[s].endpoints;
        std::vector<endpoint_health> health(now.size());
        for (std::size_t i = 0; i < now.size(); ++i) {
            const auto it = std::find(before.begin(), before.end(), now[i]);
            if (it != before.end()) {
                health[i] = health_[s][static_cast<std::size_t>(it - before.begin())];
            }
        }
        health_[s] = std::move(health);
    }
    cfg_ = next;
    config::rollout_config rollout = cfg_.rollout;
    if (!overrides_.empty()) {
        auto parsed = config::parse_rollout_overrides(overrides_, cfg_.rollout);
        if (parsed.value) {
            rollout = std::move(*parsed.value);
        }
    }
    const auto before = machine_.state().config;
    machine_.set_mirror(cfg_.mirror && cfg_.mirror->percent > 0);
    machine_.reconfigure(now(), cfg_.analysis, rollout);
    tick_period_ = tick_period_for(cfg_.analysis);  // from the next tick
    const auto& state = machine_.state();
    if (analysis::is_running(state.current)) {
        if (!(state.config == before)) {
            spdlog::info(
                "rollout {}: reloaded settings apply from the next interval; still {} "
                "at {}%, step {} of {}",
                state.id, analysis::name_of(state.current), state.weight, state.step + 1,
                state.config.steps.size());
        }
        persist();
    }
}

net::awaitable<void> controller::tick_loop() {
    while (!stopped_) {
        tick_timer_.expires_after(tick_period_);
        co_await tick_timer_.async_wait(use_tuple);
        if (stopped_) {
            break;
        }
        // A tick that throws (out of memory, a bug of ours) must not end the judging and the
        // fast rollback for good: log it and tick again.
        try {
            tick();
        } catch (const std::exception& e) {
            spdlog::error("rollout engine tick failed: {}", e.what());
        }
    }
}

void controller::tick() {
    const analysis::instant t = now();
    const std::int64_t second =
        std::chrono::floor<std::chrono::seconds>(t.steady.time_since_epoch()).count();
    const bool running = analysis::is_running(machine_.state().current);
    if (!running && second == last_second_) {
        return;  // idle: the window wants one look a second
    }
    const auto totals = metrics_ ? metrics_() : analysis::per_slot<analysis::slot_totals>{};
    if (second != last_second_) {
        // What came since the last push is the traffic of the second that just ended.
        window_.push(second - 1, totals);
        record_series(second, t);
        last_second_ = second;
    }
    if (running) {
        apply(machine_.tick(t, totals));
    }
}

// --- changes ---

void controller::put_split(analysis::traffic_split s, std::string_view by) {
    if (split_.load() == s) {
        return;
    }
    split_.store(s);
    spdlog::info("split: {} active, {} {}% {} {}% (by {})", names_[s.active], names_[0],
                 s.weight(0), names_[1], s.weight(1), by);
}

void controller::persist() {
    if (file_) {
        file_->save({split_.load(), machine_.state()});
    }
}

void controller::apply(const analysis::machine_output& out) {
    for (const auto& j : out.judged) {
        for (const auto& c : j.checks) {
            counters_.count_check(c.name, analysis::verdict_name(c.result));
        }
    }
    for (const auto& e : out.events) {
        const bool bad = e.kind == "rolled-back" || e.kind == "aborted" || e.kind == "check-failed";
        spdlog::log(bad ? spdlog::level::warn : spdlog::level::info,
                    "rollout {}: {} ({}): {}; {} {}%, {} {}%", e.rollout, e.kind,
                    analysis::name_of(e.to), e.reason, names_[0], e.split.weight(0), names_[1],
                    e.split.weight(1));
        counters_.set_phase(analysis::name_of(e.to));
        if (e.kind == "rolled-back") {
            counters_.count_rollback(e.cause.empty() ? "unknown" : e.cause);
        }
        hooks_.push(json::serialize(to_json(e, names_)));
    }
    if (out.finished) {
        counters_.count_rollout(config::strategy_name(out.finished->strategy),
                                analysis::name_of(out.finished->result));
    }
    if (!out.events.empty()) {
        put_split(machine_.split(), "rollout " + machine_.state().id);
        // Routes to `canary` and sticky pins read these (README, "Routes").
        const auto& state = machine_.state();
        split_.set_rollout(analysis::is_running(state.current), state.canary);
        persist();
        maybe_validate();
    }
}

void controller::maybe_validate() {
    const auto request = machine_.validation();
    if (!request || request->rollout == validating_ || stopped_) {
        return;
    }
    validating_ = request->rollout;
    const auto& state = machine_.state();
    validation_plan plan;
    plan.slot = request->slot;
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        plan.endpoints[s] = cfg_.slots[s].endpoints;
    }
    plan.health = state.config.health;
    if (addresses_) {
        // By address, not index: a reload during the validation may move the slot's endpoints.
        plan.locate = [this, slot = plan.slot, names = plan.endpoints[plan.slot]](std::size_t i) {
            return locate(slot, names.at(i));
        };
    }
    if (request->full) {
        plan.hooks = cfg_.webhooks.pre_rollout;
        json::array steps;
        for (const auto w : state.config.steps) {
            steps.emplace_back(w);
        }
        plan.hook_body =
            json::serialize(json::object{{"rollout", state.id},
                                         {"event", "pre-rollout"},
                                         {"strategy", config::strategy_name(state.config.strategy)},
                                         {"from", names_[state.stable]},
                                         {"to", names_[state.canary]},
                                         {"steps", std::move(steps)}});
        if (state.config.strategy == config::rollout_strategy::blue_green) {
            plan.smoke = state.config.smoke;
            plan.smoke_timeout = cfg_.timeouts.upstream_response;
        }
    }
    plan.smoke.requests = request->full ? plan.smoke.requests : 0;
    // A validation that throws (out of memory, a bug of ours) fails the rollout rather than
    // leaving it waiting for good.
    net::co_spawn(ex_, run_validation(std::move(plan), request->rollout),
                  [this, id = request->rollout](const std::exception_ptr& failure) {
                      if (!failure) {
                          return;
                      }
                      std::string what = "unknown";
                      try {
                          std::rethrow_exception(failure);
                      } catch (const std::exception& e) {
                          what = e.what();
                      } catch (...) {
                      }
                      spdlog::error("rollout {}: validation failed: {}", id, what);
                      finish_validation(
                          id, {false, "validation failed: " + what, "validation", std::nullopt});
                  });
}

net::awaitable<void> controller::run_validation(validation_plan plan, std::string id) {
    const analysis::slot_index slot = plan.slot;
    // Once the rollout is aborted or another one starts, this validation is stale: it stops at
    // its next step, calls no more hooks, and leaves /status alone.
    const still_wanted wanted = [this, id] {
        return validation_wanted(id);
    };
    const health_observer on_health = [this, slot, &wanted](std::size_t endpoint,
                                                            const endpoint_health& seen) {
        if (wanted()) {
            health_[slot][endpoint] = seen;
        }
    };
    const hook_observer on_hook = [this](std::string_view hook_result) {
        counters_.count_webhook("pre_rollout", hook_result);
    };
    const analysis::validation_result result =
        co_await validate(std::move(plan), wanted, on_health, on_hook);
    finish_validation(id, result);
}

bool controller::validation_wanted(const std::string& id) const {
    const auto request = machine_.validation();
    return !stopped_ && request && request->rollout == id;
}

void controller::finish_validation(const std::string& id,
                                   const analysis::validation_result& result) {
    if (validating_ == id) {
        validating_.clear();
    }
    if (validation_wanted(id)) {
        apply(machine_.validated(now(), id, result));
    }
}

// --- the admin API ---

controller::answer controller::set_split(analysis::traffic_split s) {
    const phase p = machine_.state().current;
    if (analysis::is_running(p)) {
        return conflict("rollout " + machine_.state().id + " is " +
                            std::string(analysis::name_of(p)) +
                            "; abort it, or wait for it to end, before changing the split",
                        p);
    }
    put_split(s, "the admin API");
    persist();
    return {200, weights_json(s, names_)};
}

std::string controller::next_rollout_id() {
    // The wall time to the second, then 32 random bits: sortable, readable in logs, and unique
    // across restarts, so a stale validation never matches a newer rollout.
    static thread_local std::mt19937 random(std::random_device{}());
    const std::string t = format_time(std::chrono::system_clock::now());
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.4s%.2s%.2s-%.2s%.2s%.2s-%08x", t.c_str(), t.c_str() + 5,
                  t.c_str() + 8, t.c_str() + 11, t.c_str() + 14, t.c_str() + 17,
                  static_cast<unsigned>(random()));
    return buf;
}

std::string controller::unhealthy_reason(analysis::slot_index slot) const {
    if (!endpoint_health_) {
        return {};
    }
    const proxy::health_snapshot table = endpoint_health_();
    const proxy::endpoint_health_state* first_down = nullptr;
    for (const auto& e : table->endpoints) {
        if (e.slot != slot) {
            continue;
        }
        if (e.up()) {
            return {};
        }
        if (first_down == nullptr) {
            first_down = &e;
        }
    }
    if (first_down == nullptr) {
        return {};
    }
    return "slot " + names_[slot] + " has no healthy endpoint (" + first_down->name + ": " +
           first_down->down_reason() + ")";
}

controller::answer controller::start_rollout(std::string_view overrides) {
    const phase p = machine_.state().current;
    if (analysis::is_running(p)) {
        return conflict(
            "rollout " + machine_.state().id + " is already " + std::string(analysis::name_of(p)),
            p);
    }
    // Traffic would move to a slot that can only answer 503 (README, "Health checks and
    // ejection").
    if (const std::string why = unhealthy_reason(split_.load().other()); !why.empty()) {
        return conflict("rollout refused: " + why, p);
    }
    const auto parsed = config::parse_rollout_overrides(std::string(overrides), cfg_.rollout);
    if (!parsed.value) {
        json::array errors;
        for (const auto& e : parsed.errors) {
            errors.emplace_back(config::format_error("body", e));
        }
        json::object body = error_json("invalid rollout overrides");
        body["errors"] = std::move(errors);
        return {400, std::move(body)};
    }
    auto started = machine_.start(now(), next_rollout_id(), *parsed.value, split_.load());
    if (started.refused.empty()) {
        overrides_ = std::string(overrides);  // applied again over the settings of a reload
    }
    return act(std::move(started));
}

controller::answer controller::act(analysis::command_result r) {
    if (!r.refused.empty()) {
        return conflict(r.refused, machine_.state().current);
    }
    apply(r.out);
    return {200, rollout_status()};
}

controller::answer controller::promote(bool full) {
    return act(machine_.promote(now(), full));
}
controller::answer controller::pause() {
    return act(machine_.pause(now()));
}
controller::answer controller::resume() {
    return act(machine_.resume(now()));
}
controller::answer controller::approve() {
    return act(machine_.approve(now()));
}
controller::answer controller::abort() {
    return act(machine_.abort(now()));
}
controller::answer controller::rollback() {
    return act(machine_.rollback(now()));
}

json::value controller::rollout_status() const {
    const auto& s = machine_.state();
    const bool fresh_wait = s.current == phase::waiting && s.resume_to == phase::idle;
    json::array steps;
    for (const std::uint32_t w : s.config.steps) {
        steps.emplace_back(w);
    }
    json::array checks;
    if (const auto& j = machine_.last_judgement()) {
        for (const auto& c : j->checks) {
            checks.emplace_back(to_json(c));
        }
    }
    json::object o{
        {"id", s.id},
        {"phase", analysis::name_of(s.current)},
        {"strategy", config::strategy_name(s.config.strategy)},
        {"from", names_[s.stable]},
        {"to", names_[s.canary]},
        {"step", s.id.empty() || fresh_wait ? 0 : s.step + 1},
        {"steps", std::move(steps)},
        {"weight", s.weight},
        {"started", s.id.empty() ? json::value() : json::value(format_time(s.started))},
        {"last_transition",
         s.id.empty() ? json::value() : json::value(format_time(s.last_transition))},
        {"reason", s.reason},
        {"interval_seconds", static_cast<double>(machine_.analysis().interval.count()) / 1000.0},
        {"threshold", machine_.analysis().threshold},
        {"failed_in_a_row", machine_.failed_in_a_row()},
        {"inconclusive_in_a_row", machine_.inconclusive_in_a_row()},
        {"checks", std::move(checks)},
        {"method", machine_.analysis().method == config::analysis_method::sequential ? "sequential"
                                                                                     : "threshold"},
    };
    // The sequential tests as they stand this second (README, "Sequential judgement").
    if (const auto evidence = machine_.evidence(); !evidence.empty()) {
        json::array tests;
        for (const analysis::test_evidence& e : evidence) {
            tests.emplace_back(to_json(e));
        }
        o["evidence"] = std::move(tests);
    }
    if (s.current == phase::paused || (s.current == phase::waiting && !fresh_wait)) {
        o["resume_to"] = analysis::name_of(s.resume_to);
    }
    if (const auto& j = machine_.last_judgement()) {
        o["judged_requests"] = {{names_[s.canary], j->canary_requests},
                                {names_[s.stable], j->stable_requests}};
    }
    return o;
}

proxy::endpoint_addresses controller::locate(analysis::slot_index slot,
                                             const config::address& at) const {
    const auto& endpoints = cfg_.slots[slot].endpoints;
    const auto it = std::find(endpoints.begin(), endpoints.end(), at);
    const proxy::address_snapshot table = addresses_();
    const std::size_t i = first_in_table(slot) + static_cast<std::size_t>(it - endpoints.begin());
    if (it == endpoints.end() || i >= table->endpoints.size()) {
        return {{}, "removed from the slot by a reload"};
    }
    return table->endpoints[i];
}

std::size_t controller::first_in_table(analysis::slot_index slot) const noexcept {
    // The resolver's table lists the first slot's endpoints, then the second's.
    return slot == 0 ? 0 : cfg_.slots[0].endpoints.size();
}

json::value controller::status() const {
    const analysis::traffic_split split = split_.load();
    const std::int64_t to = last_second_;  // the window holds the seconds before this one
    const proxy::address_snapshot table = addresses_ ? addresses_() : nullptr;
    const proxy::health_snapshot health = endpoint_health_ ? endpoint_health_() : nullptr;
    // Merged now, not at the last tick: whether the old slot still holds tunnels is what a user
    // polls for before stopping it.
    const auto totals = metrics_ ? metrics_() : analysis::per_slot<analysis::slot_totals>{};
    json::object slots;
    for (analysis::slot_index s = 0; s < analysis::slot_count; ++s) {
        json::array endpoints;
        for (std::size_t i = 0; i < cfg_.slots[s].endpoints.size(); ++i) {
            const endpoint_health& h = health_[s][i];
            json::object e{{"address", cfg_.slots[s].endpoints[i].to_string()}};
            if (table) {
                const proxy::endpoint_addresses& found = table->endpoints.at(first_in_table(s) + i);
                json::array resolved;
                for (const auto& a : found.addresses) {
                    resolved.emplace_back(a.address().to_string());
                }
                e["resolved"] = !found.addresses.empty();
                e["addresses"] = std::move(resolved);
                if (!found.error.empty()) {
                    e["resolve_error"] = found.error;
                }
            }
            if (health) {
                // By slot and name: a reload may have moved the endpoint in the proxy's list.
                const std::string name = cfg_.slots[s].endpoints[i].to_string();
                const auto it = std::find_if(health->endpoints.begin(), health->endpoints.end(),
                                             [&](const proxy::endpoint_health_state& st) {
                                                 return st.slot == s && st.name == name;
                                             });
                if (it != health->endpoints.end()) {
                    e["state"] = it->up() ? "up" : "down";
                    if (it->up()) {
                        e["down_by"] = nullptr;
                    } else {
                        e["down_by"] = it->ejected ? "ejected" : "health_check";
                    }
                    if (it->last_failure.empty()) {
                        e["last_failure"] = nullptr;
                    } else {
                        e["last_failure"] = it->last_failure;
                        e["last_failure_at"] = format_time(it->last_failure_at);
                    }
                }
            }
            if (h.probed) {
                e["health"] = {{"ok", h.ok}, {"detail", h.detail}, {"at", format_time(h.at)}};
            } else {
                e["health"] = nullptr;
            }
            endpoints.emplace_back(std::move(e));
        }
        const auto span = window_.over(s, to - status_window_seconds, to);
        slots[names_[s]] = {
            {"active", split.active == s},
            {"weight", split.weight(s)},
            {"endpoints", std::move(endpoints)},
            {"requests_per_second", span.rate()},
            {"error_rate", span.stats.error_rate()},
            {"latency_p95_seconds",
             static_cast<double>(span.stats.upstream_quantile(0.95).count()) / 1e6},
            {"window_seconds", span.seconds},
            {"tunnels_open", totals[s].tunnels_open},
            // The share of the window's requests a sticky cookie sent here (README, "Sticky
            // sessions").
            {"pinned_share", span.stats.requests == 0
                                 ? 0.0
                                 : static_cast<double>(span.stats.pinned) /
                                       static_cast<double>(span.stats.requests)},
        };
    }
    json::array events;
    const auto& all = machine_.state().events;
    const std::size_t first = all.size() > status_events ? all.size() - status_events : 0;
    for (std::size_t i = first; i < all.size(); ++i) {
        events.emplace_back(to_json(all[i], names_));
    }
    return json::object{{"active", names_[split.active]},
                        {"weights", weights_json(split, names_)},
                        {"slots", std::move(slots)},
                        {"rollout", rollout_status()},
                        {"events", std::move(events)}};
}

json::value controller::history() const {
    json::array rollouts;
    const auto& h = machine_.state().history;
    for (auto it = h.rbegin(); it != h.rend(); ++it) {
        rollouts.emplace_back(to_json(*it, names_));
    }
    return json::object{{"rollouts", std::move(rollouts)}};
}

}  // namespace switchyard::admin
