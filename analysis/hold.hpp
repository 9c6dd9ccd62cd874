#pragma once
// What the hold and the maintenance mode share between the admin thread and the workers
// (README, "Hold and maintenance"). The flags themselves are in the traffic word
// (split_state::set_hold, set_maintenance), read once per request; this board holds what only a
// held or refused request touches: the number waiting across the process, the maintenance
// message, the counters, and the nudge that wakes held requests at POST /release.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "analysis/metrics.hpp"

namespace switchyard::analysis {

// One worker's hold and maintenance counters: written by that worker only, read by any thread.
struct alignas(64) hold_counters {
    counter timeouts;             // held requests answered 503 at hold.max_wait
    counter overflows;            // requests answered 503 at once: hold.max_requests were waiting
    counter maintenance_answers;  // requests answered 503 by the maintenance mode
};

// The counters summed over workers.
struct hold_totals {
    std::uint64_t timeouts = 0;
    std::uint64_t overflows = 0;
    std::uint64_t maintenance_answers = 0;
};

class hold_board {
public:
    // The message of a POST /maintenance with an empty body.
    static constexpr const char* default_message =
        "The service is down for maintenance. Please try again later.";

    hold_board();
    hold_board(const hold_board&) = delete;
    hold_board& operator=(const hold_board&) = delete;

    // --- the proxy's side ---
    // One set of counters per worker, made before the workers start.
    hold_counters& add_worker() { return counters_.emplace_back(); }
    // Takes a place among the held requests; false when `max` are waiting already. One shared
    // read-modify-write per held request (never on a request that is not held), so the bound is
    // exact across workers.
    bool try_enter(std::uint32_t max) noexcept {
        if (waiting_.fetch_add(1, std::memory_order_relaxed) >= max) {
            waiting_.fetch_sub(1, std::memory_order_relaxed);
            return false;
        }
        return true;
    }
    void leave() noexcept { waiting_.fetch_sub(1, std::memory_order_relaxed); }
    // The message to answer with; read only while the maintenance flag is set.
    std::shared_ptr<const std::string> message() const noexcept {
        return message_.load(std::memory_order_acquire);
    }
    // What release() calls: the server posts a wake-up to every worker. Empty: none (the
    // workers' tick still notices the flag cleared).
    void set_release(std::function<void()> nudge);

    // How many releases there have been: a request held before release n carries a number
    // below n, and is woken whatever the hold flag says by the time its worker looks (a new
    // POST /hold may have set it again).
    std::uint64_t releases() const noexcept { return releases_.load(std::memory_order_acquire); }

    // --- the admin side; any thread ---
    std::uint32_t waiting() const noexcept { return waiting_.load(std::memory_order_relaxed); }
    // Wakes the requests held until now, after the hold flag was cleared.
    void release();
    void set_message(std::string text);
    hold_totals totals() const noexcept;

private:
    std::atomic<std::uint32_t> waiting_{0};
    std::atomic<std::uint64_t> releases_{0};
    std::atomic<std::shared_ptr<const std::string>> message_;
    std::deque<hold_counters> counters_;  // by worker; never shrinks while the workers run
    mutable std::mutex nudge_mutex_;      // set_release against release(), both rare
    std::function<void()> nudge_;
};

}  // namespace switchyard::analysis
