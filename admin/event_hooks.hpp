#pragma once
// Delivery of rollout events to the `events` webhooks: each hook gets every event POSTed as
// JSON, in order, from a bounded queue, with retries and backoff. A failed delivery is logged
// and counted, then the next event goes; nothing here ever waits on the rollout or the traffic.

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/config.hpp"

namespace switchyard::admin {

class event_hooks {
public:
    // Called once per delivery: "ok", "failed" (every attempt failed) or "dropped" (the queue
    // was full).
    using observer = std::function<void(std::string_view result)>;

    struct options {
        std::size_t queue_limit = 1000;  // events waiting per hook; the oldest goes first
        int attempts = 5;                // per event
        std::chrono::milliseconds first_backoff{500};  // doubled after each failed attempt
        std::chrono::milliseconds max_backoff{30000};
    };

    event_hooks(boost::asio::any_io_executor ex, std::vector<config::webhook_config> hooks,
                observer on_delivery, options opts);
    event_hooks(boost::asio::any_io_executor ex, std::vector<config::webhook_config> hooks,
                observer on_delivery)
        : event_hooks(std::move(ex), std::move(hooks), std::move(on_delivery), options{}) {}
    ~event_hooks();
    event_hooks(const event_hooks&) = delete;
    event_hooks& operator=(const event_hooks&) = delete;

    // Starts one sender per hook on the executor.
    void start();
    // Queues `body` (a JSON object) for every hook. Executor thread only.
    void push(const std::string& body);

private:
    struct hook;
    boost::asio::awaitable<void> send_all(hook& h);

    boost::asio::any_io_executor ex_;
    observer on_delivery_;
    options opts_;
    std::vector<std::unique_ptr<hook>> hooks_;
};

}  // namespace switchyard::admin
