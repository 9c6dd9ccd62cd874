// Loopback fixtures for the integration tests: a real HTTP/1.1 origin server and a raw-socket
// client, both on 127.0.0.1 with ports chosen by the kernel. Requests and responses are parsed
// with Boost.Beast, an oracle independent of the proxy's own parser.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::test {

struct field {
    std::string name, value;
};

// The byte every generated body (stream_bytes, send_filler) is made of.
inline constexpr char filler_byte = 'x';

// An HTTP/1.1 origin server on 127.0.0.1 (port 0) that records what it receives and answers
// with whatever the test's handler returns; one blocking thread per connection, keep-alive.
class upstream_server {
public:
    struct request {
        std::string method, target;
        int version_minor = 1;          // 1 for HTTP/1.1
        std::vector<field> fields;      // as received, in order
        std::string body;               // decoded (chunked de-framed); empty when discarding
        std::uint64_t body_size = 0;    // decoded body bytes, also when discarding
        bool chunked = false;           // body came chunked
        std::string raw_head;           // the head bytes exactly as received, CRLFCRLF included
        std::size_t connection_id = 0;  // 1, 2, ... in accept order
        std::size_t index_on_connection = 0;  // 1 for the first request on its connection
        bool sent_100_continue = false;  // the server answered `Expect: 100-continue` with a 100

        std::string header(std::string_view name) const;  // first value, "" if absent
        std::size_t count(std::string_view name) const;   // fields with that name
        bool has(std::string_view name) const { return count(name) > 0; }
    };

    struct response {
        int status = 200;
        std::vector<field> fields;  // extra fields, written in order
        std::string body;
        // length: Content-Length; chunked: Transfer-Encoding: chunked; close: neither, the
        // connection closes after the body (RFC 9112 §6.3 item 8). Framing fields are only
        // added when `fields` does not already name them.
        enum class framing { length, chunked, close } frame = framing::length;
        bool close_after = false;          // send "Connection: close" and close after this response
        bool drop_without_answer = false;  // close the connection (FIN) without answering
        bool reset_without_answer = false;  // abort the connection (RST) without answering
        // If non-empty: written verbatim instead of the above (close_after then closes without
        // adding a Connection field).
        std::string raw;
        std::chrono::milliseconds delay{0};  // wait this long before answering
        // If > 0: the body is this many filler bytes, streamed in 64 KiB writes with the given
        // framing and never held whole; `body` is ignored.
        std::uint64_t stream_bytes = 0;
        // Send an interim "100 Continue" before this response (unless one was already sent).
        bool send_100_continue = false;
        // Abort the connection (RST) once this response (or `raw`) has been written: with a
        // `raw` that stops inside the body, an upstream that dies mid-response.
        bool reset_after = false;
        // If set: runs on the connection's thread once the response has been written, before the
        // connection is kept, closed or reset, so that a test can hold it there (until a client
        // has seen the bytes, say). Like a blocking handler, it must return before the server is
        // destroyed.
        std::function<void()> after_write;
    };

    // Runs on the connection's thread. A handler that blocks (on a test's promise, say) must be
    // released before the server is destroyed, which joins that thread.
    using handler = std::function<response(const request&)>;

    // Default handler: 200, body = name + "\n", header "X-Upstream: <name>".
    explicit upstream_server(std::string name = "upstream");
    upstream_server(std::string name, handler h);
    // The default handler on a loopback address of the test's choosing ("127.0.0.2"), and a
    // port of its choosing (0: the kernel's).
    upstream_server(std::string name, const std::string& ip, std::uint16_t port);
    ~upstream_server();  // stops, closes every socket, joins every thread

    upstream_server(const upstream_server&) = delete;
    upstream_server& operator=(const upstream_server&) = delete;

    std::uint16_t port() const;
    const std::string& name() const { return name_; }
    void set_handler(handler h);

    std::vector<request> requests() const;  // snapshot, thread-safe
    std::size_t request_count() const;
    std::size_t connections_accepted() const;
    std::size_t connections_open() const;  // accepted and not yet closed
    std::size_t bad_requests() const;      // heads or bodies Beast rejected (answered 400)
    std::uint64_t bytes_received() const;  // all bytes read from all connections
    std::uint64_t body_bytes_received() const;

    // Waits (condition variable) until request_count() >= n or the timeout; returns success.
    // A request counts once its body has been read, before the handler runs.
    bool wait_for_requests(std::size_t n,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Waits until bytes_received() >= n or the timeout; returns success.
    bool wait_for_bytes_received(std::uint64_t n,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Waits until connections_open() == n or the timeout; returns success.
    bool wait_for_open_connections(std::size_t n,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

    // Closes (FIN) every connection that is idle, i.e. waiting for the first byte of its next
    // request; returns how many, once they are closed and no longer counted as open. A connection
    // still writing a response is first allowed to finish it, so a test that has just read a
    // response sees that connection as idle. Connections with a partial request or a handler
    // still running are left alone.
    std::size_t close_idle_connections();

    // When on, request bodies are counted but not stored (for 1 GiB uploads).
    void set_discard_bodies(bool on);
    // When on (the default), a request carrying `Expect: 100-continue` and a body is answered
    // with "100 Continue" before its body is read, as an origin server would (RFC 9110 §10.1.1).
    void set_auto_100_continue(bool on);

private:
    struct state;
    std::string name_;
    std::unique_ptr<state> state_;
};

// A parsed response as the client saw it.
struct response {
    int status = 0;
    std::string reason;
    int version_minor = 1;
    std::vector<field> fields;
    std::string body;             // decoded; empty when read with discard_body
    std::uint64_t body_size = 0;  // decoded body bytes, also when discarded
    bool chunked = false;         // body came chunked
    std::string raw_head;         // head bytes exactly as received, CRLFCRLF included

    std::string header(std::string_view name) const;
    std::size_t count(std::string_view name) const;
    bool has(std::string_view name) const { return count(name) > 0; }
};

// A client that writes raw bytes to a real socket and reads raw answers. Every timeout is an
// inactivity limit: a call throws (or returns false) when no byte moves for that long, so a
// large transfer is not cut short by a slow machine and a stuck peer never hangs a test.
class raw_client {
public:
    explicit raw_client(std::uint16_t port);  // connects to 127.0.0.1:port
    ~raw_client();

    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;

    void send(std::string_view bytes, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Sends `n` filler bytes in 64 KiB writes without holding them (for large uploads).
    void send_filler(std::uint64_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    void shutdown_send();  // half-close
    void close();          // orderly close (FIN)
    void abort();          // close with RST (SO_LINGER 0): a client that gives up

    // Reads one response. head_request: the request was HEAD (no body follows). Interim 1xx
    // responses are returned as responses too (the caller reads again). discard_body: count the
    // body but do not store it. Throws std::runtime_error on timeout, on EOF before a complete
    // response, or on a response Beast rejects.
    response read_response(bool head_request = false,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10),
                           bool discard_body = false);
    // Reads until `marker` has been received; returns the bytes up to and including it (the
    // rest stays buffered). Throws on timeout or on EOF first.
    std::string read_until(std::string_view marker,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Reads until the peer closes (EOF or reset); returns the bytes, including any already
    // buffered. Throws on timeout.
    std::string read_until_close(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // True if the peer closed the connection (EOF or reset) within the timeout with no more data.
    bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Bytes received but not yet consumed by a read_* call.
    std::size_t buffered() const;

private:
    struct state;
    std::unique_ptr<state> state_;
};

// A plain client socket connected to 127.0.0.1:port, for tests that hold hundreds of
// connections (a raw_client costs an io_context, and its descriptors, each). Blocking until the
// test says otherwise; closed on destruction. Throws when the connect fails.
class bare_connection {
public:
    explicit bare_connection(std::uint16_t port);
    ~bare_connection();
    bare_connection(bare_connection&& other) noexcept;
    bare_connection& operator=(bare_connection&& other) noexcept;

    int fd() const noexcept { return fd_; }
    void close() noexcept;

private:
    int fd_ = -1;
};

// Formats a request: "<method> <target> HTTP/1.1", then "Host: 127.0.0.1" unless `fields` names
// Host, then `fields` in order, then Content-Length unless the body is empty or `fields` names
// Content-Length or Transfer-Encoding, then the body verbatim.
std::string format_request(std::string_view method, std::string_view target,
                           const std::vector<field>& fields = {}, std::string_view body = {});

// Encodes `body` as one chunk (if non-empty) followed by the last chunk.
std::string chunk_encode(std::string_view body);

// One GET over a new connection (closed afterwards); returns the response.
response get(std::uint16_t port, std::string_view target = "/", std::vector<field> extra = {});

}  // namespace switchyard::test
