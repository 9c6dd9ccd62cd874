#include "admin/event_hooks.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "admin/http_client.hpp"

namespace switchyard::admin {
namespace {

namespace net = boost::asio;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

}  // namespace

struct event_hooks::hook {
    hook(const boost::asio::any_io_executor& ex, config::webhook_config c)
        : cfg(std::move(c)), wake(ex), backoff(ex) {}

    config::webhook_config cfg;
    std::deque<std::string> queue;
    net::steady_timer wake;  // waits for push() while the queue is empty
    net::steady_timer backoff;
    std::uint64_t dropped = 0;
};

event_hooks::event_hooks(boost::asio::any_io_executor ex, std::vector<config::webhook_config> hooks,
                         observer on_delivery, options opts)
    : ex_(std::move(ex)), on_delivery_(std::move(on_delivery)), opts_(opts) {
    for (auto& cfg : hooks) {
        hooks_.push_back(std::make_unique<hook>(ex_, std::move(cfg)));
    }
}

event_hooks::~event_hooks() = default;

void event_hooks::start() {
    for (auto& h : hooks_) {
        net::co_spawn(ex_, send_all(*h), net::detached);
    }
}

void event_hooks::push(const std::string& body) {
    for (auto& h : hooks_) {
        if (h->queue.size() >= opts_.queue_limit) {
            h->queue.pop_front();
            if (h->dropped++ % 100 == 0) {
                spdlog::warn(
                    "events webhook {}: queue full ({} events); dropped the oldest ({} so "
                    "far)",
                    h->cfg.url.text, opts_.queue_limit, h->dropped);
            }
            if (on_delivery_) {
                on_delivery_("dropped");
            }
        }
        h->queue.push_back(body);
        h->wake.cancel();
    }
}

net::awaitable<void> event_hooks::send_all(hook& h) {
    for (;;) {
        while (h.queue.empty()) {
            h.wake.expires_at(net::steady_timer::time_point::max());
            co_await h.wake.async_wait(use_tuple);
        }
        http_request request;
        request.method = "POST";
        request.target = h.cfg.url.target;
        request.content_type = "application/json";
        request.body = std::move(h.queue.front());
        h.queue.pop_front();
        auto backoff = opts_.first_backoff;
        for (int attempt = 1;; ++attempt) {
            const http_result r = co_await fetch(h.cfg.url.at, request, h.cfg.timeout);
            if (r.ok()) {
                if (on_delivery_) {
                    on_delivery_("ok");
                }
                break;
            }
            if (attempt >= opts_.attempts) {
                spdlog::warn("events webhook {}: gave up on an event after {} attempts: {}",
                             h.cfg.url.text, attempt, r.describe());
                if (on_delivery_) {
                    on_delivery_("failed");
                }
                break;
            }
            spdlog::debug("events webhook {}: attempt {} failed: {}; retrying in {} ms",
                          h.cfg.url.text, attempt, r.describe(), backoff.count());
            h.backoff.expires_after(backoff);
            co_await h.backoff.async_wait(use_tuple);
            backoff = std::min(backoff * 2, opts_.max_backoff);
        }
    }
}

}  // namespace switchyard::admin
