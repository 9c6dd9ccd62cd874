#pragma once
// Active health checks and passive ejection of upstream endpoints (README, "Health checks and
// ejection").
//
// One health_monitor per endpoint list (and its health settings), on a thread of its own: it
// runs the active checks of slots with `health_check`, and takes the ejections the workers post
// when an endpoint's failures in a row reach a slot's `passive` threshold. Each change publishes
// a new immutable health_table, which the server posts to every worker; worker::pick_target
// reads the table it holds and skips endpoints that are down. The counts of failures in a row
// are shared by all workers: an atomic per endpoint, bumped only on a failure and cleared on a
// success only when it is not zero already, so that a healthy endpoint costs each request one
// load of a line nobody writes.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "proxy/resolver.hpp"
#include "proxy/tls.hpp"

namespace switchyard::proxy {

// One endpoint's health as last published.
struct endpoint_health_state {
    analysis::slot_index slot = 0;
    std::string name;            // as configured, "backend-green:8000"
    bool failing_check = false;  // out of the rotation by its active checks
    bool ejected = false;        // out of the rotation by passive ejection, for `eject`
    // The last failure seen: "status 500", "timeout", "refused", "unresolved", "connect failed:
    // ...", "TLS handshake failed: ...", "5 consecutive 5xx", "1 consecutive connect failures";
    // empty when none was. Kept after the endpoint comes back.
    std::string last_failure;
    std::chrono::system_clock::time_point last_failure_at{};

    bool up() const noexcept { return !failing_check && !ejected; }
    // Why it is down, for a 503's reason and the logs: "health check failing: status 500",
    // "ejected: 5 consecutive 5xx"; empty when up.
    // Inline: the admin library reads it without linking the proxy.
    std::string down_reason() const {
        if (ejected) {
            return "ejected: " + last_failure;
        }
        return failing_check ? "health check failing: " + last_failure : std::string();
    }
};

// Every endpoint's health, in the order of the endpoint list it was made for (the first slot's
// endpoints, then the second's). Never changed once published.
struct health_table {
    const void* from = nullptr;  // the monitor that published it
    std::uint64_t version = 0;   // increases with each table the monitor publishes
    std::vector<endpoint_health_state> endpoints;
    std::vector<std::uint8_t> up;  // per endpoint, 1 when in the rotation: what pick_target reads
};
using health_snapshot = std::shared_ptr<const health_table>;
// Where a reader on another thread (the admin API, /metrics) gets the current table.
using health_source = std::function<health_snapshot()>;

class health_monitor {
public:
    // One endpoint as the monitor sees it.
    struct endpoint_spec {
        analysis::slot_index slot = 0;
        std::string slot_name;
        std::string name;
        tls_context_ptr tls;   // the slot's TLS context; null for plain TCP
        std::string tls_name;  // with tls: SNI and the name the certificate must hold
        bool tls_verify = true;
        std::optional<config::health_check_config> check;
        std::optional<config::passive_config> passive;
    };

    // `resolver` gives each endpoint's addresses (by index: its table is in the same order); a
    // check goes to the first address it gives. `before`, when set, is the table of the monitor
    // this one replaces: an endpoint that stays (same slot and name) and is still checked keeps
    // its active-check state and last failure; an ejection does not carry over.
    health_monitor(std::vector<endpoint_spec> endpoints,
                   std::shared_ptr<upstream_resolver> resolver, const health_table* before);
    ~health_monitor();
    health_monitor(const health_monitor&) = delete;
    health_monitor& operator=(const health_monitor&) = delete;

    // Starts the thread and the checks; `publish` is called on that thread with each new table.
    void start(std::function<void(const health_snapshot&)> publish);
    // Stops and joins the thread: nothing more is published. Safe to call twice.
    void stop();
    // The current table; any thread.
    health_snapshot current() const;

    // --- passive ejection, from any worker, per request ---
    // An answer of `status` from endpoint `i`: a 5xx counts towards consecutive_5xx, anything
    // else clears the count.
    void answered(std::size_t i, unsigned status) noexcept;
    // A connect to endpoint `i` failed or succeeded.
    void connect_failed(std::size_t i) noexcept;
    void connected(std::size_t i) noexcept;

private:
    // Failures in a row, shared by the workers; a line of its own per endpoint.
    struct alignas(64) failure_counts {
        std::atomic<std::uint32_t> server_errors{0};
        std::atomic<std::uint32_t> connect_failures{0};
    };
    // What the monitor's thread keeps per endpoint.
    struct endpoint_run {
        endpoint_health_state state;
        std::uint32_t passes = 0;  // active checks passed in a row
        std::uint32_t fails = 0;   // active checks failed in a row
        std::unique_ptr<boost::asio::steady_timer> eject_timer;
    };

    boost::asio::awaitable<void> check_loop(std::size_t i);
    // One check of endpoint `i`: empty when it passed, else why it failed.
    boost::asio::awaitable<std::string> probe(std::size_t i);
    void on_check(std::size_t i, const std::string& failure);
    void eject(std::size_t i, std::string reason);
    // A count reached its threshold: hand the ejection to the monitor's thread.
    void post_eject(std::size_t i, std::string reason) noexcept;
    void publish();

    std::vector<endpoint_spec> specs_;
    std::shared_ptr<upstream_resolver> resolver_;
    std::unique_ptr<failure_counts[]> counts_;
    std::vector<endpoint_run> runs_;  // the monitor's thread only, once started
    std::function<void(const health_snapshot&)> publish_;

    mutable std::mutex mutex_;
    health_snapshot current_;  // guarded by mutex_
    std::uint64_t version_ = 0;
    std::thread thread_;
    // Declared last, destroyed first: the checks' coroutine frames it destroys use the members
    // above.
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
};

}  // namespace switchyard::proxy
