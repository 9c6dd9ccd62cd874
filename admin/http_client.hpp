#pragma once
// A small HTTP/1.1 client for the control plane: health probes of upstream endpoints and webhook
// deliveries. One exchange per connection, one deadline for all of it, failures as values.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/config.hpp"

namespace switchyard::admin {

// Why an exchange failed.
enum class http_failure : std::uint8_t { none, resolve, refused, timeout, reset, protocol, other };

struct http_request {
    std::string method = "GET";  // a token, case-sensitive (RFC 9110 §9.1)
    std::string target = "/";    // origin-form, e.g. "/health?x=1"
    std::string body;            // sent with Content-Length when non-empty (or when POST/PUT)
    std::string content_type;    // set when non-empty
    // Extra fields, e.g. Authorization. A Host here replaces the default (the address).
    // Content-Length, Transfer-Encoding and Connection belong to the client and are refused,
    // as are names that are not tokens and values holding CR, LF or NUL.
    std::vector<std::pair<std::string, std::string>> fields;
};

struct http_result {
    http_failure failure = http_failure::none;
    unsigned status = 0;  // the response status when failure == none
    std::string body;     // the response body (at most max_body_bytes; longer = protocol failure)
    // When failure != none: what happened, for logs and /status, e.g. "connection refused",
    // "timed out after 500 ms while connecting to app-green:8080",
    // "cannot resolve app-green: Host not found (authoritative)".
    std::string error;

    bool ok() const noexcept {
        return failure == http_failure::none && status >= 200 && status < 300;
    }
    // One short phrase for logs and JSON: "status 503", "timeout", "refused", "reset",
    // "invalid response: ...", "cannot resolve ...".
    std::string describe() const;
};

inline constexpr std::size_t max_body_bytes = 1024 * 1024;

// One exchange on a fresh connection (Connection: close is sent), as a coroutine on the caller's
// executor, which must not run handlers concurrently (one thread, or a strand). Everything
// (resolve, connect, write, read of head and body) finishes within `deadline`, measured from the
// call; past it the result is failure == timeout. Never throws for network problems. Host is
// `at.to_string()` (port kept). Interim 1xx responses are skipped; the answer to HEAD has no body.
// A name that resolves to several addresses is tried in order.
boost::asio::awaitable<http_result> fetch(config::address at, http_request request,
                                          std::chrono::milliseconds deadline);

// The same, blocking, on an io_context of its own: for the command-line tools (`switchyard
// status`). Also returns by the deadline when the name lookup hangs (see the .cpp).
http_result fetch_blocking(const config::address& at, const http_request& request,
                           std::chrono::milliseconds deadline);

}  // namespace switchyard::admin
