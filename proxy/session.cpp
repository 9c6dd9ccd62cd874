#include "proxy/session.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/rewrite.hpp"

namespace switchyard::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using std::chrono::milliseconds;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// After an error answer the client may still be sending; closing with unread bytes would reset
// the connection and could destroy the answer in flight (RFC 9112 §9.6). Like nginx's
// lingering_close, read and discard for a bounded time and amount first.
constexpr milliseconds lingering_time{2000};
constexpr std::size_t lingering_bytes = 1024 * 1024;

bool is_idempotent(std::string_view method) noexcept {
    return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
           method == "PUT" || method == "DELETE";
}

// A reset, broken pipe or EOF from a peer: its business, logged at debug only.
bool is_peer_gone(const error_code& ec) noexcept {
    return ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe || ec == net::error::connection_aborted;
}

net::awaitable<void> serve(std::unique_ptr<session> s) {
    co_await s->run();
}

}  // namespace

// --- session ---

class session::recorded_request {
public:
    recorded_request(session& s, analysis::slot_index slot) noexcept : session_(s), slot_(slot) {
        session_.worker_.metrics().request_started(slot_);
    }
    ~recorded_request() {
        session_.record_.latency = std::chrono::duration_cast<std::chrono::microseconds>(
            clock::now() - session_.started_at_);
        session_.worker_.metrics().request_finished(slot_, session_.record_);
    }
    recorded_request(const recorded_request&) = delete;
    recorded_request& operator=(const recorded_request&) = delete;

private:
    session& session_;
    analysis::slot_index slot_;
};

void spawn_session(worker& w, tcp::socket socket) {
    auto s = std::make_unique<session>(w, std::move(socket));
    net::co_spawn(w.context(), serve(std::move(s)), net::detached);
}

session::session(worker& w, tcp::socket downstream)
    : worker_(w),
      shared_(w.shared()),
      downstream_(std::move(downstream)),
      chunked_(shared_.limits.max_header_bytes) {
    worker_.add(*this);
}

session::~session() {
    shared_.connections.fetch_sub(1, std::memory_order_relaxed);
}

session::clock::time_point session::arm(milliseconds timeout) noexcept {
    timed_out_ = false;
    armed_at_ = clock::now();
    deadline_ = armed_at_ + timeout;
    return armed_at_;
}

void session::record_upstream_time() noexcept {
    const auto spent = clock::now() - upstream_sent_at_ - client_wait_;
    record_.upstream_time = std::chrono::duration_cast<std::chrono::microseconds>(
        std::max(spent, clock::duration::zero()));
}

void session::expire() {
    // The deadline stays in the past until the session arms or disarms: a cancel that finds
    // the operation already completed (its handler queued) is repeated on the next tick, so no
    // later I/O of the same step runs without a deadline.
    timed_out_ = true;
    cancel_io();
}

void session::drain() {
    if (idle_) {
        aborted_ = true;
        error_code ignored;
        downstream_.cancel(ignored);
    }
    // Otherwise the request in flight finishes and its answer says Connection: close.
}

void session::abort() {
    aborted_ = true;
    cancel_io();
}

void session::cancel_io() noexcept {
    error_code ignored;
    downstream_.cancel(ignored);
    if (upstream_) {
        upstream_->socket.cancel(ignored);
    }
}

net::awaitable<void> session::run() {
    error_code ec;
    downstream_.set_option(tcp::no_delay(true), ec);
    const auto peer = downstream_.remote_endpoint(ec);
    if (ec) {
        co_return;  // reset before we got to it
    }
    client_ip_ = peer.address().to_string();

    co_await serve();
    if (log_pending_) {
        log_request();
    }
    in_.clear();
    up_.clear();
    in_.give_back(worker_.buffers());
    up_.give_back(worker_.buffers());
    upstream_.reset();
    if (!aborted_) {
        co_await lingering_close();
    }
    downstream_.close(ec);
}

net::awaitable<void> session::serve() {
    const auto& limits = shared_.limits;
    const auto& timeouts = shared_.timeouts;
    // One frame for the life of the connection: the per-request state below lives in it, so a
    // request costs no coroutine-frame allocation of its own.
    for (bool first = true; !aborted_; first = false) {
        if (log_pending_) {
            log_request();  // the previous request has ended, answered or not
        }
        // --- The head. The first request of a connection has request_header from the accept;
        // later ones wait up to idle for their first byte, then get request_header (RFC 9112 §9.5
        // leaves both to us; these are nginx's client_header_timeout and keepalive_timeout).
        idle_ = in_.size() == 0;
        up_.clear();
        up_.give_back(worker_.buffers());
        in_.give_back(worker_.buffers());  // only when nothing pipelined is in it
        record_ = {};
        started_at_ = clock::now();  // bytes of this request already in hand: it starts now
        arm(first || !idle_ ? timeouts.request_header : timeouts.idle);
        http1::request_head req;
        http1::parse_error perr = http1::parse_error::none;
        const http1::parse_limits plimits{limits.max_header_bytes, limits.max_headers};
        for (;;) {
            if (in_.size() > 0) {
                const auto st =
                    http1::parse_request(in_.view(), worker_.header_storage(), plimits, req, perr);
                if (st == http1::parse_status::complete) {
                    break;
                }
                if (st == http1::parse_status::error) {
                    request_id_.clear();
                    log_pending_ = worker_.access_log() != nullptr;
                    co_await answer(http1::status_for(perr), http1::describe(perr), true);
                    co_return;
                }
            }
            if (idle_ && worker_.draining()) {
                co_return;
            }
            // Without a block (between requests) the first bytes land in first_read_; a block is
            // borrowed only once they have come.
            const bool borrowed = in_.attached();
            const auto space =
                borrowed ? in_.prepare(limits.max_header_bytes) : std::span<char>(first_read_);
            if (space.empty()) {  // the parser reports head_too_large first; kept as a backstop
                request_id_.clear();
                log_pending_ = worker_.access_log() != nullptr;
                co_await answer(431, http1::describe(http1::parse_error::head_too_large), true);
                co_return;
            }
            const auto [ec, n] =
                co_await downstream_.async_read_some(net::buffer(space), use_tuple);
            if (ec) {
                if (timed_out_ && !idle_) {
                    request_id_.clear();
                    log_pending_ = worker_.access_log() != nullptr;
                    co_await answer(408, "request header not received in time", true);
                } else if (!is_peer_gone(ec) && ec != net::error::operation_aborted) {
                    spdlog::debug("client {}: read failed: {}", client_ip_, ec.message());
                }
                co_return;
            }
            if (!borrowed) {
                in_.borrow(worker_.buffers());
                std::memcpy(in_.prepare(limits.max_header_bytes).data(), first_read_.data(), n);
            }
            in_.commit(n);
            if (idle_) {
                idle_ = false;
                started_at_ = clock::now();
                if (!first) {
                    arm(timeouts.request_header);
                }
            }
        }
        disarm();

        // --- What the request asks of us, taken from the head before it is consumed: `req` points
        // into `in_` and into the worker's field storage, valid only until the next suspension.
        request_state rs;
        rs.body = req.body;
        rs.remaining = req.content_length;
        rs.head = req.method == "HEAD";
        rs.idempotent = is_idempotent(req.method);
        rs.expect_continue = req.expect_continue;
        rs.body_read = req.body == http1::body_kind::none;
        client_http10_ = req.version_minor == 0;
        bool keep_alive = req.keep_alive;
        record_.bytes_in = req.head_bytes;
        if (worker_.access_log() != nullptr) {
            log_pending_ = true;
            log_method_.assign(req.method);
            log_target_.assign(req.target);
            for (const auto& f : req.fields) {
                if (http1::iequals(f.name, "user-agent")) {
                    log_user_agent_.assign(f.value);
                } else if (http1::iequals(f.name, "referer")) {
                    log_referer_.assign(f.value);
                }
            }
        }

        bool has_request_id = false;
        for (const auto& f : req.fields) {
            if (http1::iequals(f.name, "x-request-id")) {
                request_id_.assign(f.value);
                has_request_id = true;
                break;
            }
        }
        if (!has_request_id) {
            worker_.next_request_id(request_id_);
        }

        if (req.method == "CONNECT") {
            co_await answer(405, "CONNECT is not supported", true);
            co_return;
        }
        if (req.expect_other) {
            co_await answer(417, "only 100-continue is supported in Expect", true);
            co_return;
        }
        if (limits.max_body_bytes != 0 && req.body == http1::body_kind::length &&
            req.content_length > limits.max_body_bytes) {
            co_await answer(413, "request body larger than max_body_bytes", true);
            co_return;
        }

        // --- Route. The split is read once; this request stays on the slot it picked.
        const auto slot = worker_.pick_slot();
        const recorded_request recorded(*this, slot);
        log_slot_ = shared_.slot_names[slot];
        if (!worker_.pick_target(slot, target_)) {
            const bool close = !rs.body_read || !keep_alive;
            in_.consume(req.head_bytes);
            if (!co_await answer(503, worker_.unavailable_reason(slot), close) || close) {
                co_return;
            }
            continue;
        }
        const endpoint* ep = &shared_.endpoints[target_.endpoint];
        log_endpoint_ = ep->name;

        out_.clear();
        write_upstream_request(req, {client_ip_, request_id_, !has_request_id, ep->name}, out_);
        in_.consume(req.head_bytes);

        // --- Body bytes already in hand. When the whole request is in hand it can be replayed on a
        // fresh connection, so those bytes stay in `in_` until the response head arrives.
        std::size_t initial = 0;
        if (rs.body == http1::body_kind::length) {
            initial = static_cast<std::size_t>(std::min<std::uint64_t>(in_.size(), rs.remaining));
            rs.remaining -= initial;
            rs.body_read = rs.remaining == 0;
            record_.bytes_in += initial;
        } else if (rs.body == http1::body_kind::chunked) {
            chunked_.reset();
            const auto r = chunked_.feed(in_.span(), false);
            if (r.error != http1::parse_error::none) {
                co_await answer(400, http1::describe(r.error), true);  // nothing was sent upstream
                co_return;
            }
            if (limits.max_body_bytes != 0 && chunked_.payload_bytes() > limits.max_body_bytes) {
                co_await answer(413, "request body larger than max_body_bytes", true);
                co_return;
            }
            initial = r.consumed;
            rs.body_read = r.done;
            record_.bytes_in += initial;
        }
        const bool replayable = rs.body_read;

        // --- Exchange, retried once on a fresh connection when a reused one turns out dead before
        // the upstream can have acted on the request (RFC 9112 §9.3.1.1).
        http1::response_head res;
        fault f = fault::none;
        for (int attempt = 0;; ++attempt) {
            upstream_ =
                attempt == 0 ? worker_.pool(target_.endpoint).take(target_.address) : nullptr;
            const bool reused = upstream_ != nullptr;
            if (!reused) {
                f = co_await connect();
                if (f != fault::none) {
                    break;
                }
            }
            if (rs.expect_continue && attempt == 0 && !rs.body_read && initial == 0) {
                // We answer the expectation ourselves once an upstream is at hand (Envoy's
                // default); the upstream never sees Expect.
                static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
                if (std::get<0>(co_await write_downstream(continue_line, {}))) {
                    f = fault::client_gone;
                    break;
                }
            }
            f = co_await send_request(rs, initial);
            if (f == fault::none) {
                f = co_await read_response_head(rs, res);
            }
            const bool retry =
                attempt == 0 && reused && replayable &&
                (f == fault::upstream_write || (f == fault::upstream_closed && rs.idempotent));
            if (!retry) {
                break;
            }
            spdlog::debug("{}: pooled connection to {} was closed, retrying on a new one",
                          request_id_, ep->name);
        }
        if (replayable) {
            in_.consume(initial);
        }

        if (f != fault::none) {
            upstream_.reset();  // never reused after a failed exchange
            int status = 502;
            std::string_view reason = "upstream connection failed";
            switch (f) {
                case fault::client_gone:
                    co_return;
                case fault::client_timeout:
                    status = 408;
                    reason = "request body not received in time";
                    break;
                case fault::bad_body:
                    status = 400;
                    reason = "bad chunked framing in the request body";
                    break;
                case fault::body_too_large:
                    status = 413;
                    reason = "request body larger than max_body_bytes";
                    break;
                case fault::connect_failed:
                    reason = "could not connect to the upstream";
                    record_.failure = analysis::upstream_failure::connect;
                    break;
                case fault::upstream_timeout:
                    status = 504;
                    reason = "upstream did not answer in time";
                    record_.failure = analysis::upstream_failure::timeout;
                    break;
                case fault::upstream_protocol:
                    reason = "upstream sent an invalid response";
                    record_.failure = analysis::upstream_failure::protocol;
                    break;
                case fault::upstream_write:
                case fault::upstream_closed:
                    record_.failure = analysis::upstream_failure::reset;
                    break;
                case fault::none:
                    break;
            }
            const bool close = !rs.body_read || !keep_alive || status < 500 || worker_.draining();
            if (!co_await answer(status, reason, close) || close) {
                co_return;
            }
            continue;
        }

        // --- Response. The client connection closes after it when the client or the drain asks,
        // or when the body can only be delimited by closing.
        const bool close = !keep_alive || worker_.draining() ||
                           res.body == http1::body_kind::until_close ||
                           (res.body == http1::body_kind::chunked && client_http10_);
        out_.clear();
        write_downstream_response(res, {request_id_, close, client_http10_}, out_);
        record_.status = static_cast<std::uint16_t>(res.status);
        const bool upstream_keep_alive = res.keep_alive;
        if (!co_await stream_response(res)) {
            upstream_.reset();
            co_return;  // a response cut short can only end by closing
        }
        if (upstream_keep_alive && up_.size() == 0) {
            worker_.release(std::move(upstream_));
        } else {
            upstream_.reset();  // it said close, or sent bytes past the response: not reusable
        }
        if (close) {
            co_return;
        }
    }
}

void session::log_request() {
    log_pending_ = false;
    auto* log = worker_.access_log();
    if (log == nullptr) {
        return;
    }
    access_entry e;
    e.time = log->time();
    e.request_id = request_id_;
    e.client_ip = client_ip_;
    e.method = log_method_;
    e.target = log_target_;
    e.version_minor = client_http10_ ? 0 : 1;
    e.slot = log_slot_;
    e.endpoint = log_endpoint_;
    // No status was sent: the client went away first (nginx logs 499 likewise).
    e.status = record_.status != 0 ? record_.status : 499;
    e.duration = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - started_at_);
    e.bytes_in = record_.bytes_in;
    e.bytes_out = record_.bytes_out;
    e.user_agent = log_user_agent_;
    e.referer = log_referer_;
    log->append_line(e);
    log_method_.clear();
    log_target_.clear();
    log_user_agent_.clear();
    log_referer_.clear();
    log_slot_ = {};
    log_endpoint_ = {};
}

net::awaitable<session::fault> session::connect() {
    upstream_ = std::make_unique<upstream_connection>(downstream_.get_executor(), target_);
    arm(shared_.timeouts.connect);
    const auto [ec] = co_await upstream_->socket.async_connect(target_.address, use_tuple);
    disarm();
    if (ec) {
        if (aborted_) {
            co_return fault::client_gone;
        }
        spdlog::warn("connect to {} ({}) failed: {}", shared_.endpoints[target_.endpoint].name,
                     target_.address.address().to_string(),
                     timed_out_ ? "timed out" : ec.message());
        worker_.target_failed(target_);
        upstream_.reset();
        co_return fault::connect_failed;
    }
    worker_.target_succeeded(target_);
    error_code ignored;
    upstream_->socket.set_option(tcp::no_delay(true), ignored);
    co_return fault::none;
}

net::awaitable<session::fault> session::send_request(request_state& rs, std::size_t initial) {
    const std::array<net::const_buffer, 2> head{net::buffer(out_),
                                                net::buffer(in_.data(), initial)};
    // The upstream's time starts as the head is handed to the socket (the same clock reading
    // arms the write); a retry on a fresh connection starts it again.
    upstream_sent_at_ = arm(shared_.timeouts.upstream_response);
    client_wait_ = clock::duration::zero();
    const auto [ec, n] = co_await net::async_write(upstream_->socket, head, use_tuple);
    disarm();
    if (ec) {
        if (aborted_) {
            co_return fault::client_gone;
        }
        co_return timed_out_ ? fault::upstream_timeout : fault::upstream_write;
    }
    if (rs.body_read) {
        co_return fault::none;  // the whole request was in hand; `in_` keeps it for a retry
    }
    in_.consume(initial);
    co_return co_await pump_request_body(rs);
}

net::awaitable<session::fault> session::pump_request_body(request_state& rs) {
    const auto& limits = shared_.limits;
    while (!rs.body_read) {
        if (in_.size() == 0) {
            const auto space = in_.prepare(buffer_pool::block_bytes);
            arm(shared_.timeouts.idle);
            const auto [ec, n] =
                co_await downstream_.async_read_some(net::buffer(space), use_tuple);
            disarm();
            // A slow upload is the client's time, not the upstream's.
            client_wait_ += clock::now() - armed_at_;
            if (ec) {
                co_return timed_out_ ? fault::client_timeout : fault::client_gone;
            }
            in_.commit(n);
        }
        // `body_read` turns true only once the last bytes are written: if the write fails they
        // are still in `in_`, and the connection must close rather than parse them as a request.
        std::size_t chunk = 0;
        bool last = false;
        if (rs.body == http1::body_kind::length) {
            chunk = static_cast<std::size_t>(std::min<std::uint64_t>(in_.size(), rs.remaining));
            last = chunk == rs.remaining;
        } else {
            const auto r = chunked_.feed(in_.span(), false);
            if (r.error != http1::parse_error::none) {
                co_return fault::bad_body;
            }
            if (limits.max_body_bytes != 0 && chunked_.payload_bytes() > limits.max_body_bytes) {
                co_return fault::body_too_large;
            }
            chunk = r.consumed;
            last = r.done;
        }
        arm(shared_.timeouts.upstream_response);
        const auto [ec, n] =
            co_await net::async_write(upstream_->socket, net::buffer(in_.data(), chunk), use_tuple);
        disarm();
        if (ec) {
            co_return timed_out_ ? fault::upstream_timeout : fault::upstream_write;
        }
        in_.consume(chunk);
        record_.bytes_in += chunk;
        if (rs.body == http1::body_kind::length) {
            rs.remaining -= chunk;
        }
        rs.body_read = last;
    }
    co_return fault::none;
}

net::awaitable<session::fault> session::read_response_head(const request_state& rs,
                                                           http1::response_head& res) {
    const auto& limits = shared_.limits;
    const http1::parse_limits plimits{limits.max_header_bytes, limits.max_headers};
    up_.clear();
    up_.borrow(worker_.buffers());
    bool received = false;
    // One deadline for the whole head, from the moment the request was sent.
    arm(shared_.timeouts.upstream_response);
    for (;;) {
        if (up_.size() > 0) {
            http1::parse_error perr = http1::parse_error::none;
            const auto st = http1::parse_response(up_.view(), worker_.header_storage(), plimits,
                                                  rs.head, res, perr);
            if (st == http1::parse_status::error) {
                spdlog::warn("{}: invalid response from upstream: {}", request_id_,
                             http1::describe(perr));
                co_return fault::upstream_protocol;
            }
            if (st == http1::parse_status::complete) {
                if (res.status >= 200) {
                    disarm();
                    co_return fault::none;
                }
                if (res.status == 101) {  // we never offer Upgrade upstream
                    co_return fault::upstream_protocol;
                }
                // Interim answers: 100 is ours to give (see Expect above); others, such as
                // 103 Early Hints, go to HTTP/1.1 clients (RFC 9110 §15.2).
                if (res.status != 100 && !client_http10_) {
                    out_.clear();
                    write_downstream_response(res, {}, out_);
                    const std::size_t head_bytes = res.head_bytes;
                    if (std::get<0>(co_await write_downstream(out_, {}))) {
                        co_return fault::client_gone;
                    }
                    arm(shared_.timeouts.upstream_response);
                    up_.consume(head_bytes);
                } else {
                    up_.consume(res.head_bytes);
                }
                continue;
            }
        }
        const auto space = up_.prepare(limits.max_header_bytes);
        if (space.empty()) {
            co_return fault::upstream_protocol;
        }
        const auto [ec, n] =
            co_await upstream_->socket.async_read_some(net::buffer(space), use_tuple);
        if (ec) {
            if (aborted_) {
                co_return fault::client_gone;
            }
            if (timed_out_) {
                co_return fault::upstream_timeout;
            }
            co_return received ? fault::upstream_protocol : fault::upstream_closed;
        }
        received = true;
        up_.commit(n);
    }
}

net::awaitable<bool> session::stream_response(const http1::response_head& res) {
    // The head is in out_ and up_ starts at the head; the body follows it in up_.
    up_.consume(res.head_bytes);
    const bool decode = res.body == http1::body_kind::chunked && client_http10_;
    std::uint64_t remaining = res.content_length;
    bool done = res.body == http1::body_kind::none ||
                (res.body == http1::body_kind::length && remaining == 0);
    if (res.body == http1::body_kind::chunked) {
        chunked_.reset();
    }
    std::span<const char> head = out_;

    for (;;) {
        std::size_t take = 0;   // bytes of up_ used by this round
        std::size_t write = 0;  // bytes to send from the front of up_
        if (up_.size() > 0 && !done) {
            switch (res.body) {
                case http1::body_kind::length:
                    take = write =
                        static_cast<std::size_t>(std::min<std::uint64_t>(up_.size(), remaining));
                    remaining -= take;
                    done = remaining == 0;
                    break;
                case http1::body_kind::chunked: {
                    const auto r = chunked_.feed(up_.span(), decode);
                    if (r.error != http1::parse_error::none) {
                        spdlog::warn("{}: bad chunked framing from upstream: {}", request_id_,
                                     http1::describe(r.error));
                        record_.failure = analysis::upstream_failure::protocol;
                        co_return false;
                    }
                    take = r.consumed;
                    write = decode ? r.data : r.consumed;
                    done = r.done;
                    break;
                }
                case http1::body_kind::until_close:
                    take = write = up_.size();
                    break;
                case http1::body_kind::none:
                    break;
            }
        }
        if (done) {
            // The last byte of the response has been read from the upstream: its time ends here,
            // before the client is written to.
            record_upstream_time();
        }
        if (!head.empty() || write > 0) {
            if (std::get<0>(co_await write_downstream(head, {up_.data(), write}))) {
                co_return false;
            }
            head = {};
            if (!done) {
                // The upstream's bytes wait while a slow client reads: that is not its time.
                // (A response that fits one read never gets here: no extra clock reading.)
                client_wait_ += clock::now() - armed_at_;
            }
        }
        up_.consume(take);
        if (done) {
            co_return true;
        }
        const auto space = up_.prepare(buffer_pool::block_bytes);
        arm(shared_.timeouts.upstream_response);
        const auto [ec, n] =
            co_await upstream_->socket.async_read_some(net::buffer(space), use_tuple);
        disarm();
        if (ec) {
            if (res.body == http1::body_kind::until_close && ec == net::error::eof) {
                record_upstream_time();
                co_return false;  // the normal end of a close-delimited body: close the client too
            }
            spdlog::debug("{}: upstream body cut short: {}", request_id_,
                          timed_out_ ? "timed out" : ec.message());
            if (!aborted_) {
                record_.failure = timed_out_ ? analysis::upstream_failure::timeout
                                             : analysis::upstream_failure::reset;
            }
            co_return false;
        }
        up_.commit(n);
    }
}

// Not a coroutine: it arms the deadline and hands back the write itself, so awaiting it costs
// no frame of its own. async_write copies the buffer sequence before this returns.
session::write_awaitable session::write_downstream(std::span<const char> a,
                                                   std::span<const char> b) {
    arm(shared_.timeouts.idle);
    record_.bytes_out += a.size() + b.size();
    return net::async_write(downstream_,
                            std::array<net::const_buffer, 2>{net::buffer(a.data(), a.size()),
                                                             net::buffer(b.data(), b.size())},
                            use_tuple);
}

net::awaitable<bool> session::answer(int status, std::string_view reason, bool close) {
    out_.clear();
    write_error_response(status, reason, request_id_, close, client_http10_, out_);
    const auto [ec, n] = co_await write_downstream(out_, {});
    if (!ec) {
        record_.status = static_cast<std::uint16_t>(status);
    }
    co_return !ec;
}

net::awaitable<void> session::lingering_close() {
    error_code ec;
    downstream_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
        co_return;
    }
    arm(lingering_time);
    std::size_t discarded = 0;
    while (discarded < lingering_bytes) {
        const auto [rec, n] =
            co_await downstream_.async_read_some(net::buffer(first_read_), use_tuple);
        if (rec) {
            break;
        }
        discarded += n;
    }
    disarm();
}

}  // namespace switchyard::proxy
