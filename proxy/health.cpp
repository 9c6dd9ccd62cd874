#include "proxy/health.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace switchyard::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// The status line is all a check reads; a longer one is not an HTTP/1.x answer.
constexpr std::size_t max_status_line = 1024;

// One check's socket and the deadline that closes it, shared with the deadline's handler so
// that a handler that runs after the check has finished touches nothing freed.
struct probe_io {
    explicit probe_io(const net::any_io_executor& ex) : socket(ex), deadline(ex) {}
    tcp::socket socket;
    std::unique_ptr<tls_connection> tls;
    net::steady_timer deadline;
    bool timed_out = false;
};

// The status of "HTTP/1.x NNN ..." at the start of `line`; 0 when it is not one.
unsigned status_of(std::string_view line) {
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') {
        return 0;
    }
    unsigned status = 0;
    const auto digits = line.substr(9, 3);
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + 3, status);
    if (ec != std::errc{} || ptr != digits.data() + 3 || status < 100) {
        return 0;
    }
    return status;
}

// Sends the check's request on `stream` and reads the status line of the answer: empty when
// it is 2xx, else why not.
template <class Stream>
net::awaitable<std::string> exchange(Stream& stream, const std::string& request,
                                     const probe_io& io) {
    const auto [wec, written] = co_await net::async_write(stream, net::buffer(request), use_tuple);
    if (wec) {
        co_return io.timed_out ? "timeout" : "request not sent: " + wec.message();
    }
    std::string in;
    char block[512];
    for (;;) {
        const auto end = in.find("\r\n");
        if (end != std::string::npos) {
            const unsigned status = status_of(std::string_view(in).substr(0, end));
            if (status == 0) {
                co_return "invalid answer";
            }
            if (status >= 200 && status <= 299) {
                co_return std::string();
            }
            co_return "status " + std::to_string(status);
        }
        if (in.size() > max_status_line) {
            co_return "invalid answer";
        }
        const auto [ec, n] = co_await stream.async_read_some(net::buffer(block), use_tuple);
        in.append(block, n);
        if (ec && n == 0) {
            if (io.timed_out) {
                co_return "timeout";
            }
            co_return in.empty() ? "closed without an answer" : "invalid answer";
        }
    }
}

std::string describe_connect_failure(const boost::system::error_code& ec) {
    if (ec == net::error::connection_refused) {
        return "refused";
    }
    return "connect failed: " + ec.message();
}

}  // namespace

health_monitor::health_monitor(std::vector<endpoint_spec> endpoints,
                               std::shared_ptr<upstream_resolver> resolver,
                               const health_table* before)
    : specs_(std::move(endpoints)),
      resolver_(std::move(resolver)),
      counts_(std::make_unique<failure_counts[]>(specs_.size())),
      runs_(specs_.size()),
      work_(io_.get_executor()) {
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        endpoint_health_state& s = runs_[i].state;
        s.slot = specs_[i].slot;
        s.name = specs_[i].name;
        runs_[i].eject_timer = std::make_unique<net::steady_timer>(io_);
        if (before == nullptr) {
            continue;
        }
        const auto it = std::find_if(
            before->endpoints.begin(), before->endpoints.end(),
            [&s](const endpoint_health_state& b) { return b.slot == s.slot && b.name == s.name; });
        if (it != before->endpoints.end()) {
            s.last_failure = it->last_failure;
            s.last_failure_at = it->last_failure_at;
            s.failing_check = specs_[i].check.has_value() && it->failing_check;
        }
    }
    publish();
}

health_monitor::~health_monitor() {
    stop();
    // The ejection timers belong to io_, which is destroyed before runs_: they go first.
    for (endpoint_run& run : runs_) {
        run.eject_timer.reset();
    }
}

void health_monitor::start(std::function<void(const health_snapshot&)> publish) {
    publish_ = std::move(publish);
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        if (specs_[i].check) {
            net::co_spawn(io_, check_loop(i), net::detached);
        }
    }
    thread_ = std::thread([this] { io_.run(); });
}

void health_monitor::stop() {
    io_.stop();
    if (thread_.joinable()) {
        thread_.join();
    }
}

health_snapshot health_monitor::current() const {
    const std::lock_guard lock(mutex_);
    return current_;
}

void health_monitor::answered(std::size_t i, unsigned status) noexcept {
    const auto& passive = specs_[i].passive;
    if (!passive || passive->consecutive_5xx == 0) {
        return;
    }
    auto& count = counts_[i].server_errors;
    if (status < 500) {
        // A load, and a store only after a failure: no write to the shared line per success.
        if (count.load(std::memory_order_relaxed) != 0) {
            count.store(0, std::memory_order_relaxed);
        }
        return;
    }
    // Exactly one worker sees the count reach the threshold.
    if (count.fetch_add(1, std::memory_order_relaxed) + 1 == passive->consecutive_5xx) {
        post_eject(i, std::to_string(passive->consecutive_5xx) + " consecutive 5xx");
    }
}

void health_monitor::connect_failed(std::size_t i) noexcept {
    const auto& passive = specs_[i].passive;
    if (!passive || passive->consecutive_connect_failures == 0) {
        return;
    }
    auto& count = counts_[i].connect_failures;
    if (count.fetch_add(1, std::memory_order_relaxed) + 1 ==
        passive->consecutive_connect_failures) {
        post_eject(i, std::to_string(passive->consecutive_connect_failures) +
                          " consecutive connect failures");
    }
}

void health_monitor::connected(std::size_t i) noexcept {
    auto& count = counts_[i].connect_failures;
    if (count.load(std::memory_order_relaxed) != 0) {
        count.store(0, std::memory_order_relaxed);
    }
}

void health_monitor::post_eject(std::size_t i, std::string reason) noexcept {
    try {
        net::post(io_, [this, i, r = std::move(reason)]() mutable { eject(i, std::move(r)); });
    } catch (const std::exception& e) {
        // Out of memory: the endpoint stays in the rotation; the next failure counts on.
        spdlog::error("endpoint {}: ejection not taken: {}", specs_[i].name, e.what());
    }
}

void health_monitor::eject(std::size_t i, std::string reason) {
    endpoint_run& run = runs_[i];
    // The counts start again: failures of requests sent before the ejection do not carry it on.
    counts_[i].server_errors.store(0, std::memory_order_relaxed);
    counts_[i].connect_failures.store(0, std::memory_order_relaxed);
    if (run.state.ejected) {
        return;
    }
    run.state.ejected = true;
    run.state.last_failure = std::move(reason);
    run.state.last_failure_at = std::chrono::system_clock::now();
    const auto eject_for = specs_[i].passive->eject;
    spdlog::warn("endpoint {} of slot {} is down: {}; ejected for {} ms", specs_[i].name,
                 specs_[i].slot_name, run.state.down_reason(), eject_for.count());
    publish();
    run.eject_timer->expires_after(eject_for);
    run.eject_timer->async_wait([this, i](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        endpoint_run& r = runs_[i];
        r.state.ejected = false;
        counts_[i].server_errors.store(0, std::memory_order_relaxed);
        counts_[i].connect_failures.store(0, std::memory_order_relaxed);
        if (r.state.up()) {
            spdlog::info("endpoint {} of slot {} is up: its ejection ended", specs_[i].name,
                         specs_[i].slot_name);
        }
        publish();
    });
}

net::awaitable<void> health_monitor::check_loop(std::size_t i) {
    net::steady_timer timer(co_await net::this_coro::executor);
    const auto interval = specs_[i].check->interval;
    for (;;) {
        auto check = probe(i);
        const std::string failure = co_await std::move(check);
        on_check(i, failure);
        timer.expires_after(interval);
        const auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec) {
            co_return;
        }
    }
}

net::awaitable<std::string> health_monitor::probe(std::size_t i) {
    const endpoint_spec& spec = specs_[i];
    const address_snapshot table = resolver_->current();
    if (i >= table->endpoints.size() || table->endpoints[i].addresses.empty()) {
        co_return "unresolved";
    }
    const tcp::endpoint at = table->endpoints[i].addresses.front();
    auto io = std::make_shared<probe_io>(co_await net::this_coro::executor);
    // One deadline for connect, handshake and answer: closing the socket ends whichever runs.
    io->deadline.expires_after(spec.check->timeout);
    io->deadline.async_wait([io](const boost::system::error_code& ec) {
        if (!ec) {
            io->timed_out = true;
            boost::system::error_code ignored;
            io->socket.close(ignored);
        }
    });
    struct cancel_deadline {
        probe_io& io;
        ~cancel_deadline() { io.deadline.cancel(); }
    } guard{*io};

    const auto [cec] = co_await io->socket.async_connect(at, use_tuple);
    if (cec) {
        co_return io->timed_out ? "timeout" : describe_connect_failure(cec);
    }
    // HTTP/1.1 needs Host (RFC 9112 §3.2); the answer's status line is all that is read.
    const std::string request = "GET " + spec.check->path + " HTTP/1.1\r\nHost: " + spec.name +
                                "\r\nUser-Agent: switchyard-health-check\r\n"
                                "Connection: close\r\n\r\n";
    if (!spec.tls) {
        auto ex = exchange(io->socket, request, *io);
        co_return co_await std::move(ex);
    }
    io->tls = std::make_unique<tls_connection>(spec.tls, io->socket);
    std::string why;
    if (!prepare_client(*io->tls, spec.tls_name, spec.tls_verify, why)) {
        co_return "TLS handshake failed: " + why;
    }
    const auto [hec] =
        co_await io->tls->stream.async_handshake(net::ssl::stream_base::client, use_tuple);
    if (hec) {
        co_return io->timed_out
            ? "timeout"
            : "TLS handshake failed: " + describe_handshake_error(hec, *io->tls);
    }
    auto ex = exchange(io->tls->stream, request, *io);
    co_return co_await std::move(ex);
}

void health_monitor::on_check(std::size_t i, const std::string& failure) {
    endpoint_run& run = runs_[i];
    const auto& check = *specs_[i].check;
    const bool was_up = run.state.up();
    bool changed = false;
    if (failure.empty()) {
        run.fails = 0;
        if (run.state.failing_check && ++run.passes >= check.healthy) {
            run.state.failing_check = false;
            run.passes = 0;
            changed = true;
        }
    } else {
        run.passes = 0;
        changed = run.state.last_failure != failure;
        run.state.last_failure = failure;
        run.state.last_failure_at = std::chrono::system_clock::now();
        if (!run.state.failing_check && ++run.fails >= check.unhealthy) {
            run.state.failing_check = true;
            run.fails = 0;
            changed = true;
        }
    }
    if (!changed) {
        return;
    }
    if (was_up && !run.state.up()) {
        spdlog::warn("endpoint {} of slot {} is down: {}", specs_[i].name, specs_[i].slot_name,
                     run.state.down_reason());
    } else if (!was_up && run.state.up()) {
        spdlog::info("endpoint {} of slot {} is up: {} health checks passed in a row",
                     specs_[i].name, specs_[i].slot_name, check.healthy);
    }
    publish();
}

void health_monitor::publish() {
    auto table = std::make_shared<health_table>();
    table->from = this;
    table->version = ++version_;
    for (const endpoint_run& run : runs_) {
        table->endpoints.push_back(run.state);
        table->up.push_back(run.state.up() ? 1 : 0);
    }
    health_snapshot snapshot = std::move(table);
    // To the workers first: a reader of current() that sees the change knows the workers have
    // it queued, ahead of any request it sends after.
    if (publish_) {
        publish_(snapshot);
    }
    const std::lock_guard lock(mutex_);
    current_ = std::move(snapshot);
}

}  // namespace switchyard::proxy
