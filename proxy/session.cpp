#include "proxy/session.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <tuple>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/proxy_protocol.hpp"
#include "proxy/receive_buffer.hpp"
#include "proxy/rewrite.hpp"
#include "proxy/tls.hpp"

namespace switchyard::proxy {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using std::chrono::milliseconds;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// After an error answer the client may still be sending; closing with unread bytes would reset
// the connection and could destroy the answer in flight (RFC 9112 §9.6). Like nginx's
// lingering_close, read and discard for a bounded time and amount first.
constexpr milliseconds lingering_time{2000};
constexpr std::size_t lingering_bytes = 1024 * 1024;

// A response body piece up to this size is sent in one TLS record with its head: one write
// instead of two for the common small response, for the price of a copy.
constexpr std::size_t tls_join_bytes = 16 * 1024;

// The Retry-After of a maintenance answer (RFC 9110 §10.2.3): maintenance has no announced end,
// so clients are asked to come back in half a minute.
constexpr std::uint32_t maintenance_retry_after = 30;

// Retry-After for a request refused during a hold: hold.max_wait in whole seconds, rounded up,
// by when the hold should have ended or the wait have run out.
std::uint32_t hold_retry_after(const config::hold_config& hold) noexcept {
    const auto ms = static_cast<std::uint64_t>(hold.max_wait.count());
    return static_cast<std::uint32_t>(std::max<std::uint64_t>(1, (ms + 999) / 1000));
}

// A held request's place among the process's held requests, given back however its wait ends
// (also when the io_context destroys the frame at shutdown).
class held_place {
public:
    explicit held_place(analysis::hold_board& board) noexcept : board_(board) {}
    ~held_place() { board_.leave(); }
    held_place(const held_place&) = delete;
    held_place& operator=(const held_place&) = delete;

private:
    analysis::hold_board& board_;
};

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

// Counts a tunnel open on its slot for as long as it lives, however it ends (the shard outlives
// the worker whose io_context destroys the frame at shutdown).
class open_tunnel {
public:
    open_tunnel(analysis::metrics_shard& metrics, analysis::slot_index slot) noexcept
        : metrics_(metrics), slot_(slot) {
        metrics_.tunnel_opened(slot_);
    }
    ~open_tunnel() { metrics_.tunnel_closed(slot_); }
    open_tunnel(const open_tunnel&) = delete;
    open_tunnel& operator=(const open_tunnel&) = delete;

private:
    analysis::metrics_shard& metrics_;
    analysis::slot_index slot_;
};

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
        if (session_.mirror_) {
            const analysis::request_record& r = session_.record_;
            primary_ended(*session_.mirror_, session_.worker_.metrics(), r.status,
                          r.failure != analysis::upstream_failure::none);
            session_.mirror_.reset();
        }
    }
    recorded_request(const recorded_request&) = delete;
    recorded_request& operator=(const recorded_request&) = delete;

private:
    session& session_;
    analysis::slot_index slot_;
};

// Every answer an exchange can end with, in one place.
constexpr session::fault_answer session::answer_for(fault f) noexcept {
    using upstream_failure = analysis::upstream_failure;
    switch (f) {
        case fault::body_timeout:
            return {408, "request body not received in time"};
        case fault::bad_body:
            return {400, "bad chunked framing in the request body"};
        case fault::body_too_large:
            return {413, "request body larger than max_body_bytes"};
        case fault::connect_failed:
            return {502, "could not connect to the upstream", upstream_failure::connect};
        case fault::upstream_tls:
            return {502, "TLS handshake with the upstream failed", upstream_failure::connect};
        case fault::upstream_write:
        case fault::upstream_closed:
            return {502, "upstream connection failed", upstream_failure::reset};
        case fault::upstream_timeout:
            return {504, "upstream did not answer in time", upstream_failure::timeout};
        case fault::upstream_protocol:
            return {502, "upstream sent an invalid response", upstream_failure::protocol};
        case fault::none:
        case fault::client_gone:
        case fault::cut_short:
            break;
    }
    return {};
}

void spawn_session(worker& w, client_connection conn, bool tls) {
    auto s = std::make_unique<session>(w, std::move(conn), tls);
    net::co_spawn(w.context(), serve(std::move(s)), net::detached);
}

session::session(worker& w, client_connection conn, bool tls)
    : worker_(w),
      shared_(w.shared()),
      settings_(w.settings()),
      client_(std::move(conn)),
      downstream_(client_.socket),
      chunked_(settings_->limits.max_header_bytes) {
    if (tls) {
        tls_ = std::make_unique<tls_connection>(settings_->certificates, downstream_);
    }
    worker_.add(*this);
}

session::~session() = default;

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

void session::set_idle(bool idle, clock::time_point now) noexcept {
    if (idle != idle_) {
        idle_ = idle;
        idle_since_ = idle ? now : clock::time_point::max();
        if (!tls_) {
            worker_.session_idle(idle);  // TLS sessions never park, so they take no warm place
        }
    }
    if (!idle) {
        parking_ = false;  // a park() that came too late to cancel the read
    }
}

void session::expire() {
    // The deadline stays in the past until the session arms or disarms: a cancel that finds
    // the operation already completed (its handler queued) is repeated on the next tick, so no
    // later I/O of the same step runs without a deadline. A tunnel has a read in flight each
    // way: both are cancelled here, and timed_out_ stays set (tunnel_activity does not clear
    // it), so a direction whose read had already completed stops at its next step.
    timed_out_ = true;
    cancel_io();
}

void session::drain() {
    if (idle_) {
        aborted_ = true;
        error_code ignored;
        downstream_.cancel(ignored);
    }
    // Otherwise the request in flight finishes and its answer says Connection: close. A tunnel
    // is left open: it has no message boundary to stop at, so it runs until the drain deadline,
    // when abort() closes it.
}

void session::abort() {
    aborted_ = true;
    cancel_io();
    if (held_ != nullptr) {
        held_->result = held_request::outcome::drained;
        held_->timer.cancel();
    }
    if (tunnel_) {
        // worker::stop stops the loop right after: the coroutine may never resume to close the
        // tunnel, and its peers must not wait for the io_context's destruction to learn of it.
        error_code ignored;
        downstream_.close(ignored);
        if (upstream_) {
            upstream_->socket.close(ignored);
        }
    }
}

void session::park() {
    // Not before its first request: that wait is bounded by request_header, not idle. Not over
    // TLS: the connection's state is in its TLS stream, which a parked socket does not keep.
    if (idle_ && !parking_ && !first_ && !tls_) {
        parking_ = true;
        error_code ignored;
        downstream_.cancel(ignored);
    }
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
    if (shared_.proxy_protocol != config::proxy_protocol_version::off &&
        !client_.proxy_header_read) {
        // Before the TLS handshake: the balancer sends the header ahead of the client's bytes.
        if (!co_await read_proxy_header()) {
            in_.clear();
            in_.give_back(worker_.buffers());
            downstream_.close(ec);
            co_return;
        }
    }
    client_ip_ = client_.peer.address().to_string();
    if (tls_ && !co_await handshake()) {
        downstream_.close(ec);
        co_return;
    }

    co_await serve();
    if (log_pending_) {
        log_request();
    }
    const bool park = parking_ && !aborted_ && !worker_.draining();
    const auto idle_since = idle_since_;
    set_idle(false, {});
    in_.clear();
    up_.clear();
    in_.give_back(worker_.buffers());
    up_.give_back(worker_.buffers());
    upstream_.reset();
    if (park) {
        worker_.park(std::move(client_), idle_since);
        co_return;
    }
    // A tunnel has ended both ways, or failed: nothing to linger for.
    if (!aborted_ && !tunnel_) {
        if (tls_) {
            co_await close_tls();
        } else {
            co_await lingering_close();
        }
    }
    downstream_.close(ec);
}

net::awaitable<bool> session::read_proxy_header() {
    namespace pp = proxy_protocol;
    using analysis::proxy_protocol_failure;
    // The same bound as a request head's: a balancer sends the header at once.
    arm(settings_->timeouts.request_header);
    in_.borrow(worker_.buffers());
    const auto version = shared_.proxy_protocol;
    proxy_protocol_failure failure = proxy_protocol_failure::malformed;
    for (;;) {
        const pp::parse_result r = pp::parse(version, in_.span());
        if (r.status == pp::parse_status::done) {
            disarm();
            in_.consume(r.consumed);
            // Nothing past the header was read: the block goes back to the pool, not held
            // through a TLS handshake or the wait for the first request.
            in_.give_back(worker_.buffers());
            if (r.source) {
                client_.peer = *r.source;
            }
            client_.proxy_header_read = true;
            co_return true;
        }
        if (r.status == pp::parse_status::error) {
            failure = r.failure;
            break;
        }
        // No byte past the header is read: over TLS the rest is the handshake's, which reads
        // the socket itself. Version 2 says how long it is; version 1 ends at its LF, so it is
        // peeked at (MSG_PEEK) and only the bytes up to the LF are taken. A peek that finds no
        // LF takes all it saw, so the next one waits for new bytes instead of seeing the same.
        const std::span<char> space = in_.prepare(pp::max_v2_bytes);
        error_code ec;
        std::size_t n = 0;
        if (r.wanted > 0) {
            auto read = downstream_.async_read_some(
                net::buffer(space.data(), std::min(r.wanted, space.size())), use_tuple);
            std::tie(ec, n) = co_await std::move(read);
        } else {
            auto peek = downstream_.async_receive(
                net::buffer(space.data(), std::min(pp::max_v1_bytes - in_.size(), space.size())),
                tcp::socket::message_peek, use_tuple);
            std::tie(ec, n) = co_await std::move(peek);
            if (!ec) {
                const std::string_view seen(space.data(), n);
                const std::size_t lf = seen.find('\n');
                const std::size_t take = lf == std::string_view::npos ? n : lf + 1;
                auto consume =
                    net::async_read(downstream_, net::buffer(space.data(), take), use_tuple);
                std::tie(ec, n) = co_await std::move(consume);
            }
        }
        if (ec) {
            failure = timed_out_ ? proxy_protocol_failure::timeout : proxy_protocol_failure::closed;
            break;
        }
        in_.commit(n);
    }
    disarm();
    if (aborted_) {
        co_return false;  // shutdown: not the client's failure
    }
    worker_.metrics().proxy_protocol_failed(failure);
    // Port scanners and misconfigured balancers: theirs to fix, logged at debug.
    spdlog::debug("client {}: no valid PROXY protocol header ({})",
                  client_.peer.address().to_string(),
                  analysis::proxy_protocol_failure_name(failure));
    co_return false;
}

net::awaitable<bool> session::handshake() {
    arm(settings_->timeouts.tls_handshake);
    const auto [ec] = co_await tls_->stream.async_handshake(ssl::stream_base::server, use_tuple);
    disarm();
    if (!ec) {
        co_return true;
    }
    if (aborted_) {
        co_return false;  // drain or shutdown: not the client's failure
    }
    const auto reason = timed_out_ ? analysis::tls_failure::timeout : classify_handshake_error(ec);
    worker_.metrics().tls_handshake_failed(reason);
    // Scanners, old clients and port probes fail handshakes all day: not an error of ours.
    spdlog::debug("TLS handshake with {} failed ({}): {}", client_ip_,
                  analysis::tls_failure_name(reason),
                  timed_out_ ? "timed out" : describe_handshake_error(ec, *tls_));
    co_return false;
}

net::awaitable<void> session::close_tls() {
    // Marked as received, the client's close_notify is not waited for: ours is sent and the
    // shutdown is done, as nginx and HAProxy do (RFC 8446 §6.1 asks each side to send one, not
    // to wait for the other's). Waiting would cost a read and a wakeup per connection.
    SSL_set_shutdown(tls_->stream.native_handle(), SSL_RECEIVED_SHUTDOWN);
    arm(settings_->timeouts.idle);
    co_await tls_->stream.async_shutdown(use_tuple);
    disarm();
}

session::io_awaitable session::read_client(std::span<char> space, bool continuation) {
    if (tls_) {
        return tls_->stream.async_read_some(net::buffer(space.data(), space.size()), use_tuple);
    }
    if (continuation) {
        return read_more(downstream_, space, downstream_drained_);
    }
    return downstream_.async_read_some(receive_buffer(space), use_tuple);
}

session::io_awaitable session::read_upstream(std::span<char> space, bool continuation) {
    if (upstream_->tls) {
        return upstream_->tls->stream.async_read_some(net::buffer(space.data(), space.size()),
                                                      use_tuple);
    }
    if (continuation) {
        return read_more(upstream_->socket, space, upstream_drained_);
    }
    return upstream_->socket.async_read_some(receive_buffer(space), use_tuple);
}

template <class Buffers>
session::io_awaitable session::write_upstream(const Buffers& buffers) {
    if (upstream_->tls) {
        return net::async_write(upstream_->tls->stream, buffers, use_tuple);
    }
    return net::async_write(upstream_->socket, buffers, use_tuple);
}

net::awaitable<void> session::serve() {
    // One frame for the life of the connection: the per-request state lives in it, so a request
    // costs no coroutine-frame allocation of its own (nested frames come from Asio's per-thread
    // recycling cache).
    for (; !aborted_; first_ = false) {
        if (log_pending_) {
            log_request();  // the previous request has ended, answered or not
        }
        begin_request();
        // The head, read in this frame: a connection waiting for its next request holds no
        // nested frame (Asio recycles only a few per thread).
        request_state rs;
        verdict v = verdict::incomplete;
        while (v == verdict::incomplete) {
            const std::span<char> space = head_space(rs, v);
            if (v == verdict::incomplete) {
                // The first read of a next request does not wait for readiness first: the wait
                // would cost an epoll_ctl per request (see read_more).
                const bool first = idle_;
                auto read = read_client(space, !first);
                const auto [ec, n] = co_await std::move(read);
                if (first) {
                    downstream_drained_ = n < space.size();
                }
                v = took_head_bytes(rs, ec, n);
            }
        }
        if (v == verdict::hold) {
            auto wait = wait_held();
            const held_request::outcome how = co_await std::move(wait);
            v = after_hold(rs, how);
        }
        if (v == verdict::closed) {
            co_return;
        }
        std::optional<recorded_request> recorded;
        if (rs.routed) {
            recorded.emplace(*this, rs.slot);
        }
        if (v == verdict::answer) {
            auto answered = answer(rs.status, rs.reason, rs.close, rs.retry_after);
            if (!co_await std::move(answered) || rs.close) {
                co_return;
            }
            continue;
        }
        const fault f = co_await exchange(rs);
        if (f == fault::none) {
            if (rs.tunnel) {
                // The request ended with its 101: recorded and logged now, so that the tunnel's
                // lifetime counts as neither its latency nor a request in flight.
                recorded.reset();
                if (log_pending_) {
                    log_request();
                }
                co_await tunnel(rs.slot);
                co_return;
            }
            if (rs.close) {
                co_return;
            }
            continue;
        }
        const fault_answer a = answer_for(f);
        if (a.status == 0) {
            co_return;
        }
        record_.failure = a.failure;
        const bool close = !rs.body_read || !rs.keep_alive || a.status < 500 || worker_.draining();
        if (!co_await answer(a.status, a.reason, close) || close) {
            co_return;
        }
    }
}

void session::refresh_settings() noexcept {
    // A pointer compare per request; the copy, an atomic increment shared with the other
    // workers, only on the first request after a reload.
    if (settings_ != worker_.settings()) {
        settings_ = worker_.settings();
    }
}

void session::begin_request() {
    // The first request of a connection has request_header from the accept; later ones wait up
    // to idle for their first byte, then get request_header (RFC 9112 §9.5 leaves both to us;
    // these are nginx's client_header_timeout and keepalive_timeout).
    const bool idle = in_.size() == 0;
    refresh_settings();
    up_.clear();
    up_.give_back(worker_.buffers());
    in_.give_back(worker_.buffers());  // only when nothing pipelined is in it
    record_ = {};
    started_at_ =
        arm(first_ || !idle ? settings_->timeouts.request_header : settings_->timeouts.idle);
    // Past the worker's number of warm sessions, a connection waits for its next request parked
    // (never one over TLS: see park()).
    if (idle && !first_ && !tls_ && worker_.parking_idle()) {
        parking_ = true;
    }
    set_idle(idle, started_at_);
}

std::span<char> session::head_space(request_state& rs, verdict& v) {
    if (in_.size() > 0) {
        v = prepare_request(rs);
        if (v != verdict::incomplete) {
            return {};
        }
    }
    if (idle_ && (parking_ || worker_.draining())) {
        v = verdict::closed;
        return {};
    }
    // Without a block (between requests) the first bytes land in first_read_; a block is
    // borrowed only once they have come.
    const auto space = in_.attached() ? in_.prepare(settings_->limits.max_header_bytes)
                                      : std::span<char>(first_read_);
    if (space.empty()) {  // the parser reports head_too_large first; kept as a backstop
        v = refuse_head(rs, 431, http1::describe(http1::parse_error::head_too_large));
    }
    return space;
}

session::verdict session::took_head_bytes(request_state& rs, const error_code& ec, std::size_t n) {
    if (ec) {
        if (timed_out_ && !idle_) {
            return refuse_head(rs, 408, "request header not received in time");
        }
        if (!is_peer_gone(ec) && ec != net::error::operation_aborted) {
            spdlog::debug("client {}: read failed: {}", client_ip_, ec.message());
        }
        return verdict::closed;
    }
    if (!in_.attached()) {
        in_.borrow(worker_.buffers());
        std::memcpy(in_.prepare(settings_->limits.max_header_bytes).data(), first_read_.data(), n);
    }
    in_.commit(n);
    if (idle_) {
        started_at_ = clock::now();
        set_idle(false, started_at_);
        if (!first_) {
            arm(settings_->timeouts.request_header);
        }
    }
    return verdict::incomplete;
}

session::verdict session::refuse_head(request_state& rs, int status,
                                      std::string_view reason) noexcept {
    request_id_.clear();
    log_pending_ = worker_.access_log() != nullptr;
    return refuse(rs, {status, reason});
}

session::verdict session::prepare_request(request_state& rs) {
    // The request is parsed, routed and sent on the settings in force as its bytes arrive, and
    // keeps them to its end: a reload while it is in flight does not touch it.
    refresh_settings();
    const auto& limits = settings_->limits;
    http1::request_head req;
    http1::parse_error perr = http1::parse_error::none;
    const http1::parse_limits plimits{limits.max_header_bytes, limits.max_headers};
    const auto st = http1::parse_request(in_.view(), worker_.header_storage(), plimits, req, perr);
    if (st == http1::parse_status::incomplete) {
        return verdict::incomplete;
    }
    if (st == http1::parse_status::error) {
        return refuse_head(rs, http1::status_for(perr), http1::describe(perr));
    }
    disarm();
    const bool has_request_id = classify(req, rs);
    if (const auto refusal = refusal_for(req)) {
        return refuse(rs, *refusal);
    }

    // --- Route. The traffic state is read once; this request stays on the slot it picked: the
    // preview header's, else the first route's that takes it, else its sticky pin's or the
    // weighted split's (README, "Routes", "Sticky sessions").
    const analysis::traffic_state traffic = worker_.traffic();
    if (traffic.maintenance || (traffic.hold && !rs.released)) [[unlikely]] {
        return hold_or_refuse(req, traffic.maintenance, rs);
    }
    const auto preview =
        settings_->preview.preview_for(req, client_.peer.address(), shared_.slot_names);
    if (preview.what == preview_rule::outcome::unknown_slot) {
        return refuse(rs, {400, "the preview header names no slot"});
    }
    if (preview.what == preview_rule::outcome::slot) {
        rs.slot = preview.slot;
    } else if (const auto routed = route_for(req, traffic)) {
        rs.slot = *routed;
    } else {
        pick_slot(req, traffic, rs);
    }
    rs.routed = true;
    log_slot_ = shared_.slot_names[rs.slot];
    if (!worker_.pick_target(rs.slot, target_)) {
        in_.consume(req.head_bytes);
        reason_ = worker_.unavailable_reason(rs.slot);
        rs.status = 503;
        rs.reason = reason_;
        rs.close = !rs.body_read || !rs.keep_alive;
        return verdict::answer;
    }
    const endpoint& ep = settings_->endpoints[target_.endpoint];
    log_endpoint_ = ep.name;

    out_.clear();
    const std::span<const std::string> upgrade =
        rs.upgrade ? std::span<const std::string>(settings_->upgrade.allow)
                   : std::span<const std::string>();
    write_upstream_request(req,
                           {client_ip_, request_id_, !has_request_id, ep.name, tls_ != nullptr,
                            upgrade, settings_->preview.stripped()},
                           out_);
    in_.consume(req.head_bytes);
    const verdict v = take_body_in_hand(rs);
    if (v == verdict::forward && settings_->mirror) {
        mirror_request(req, rs, traffic);  // `req` still views bytes consume() left in place
    }
    return v;
}

void session::mirror_request(const http1::request_head& req, const request_state& rs,
                             analysis::traffic_state traffic) {
    // Copies of the stable slot's requests go to the other slot; a request a route or a rollout
    // step sent elsewhere is not copied, nor is an Upgrade (its tunnel cannot be replayed).
    const config::mirror_config& m = *settings_->mirror;
    if (rs.slot != traffic.stable_slot() || rs.upgrade ||
        std::find(m.methods.begin(), m.methods.end(), req.method) == m.methods.end()) {
        return;
    }
    // Exactly `percent` of the eligible requests are chosen; those the body size or the queue
    // then refuse are counted as dropped.
    mirror_sender& sender = worker_.mirror();
    if (!sender.choose(m.percent)) {
        return;
    }
    const auto to = static_cast<analysis::slot_index>(rs.slot ^ 1U);
    const std::uint64_t body =
        req.body == http1::body_kind::length ? req.content_length : rs.initial;
    if (body > m.max_body) {
        worker_.metrics().mirror_dropped(to, analysis::mirror_drop::body_too_large);
        return;
    }
    if (!rs.body_read) {
        return;  // a body still to come is streamed to the primary, never held for a copy
    }
    auto job = std::make_shared<mirror_job>();
    job->slot = to;
    job->head = rs.head;
    job->request.reserve(out_.size() + mirror_header.size() + 4 + rs.initial);
    write_mirror_head(out_, job->request);
    job->request.append(in_.data(), rs.initial);
    // Taken once nothing here can throw: spawn_mirror's exchange gives the place back.
    if (!sender.try_acquire(settings_->mirror_queue)) {
        worker_.metrics().mirror_dropped(to, analysis::mirror_drop::queue_full);
        return;
    }
    mirror_ = job;
    spawn_mirror(worker_, std::move(job));
}

std::optional<analysis::slot_index> session::route_for(const http1::request_head& req,
                                                       const analysis::traffic_state& traffic) {
    const auto pick = settings_->routes.route_for(req, traffic, worker_.index());
    if (!pick) {
        return std::nullopt;
    }
    worker_.metrics().route_taken(pick->counter);
    return pick->slot;
}

void session::pick_slot(const http1::request_head& req, const analysis::traffic_state& traffic,
                        request_state& rs) noexcept {
    // A client pinned to a slot in rotation stays there; the split sees only the others, so
    // that new clients follow the weights exactly (README, "Sticky sessions").
    if (const auto& sticky = settings_->sticky) {
        const auto pinned = sticky->pinned(req.fields);
        if (pinned && pin_honoured(traffic, *pinned)) {
            rs.slot = *pinned;
            record_.pinned = true;
            return;
        }
        rs.set_cookie = true;
    }
    rs.slot = worker_.pick_slot(traffic.split);
}

bool session::classify(const http1::request_head& req, request_state& rs) {
    rs.body = req.body;
    rs.remaining = req.content_length;
    rs.head = req.method == "HEAD";
    rs.idempotent = is_idempotent(req.method);
    rs.expect_continue = req.expect_continue;
    rs.body_read = req.body == http1::body_kind::none;
    rs.keep_alive = req.keep_alive;
    // Only a Connection field naming something other than close or keep-alive can ask for an
    // Upgrade: a plain request pays this one branch.
    rs.upgrade = req.connection.has_other && wants_upgrade(req, settings_->upgrade.allow);
    client_http10_ = req.version_minor == 0;
    record_.bytes_in = req.head_bytes;
    if (worker_.access_log() != nullptr) {
        keep_for_log(req);
    }
    for (const auto& f : req.fields) {
        if (http1::iequals(f.name, "x-request-id")) {
            request_id_.assign(f.value);
            return true;
        }
    }
    worker_.next_request_id(request_id_);
    return false;
}

std::optional<session::fault_answer> session::refusal_for(
    const http1::request_head& req) const noexcept {
    if (req.method == "CONNECT") {
        return fault_answer{405, "CONNECT is not supported"};
    }
    if (req.expect_other) {
        return fault_answer{417, "only 100-continue is supported in Expect"};
    }
    const std::uint64_t max_body = settings_->limits.max_body_bytes;
    if (max_body != 0 && req.body == http1::body_kind::length && req.content_length > max_body) {
        return answer_for(fault::body_too_large);
    }
    return std::nullopt;
}

session::verdict session::hold_or_refuse(const http1::request_head& req, bool maintenance,
                                         request_state& rs) {
    auto& board = shared_.hold;
    auto& counters = worker_.hold_counters();
    if (maintenance) {
        // Read only now: a request outside maintenance never touches the message.
        maintenance_message_ = board.message();
        counters.maintenance_answers.add();
        return unavailable(req, rs, *maintenance_message_, maintenance_retry_after);
    }
    const auto& hold = settings_->hold;
    if (worker_.draining()) {
        return unavailable(req, rs, "the proxy is shutting down", hold_retry_after(hold));
    }
    if (!board.try_enter(hold.max_requests)) {
        counters.overflows.add();
        return unavailable(req, rs, "requests are on hold and hold.max_requests are waiting",
                           hold_retry_after(hold));
    }
    // The head stays in `in_`, unconsumed: once released it is prepared again, and routed on
    // the traffic state of that moment.
    return verdict::hold;
}

session::verdict session::unavailable(const http1::request_head& req, request_state& rs,
                                      std::string_view reason, std::uint32_t retry_after) noexcept {
    in_.consume(req.head_bytes);
    rs.status = 503;
    rs.reason = reason;
    rs.retry_after = retry_after;
    rs.close = !rs.body_read || !rs.keep_alive;
    return verdict::answer;
}

net::awaitable<held_request::outcome> session::wait_held() {
    const held_place place(shared_.hold);
    held_request h(worker_.context());
    h.timer.expires_after(settings_->hold.max_wait);
    h.release = shared_.hold.releases();
    worker_.hold(h);
    held_ = &h;
    auto wait = h.timer.async_wait(use_tuple);
    co_await std::move(wait);
    held_ = nullptr;
    co_return h.result;
}

session::verdict session::after_hold(request_state& rs, held_request::outcome how) {
    if (aborted_) {
        return verdict::closed;
    }
    if (how == held_request::outcome::released) {
        rs.released = true;
        return prepare_request(rs);
    }
    if (how == held_request::outcome::timed_out) {
        worker_.hold_counters().timeouts.add();
    }
    // The head was never consumed: the connection closes after the answer.
    rs.status = 503;
    rs.reason = how == held_request::outcome::timed_out ? "held past hold.max_wait"
                                                        : "the proxy is shutting down";
    rs.retry_after = hold_retry_after(settings_->hold);
    rs.close = true;
    return verdict::answer;
}

session::verdict session::take_body_in_hand(request_state& rs) {
    // When the whole request is in hand it can be replayed on a fresh connection, so those bytes
    // stay in `in_` until the response head arrives.
    if (rs.body == http1::body_kind::length) {
        rs.initial = static_cast<std::size_t>(std::min<std::uint64_t>(in_.size(), rs.remaining));
        rs.remaining -= rs.initial;
        rs.body_read = rs.remaining == 0;
    } else if (rs.body == http1::body_kind::chunked) {
        chunked_.reset();
        const auto r = chunked_.feed(in_.span(), false);
        if (r.error != http1::parse_error::none) {
            return refuse(rs, answer_for(fault::bad_body));  // nothing was sent upstream
        }
        const std::uint64_t max_body = settings_->limits.max_body_bytes;
        if (max_body != 0 && chunked_.payload_bytes() > max_body) {
            return refuse(rs, answer_for(fault::body_too_large));
        }
        rs.initial = r.consumed;
        rs.body_read = r.done;
    }
    record_.bytes_in += rs.initial;
    return verdict::forward;
}

session::verdict session::refuse(request_state& rs, const fault_answer& a) noexcept {
    rs.status = a.status;
    rs.reason = a.reason;
    rs.close = true;
    return verdict::answer;
}

void session::keep_for_log(const http1::request_head& req) {
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

net::awaitable<session::fault> session::exchange(request_state& rs) {
    // Retried once on a fresh connection when a reused one turns out dead before the upstream
    // can have acted on the request (RFC 9112 §9.3.1.1).
    const bool replayable = rs.body_read;
    response_framing res;
    fault f = fault::none;
    for (int attempt = 0;; ++attempt) {
        upstream_ = attempt == 0 ? worker_.take_pooled(target_) : nullptr;
        const bool reused = upstream_ != nullptr;
        if (!reused) {
            f = co_await connect();
            if (f != fault::none) {
                break;
            }
        }
        if (rs.expect_continue && attempt == 0 && !rs.body_read && rs.initial == 0) {
            // We answer the expectation ourselves once an upstream is at hand (Envoy's
            // default); the upstream never sees Expect.
            static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
            if (std::get<0>(co_await write_downstream(continue_line, {}))) {
                f = fault::client_gone;
                break;
            }
        }
        f = co_await send_request(rs);
        if (f == fault::none) {
            f = co_await read_response_head(rs, res);
        }
        const bool retry =
            attempt == 0 && reused && replayable &&
            (f == fault::upstream_write || (f == fault::upstream_closed && rs.idempotent));
        if (!retry) {
            break;
        }
        spdlog::debug("{}: pooled connection to {} was closed, retrying on a new one", request_id_,
                      settings_->endpoints[target_.endpoint].name);
    }
    if (replayable) {
        in_.consume(rs.initial);
    }
    if (f == fault::none && res.tunnel) {
        // The 101 goes to the client now. Bytes after it in up_, and bytes the client sent after
        // its head in in_, are the tunnel's first, relayed before anything read later.
        up_.consume(res.head_bytes);
        const auto [ec, n] = co_await write_downstream(out_, {});
        if (ec) {
            upstream_.reset();
            co_return fault::client_gone;
        }
        record_.status = 101;
        rs.tunnel = true;
        co_return fault::none;  // upstream_ stays with the session, never pooled
    }
    if (f == fault::none && !co_await stream_response(res)) {
        f = fault::cut_short;
    }
    if (f != fault::none) {
        upstream_.reset();  // never reused after a failed exchange
    } else if (res.keep_alive && up_.size() == 0 && upstream_drained_) {
        worker_.release(std::move(upstream_));
    } else {
        // It said close, or sent bytes past the response, or may have: a last read that filled
        // its buffer may have left more in the socket. Not reusable.
        upstream_.reset();
    }
    co_return f;
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
    arm(settings_->timeouts.connect);
    const auto [ec] = co_await upstream_->socket.async_connect(target_.address, use_tuple);
    disarm();
    if (ec) {
        if (aborted_) {
            co_return fault::client_gone;
        }
        spdlog::warn("connect to {} ({}) failed: {}", settings_->endpoints[target_.endpoint].name,
                     target_.address.address().to_string(),
                     timed_out_ ? "timed out" : ec.message());
        // Out of descriptors or memory here is our shortage, not the endpoint's failure.
        if (!is_local_shortage(ec)) {
            worker_.target_failed(target_);
        }
        upstream_.reset();
        co_return fault::connect_failed;
    }
    worker_.target_succeeded(target_);
    error_code ignored;
    upstream_->socket.set_option(tcp::no_delay(true), ignored);
    if (settings_->endpoints[target_.endpoint].tls) {
        co_return co_await upstream_handshake();
    }
    co_return fault::none;
}

net::awaitable<session::fault> session::upstream_handshake() {
    const endpoint& ep = settings_->endpoints[target_.endpoint];
    upstream_->tls = std::make_unique<tls_connection>(ep.tls, upstream_->socket);
    std::string why;
    if (prepare_client(*upstream_->tls, ep.tls_name, ep.tls_verify, why)) {
        arm(settings_->timeouts.tls_handshake);
        const auto [ec] =
            co_await upstream_->tls->stream.async_handshake(ssl::stream_base::client, use_tuple);
        disarm();
        if (!ec) {
            co_return fault::none;
        }
        if (aborted_) {
            co_return fault::client_gone;
        }
        why = timed_out_ ? "timed out" : describe_handshake_error(ec, *upstream_->tls);
    }
    // A certificate that does not verify is a configuration matter the operator must see; the
    // address is not marked down, as a refused connection's would be.
    spdlog::warn("TLS handshake with {} ({}) failed: {}", ep.name,
                 target_.address.address().to_string(), why);
    upstream_.reset();
    co_return fault::upstream_tls;
}

net::awaitable<session::fault> session::send_request(request_state& rs) {
    const std::array<net::const_buffer, 2> head{net::buffer(out_),
                                                net::buffer(in_.data(), rs.initial)};
    // The upstream's time starts as the head is handed to the socket (the same clock reading
    // arms the write); a retry on a fresh connection starts it again.
    upstream_sent_at_ = arm(settings_->timeouts.upstream_response);
    client_wait_ = clock::duration::zero();
    auto write = write_upstream(head);
    const auto [ec, n] = co_await std::move(write);
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
    in_.consume(rs.initial);
    co_return co_await pump_request_body(rs);
}

net::awaitable<session::fault> session::pump_request_body(request_state& rs) {
    const auto& limits = settings_->limits;
    while (!rs.body_read) {
        if (in_.size() == 0) {
            const auto space = in_.prepare(buffer_pool::block_bytes);
            arm(settings_->timeouts.idle);
            auto read = read_client(space, true);
            const auto [ec, n] = co_await std::move(read);
            disarm();
            // A slow upload is the client's time, not the upstream's.
            client_wait_ += clock::now() - armed_at_;
            if (ec) {
                co_return timed_out_ ? fault::body_timeout : fault::client_gone;
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
        arm(settings_->timeouts.upstream_response);
        auto write = write_upstream(net::buffer(in_.data(), chunk));
        const auto [ec, n] = co_await std::move(write);
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

net::awaitable<session::fault> session::read_response_head(request_state& rs,
                                                           response_framing& out) {
    const auto& limits = settings_->limits;
    const http1::parse_limits plimits{limits.max_header_bytes, limits.max_headers};
    up_.clear();
    up_.borrow(worker_.buffers());
    bool received = false;
    // One deadline for the whole head, from the moment the request was sent.
    arm(settings_->timeouts.upstream_response);
    for (;;) {
        if (up_.size() > 0) {
            // `res` points into up_ and the worker's field storage: used up before any co_await.
            http1::response_head res;
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
                    worker_.target_answered(target_, static_cast<unsigned>(res.status));
                    prepare_response(res, rs, out);
                    co_return fault::none;
                }
                if (res.status == 101) {
                    // A switch is valid only in answer to an Upgrade the proxy forwarded, to a
                    // protocol it offered (RFC 9110 §15.2.2, §7.8).
                    if (!rs.upgrade || !switches_to_allowed(res, settings_->upgrade.allow)) {
                        co_return fault::upstream_protocol;
                    }
                    disarm();
                    // The upstream's time ends at the 101 head: the tunnel is not its latency.
                    record_upstream_time();
                    out_.clear();
                    response_context ctx;
                    ctx.request_id = request_id_;
                    ctx.upgrade = true;
                    write_downstream_response(res, ctx, out_);
                    out = {http1::body_kind::none, 0, res.head_bytes, false, true};
                    co_return fault::none;
                }
                // Interim answers: 100 is ours to give (see Expect above); others, such as
                // 103 Early Hints, go to HTTP/1.1 clients (RFC 9110 §15.2).
                const std::size_t head_bytes = res.head_bytes;
                if (res.status != 100 && !client_http10_) {
                    out_.clear();
                    write_downstream_response(res, {}, out_);
                    if (std::get<0>(co_await write_downstream(out_, {}))) {
                        co_return fault::client_gone;
                    }
                    arm(settings_->timeouts.upstream_response);
                }
                up_.consume(head_bytes);
                continue;
            }
        }
        const auto space = up_.prepare(limits.max_header_bytes);
        if (space.empty()) {
            co_return fault::upstream_protocol;
        }
        auto read = read_upstream(space, received);
        const auto [ec, n] = co_await std::move(read);
        if (!received) {
            upstream_drained_ = n < space.size();
        }
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

void session::prepare_response(const http1::response_head& res, request_state& rs,
                               response_framing& out) {
    // The client connection closes after the response when the client or the drain asks, or
    // when the body can only be delimited by closing.
    rs.close = !rs.keep_alive || worker_.draining() || res.body == http1::body_kind::until_close ||
               (res.body == http1::body_kind::chunked && client_http10_);
    out_.clear();
    response_context ctx;
    ctx.request_id = request_id_;
    ctx.close = rs.close;
    ctx.client_http10 = client_http10_;
    if (rs.set_cookie) {
        ctx.set_cookie = settings_->sticky->set_cookie(rs.slot, tls_ != nullptr);
    }
    write_downstream_response(res, ctx, out_);
    record_.status = static_cast<std::uint16_t>(res.status);
    out = {res.body, res.content_length, res.head_bytes, res.keep_alive};
}

net::awaitable<bool> session::stream_response(const response_framing& res) {
    // The head is in out_ and up_ starts at the head; the body follows it in up_.
    up_.consume(res.head_bytes);
    body_progress body{res.content_length, res.body == http1::body_kind::chunked && client_http10_,
                       res.body == http1::body_kind::none ||
                           (res.body == http1::body_kind::length && res.content_length == 0)};
    if (res.body == http1::body_kind::chunked) {
        chunked_.reset();
    }
    std::span<const char> head = out_;
    for (;;) {
        const body_piece piece = next_body_piece(res.body, body);
        if (piece.bad) {
            co_return false;
        }
        if (body.done) {
            // The last byte of the response has been read from the upstream: its time ends here,
            // before the client is written to.
            record_upstream_time();
        }
        if (!head.empty() || piece.write > 0) {
            if (std::get<0>(co_await write_downstream(head, {up_.data(), piece.write}))) {
                co_return false;
            }
            head = {};
            if (!body.done) {
                // The upstream's bytes wait while a slow client reads: that is not its time.
                // (A response that fits one read never gets here: no extra clock reading.)
                client_wait_ += clock::now() - armed_at_;
            }
        }
        up_.consume(piece.take);
        if (body.done) {
            co_return true;
        }
        const auto space = up_.prepare(buffer_pool::block_bytes);
        arm(settings_->timeouts.upstream_response);
        auto read = read_upstream(space, true);
        const auto [ec, n] = co_await std::move(read);
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

session::body_piece session::next_body_piece(http1::body_kind kind, body_progress& body) {
    body_piece piece;
    if (up_.size() == 0 || body.done) {
        return piece;
    }
    switch (kind) {
        case http1::body_kind::length:
            piece.take = piece.write =
                static_cast<std::size_t>(std::min<std::uint64_t>(up_.size(), body.remaining));
            body.remaining -= piece.take;
            body.done = body.remaining == 0;
            break;
        case http1::body_kind::chunked: {
            const auto r = chunked_.feed(up_.span(), body.decode);
            if (r.error != http1::parse_error::none) {
                spdlog::warn("{}: bad chunked framing from upstream: {}", request_id_,
                             http1::describe(r.error));
                record_.failure = analysis::upstream_failure::protocol;
                piece.bad = true;
                break;
            }
            piece.take = r.consumed;
            piece.write = body.decode ? r.data : r.consumed;
            body.done = r.done;
            break;
        }
        case http1::body_kind::until_close:
            piece.take = piece.write = up_.size();
            break;
        case http1::body_kind::none:
            break;
    }
    return piece;
}

// Not a coroutine: it arms the deadline and hands back the write itself, so awaiting it costs
// no frame of its own. async_write copies the buffer sequence before this returns.
session::io_awaitable session::write_downstream(std::span<const char> a, std::span<const char> b) {
    arm(settings_->timeouts.idle);
    record_.bytes_out += a.size() + b.size();
    const std::array<net::const_buffer, 2> both{net::buffer(a.data(), a.size()),
                                                net::buffer(b.data(), b.size())};
    if (!tls_) {
        return net::async_write(downstream_, both, use_tuple);
    }
    // Asio's TLS stream writes one buffer per record and system call.
    if (!a.empty() && !b.empty() && b.size() <= tls_join_bytes) {
        tls_out_.assign(a.data(), a.size());
        tls_out_.append(b.data(), b.size());
        return net::async_write(tls_->stream, net::buffer(tls_out_), use_tuple);
    }
    return net::async_write(tls_->stream, both, use_tuple);
}

net::awaitable<bool> session::answer(int status, std::string_view reason, bool close,
                                     std::uint32_t retry_after) {
    out_.clear();
    write_error_response(status, reason, request_id_, close, client_http10_, out_, retry_after);
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
        const auto [rec, n] = co_await read_more(downstream_, first_read_, downstream_drained_);
        if (rec) {
            break;
        }
        discarded += n;
    }
    disarm();
}

void session::tunnel_activity() noexcept {
    deadline_ = clock::now() + settings_->timeouts.tunnel_idle;
}

void session::tunnel_failed(const error_code& ec) {
    if (!is_peer_gone(ec)) {
        spdlog::debug("{}: tunnel failed: {}", request_id_, ec.message());
    }
    tunnel_failed_ = true;
    cancel_io();  // the other direction's read or write; it stops at its next step otherwise
}

net::awaitable<void> session::tunnel(analysis::slot_index slot) {
    using namespace net::experimental::awaitable_operators;
    const open_tunnel counted(worker_.metrics(), slot);
    tunnel_ = true;
    timed_out_ = false;
    tunnel_activity();
    // One frame per direction, for the life of the tunnel (not per request).
    auto to_upstream = relay(true);
    auto to_client = relay(false);
    auto both = std::move(to_upstream) && std::move(to_client);
    co_await std::move(both);
    disarm();
    error_code ignored;
    upstream_->socket.close(ignored);
}

session::io_awaitable session::write_client(net::const_buffer b) {
    if (tls_) {
        return net::async_write(tls_->stream, b, use_tuple);
    }
    return net::async_write(downstream_, b, use_tuple);
}

net::awaitable<void> session::relay(bool to_upstream) {
    io_buffer& buffer = to_upstream ? in_ : up_;
    for (;;) {
        if (buffer.size() > 0) {
            const net::const_buffer pending = net::buffer(buffer.data(), buffer.size());
            auto write = to_upstream ? write_upstream(pending) : write_client(pending);
            const auto [wec, wn] = co_await std::move(write);
            if (tunnel_ending()) {
                co_return;
            }
            if (wec) {
                tunnel_failed(wec);
                co_return;
            }
            buffer.consume(wn);
            tunnel_activity();
        }
        const auto space = buffer.prepare(buffer_pool::block_bytes);
        auto read = to_upstream ? read_client(space, true) : read_upstream(space, true);
        const auto [ec, n] = co_await std::move(read);
        if (tunnel_ending()) {
            co_return;
        }
        if (ec == net::error::eof || ec == ssl::error::stream_truncated) {
            // A half-close: pass it on and keep relaying the other way until it ends too
            // (RFC 9293 §3.6; RFC 6455 §7 leaves the closing handshake to the endpoints). TLS
            // has no half-close that Asio can send while the other direction reads: the
            // close_notify would wait for the peer's. Over TLS the tunnel ends both ways.
            const bool to_tls = to_upstream ? upstream_->tls != nullptr : tls_ != nullptr;
            if (to_tls) {
                tunnel_failed_ = true;
                cancel_io();
                co_return;
            }
            error_code ignored;
            tcp::socket& to = to_upstream ? upstream_->socket : downstream_;
            to.shutdown(tcp::socket::shutdown_send, ignored);
            co_return;
        }
        if (ec) {
            tunnel_failed(ec);
            co_return;
        }
        buffer.commit(n);
        tunnel_activity();
    }
}

}  // namespace switchyard::proxy
