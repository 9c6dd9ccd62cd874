#include "tests/support/loopback.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <exception>
#include <list>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

namespace switchyard::test {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;

// Reads and generated bodies move in blocks of this size.
constexpr std::size_t io_block = 64 * 1024;
// Head size limits belong to the proxy under test, not to the oracle: accept up to 16 MiB.
constexpr std::uint32_t head_limit = 16 * 1024 * 1024;

const std::array<char, io_block>& filler_block() {
    static const std::array<char, io_block> block = [] {
        std::array<char, io_block> b{};
        b.fill(filler_byte);
        return b;
    }();
    return block;
}

std::string first_value(const std::vector<field>& fields, std::string_view name) {
    for (const auto& f : fields) {
        if (beast::iequals(f.name, name)) {
            return f.value;
        }
    }
    return {};
}

std::size_t count_of(const std::vector<field>& fields, std::string_view name) {
    return static_cast<std::size_t>(
        std::count_if(fields.begin(), fields.end(),
                      [&](const field& f) { return beast::iequals(f.name, name); }));
}

template <class Fields>
std::vector<field> fields_of(const Fields& message) {
    std::vector<field> out;
    for (const auto& f : message) {
        out.push_back({std::string(f.name_string()), std::string(f.value())});
    }
    return out;
}

std::string hex(std::uint64_t n) {
    std::array<char, 32> buf{};
    const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), n, 16).ptr;
    return std::string(buf.data(), end);
}

std::string_view as_view(net::const_buffer b) {
    return {static_cast<const char*>(b.data()), b.size()};
}

enum class read_status { data, eof, timeout };
enum class parse_result { done, eof_clean, eof_truncated, timeout, bad };

// Parses one message head. Beast's parser is fed by hand rather than through http::read so that
// the exact head bytes can be kept: with eager(false), put() stops right after the head, so the
// bytes it consumed are the head.
template <class Parser, class ReadMore>
parse_result parse_head(Parser& parser, beast::flat_buffer& in, std::string& raw_head,
                        ReadMore&& read_more, error_code& ec) {
    parser.eager(false);
    for (;;) {
        if (in.size() > 0) {
            const std::size_t used = parser.put(in.data(), ec);
            raw_head.append(as_view(in.data()).substr(0, used));
            in.consume(used);
            if (parser.is_header_done()) {
                ec = {};
                return parse_result::done;
            }
            if (ec && ec != http::error::need_more) {
                return parse_result::bad;
            }
            ec = {};
        }
        switch (read_more()) {
            case read_status::data:
                break;
            case read_status::eof:
                return raw_head.empty() && in.size() == 0 ? parse_result::eof_clean
                                                          : parse_result::eof_truncated;
            case read_status::timeout:
                return parse_result::timeout;
        }
    }
}

// Parses the body that follows a head through a buffer_body parser, handing each decoded piece
// to `sink` so that bodies of any size pass through a fixed block.
template <class Parser, class ReadMore, class Sink>
parse_result parse_body(Parser& parser, beast::flat_buffer& in, std::vector<char>& block,
                        ReadMore&& read_more, Sink&& sink, error_code& ec) {
    parser.eager(true);
    while (!parser.is_done()) {
        auto& body = parser.get().body();
        body.data = block.data();
        body.size = block.size();
        body.more = true;
        std::size_t used = 0;
        ec = {};
        if (in.size() > 0) {
            used = parser.put(in.data(), ec);
            in.consume(used);
        } else {
            ec = http::error::need_more;
        }
        const std::size_t got = block.size() - body.size;
        if (got > 0) {
            sink(block.data(), got);
        }
        if (ec == http::error::need_buffer) {
            continue;
        }
        if (ec && ec != http::error::need_more) {
            return parse_result::bad;
        }
        if (parser.is_done()) {
            break;
        }
        if (ec == http::error::need_more || used == 0 || in.size() == 0) {
            switch (read_more()) {
                case read_status::data:
                    break;
                case read_status::eof:
                    // RFC 9112 §6.3: only a body delimited by the close may end here.
                    ec = {};
                    parser.put_eof(ec);
                    if (ec) {
                        return parse_result::eof_truncated;
                    }
                    break;
                case read_status::timeout:
                    return parse_result::timeout;
            }
        }
    }
    ec = {};
    return parse_result::done;
}

bool expects_continue(const http::request_parser<http::buffer_body>& parser) {
    const auto& head = parser.get();
    if (!beast::iequals(head[http::field::expect], "100-continue")) {
        return false;
    }
    const auto length = parser.content_length();
    return parser.chunked() || (length && *length > 0);
}

std::string reason_for(int status) {
    const auto s = http::int_to_status(static_cast<unsigned>(status));
    return s == http::status::unknown ? std::string("Unknown")
                                      : std::string(http::obsolete_reason(s));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// upstream_server

namespace {

struct connection {
    enum class phase { idle, reading, handling, writing, closed };

    explicit connection(net::io_context& io) : socket(io) {}

    tcp::socket socket;
    std::size_t id = 0;  // set before the thread starts
    std::thread thread;
    // Guarded by upstream_server::state::mutex.
    phase at = phase::idle;
    bool close_requested = false;
    bool finished = false;
};

}  // namespace

struct upstream_server::state {
    explicit state(handler h) : on_request(std::move(h)) {}

    net::io_context io;  // never run: every socket here is used blocking
    tcp::acceptor acceptor{io};
    std::uint16_t port = 0;
    std::thread accept_thread;

    mutable std::mutex mutex;
    std::condition_variable changed;  // requests, connection phases, stop
    bool stopping = false;
    handler on_request;
    std::vector<request> requests;
    std::list<std::shared_ptr<connection>> connections;
    std::size_t accepted = 0;
    std::size_t open = 0;
    std::size_t bad = 0;
    std::atomic<std::uint64_t> bytes{0};  // written under `mutex`, so waiters see each update
    std::atomic<std::uint64_t> body_bytes{0};
    std::atomic<bool> discard{false};
    std::atomic<bool> auto_continue{true};

    void start(const tcp::endpoint& at);
    void stop();
    void accept_loop();
    void serve(connection& c);
    bool set_phase(connection& c, connection::phase p);
    bool write(connection& c, std::string_view data);
    bool write_response(connection& c, const response& res, bool head_request,
                        bool client_wants_close, bool& keep_alive);
    void finish(connection& c, bool reset);

    // Shuts a live connection down from another thread; its own thread then sees EOF (or a
    // failed write) and closes the descriptor. Requires `mutex`: a closed descriptor is never
    // touched, so a reused descriptor number cannot be hit.
    static void interrupt(connection& c) {
        if (c.at != connection::phase::closed) {
            ::shutdown(c.socket.native_handle(), SHUT_RDWR);
        }
    }
};

void upstream_server::state::start(const tcp::endpoint& at) {
    acceptor.open(at.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(at);
    acceptor.listen(net::socket_base::max_listen_connections);
    port = acceptor.local_endpoint().port();
    accept_thread = std::thread([this] { accept_loop(); });
}

void upstream_server::state::stop() {
    {
        std::lock_guard lock(mutex);
        stopping = true;
    }
    changed.notify_all();
    // On Linux, shutdown() on a listening socket wakes a blocked accept() with EINVAL.
    ::shutdown(acceptor.native_handle(), SHUT_RDWR);
    if (accept_thread.joinable()) {
        accept_thread.join();
    }
    error_code ignored;
    acceptor.close(ignored);
    std::list<std::shared_ptr<connection>> live;
    {
        std::lock_guard lock(mutex);
        for (auto& c : connections) {
            interrupt(*c);
        }
        live.swap(connections);
    }
    for (auto& c : live) {
        if (c->thread.joinable()) {
            c->thread.join();
        }
    }
}

void upstream_server::state::accept_loop() {
    for (;;) {
        auto next = std::make_shared<connection>(io);
        error_code ec;
        acceptor.accept(next->socket, ec);
        std::list<std::shared_ptr<connection>> done;
        {
            std::unique_lock lock(mutex);
            if (stopping) {
                return;
            }
            if (ec) {
                // Out of descriptors or similar: back off instead of spinning.
                changed.wait_for(lock, milliseconds(10), [this] { return stopping; });
                continue;
            }
            // Join the threads of connections that have ended, so a long test does not pile
            // them up.
            for (auto it = connections.begin(); it != connections.end();) {
                if ((*it)->finished) {
                    done.splice(done.end(), connections, it++);
                } else {
                    ++it;
                }
            }
            // An answer written in pieces (100 Continue, then the response; pipelined answers)
            // must not wait on Nagle and the peer's delayed ACK.
            next->socket.set_option(tcp::no_delay(true), ec);
            next->id = ++accepted;
            ++open;
            connections.push_back(next);
            next->thread = std::thread([this, c = next.get()] { serve(*c); });
        }
        changed.notify_all();
        for (auto& c : done) {
            c->thread.join();
        }
    }
}

bool upstream_server::state::set_phase(connection& c, connection::phase p) {
    {
        std::lock_guard lock(mutex);
        if (stopping || c.close_requested) {
            return false;
        }
        c.at = p;
    }
    changed.notify_all();
    return true;
}

bool upstream_server::state::write(connection& c, std::string_view data) {
    error_code ec;
    net::write(c.socket, net::buffer(data.data(), data.size()), ec);
    return !ec;
}

bool upstream_server::state::write_response(connection& c, const response& res, bool head_request,
                                            bool client_wants_close, bool& keep_alive) {
    using framing = response::framing;
    if (!res.raw.empty()) {
        keep_alive = !res.close_after && !client_wants_close;
        return write(c, res.raw);
    }
    const auto has = [&](std::string_view name) {
        return count_of(res.fields, name) > 0;
    };
    // RFC 9110 §6.4.1: 1xx, 204 and 304 responses never carry content.
    const bool bodyless = res.status / 100 == 1 || res.status == 204 || res.status == 304;
    const bool streamed = res.stream_bytes > 0;
    const std::uint64_t length = streamed ? res.stream_bytes : res.body.size();
    const bool close = res.close_after || client_wants_close;
    keep_alive = !close && (res.frame != framing::close || bodyless);

    std::string head =
        "HTTP/1.1 " + std::to_string(res.status) + " " + reason_for(res.status) + "\r\n";
    for (const auto& f : res.fields) {
        head += f.name + ": " + f.value + "\r\n";
    }
    if (!bodyless) {
        if (res.frame == framing::length && !has("Content-Length")) {
            head += "Content-Length: " + std::to_string(length) + "\r\n";
        } else if (res.frame == framing::chunked && !has("Transfer-Encoding")) {
            head += "Transfer-Encoding: chunked\r\n";
        }
    }
    if (close && !has("Connection")) {
        head += "Connection: close\r\n";
    }
    head += "\r\n";
    if (bodyless || head_request) {
        return write(c, head);
    }
    const bool chunked = res.frame == framing::chunked;
    if (!streamed) {
        if (chunked) {
            head += chunk_encode(res.body);
        } else {
            head += res.body;
        }
        return write(c, head);
    }
    if (!write(c, head)) {
        return false;
    }
    const auto& block = filler_block();
    const std::string chunk_head = hex(io_block) + "\r\n";
    for (std::uint64_t left = length; left > 0;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, io_block));
        error_code ec;
        if (chunked) {
            const std::string size_line = n == io_block ? chunk_head : hex(n) + "\r\n";
            const std::array<net::const_buffer, 3> pieces{
                net::buffer(size_line), net::buffer(block.data(), n), net::buffer("\r\n", 2)};
            net::write(c.socket, pieces, ec);
        } else {
            net::write(c.socket, net::buffer(block.data(), n), ec);
        }
        if (ec) {
            return false;
        }
        left -= n;
    }
    return !chunked || write(c, "0\r\n\r\n");
}

void upstream_server::state::finish(connection& c, bool reset) {
    error_code ignored;
    if (reset) {
        c.socket.set_option(net::socket_base::linger(true, 0), ignored);
    } else {
        // Send the FIN before the connection counts as closed, so a test that waits for
        // connections_open() sees the close already on the wire.
        c.socket.shutdown(tcp::socket::shutdown_send, ignored);
    }
    {
        std::lock_guard lock(mutex);
        c.at = connection::phase::closed;
    }
    c.socket.close(ignored);
    {
        std::lock_guard lock(mutex);
        c.finished = true;
        --open;
    }
    changed.notify_all();
}

void upstream_server::state::serve(connection& c) {
    beast::flat_buffer in;
    std::vector<char> block(io_block);
    std::size_t index = 0;
    bool reset = false;
    bool idle = true;
    const auto read_more = [&] {
        error_code ec;
        const std::size_t n = c.socket.read_some(in.prepare(io_block), ec);
        if (ec) {
            return read_status::eof;  // EOF, reset, or our own shutdown: the connection ends
        }
        in.commit(n);
        // The first byte of a request makes the connection busy (before the bytes are counted,
        // so a test that waited for them sees it busy); if it raced with
        // close_idle_connections(), the close wins, as with a real server's idle timeout.
        bool go_on = true;
        if (idle) {
            idle = false;
            go_on = set_phase(c, connection::phase::reading);
        }
        {
            std::lock_guard lock(mutex);
            bytes += n;
        }
        changed.notify_all();
        return go_on ? read_status::data : read_status::eof;
    };
    const auto reject = [&] {
        {
            std::lock_guard lock(mutex);
            ++bad;
        }
        changed.notify_all();
        write(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    };

    for (;;) {
        idle = in.size() == 0;
        if (!set_phase(c, idle ? connection::phase::idle : connection::phase::reading)) {
            break;
        }
        http::request_parser<http::buffer_body> parser;
        parser.header_limit(head_limit);
        parser.body_limit(boost::none);
        request req;
        error_code ec;
        const auto head = parse_head(parser, in, req.raw_head, read_more, ec);
        if (head == parse_result::bad) {
            reject();
            break;
        }
        if (head != parse_result::done) {
            break;
        }
        if (auto_continue && expects_continue(parser)) {
            if (!write(c, "HTTP/1.1 100 Continue\r\n\r\n")) {
                break;
            }
            req.sent_100_continue = true;
        }
        const bool keep_body = !discard;
        const auto sink = [&](const char* data, std::size_t n) {
            if (keep_body) {
                req.body.append(data, n);
            }
            req.body_size += n;
            body_bytes += n;
        };
        const auto body = parse_body(parser, in, block, read_more, sink, ec);
        if (body == parse_result::bad) {
            reject();
            break;
        }
        if (body != parse_result::done) {
            break;
        }

        const auto& message = parser.get();
        req.method = std::string(message.method_string());
        req.target = std::string(message.target());
        req.version_minor = static_cast<int>(message.version() % 10);
        req.fields = fields_of(message);
        req.chunked = parser.chunked();
        req.connection_id = c.id;
        req.index_on_connection = ++index;
        const bool head_request = message.method() == http::verb::head;
        const bool client_wants_close = !message.keep_alive();

        handler h;
        {
            std::lock_guard lock(mutex);
            if (stopping || c.close_requested) {
                break;
            }
            c.at = connection::phase::handling;
            requests.push_back(req);
            h = on_request;
        }
        changed.notify_all();

        response res;
        try {
            res = h(req);
        } catch (const std::exception& e) {
            res = response{};
            res.status = 500;
            res.body = std::string("handler threw: ") + e.what() + "\n";
            res.close_after = true;
        }

        if (res.delay.count() > 0) {
            std::unique_lock lock(mutex);
            if (changed.wait_for(lock, res.delay, [&] { return stopping || c.close_requested; })) {
                break;
            }
        }
        if (res.reset_without_answer) {
            reset = true;
            break;
        }
        if (res.drop_without_answer) {
            break;
        }
        if (!set_phase(c, connection::phase::writing)) {
            break;
        }
        if (res.send_100_continue && !req.sent_100_continue &&
            !write(c, "HTTP/1.1 100 Continue\r\n\r\n")) {
            break;
        }
        bool keep_alive = false;
        const bool written = write_response(c, res, head_request, client_wants_close, keep_alive);
        if (written && res.after_write) {
            res.after_write();
        }
        if (written && res.reset_after) {
            reset = true;
            break;
        }
        if (!written || !keep_alive) {
            break;
        }
    }
    finish(c, reset);
}

namespace {

upstream_server::handler answer_with_name(const std::string& name) {
    return [name](const upstream_server::request&) {
        upstream_server::response res;
        res.fields.push_back({"X-Upstream", name});
        res.body = name + "\n";
        return res;
    };
}

}  // namespace

upstream_server::upstream_server(std::string name)
    : upstream_server(name, answer_with_name(name)) {}

upstream_server::upstream_server(std::string name, handler h)
    : name_(std::move(name)), state_(std::make_unique<state>(std::move(h))) {
    state_->start({net::ip::address_v4::loopback(), 0});
}

upstream_server::upstream_server(std::string name, const std::string& ip, std::uint16_t port)
    : name_(name), state_(std::make_unique<state>(answer_with_name(name))) {
    state_->start({net::ip::make_address(ip), port});
}

upstream_server::~upstream_server() {
    state_->stop();
}

std::uint16_t upstream_server::port() const {
    return state_->port;
}

void upstream_server::set_handler(handler h) {
    std::lock_guard lock(state_->mutex);
    state_->on_request = std::move(h);
}

std::vector<upstream_server::request> upstream_server::requests() const {
    std::lock_guard lock(state_->mutex);
    return state_->requests;
}

std::size_t upstream_server::request_count() const {
    std::lock_guard lock(state_->mutex);
    return state_->requests.size();
}

std::size_t upstream_server::connections_accepted() const {
    std::lock_guard lock(state_->mutex);
    return state_->accepted;
}

std::size_t upstream_server::connections_open() const {
    std::lock_guard lock(state_->mutex);
    return state_->open;
}

std::size_t upstream_server::bad_requests() const {
    std::lock_guard lock(state_->mutex);
    return state_->bad;
}

std::uint64_t upstream_server::bytes_received() const {
    return state_->bytes.load();
}

std::uint64_t upstream_server::body_bytes_received() const {
    return state_->body_bytes.load();
}

bool upstream_server::wait_for_requests(std::size_t n, milliseconds timeout) {
    std::unique_lock lock(state_->mutex);
    return state_->changed.wait_for(lock, timeout, [&] { return state_->requests.size() >= n; });
}

bool upstream_server::wait_for_bytes_received(std::uint64_t n, milliseconds timeout) {
    std::unique_lock lock(state_->mutex);
    return state_->changed.wait_for(lock, timeout, [&] { return state_->bytes.load() >= n; });
}

bool upstream_server::wait_for_open_connections(std::size_t n, milliseconds timeout) {
    std::unique_lock lock(state_->mutex);
    return state_->changed.wait_for(lock, timeout, [&] { return state_->open == n; });
}

std::size_t upstream_server::close_idle_connections() {
    std::unique_lock lock(state_->mutex);
    // A client may have read a whole response before the serving thread got back to mark its
    // connection idle; let responses in flight finish (bounded, in case a peer stopped reading).
    state_->changed.wait_for(lock, std::chrono::seconds(10), [&] {
        return std::none_of(state_->connections.begin(), state_->connections.end(),
                            [](const auto& c) { return c->at == connection::phase::writing; });
    });
    std::vector<std::shared_ptr<connection>> closing;
    for (auto& c : state_->connections) {
        if (c->at == connection::phase::idle && !c->close_requested) {
            c->close_requested = true;
            state::interrupt(*c);
            closing.push_back(c);
        }
    }
    // Return once their threads have closed them, so connections_open() already agrees.
    state_->changed.wait_for(lock, std::chrono::seconds(10), [&] {
        return std::all_of(closing.begin(), closing.end(),
                           [](const auto& c) { return c->finished; });
    });
    return closing.size();
}

void upstream_server::set_discard_bodies(bool on) {
    state_->discard = on;
}

void upstream_server::set_auto_100_continue(bool on) {
    state_->auto_continue = on;
}

std::string upstream_server::request::header(std::string_view name) const {
    return first_value(fields, name);
}

std::size_t upstream_server::request::count(std::string_view name) const {
    return count_of(fields, name);
}

// ---------------------------------------------------------------------------------------------
// raw_client

struct raw_client::state {
    net::io_context io;  // never run: the socket is non-blocking and waited on with poll()
    tcp::socket socket{io};
    beast::flat_buffer in;

    // Waits until the socket is ready for `events`; false on timeout.
    bool wait_ready(short events, milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            const auto left = std::chrono::duration_cast<milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{socket.native_handle(), events, 0};
            const auto wait_ms = std::clamp<std::int64_t>(left.count(), 0, 60 * 60 * 1000);
            const int rc = ::poll(&p, 1, static_cast<int>(wait_ms));
            if (rc > 0) {
                return true;
            }
            if (rc == 0) {
                return false;
            }
            if (errno != EINTR) {
                throw std::runtime_error("poll failed");
            }
        }
    }

    // Reads what is available into `in`, waiting up to `timeout` for it. A reset counts as the
    // end of the stream: for a test, both mean the peer went away.
    read_status read_more(milliseconds timeout) {
        for (;;) {
            error_code ec;
            const std::size_t n = socket.read_some(in.prepare(io_block), ec);
            if (!ec) {
                in.commit(n);
                return read_status::data;
            }
            if (ec == net::error::would_block || ec == net::error::try_again) {
                if (!wait_ready(POLLIN, timeout)) {
                    return read_status::timeout;
                }
                continue;
            }
            if (ec == net::error::eof || ec == net::error::connection_reset) {
                return read_status::eof;
            }
            throw boost::system::system_error(ec, "raw_client read");
        }
    }

    void write_all(const char* data, std::size_t size, milliseconds timeout) {
        while (size > 0) {
            error_code ec;
            const std::size_t n = socket.write_some(net::buffer(data, size), ec);
            if (ec == net::error::would_block || ec == net::error::try_again) {
                if (!wait_ready(POLLOUT, timeout)) {
                    throw std::runtime_error("raw_client: timed out sending");
                }
                continue;
            }
            if (ec) {
                throw boost::system::system_error(ec, "raw_client send");
            }
            data += n;
            size -= n;
        }
    }
};

raw_client::raw_client(std::uint16_t port) : state_(std::make_unique<state>()) {
    state_->socket.connect(tcp::endpoint(net::ip::address_v4::loopback(), port));
    // Each send() goes out as written, so tests can split a request across segments.
    state_->socket.set_option(tcp::no_delay(true));
    state_->socket.non_blocking(true);
}

raw_client::~raw_client() = default;

void raw_client::send(std::string_view bytes, milliseconds timeout) {
    state_->write_all(bytes.data(), bytes.size(), timeout);
}

void raw_client::send_filler(std::uint64_t n, milliseconds timeout) {
    const auto& block = filler_block();
    while (n > 0) {
        const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(n, io_block));
        state_->write_all(block.data(), piece, timeout);
        n -= piece;
    }
}

void raw_client::shutdown_send() {
    state_->socket.shutdown(tcp::socket::shutdown_send);
}

void raw_client::close() {
    error_code ignored;
    state_->socket.close(ignored);
}

void raw_client::abort() {
    error_code ignored;
    state_->socket.set_option(net::socket_base::linger(true, 0), ignored);
    state_->socket.close(ignored);
}

response raw_client::read_response(bool head_request, milliseconds timeout, bool discard_body) {
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(head_limit);
    parser.body_limit(boost::none);
    parser.skip(head_request);
    response res;
    error_code ec;
    const auto read_more = [&] {
        return state_->read_more(timeout);
    };
    const auto fail = [&](parse_result r, const char* part) {
        switch (r) {
            case parse_result::done:
                return;
            case parse_result::eof_clean:
                throw std::runtime_error("connection closed before a response");
            case parse_result::eof_truncated:
                throw std::runtime_error(std::string("connection closed in the middle of the ") +
                                         part);
            case parse_result::timeout:
                throw std::runtime_error(std::string("timed out reading the ") + part);
            case parse_result::bad:
                throw std::runtime_error(std::string("malformed ") + part + ": " + ec.message());
        }
    };
    fail(parse_head(parser, state_->in, res.raw_head, read_more, ec), "response head");
    std::vector<char> block(io_block);
    const auto sink = [&](const char* data, std::size_t n) {
        if (!discard_body) {
            res.body.append(data, n);
        }
        res.body_size += n;
    };
    fail(parse_body(parser, state_->in, block, read_more, sink, ec), "response body");

    const auto& message = parser.get();
    res.status = static_cast<int>(message.result_int());
    res.reason = std::string(message.reason());
    res.version_minor = static_cast<int>(message.version() % 10);
    res.fields = fields_of(message);
    res.chunked = parser.chunked();
    return res;
}

std::string raw_client::read_until(std::string_view marker, milliseconds timeout) {
    for (;;) {
        const std::string_view held = as_view(state_->in.data());
        if (const auto at = held.find(marker); at != std::string_view::npos) {
            std::string out(held.substr(0, at + marker.size()));
            state_->in.consume(out.size());
            return out;
        }
        switch (state_->read_more(timeout)) {
            case read_status::data:
                break;
            case read_status::eof:
                throw std::runtime_error("raw_client: connection closed before the marker");
            case read_status::timeout:
                throw std::runtime_error("raw_client: timed out waiting for the marker");
        }
    }
}

std::string raw_client::read_until_close(milliseconds timeout) {
    for (;;) {
        switch (state_->read_more(timeout)) {
            case read_status::data:
                break;
            case read_status::eof: {
                std::string out(as_view(state_->in.data()));
                state_->in.consume(state_->in.size());
                return out;
            }
            case read_status::timeout:
                throw std::runtime_error("raw_client: timed out waiting for the peer to close");
        }
    }
}

bool raw_client::wait_closed(milliseconds timeout) {
    if (state_->in.size() > 0) {
        return false;
    }
    return state_->read_more(timeout) == read_status::eof;
}

std::size_t raw_client::buffered() const {
    return state_->in.size();
}

std::string response::header(std::string_view name) const {
    return first_value(fields, name);
}

std::size_t response::count(std::string_view name) const {
    return count_of(fields, name);
}

// ---------------------------------------------------------------------------------------------
// bare_connection

bare_connection::bare_connection(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "bare_connection: socket");
    }
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(port);
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) {
        const int err = errno;
        close();
        throw std::system_error(err, std::generic_category(), "bare_connection: connect");
    }
}

bare_connection::~bare_connection() {
    close();
}

bare_connection::bare_connection(bare_connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

bare_connection& bare_connection::operator=(bare_connection&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

void bare_connection::close() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

// ---------------------------------------------------------------------------------------------
// helpers

std::string format_request(std::string_view method, std::string_view target,
                           const std::vector<field>& fields, std::string_view body) {
    std::string out;
    out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    if (count_of(fields, "Host") == 0) {
        out += "Host: 127.0.0.1\r\n";
    }
    for (const auto& f : fields) {
        out += f.name + ": " + f.value + "\r\n";
    }
    if (!body.empty() && count_of(fields, "Content-Length") == 0 &&
        count_of(fields, "Transfer-Encoding") == 0) {
        out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    out += "\r\n";
    out.append(body);
    return out;
}

std::string chunk_encode(std::string_view body) {
    std::string out;
    if (!body.empty()) {
        out.append(hex(body.size())).append("\r\n").append(body).append("\r\n");
    }
    out += "0\r\n\r\n";
    return out;
}

response get(std::uint16_t port, std::string_view target, std::vector<field> extra) {
    if (count_of(extra, "Host") == 0) {
        extra.insert(extra.begin(), {"Host", "127.0.0.1:" + std::to_string(port)});
    }
    raw_client client(port);
    client.send(format_request("GET", target, extra));
    return client.read_response();
}

}  // namespace switchyard::test
