#include "proxy/mirror.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/http1.hpp"
#include "proxy/io_buffer.hpp"
#include "proxy/worker.hpp"

namespace switchyard::proxy {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using clock = std::chrono::steady_clock;
using analysis::upstream_failure;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// One copy's exchange with the mirrored slot. The deadline is one timer for the whole exchange:
// `connect` for a new connection, then `upstream_response` from the copy written to the last
// byte of the answer. On expiry it cancels the connection's I/O, which then fails with
// timed_out set.
class mirror_exchange {
public:
    mirror_exchange(worker& w, std::shared_ptr<mirror_job> job)
        : worker_(w),
          settings_(w.settings()),
          job_(std::move(job)),
          timer_(std::make_shared<deadline>(w.context())) {}

    net::awaitable<void> run();

private:
    // Shared with the timer's handler, which may run after the exchange has ended: it cancels
    // only the connection the exchange still holds.
    struct deadline {
        explicit deadline(net::io_context& io) : timer(io) {}
        net::steady_timer timer;
        tcp::socket* socket = nullptr;
        std::uint64_t armed = 0;  // a handler of an earlier arm() that runs late does nothing
        bool fired = false;
    };

    void arm(std::chrono::milliseconds timeout);
    void disarm() noexcept;
    // A new connection to target_, with its TLS handshake when the slot has tls.
    net::awaitable<upstream_failure> connect();
    // Writes the copy and reads the whole answer, discarding it; the status into record_.
    net::awaitable<upstream_failure> exchange(bool& answered);
    net::awaitable<std::tuple<error_code, std::size_t>> read(std::span<char> space);
    void finish();

    worker& worker_;
    settings_snapshot settings_;
    std::shared_ptr<mirror_job> job_;
    std::shared_ptr<deadline> timer_;
    upstream_target target_;
    upstream_ptr conn_;
    io_buffer in_;
    analysis::mirror_record record_;
    bool keep_alive_ = false;  // the connection may be pooled after the answer
};

void mirror_exchange::arm(std::chrono::milliseconds timeout) {
    timer_->socket = conn_ ? &conn_->socket : nullptr;
    timer_->fired = false;
    const std::uint64_t armed = ++timer_->armed;
    timer_->timer.expires_after(timeout);
    timer_->timer.async_wait([t = timer_, armed](const error_code& ec) {
        if (!ec && t->socket != nullptr && t->armed == armed) {
            t->fired = true;
            error_code ignored;
            t->socket->cancel(ignored);
        }
    });
}

void mirror_exchange::disarm() noexcept {
    timer_->socket = nullptr;
    timer_->timer.cancel();
}

net::awaitable<upstream_failure> mirror_exchange::connect() {
    conn_ = std::make_unique<upstream_connection>(worker_.context().get_executor(), target_);
    arm(settings_->timeouts.connect);
    auto connecting = conn_->socket.async_connect(target_.address, use_tuple);
    const auto [ec] = co_await std::move(connecting);
    if (ec) {
        disarm();
        spdlog::debug("mirror: connect to {} failed: {}",
                      settings_->endpoints[target_.endpoint].name,
                      timer_->fired ? "timed out" : ec.message());
        // Passive health is the primary's business: a copy never marks an address down.
        conn_.reset();
        co_return upstream_failure::connect;
    }
    error_code ignored;
    conn_->socket.set_option(tcp::no_delay(true), ignored);
    const endpoint& ep = settings_->endpoints[target_.endpoint];
    if (ep.tls) {
        conn_->tls = std::make_unique<tls_connection>(ep.tls, conn_->socket);
        std::string why;
        if (!prepare_client(*conn_->tls, ep.tls_name, ep.tls_verify, why)) {
            disarm();
            conn_.reset();
            co_return upstream_failure::connect;
        }
        auto handshake = conn_->tls->stream.async_handshake(ssl::stream_base::client, use_tuple);
        const auto [hec] = co_await std::move(handshake);
        if (hec) {
            disarm();
            conn_.reset();
            co_return upstream_failure::connect;
        }
    }
    disarm();
    co_return upstream_failure::none;
}

net::awaitable<std::tuple<error_code, std::size_t>> mirror_exchange::read(std::span<char> space) {
    const auto buffer = net::buffer(space.data(), space.size());
    if (conn_->tls) {
        auto op = conn_->tls->stream.async_read_some(buffer, use_tuple);
        co_return co_await std::move(op);
    }
    auto op = conn_->socket.async_read_some(buffer, use_tuple);
    co_return co_await std::move(op);
}

net::awaitable<upstream_failure> mirror_exchange::exchange(bool& answered) {
    answered = false;
    const auto sent_at = clock::now();
    arm(settings_->timeouts.upstream_response);
    error_code wec;
    const auto bytes = net::buffer(job_->request);
    if (conn_->tls) {
        auto op = net::async_write(conn_->tls->stream, bytes, use_tuple);
        std::tie(wec, std::ignore) = co_await std::move(op);
    } else {
        auto op = net::async_write(conn_->socket, bytes, use_tuple);
        std::tie(wec, std::ignore) = co_await std::move(op);
    }
    if (wec) {
        co_return timer_->fired ? upstream_failure::timeout : upstream_failure::reset;
    }
    const auto& limits = settings_->limits;
    const http1::parse_limits plimits{limits.max_header_bytes, limits.max_headers};
    in_.borrow(worker_.buffers());
    http1::body_kind body = http1::body_kind::none;
    std::uint64_t remaining = 0;
    http1::chunked_parser chunked(limits.max_header_bytes);
    bool have_head = false;
    for (;;) {
        if (!have_head && in_.size() > 0) {
            // `res` points into in_ and the worker's field storage: used up before any co_await.
            http1::response_head res;
            http1::parse_error perr = http1::parse_error::none;
            const auto st = http1::parse_response(in_.view(), worker_.header_storage(), plimits,
                                                  job_->head, res, perr);
            if (st == http1::parse_status::error) {
                co_return upstream_failure::protocol;
            }
            if (st == http1::parse_status::complete) {
                in_.consume(res.head_bytes);
                if (res.status < 200) {
                    continue;  // interim answers (100, 103) are skipped; a 101 was not asked for
                }
                have_head = true;
                answered = true;
                record_.status = static_cast<std::uint16_t>(res.status);
                body = res.body;
                remaining = res.content_length;
                keep_alive_ = res.keep_alive;
            }
        }
        if (have_head) {
            // Discard what is in hand of the body, and see whether it has ended.
            bool done = false;
            switch (body) {
                case http1::body_kind::none:
                    done = true;
                    break;
                case http1::body_kind::length: {
                    const auto take =
                        static_cast<std::size_t>(std::min<std::uint64_t>(in_.size(), remaining));
                    in_.consume(take);
                    remaining -= take;
                    done = remaining == 0;
                    break;
                }
                case http1::body_kind::chunked: {
                    const auto r = chunked.feed(in_.span(), false);
                    if (r.error != http1::parse_error::none) {
                        co_return upstream_failure::protocol;
                    }
                    in_.consume(r.consumed);
                    done = r.done;
                    break;
                }
                case http1::body_kind::until_close:
                    in_.clear();
                    break;
            }
            if (done) {
                record_.response_time =
                    std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - sent_at);
                keep_alive_ = keep_alive_ && in_.size() == 0;
                co_return upstream_failure::none;
            }
        }
        const auto space =
            in_.prepare(have_head ? buffer_pool::block_bytes : limits.max_header_bytes);
        if (space.empty()) {
            co_return upstream_failure::protocol;  // a head over max_header_bytes
        }
        auto op = read(space);
        const auto [ec, n] = co_await std::move(op);
        if (ec) {
            if (have_head && body == http1::body_kind::until_close &&
                (ec == net::error::eof || ec == ssl::error::stream_truncated)) {
                record_.response_time =
                    std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - sent_at);
                keep_alive_ = false;
                co_return upstream_failure::none;
            }
            if (timer_->fired) {
                co_return upstream_failure::timeout;
            }
            co_return have_head || in_.size() > 0 ? upstream_failure::protocol
                                                  : upstream_failure::reset;
        }
        in_.commit(n);
    }
}

net::awaitable<void> mirror_exchange::run() {
    upstream_failure failure = upstream_failure::connect;
    if (worker_.pick_target(job_->slot, target_)) {
        // A pooled connection the endpoint has closed fails before any answer: tried once more
        // on a new connection, as the session does (RFC 9112 §9.3.1.1).
        for (int attempt = 0; attempt < 2; ++attempt) {
            conn_ = attempt == 0 ? worker_.take_pooled(target_) : nullptr;
            const bool reused = conn_ != nullptr;
            if (!reused) {
                auto connecting = connect();
                failure = co_await std::move(connecting);
            } else {
                failure = upstream_failure::none;
            }
            if (failure != upstream_failure::none) {
                break;
            }
            bool answered = false;
            auto exchanging = exchange(answered);
            failure = co_await std::move(exchanging);
            disarm();
            if (failure == upstream_failure::none || !reused || answered || timer_->fired) {
                break;
            }
            conn_.reset();
            in_.clear();
        }
    }
    record_.failure = failure;
    if (failure != upstream_failure::none) {
        record_.status = 0;
        record_.response_time.reset();
        conn_.reset();
    } else if (keep_alive_ && conn_) {
        worker_.release(std::move(conn_));
    } else {
        conn_.reset();
    }
    in_.clear();
    in_.give_back(worker_.buffers());
    finish();
}

void mirror_exchange::finish() {
    analysis::metrics_shard& metrics = worker_.metrics();
    metrics.mirror_finished(job_->slot, record_);
    job_->mirror_class =
        analysis::status_class(record_.status, record_.failure != upstream_failure::none);
    if (job_->primary_class != 0 && job_->primary_class != job_->mirror_class) {
        metrics.mirror_mismatched(job_->slot);
    }
    worker_.mirror().release();
}

net::awaitable<void> send_mirror(worker& w, std::shared_ptr<mirror_job> job) {
    try {
        mirror_exchange e(w, std::move(job));
        auto running = e.run();
        co_await std::move(running);
    } catch (const std::exception& e) {
        // Out of memory, most likely: the copy is lost, its place in the queue is not (finish()
        // gives it back only when the exchange ends normally).
        spdlog::warn("mirror: a copy was lost: {}", e.what());
        w.mirror().release();
    }
}

}  // namespace

void write_mirror_head(std::string_view head, std::string& out) {
    // The head ends with CRLF CRLF: the marker goes before the last CRLF.
    const std::size_t end = head.size() >= 2 ? head.size() - 2 : 0;
    out.append(head.substr(0, end));
    out.append(mirror_header);
    out.append(": 1\r\n\r\n");
}

void spawn_mirror(worker& w, std::shared_ptr<mirror_job> job) {
    net::co_spawn(w.context(), send_mirror(w, std::move(job)), net::detached);
}

void primary_ended(mirror_job& job, analysis::metrics_shard& metrics, std::uint16_t status,
                   bool failed) noexcept {
    if (job.primary_ended) {
        return;
    }
    job.primary_ended = true;
    if (status == 0) {
        return;  // nothing reached the client: nothing to compare
    }
    job.primary_class = analysis::status_class(status, failed);
    if (job.mirror_class != 0 && job.mirror_class != job.primary_class) {
        metrics.mirror_mismatched(job.slot);
    }
}

}  // namespace switchyard::proxy
