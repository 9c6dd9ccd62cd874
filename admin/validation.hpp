#pragma once
// What a rollout checks before traffic moves (README, "Rollouts"): the health gate (every
// endpoint of the new slot answers 2xx on rollout.health.path within its deadline), then the
// pre_rollout webhooks (each answers 2xx within its timeout), then, for blue-green, the smoke
// run (requests sent by the proxy itself to both slots, judged like an interval). It stops at
// the first failure, whose reason names the endpoint or hook and how it failed.

#include <array>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "admin/http_client.hpp"
#include "analysis/rollout.hpp"
#include "config/config.hpp"
#include "proxy/resolver.hpp"

namespace switchyard::admin {

// The last probe of one endpoint by the health gate.
struct endpoint_health {
    bool probed = false;
    bool ok = false;
    std::string detail;  // "status 200", "status 503", "timeout", "refused", ...
    std::chrono::system_clock::time_point at;
};

// Where the proxy sends endpoint `i` of the slot now: its addresses, or why it has none.
using endpoint_locator = std::function<proxy::endpoint_addresses(std::size_t i)>;

struct validation_plan {
    analysis::slot_index slot = 1;                               // the slot traffic moves toward
    analysis::per_slot<std::vector<config::address>> endpoints;  // of both slots, by slot index
    config::health_config health;
    // Unset: the health gate probes each endpoint by its name, resolved on its own.
    endpoint_locator locate;
    std::vector<config::webhook_config> hooks;  // pre_rollout; empty for a restored rollout
    std::string hook_body;                      // JSON posted to each hook
    config::smoke_config smoke;                 // requests 0: no smoke run
    std::chrono::milliseconds smoke_timeout{};  // each smoke request's deadline
};

// Called with each probe's result: the endpoint's index in its slot, and what it answered.
using health_observer = std::function<void(std::size_t endpoint, const endpoint_health& seen)>;
// Asked before each step (a round of probes, a hook, the smoke run): false stops the validation,
// whose result is then of no interest to anyone.
using still_wanted = std::function<bool()>;
// Called once per pre_rollout hook call: "ok" or "failed" (for the metrics).
using hook_observer = std::function<void(std::string_view result)>;

// The callbacks are taken by reference: the caller names them and keeps them alive until this
// returns (it awaits it). GCC 12 frees a lambda with captures twice when it is built in the same
// expression as a co_await (seen here as a double free; equeim/tremotesf2 issue 539 likewise).
boost::asio::awaitable<analysis::validation_result> validate(validation_plan plan,
                                                             const still_wanted& wanted,
                                                             const health_observer& on_health,
                                                             const hook_observer& on_hook);

// The parts, for tests. With `locate` set, the gate probes every address the proxy would send
// the endpoint's traffic to (Host naming the endpoint), and an endpoint without any fails it
// with the resolver's reason.
boost::asio::awaitable<analysis::validation_result> health_gate(
    const std::vector<config::address>& endpoints, const config::health_config& health,
    const endpoint_locator& locate, const still_wanted& wanted, const health_observer& on_health);
boost::asio::awaitable<analysis::validation_result> call_pre_rollout_hooks(
    const std::vector<config::webhook_config>& hooks, const std::string& body,
    const still_wanted& wanted, const hook_observer& on_hook);
boost::asio::awaitable<analysis::per_slot<analysis::slot_window>> smoke_run(
    const analysis::per_slot<std::vector<config::address>>& endpoints,
    const config::smoke_config& smoke, std::chrono::milliseconds timeout);

}  // namespace switchyard::admin
