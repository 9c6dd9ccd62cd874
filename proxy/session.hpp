#pragma once
// One client connection. It reads requests, forwards each to an endpoint of the slot the split
// picks and streams the answer back; requests on a connection are answered in order.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/http1.hpp"
#include "proxy/io_buffer.hpp"
#include "proxy/upstream_pool.hpp"
#include "proxy/worker.hpp"

namespace switchyard::proxy {

// Starts serving a client connection on the worker's thread; the session lives as long as its
// coroutine. The connection is a new one, or a parked one whose next request has arrived.
// `tls`: it came in on the TLS listener, and its handshake comes first.
void spawn_session(worker& w, client_connection conn, bool tls = false);

// Requests are served in small steps: serve() reads a head, and prepare_request(), not a
// coroutine, parses, classifies, routes and rewrites it, so no suspension can happen while the
// parsed views (into the read buffer and the worker's shared field storage) are alive.
// exchange() takes one request through an upstream and its response back to the client, and
// what goes wrong there is a `fault` with one answer in one table (answer_for in session.cpp).
class session final : public session_base {
public:
    session(worker& w, client_connection conn, bool tls);
    ~session();

    boost::asio::awaitable<void> run();

    void expire() override;
    void drain() override;
    void abort() override;
    void park() override;

private:
    // Why an exchange could not complete; answer_for gives each its answer.
    enum class fault : std::uint8_t {
        none,
        client_gone,        // the client closed or reset: nothing to answer
        cut_short,          // the response was cut short once begun: the connection closes
        body_timeout,       // 408
        bad_body,           // 400: chunked framing of the request body
        body_too_large,     // 413
        connect_failed,     // 502, the endpoint is marked down
        upstream_tls,       // 502: the TLS handshake with the endpoint failed (logged why)
        upstream_write,     // 502; retried on a fresh connection when the failed one was reused
        upstream_closed,    // 502; EOF or reset before any response byte: retried likewise for
                            // idempotent requests
        upstream_timeout,   // 504
        upstream_protocol,  // 502: a malformed or unexpected response
    };

    // The answer to a fault, and what the metrics count against the upstream for it.
    struct fault_answer {
        int status = 0;  // 0: nothing can be answered, the connection closes
        std::string_view reason;
        analysis::upstream_failure failure = analysis::upstream_failure::none;
    };
    static constexpr fault_answer answer_for(fault f) noexcept;

    // Where a request stands once its head is read.
    enum class verdict : std::uint8_t {
        incomplete,  // prepare_request only: the head has not ended yet
        closed,      // no request: the client left, the wait timed out, drain, or parking
        answer,      // answer the request ourselves (status and reason in request_state)
        forward,     // take it upstream
        hold,        // wait for POST /release (wait_held), its head still in `in_`
    };

    // What the current request needs once its head has been consumed.
    struct request_state {
        http1::body_kind body = http1::body_kind::none;
        std::uint64_t remaining = 0;  // length bodies: bytes still to forward
        std::size_t initial = 0;      // body bytes in hand, sent with the head
        analysis::slot_index slot = 0;
        bool routed = false;      // a slot was picked: the request is recorded against it
        bool head = false;        // HEAD: the response has no body
        bool idempotent = false;  // RFC 9110 §9.2.2: safe to retry after an upstream close
        bool expect_continue = false;
        bool body_read = true;  // every body byte has been read from the client
        bool keep_alive = true;
        bool close = false;       // the connection closes after the answer or response
        bool upgrade = false;     // asks for an Upgrade the proxy tunnels (wants_upgrade)
        bool tunnel = false;      // the upstream switched protocols: the connection is a tunnel now
        bool set_cookie = false;  // the split picked its slot: its answer pins the client there
        int status = 0;           // verdict::answer
        std::string_view reason;
        std::uint32_t retry_after = 0;  // seconds, sent as Retry-After when not 0
        bool released = false;          // it was held and POST /release let it go
    };

    // The framing of the response being streamed: plain values, no views into shared storage.
    struct response_framing {
        http1::body_kind body = http1::body_kind::none;
        std::uint64_t content_length = 0;
        std::size_t head_bytes = 0;
        bool keep_alive = true;  // the upstream connection may be reused after it
        bool tunnel = false;     // a 101 to an upgrade the proxy tunnels; its head is in out_
    };

    // Serves requests until the connection is to close or park.
    boost::asio::awaitable<void> serve();
    // Resets the per-request state and arms the wait for the next head.
    void begin_request();
    // Not coroutines, the steps of reading a head: where to read the next bytes (an empty span
    // once `v` says the head is prepared or refused, or the connection is to close or park),
    // and what the read brought.
    std::span<char> head_space(request_state& rs, verdict& v);
    verdict took_head_bytes(request_state& rs, const boost::system::error_code& ec, std::size_t n);
    // Not a coroutine: parses the head in `in_`; when complete, classifies, routes and rewrites
    // it into `out_` and consumes it, and takes the body bytes already in hand.
    verdict prepare_request(request_state& rs);
    // The slot of the first route that takes the request (counted on that route), or none
    // (README, "Routes").
    std::optional<analysis::slot_index> route_for(const http1::request_head& req,
                                                  const analysis::traffic_state& traffic);
    // The slot of a request no route took: its sticky pin when honoured, else the split's.
    void pick_slot(const http1::request_head& req, const analysis::traffic_state& traffic,
                   request_state& rs) noexcept;
    // Takes what the request needs from its head; true when it carries an X-Request-Id.
    bool classify(const http1::request_head& req, request_state& rs);
    // 405, 417 or 413, for a request refused on its head alone.
    std::optional<fault_answer> refusal_for(const http1::request_head& req) const noexcept;
    // Not a coroutine: a request that comes during a hold or maintenance (README, "Hold and
    // maintenance"): verdict::hold, or a 503 that never reaches a slot.
    verdict hold_or_refuse(const http1::request_head& req, bool maintenance, request_state& rs);
    // A 503 with Retry-After for a request whose head is `req`.
    verdict unavailable(const http1::request_head& req, request_state& rs, std::string_view reason,
                        std::uint32_t retry_after) noexcept;
    // Waits, without a read in flight, until the worker wakes the held request or
    // hold.max_wait passes.
    boost::asio::awaitable<held_request::outcome> wait_held();
    // Not a coroutine: where a held request goes once its wait has ended.
    verdict after_hold(request_state& rs, held_request::outcome how);
    // Takes the body bytes that came with the head.
    verdict take_body_in_hand(request_state& rs);
    // Not a coroutine: sends a copy of a request about to be forwarded to the other slot when
    // mirror chooses it (README, "Mirroring"); the head is in out_, the body in hand in in_.
    void mirror_request(const http1::request_head& req, const request_state& rs,
                        analysis::traffic_state traffic);
    // An answer of ours, after which the connection closes.
    static verdict refuse(request_state& rs, const fault_answer& a) noexcept;
    // The same for a head that could not be parsed or read: no request id, no routing.
    verdict refuse_head(request_state& rs, int status, std::string_view reason) noexcept;
    // One request through an upstream, and its response to the client.
    boost::asio::awaitable<fault> exchange(request_state& rs);
    // A new connection to target_.
    boost::asio::awaitable<fault> connect();
    boost::asio::awaitable<fault> send_request(request_state& rs);
    boost::asio::awaitable<fault> pump_request_body(request_state& rs);
    // Reads the response head, passing interim responses on; prepares the final one with
    // prepare_response.
    boost::asio::awaitable<fault> read_response_head(request_state& rs, response_framing& out);
    // Not a coroutine: rewrites the final response head into `out_`.
    void prepare_response(const http1::response_head& res, request_state& rs,
                          response_framing& out);
    boost::asio::awaitable<bool> stream_response(const response_framing& res);
    // Where the response body stands, and the next piece of it in `up_`.
    struct body_progress {
        std::uint64_t remaining = 0;  // length bodies
        bool decode = false;          // chunked to an HTTP/1.0 client: sent without framing
        bool done = false;
    };
    struct body_piece {
        std::size_t take = 0;   // bytes of up_ used
        std::size_t write = 0;  // bytes to send from the front of up_
        bool bad = false;       // the upstream's chunked framing is broken
    };
    // Not a coroutine: frames what `up_` holds.
    body_piece next_body_piece(http1::body_kind kind, body_progress& body);
    // A read or a write handed back to be awaited: it yields (error, bytes).
    using io_awaitable = boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>>;
    // Writes a then b to the client, under the idle deadline, counted in the request's bytes.
    io_awaitable write_downstream(std::span<const char> a, std::span<const char> b);
    // Not coroutines: a read or write on either connection, over TLS when it has it, handed back
    // to be awaited (no frame of their own). A first read is one that starts a message; a
    // continuation read is one in its middle (see read_more in receive_buffer.hpp).
    io_awaitable read_client(std::span<char> space, bool continuation);
    io_awaitable read_upstream(std::span<char> space, bool continuation);
    template <class Buffers>
    io_awaitable write_upstream(const Buffers& buffers);
    // The connection's PROXY protocol header, read before anything else and no byte past it;
    // its address replaces the socket's peer. False when it is missing or invalid (counted,
    // logged at debug): the connection closes without an answer.
    boost::asio::awaitable<bool> read_proxy_header();
    // The client's TLS handshake; false when it failed (counted, logged at debug).
    boost::asio::awaitable<bool> handshake();
    // The upstream's, on a new connection.
    boost::asio::awaitable<fault> upstream_handshake();
    // Sends close_notify (RFC 8446 §6.1), without waiting for the client's.
    boost::asio::awaitable<void> close_tls();
    // Sends an answer of the proxy's own; false when it could not be written.
    boost::asio::awaitable<bool> answer(int status, std::string_view reason, bool close,
                                        std::uint32_t retry_after = 0);
    boost::asio::awaitable<void> lingering_close();

    // After a 101: relays bytes both ways until both directions have ended (each end's EOF is
    // passed on as a half-close, or ends both directions when the other side speaks TLS), either
    // fails, tunnel_idle passes with no byte either way, or abort() cuts it (HAProxy's tunnel
    // mode). The upstream connection is never pooled after.
    boost::asio::awaitable<void> tunnel(analysis::slot_index slot);
    // One direction of a tunnel: what its buffer holds first (`in_` for the client's bytes that
    // came with the request head, `up_` for the upstream's that came with the 101), then what
    // its source sends.
    boost::asio::awaitable<void> relay(bool to_upstream);
    // Not a coroutine: a write to the client with no deadline or count of its own (the
    // tunnel's).
    io_awaitable write_client(boost::asio::const_buffer b);
    // A byte moved through the tunnel: its idle deadline starts again. Unlike arm(), it leaves
    // timed_out_ alone: once expire() has cut a tunnel, neither direction goes on.
    void tunnel_activity() noexcept;
    bool tunnel_ending() const noexcept { return timed_out_ || aborted_ || tunnel_failed_; }
    // One direction failed: the other is cut too.
    void tunnel_failed(const boost::system::error_code& ec);

    // Records a routed request into the worker's metrics when it ends, however it ends.
    class recorded_request;

    // Appends the line of the request that just ended to the worker's access log. Called from
    // the coroutine body (the loop's next turn, or after serve() returns), never from a
    // destructor: a frame destroyed by ~io_context at shutdown logs nothing.
    void log_request();
    // Copies what the access log needs of a parsed head, which dies with its buffer.
    void keep_for_log(const http1::request_head& req);

    // Arms the deadline of the next I/O; returns the clock reading it was armed at (armed_at_).
    clock::time_point arm(std::chrono::milliseconds timeout) noexcept;
    // The last byte of the response is in: the upstream's time is since its head was sent, less
    // the time spent waiting on the client meanwhile.
    void record_upstream_time() noexcept;
    void disarm() noexcept { deadline_ = clock::time_point::max(); }
    // Enters or leaves the wait for the first byte of a next request.
    void set_idle(bool idle, clock::time_point now) noexcept;
    // Cancels the I/O in progress on both connections.
    void cancel_io() noexcept;
    // Takes the worker's settings when a reload has replaced them (README, "Reloading").
    void refresh_settings() noexcept;

    worker& worker_;
    const shared_state& shared_;
    settings_snapshot settings_;  // of the current request: it finishes on the ones it began on
    client_connection client_;
    boost::asio::ip::tcp::socket& downstream_;  // client_.socket
    std::unique_ptr<tls_connection> tls_;       // over downstream_, from the TLS listener
    upstream_ptr upstream_;
    upstream_target target_;  // of the current request
    io_buffer in_;            // from the client: heads, request bodies, pipelined requests
    io_buffer up_;            // from the upstream: response heads and bodies
    // Between requests the buffers go back to the worker's pool; the first bytes of the next
    // request are read here (nginx's client_header_buffer_size is 1k too).
    std::array<char, 1024> first_read_{};
    std::string out_;         // the head being sent, either way; capacity kept
    std::string tls_out_;     // a head and body joined into one TLS record; capacity kept
    std::string request_id_;  // of the current request
    std::string reason_;      // of a 503, which names the slot
    // The maintenance message a 503 is answered with, kept until it has been written.
    std::shared_ptr<const std::string> maintenance_message_;
    held_request* held_ = nullptr;  // while the request waits for POST /release
    std::string client_ip_;
    http1::chunked_parser chunked_;
    std::shared_ptr<mirror_job> mirror_;  // the current request's copy; null when none was sent
    analysis::request_record record_;     // of the current request, filled in as it goes
    clock::time_point started_at_;        // when its first byte was read
    clock::time_point upstream_sent_at_;  // when its head was handed to the upstream socket
    clock::duration client_wait_{};       // since then, waiting to read from or write to the client
    clock::time_point armed_at_;          // when the I/O in progress was armed
    bool first_ = true;                   // the connection's first request (of this session)
    bool idle_ = false;                   // between requests, no byte of the next one read
    bool parking_ = false;                // the wait between requests ends in worker::park
    bool downstream_drained_ = false;     // the last client read did not fill its buffer
    bool upstream_drained_ = false;       // the last upstream read did not fill its buffer
    bool timed_out_ = false;
    bool aborted_ = false;
    bool client_http10_ = false;
    bool tunnel_ = false;         // the connection is a tunnel (after a 101)
    bool tunnel_failed_ = false;  // a direction of the tunnel failed
    // Access log of the current request, kept only when the log is on: the head's views die
    // with its buffer, so its fields are copied (capacity reused from request to request).
    bool log_pending_ = false;
    std::string log_method_;
    std::string log_target_;
    std::string log_user_agent_;
    std::string log_referer_;
    std::string_view log_slot_;      // a slot name of shared_; empty before routing
    std::string_view log_endpoint_;  // an endpoint name of settings_; empty when none was picked
};

}  // namespace switchyard::proxy
