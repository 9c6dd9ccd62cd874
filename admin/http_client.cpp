#include "admin/http_client.hpp"

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace switchyard::admin {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using time_point = std::chrono::steady_clock::time_point;
using std::chrono::milliseconds;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

http_result failed(http_failure failure, std::string error) {
    http_result r;
    r.failure = failure;
    r.error = std::move(error);
    return r;
}

// Sorts the error of one step (`step` says which, for the log line) into the kinds of failure a
// caller acts on: a probe counts a refusal differently from a slow endpoint or a broken one.
http_result failed_at(const std::string& step, const error_code& ec, milliseconds deadline) {
    if (ec == beast::error::timeout) {
        return failed(http_failure::timeout,
                      "timed out after " + std::to_string(deadline.count()) + " ms while " + step);
    }
    if (ec == net::error::timed_out) {  // the kernel's own limit (SYN retries, keepalive)
        return failed(http_failure::timeout, step + ": " + ec.message());
    }
    if (ec == net::error::connection_refused) {
        return failed(http_failure::refused, "connection refused");
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == net::error::eof) {
        return failed(http_failure::reset, "connection closed before a complete response");
    }
    if (ec == net::error::connection_reset || ec == net::error::connection_aborted ||
        ec == net::error::broken_pipe) {
        return failed(http_failure::reset, "connection reset while " + step);
    }
    if (ec == http::error::body_limit) {
        return failed(http_failure::protocol, "invalid response: body longer than " +
                                                  std::to_string(max_body_bytes) + " bytes");
    }
    if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
        return failed(http_failure::protocol, "invalid response: " + ec.message());
    }
    return failed(http_failure::other, step + ": " + ec.message());
}

// --- the request ---

// RFC 9110 §5.6.2: tchar.
bool is_token(std::string_view s) noexcept {
    constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               extra.find(c) != std::string_view::npos;
    });
}

// RFC 9110 §5.5: a field value never holds CR, LF or NUL. Beast writes values verbatim, so a
// value read from a file with its trailing newline (a token, say) would otherwise split the head.
bool is_field_value(std::string_view s) noexcept {
    return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// RFC 9112 §3.2.1: origin-form is an absolute path and query, with no whitespace or controls.
bool is_origin_form(std::string_view s) noexcept {
    return !s.empty() && s.front() == '/' && std::none_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
    });
}

// Why the request cannot be sent as given, or "". Values are not echoed: they may be secrets.
std::string invalid_request(const http_request& request) {
    if (!is_token(request.method)) {
        return "the method is not a token";
    }
    if (!is_origin_form(request.target)) {
        return "the target is not origin-form (\"/path?query\")";
    }
    if (!is_field_value(request.content_type)) {
        return "the content type holds CR, LF or NUL";
    }
    for (const auto& [name, value] : request.fields) {
        if (!is_token(name)) {
            return "a field name is not a token";
        }
        if (!is_field_value(value)) {
            return "the value of " + name + " holds CR, LF or NUL";
        }
        // The client frames the message and closes the connection; a second opinion from the
        // caller would make the request ambiguous (RFC 9112 §6.3, request smuggling).
        if (beast::iequals(name, "Content-Length") || beast::iequals(name, "Transfer-Encoding") ||
            beast::iequals(name, "Connection")) {
            return name + " is set by the client";
        }
    }
    return {};
}

http::request<http::string_body> make_message(const config::address& at, http_request request) {
    http::request<http::string_body> message;
    message.method_string(request.method);
    message.target(request.target);
    message.version(11);
    const bool has_host =
        std::any_of(request.fields.begin(), request.fields.end(),
                    [](const auto& f) { return beast::iequals(f.first, "Host"); });
    if (!has_host) {
        message.set(http::field::host, at.to_string());
    }
    message.set(http::field::connection, "close");
    if (!request.content_type.empty()) {
        message.set(http::field::content_type, request.content_type);
    }
    for (const auto& [name, value] : request.fields) {
        message.insert(name, value);
    }
    // Not prepare_payload(): it throws for TRACE with a body, and a POST or PUT without one
    // still says Content-Length: 0, which some servers require (RFC 9110 §8.6).
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
        message.content_length(request.body.size());
    }
    message.body() = std::move(request.body);
    return message;
}

// --- the steps ---

// tcp_stream's timer interrupts an operation that waits, but one that can complete at once (a
// loopback connect, a write into an empty send buffer, a read of bytes already received) does so
// even past the expiry. Checking before each step keeps the deadline exact: no step starts late.
bool past(time_point until) noexcept {
    return std::chrono::steady_clock::now() >= until;
}

// getaddrinfo runs on Asio's resolver thread and nothing interrupts it: resolver::cancel() only
// drops a query that has not started. So the fetch waits on a timer instead, and a late answer
// lands here, kept alive by its own handler, after the fetch has returned.
struct pending_resolve {
    pending_resolve(const net::any_io_executor& ex, time_point until)
        : resolver(ex), wake(ex, until) {}

    tcp::resolver resolver;
    net::steady_timer wake;
    bool done = false;
    error_code ec;
    tcp::resolver::results_type endpoints;
};

// The addresses of `at`, or the resolver's error, or beast::error::timeout at `until`.
net::awaitable<std::pair<error_code, tcp::resolver::results_type>> resolve(
    const config::address& at, time_point until) {
    auto query = std::make_shared<pending_resolve>(co_await net::this_coro::executor, until);
    query->resolver.async_resolve(
        at.host, std::to_string(at.port), tcp::resolver::numeric_service,
        [query](const error_code& ec, tcp::resolver::results_type endpoints) {
            query->done = true;
            query->ec = ec;
            query->endpoints = std::move(endpoints);
            query->wake.cancel();
        });
    const auto [wait_ec] = co_await query->wake.async_wait(use_tuple);
    if (!query->done) {
        query->resolver.cancel();
        // operation_aborted here is the caller's cancellation, not ours (ours sets done first).
        co_return std::pair{wait_ec == net::error::operation_aborted
                                ? error_code(net::error::operation_aborted)
                                : error_code(beast::error::timeout),
                            tcp::resolver::results_type{}};
    }
    co_return std::pair{query->ec, std::move(query->endpoints)};
}

// Reads the final response; its status and body are the result.
net::awaitable<http_result> read_response(beast::tcp_stream& stream, bool head_request,
                                          time_point until, milliseconds deadline) {
    const std::string step = "reading the response";
    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::string_body>> parser;
    // RFC 9110 §15.2: a client parses and skips interim 1xx responses, even unasked ones (we
    // send neither Expect nor Upgrade). The deadline bounds how many a peer can send.
    do {
        parser.emplace();
        parser->body_limit(max_body_bytes);
        // RFC 9110 §9.3.2: the answer to HEAD has no content, whatever its Content-Length says.
        parser->skip(head_request);
        if (past(until)) {
            co_return failed_at(step, beast::error::timeout, deadline);
        }
        const auto [ec, n] = co_await http::async_read(stream, buffer, *parser, use_tuple);
        if (ec) {
            co_return failed_at(step, ec, deadline);
        }
    } while (parser->get().result_int() / 100 == 1);

    http_result result;
    result.status = parser->get().result_int();
    result.body = std::move(parser->get().body());
    co_return result;
}

}  // namespace

std::string http_result::describe() const {
    switch (failure) {
        case http_failure::none:
            return "status " + std::to_string(status);
        case http_failure::timeout:
            return "timeout";
        case http_failure::refused:
            return "refused";
        case http_failure::reset:
            return "reset";
        case http_failure::resolve:   // "cannot resolve <host>: ..."
        case http_failure::protocol:  // "invalid response: ..."
        case http_failure::other:
            break;
    }
    return error;
}

net::awaitable<http_result> fetch(config::address at, http_request request, milliseconds deadline) {
    const time_point until = std::chrono::steady_clock::now() + deadline;
    if (const std::string why = invalid_request(request); !why.empty()) {
        co_return failed(http_failure::other, "invalid request: " + why);
    }

    auto [resolve_ec, endpoints] = co_await resolve(at, until);
    if (resolve_ec == beast::error::timeout || resolve_ec == net::error::operation_aborted) {
        co_return failed_at("resolving " + at.host, resolve_ec, deadline);
    }
    if (resolve_ec) {
        co_return failed(http_failure::resolve,
                         "cannot resolve " + at.host + ": " + resolve_ec.message());
    }

    // One expiry for every step that follows: the deadline is for the exchange, not per I/O.
    beast::tcp_stream stream(co_await net::this_coro::executor);
    stream.expires_at(until);
    const std::string connecting = "connecting to " + at.to_string();
    if (past(until)) {
        co_return failed_at(connecting, beast::error::timeout, deadline);
    }
    // Tries each address in order, as getaddrinfo sorted them (RFC 6724).
    const auto [connect_ec, peer] = co_await stream.async_connect(endpoints, use_tuple);
    if (connect_ec) {
        co_return failed_at(connecting, connect_ec, deadline);
    }

    const bool head_request = request.method == "HEAD";
    auto message = make_message(at, std::move(request));
    if (past(until)) {
        co_return failed_at("sending the request", beast::error::timeout, deadline);
    }
    const auto [write_ec, written] = co_await http::async_write(stream, message, use_tuple);
    if (write_ec) {
        co_return failed_at("sending the request", write_ec, deadline);
    }
    co_return co_await read_response(stream, head_request, until, deadline);
}

http_result fetch_blocking(const config::address& at, const http_request& request,
                           milliseconds deadline) {
    // Shared: the io_context may have to outlive this call (below).
    auto io = std::make_shared<net::io_context>(1);
    std::optional<http_result> result;
    std::exception_ptr error;
    net::co_spawn(*io, fetch(at, request, deadline), [&](std::exception_ptr e, http_result r) {
        error = e;
        result = std::move(r);
    });
    while (!result && io->run_one() > 0) {
    }
    // A lookup that timed out is still in getaddrinfo, and ~io_context would join the resolver
    // thread, i.e. wait for it. poll() stops the io_context when no work is left; when some is,
    // a thread of its own finishes it, so that this call keeps its deadline.
    io->poll();
    if (!io->stopped()) {
        std::thread([io] { io->run(); }).detach();
    }
    if (error) {
        std::rethrow_exception(error);  // not a network problem: bad_alloc, say
    }
    if (!result) {  // cannot happen: fetch completes by its deadline
        return failed(http_failure::other, "the fetch did not complete");
    }
    return std::move(*result);
}

}  // namespace switchyard::admin
