#include "admin/validation.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace switchyard::admin {
namespace {

namespace net = boost::asio;
using analysis::slot_window;
using analysis::validation_result;
using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// A probe waits at most this long for one answer, so that an endpoint still starting up is
// asked again within the gate's deadline.
constexpr milliseconds longest_probe{5000};
// Between rounds of probes of the endpoints that have not passed yet.
constexpr milliseconds probe_pause{500};
// Smoke requests in flight per slot.
constexpr std::size_t smoke_concurrency = 4;

// Runs every task at once on this coroutine's executor; returns when all have finished.
net::awaitable<void> run_all(std::vector<net::awaitable<void>> tasks) {
    const auto ex = co_await net::this_coro::executor;
    net::steady_timer all_done(ex, clock::time_point::max());
    std::size_t left = tasks.size();
    for (auto& task : tasks) {
        net::co_spawn(ex, std::move(task), [&left, &all_done](const std::exception_ptr&) {
            if (--left == 0) {
                all_done.cancel();
            }
        });
    }
    while (left > 0) {
        co_await all_done.async_wait(use_tuple);
    }
}

// Probes `at` on `path`: at each of `addresses` when there are some, else at the name itself.
net::awaitable<void> probe(config::address at, std::vector<net::ip::tcp::endpoint> addresses,
                           std::string path, milliseconds timeout, endpoint_health* seen) {
    http_result r;
    if (addresses.empty()) {
        http_request request;
        request.target = path;
        r = co_await fetch(at, std::move(request), timeout);
    }
    const auto until = clock::now() + timeout;  // for all of the endpoint's addresses
    for (const auto& a : addresses) {
        http_request request;
        request.target = path;
        request.fields.emplace_back("Host", at.to_string());
        // Named, not built in the co_await expression: GCC 12 destroys such temporaries twice.
        config::address ip{a.address().to_string(), a.port()};
        const auto left = std::max(milliseconds(1),
                                   std::chrono::duration_cast<milliseconds>(until - clock::now()));
        r = co_await fetch(std::move(ip), std::move(request), left);
        if (!r.ok()) {
            break;
        }
    }
    seen->probed = true;
    seen->ok = r.ok();
    seen->detail = r.describe();
    seen->at = std::chrono::system_clock::now();
}

std::string format_ms(milliseconds d) {
    return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s"
                                 : std::to_string(d.count()) + "ms";
}

// One slot's part of the smoke run: requests [next, count) spread over endpoints and paths.
struct smoke_slot {
    const std::vector<config::address>* endpoints = nullptr;
    const config::smoke_config* smoke = nullptr;
    std::uint32_t next = 0;
    slot_window seen;
};

net::awaitable<void> smoke_worker(smoke_slot* slot, milliseconds timeout) {
    while (slot->next < slot->smoke->requests) {
        const std::uint32_t i = slot->next++;
        const auto& endpoints = *slot->endpoints;
        const auto& paths = slot->smoke->paths;
        http_request request;
        request.target = paths[i % paths.size()];
        const auto sent = clock::now();
        const http_result r = co_await fetch(endpoints[i % endpoints.size()], request, timeout);
        slot_window& w = slot->seen;
        ++w.requests;
        if (r.failure != http_failure::none || r.status >= 500) {
            ++w.errors;  // as the proxy counts errors: 5xx and failed exchanges
        }
        if (r.failure == http_failure::none) {
            const auto micros =
                std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - sent);
            ++w.upstream_latency[analysis::latency_buckets::index(
                static_cast<std::uint64_t>(micros.count()))];
        }
    }
}

// What a validation that is no longer wanted reports; nobody reads it.
validation_result stale() {
    return {false, "validation no longer wanted", "stale", std::nullopt};
}

}  // namespace

net::awaitable<validation_result> health_gate(const std::vector<config::address>& endpoints,
                                              const config::health_config& health,
                                              const endpoint_locator& locate,
                                              const still_wanted& wanted,
                                              const health_observer& on_health) {
    const auto ex = co_await net::this_coro::executor;
    const auto deadline = clock::now() + health.deadline;
    std::vector<endpoint_health> seen(endpoints.size());
    net::steady_timer pause(ex);
    for (;;) {
        if (wanted && !wanted()) {
            co_return stale();
        }
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock::now());
        std::vector<net::awaitable<void>> probes;
        for (std::size_t i = 0; i < endpoints.size(); ++i) {
            if (seen[i].ok || left.count() <= 0) {
                continue;
            }
            proxy::endpoint_addresses where;
            if (locate) {
                where = locate(i);
                if (where.addresses.empty()) {
                    seen[i] = {true, false, "does not resolve (" + where.error + ")",
                               std::chrono::system_clock::now()};
                    continue;
                }
            }
            probes.push_back(probe(endpoints[i], std::move(where.addresses), health.path,
                                   std::min(left, longest_probe), &seen[i]));
        }
        co_await run_all(std::move(probes));
        for (std::size_t i = 0; i < endpoints.size(); ++i) {
            if (on_health && seen[i].probed) {
                on_health(i, seen[i]);
            }
        }
        const auto failing =
            std::find_if(seen.begin(), seen.end(), [](const endpoint_health& h) { return !h.ok; });
        if (failing == seen.end()) {
            co_return validation_result{};
        }
        if (clock::now() + probe_pause >= deadline) {
            const auto& at = endpoints[static_cast<std::size_t>(failing - seen.begin())];
            co_return validation_result{false,
                                        "health gate: " + at.to_string() + " " +
                                            (failing->probed ? failing->detail : "not probed") +
                                            " on " + health.path + " (deadline " +
                                            format_ms(health.deadline) + ")",
                                        "health", std::nullopt};
        }
        pause.expires_after(probe_pause);
        co_await pause.async_wait(use_tuple);
    }
}

net::awaitable<validation_result> call_pre_rollout_hooks(
    const std::vector<config::webhook_config>& hooks, const std::string& body,
    const still_wanted& wanted, const hook_observer& on_hook) {
    for (const config::webhook_config& hook : hooks) {
        if (wanted && !wanted()) {
            co_return stale();
        }
        http_request request;
        request.method = "POST";
        request.target = hook.url.target;
        request.body = body;
        request.content_type = "application/json";
        const http_result r = co_await fetch(hook.url.at, std::move(request), hook.timeout);
        if (on_hook) {
            on_hook(r.ok() ? "ok" : "failed");
        }
        if (!r.ok()) {
            co_return validation_result{false,
                                        "pre_rollout hook " + hook.url.text + ": " + r.describe(),
                                        "pre_rollout", std::nullopt};
        }
    }
    co_return validation_result{};
}

net::awaitable<analysis::per_slot<slot_window>> smoke_run(
    const analysis::per_slot<std::vector<config::address>>& endpoints,
    const config::smoke_config& smoke, milliseconds timeout) {
    analysis::per_slot<smoke_slot> slots;
    std::vector<net::awaitable<void>> workers;
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        slots[s].endpoints = &endpoints[s];
        slots[s].smoke = &smoke;
        if (endpoints[s].empty() || smoke.paths.empty()) {
            continue;
        }
        for (std::size_t k = 0; k < smoke_concurrency; ++k) {
            workers.push_back(smoke_worker(&slots[s], timeout));
        }
    }
    co_await run_all(std::move(workers));
    co_return analysis::per_slot<slot_window>{std::move(slots[0].seen), std::move(slots[1].seen)};
}

net::awaitable<validation_result> validate(validation_plan plan, const still_wanted& wanted,
                                           const health_observer& on_health,
                                           const hook_observer& on_hook) {
    validation_result result = co_await health_gate(plan.endpoints[plan.slot], plan.health,
                                                    plan.locate, wanted, on_health);
    if (!result.ok) {
        co_return result;
    }
    result = co_await call_pre_rollout_hooks(plan.hooks, plan.hook_body, wanted, on_hook);
    if (!result.ok || plan.smoke.requests == 0) {
        co_return result;
    }
    if (wanted && !wanted()) {
        co_return stale();
    }
    result.smoke = co_await smoke_run(plan.endpoints, plan.smoke, plan.smoke_timeout);
    co_return result;
}

}  // namespace switchyard::admin
