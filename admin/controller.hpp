#pragma once
// The one writer of the traffic split, on the admin thread.
//
// PUT /active-slot, PUT /weights, the rollout machine and the restore from the state file all
// change the split through here, so no two writers can load it, change it and store it over each
// other. The controller drives the rollout machine: it ticks it with the clock and the merged
// metrics several times a second, runs the validation it asks for, applies the split it wants,
// logs and counts its events, sends them to the events webhooks, and writes the state file
// after every change (README, "Rollouts").

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/value.hpp>

#include "admin/event_hooks.hpp"
#include "admin/prometheus.hpp"
#include "admin/rollout_json.hpp"
#include "admin/series.hpp"
#include "admin/state_file.hpp"
#include "admin/validation.hpp"
#include "analysis/metrics.hpp"
#include "analysis/rollout.hpp"
#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "proxy/health.hpp"
#include "proxy/resolver.hpp"

namespace switchyard::admin {

class controller {
public:
    // An answer for the admin API: 200 with the new state, or an error status with
    // {"error": ...} (409 also names the phase).
    struct answer {
        unsigned status = 200;
        boost::json::value body;
    };

    // `addresses`, when set, gives /status where each endpoint's name points.
    controller(const config::config& cfg, analysis::split_state& split,
               analysis::metrics_source metrics, control_metrics& counters,
               boost::asio::any_io_executor ex, proxy::address_source addresses = {});
    ~controller();
    controller(const controller&) = delete;
    controller& operator=(const controller&) = delete;

    // Reads the state file (unless state_file is off) and puts its split in force, so call it
    // before the proxy serves. A rollout that was moving traffic resumes after its health gate.
    // Throws std::runtime_error naming the path when the state directory is not writable.
    void restore();
    // Starts the ticks and the webhook senders on the executor.
    void start();
    // Stops the ticks; executor thread.
    void stop();
    // A reload (README, "Reloading"); executor thread. `next` is what the proxy now runs with,
    // the keys that need a restart as they were. A rollout keeps its phase, step and weights;
    // the new analysis and rollout settings apply from the next interval, with the overrides it
    // was started with applied over the new rollout settings again. An endpoint that stays in
    // its slot keeps its last health.
    void reload(const config::config& next);

    // Where /status and POST /rollout read each endpoint's health (README, "Health checks and
    // ejection"); before start().
    void use_endpoint_health(proxy::health_source source) { endpoint_health_ = std::move(source); }

    // --- the admin API; executor thread only ---
    const slot_names& names() const noexcept { return names_; }
    analysis::traffic_split split() const noexcept { return split_.load(); }
    // A manual split; 409 while a rollout runs. Answers the weights.
    answer set_split(analysis::traffic_split s);
    // POST /rollout: `overrides` is empty or a JSON object of rollout: keys.
    answer start_rollout(std::string_view overrides);
    answer promote(bool full);
    answer pause();
    answer resume();
    answer approve();
    answer abort();
    answer rollback();
    // GET /status: slots, endpoints and their last health, weights, per-slot rates, the rollout
    // and the recent events.
    boost::json::value status() const;
    // The rollout part of /status; also what every rollout action answers.
    boost::json::value rollout_status() const;
    // GET /rollout/history: finished rollouts, newest first.
    boost::json::value history() const;
    // GET /series (README, "Live page"): the split now, the last ten minutes a
    // point a second (those after `since`, unix seconds, when not 0), the rollout and the recent
    // events: everything the page draws, in one answer.
    boost::json::value series(std::int64_t since = 0) const;

private:
    // One tick: the merged totals, the per-second window, the machine's tick.
    void tick();
    // The second before `second` (steady clock) into series_, once pushed into window_.
    void record_series(std::int64_t second, const analysis::instant& t);
    answer act(analysis::command_result r);
    void apply(const analysis::machine_output& out);
    void put_split(analysis::traffic_split s, std::string_view by);
    void persist();
    void maybe_validate();
    boost::asio::awaitable<void> run_validation(validation_plan plan, std::string id);
    // True while the machine still waits for rollout `id`'s validation.
    bool validation_wanted(const std::string& id) const;
    // Hands the result of rollout `id`'s validation to the machine, unless it went stale.
    void finish_validation(const std::string& id, const analysis::validation_result& result);
    boost::asio::awaitable<void> tick_loop();
    std::string next_rollout_id();
    // Why `slot` cannot take traffic: every endpoint of it is down; empty when one is up.
    std::string unhealthy_reason(analysis::slot_index slot) const;
    // Where endpoint 0 of `slot` stands in the resolver's address table.
    std::size_t first_in_table(analysis::slot_index slot) const noexcept;
    // Where the proxy sends endpoint `at` of `slot` now; no addresses once a reload removed it.
    proxy::endpoint_addresses locate(analysis::slot_index slot, const config::address& at) const;

    config::config cfg_;
    slot_names names_;
    analysis::split_state& split_;
    analysis::metrics_source metrics_;
    proxy::address_source addresses_;
    proxy::health_source endpoint_health_;  // empty: every endpoint counts as up
    control_metrics& counters_;
    boost::asio::any_io_executor ex_;
    boost::asio::steady_timer tick_timer_;
    std::chrono::milliseconds tick_period_;
    analysis::rollout_machine machine_;
    analysis::metrics_window window_;
    std::int64_t last_second_ = -1;  // of the last push into window_
    series_recorder series_;         // the live page's ten minutes, fed with window_
    std::optional<state_file> file_;
    event_hooks hooks_;
    analysis::per_slot<std::vector<endpoint_health>> health_;  // per slot, per endpoint
    std::string validating_;                                   // the rollout whose validation runs
    std::string overrides_;  // the body of the POST /rollout that started the current rollout
    std::uint32_t ids_ = 0;
    bool stopped_ = false;
};

}  // namespace switchyard::admin
