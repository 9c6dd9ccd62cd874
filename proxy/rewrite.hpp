#pragma once
// The heads a proxy sends on: the upstream request and the downstream response, rewritten per
// RFC 9110 §7.6 (hop-by-hop fields removed, Via added) with the X-Forwarded-* and X-Request-Id
// fields users of nginx and HAProxy expect. Pure functions into a caller-owned string, whose
// capacity is kept between requests, so a warmed-up session does not allocate here.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "proxy/http1.hpp"

namespace switchyard::proxy {

// Facts about the request that are not in its head.
struct request_context {
    std::string_view client_ip;      // appended to X-Forwarded-For
    std::string_view request_id;     // sent as X-Request-Id when `add_request_id`
    bool add_request_id = false;     // the request had no X-Request-Id
    std::string_view fallback_host;  // Host to send when the request had none (HTTP/1.0)
    bool tls = false;                // it came over TLS: X-Forwarded-Proto: https
    // Not empty when wants_upgrade(req, upgrade) held: the protocols of its Upgrade that this
    // list allows are forwarded, with Connection: upgrade (RFC 9110 §7.8).
    std::span<const std::string> upgrade;
    // Fields never forwarded, by name (compared ignoring case): the preview header and its
    // token (README, "Routes").
    std::span<const std::string> drop = {};
};

// True when `protocol`, an element of an Upgrade field ("websocket", "websocket/13"), names one
// of `allow` (protocol names in lower case), ignoring case and version. Never h2c: HTTP/2 is
// not offered, so an upgrade to it is refused whatever the list says.
bool upgrade_allowed(std::string_view protocol, std::span<const std::string> allow) noexcept;

// True when an HTTP/1.1 request asks to switch protocols (RFC 9110 §7.8: an Upgrade field, and
// "upgrade" in Connection, which RFC 9110 §7.6.1 requires) to one that `allow` allows. An
// HTTP/1.0 request's Upgrade is ignored, as §7.8 requires of a server.
bool wants_upgrade(const http1::request_head& req, std::span<const std::string> allow) noexcept;

// True when a 101's Upgrade field names a protocol `allow` allows: the one it switched to.
bool switches_to_allowed(const http1::response_head& res,
                         std::span<const std::string> allow) noexcept;

// Appends the upstream request head (always HTTP/1.1, keep-alive) to `out`.
// Removed: Connection and every field it names, Keep-Alive, Proxy-Connection, TE, Trailer,
// Upgrade (unless ctx.upgrade keeps it), Expect (the proxy answers 100-continue itself, as Envoy
// does), and the client's X-Forwarded-Proto / X-Forwarded-Host. Framing is re-emitted from the
// parse: one Content-Length, or Transfer-Encoding: chunked. Added: X-Forwarded-For (appended),
// X-Forwarded-Proto, X-Forwarded-Host, Via, X-Request-Id when absent. An absolute-form target
// becomes origin-form, with Host from its authority (RFC 9112 §3.2.2).
void write_upstream_request(const http1::request_head& req, const request_context& ctx,
                            std::string& out);

struct response_context {
    std::string_view request_id;  // X-Request-Id to add when the upstream sent none
    bool close = false;           // the proxy closes the client connection after this response
    bool client_http10 = false;   // the client spoke HTTP/1.0: no chunked framing for it
    // A 101 that opens a tunnel: its Upgrade is kept and Connection says upgrade (RFC 9110
    // §7.8), instead of the close or keep-alive the proxy decides for other responses.
    bool upgrade = false;
    // A Set-Cookie value to add (a sticky session's pin); empty for none.
    std::string_view set_cookie = {};
};

// Appends the downstream response head (HTTP/1.1 status line) to `out`. Removes the hop-by-hop
// fields, adds Via and X-Request-Id, and says Connection: close (or keep-alive to an HTTP/1.0
// client) as the proxy decided. A chunked response to an HTTP/1.0 client loses its
// Transfer-Encoding: the proxy decodes it and closes to end it.
void write_downstream_response(const http1::response_head& res, const response_context& ctx,
                               std::string& out);

// Appends an answer made by the proxy itself: status line, text/plain body `reason` plus a
// newline, Content-Length, X-Request-Id when given, and Connection: close when `close` (or
// keep-alive to an HTTP/1.0 client that keeps the connection), and Retry-After (RFC 9110
// §10.2.3) in seconds when `retry_after` is not 0.
void write_error_response(int status, std::string_view reason, std::string_view request_id,
                          bool close, bool client_http10, std::string& out,
                          std::uint32_t retry_after = 0);

// The reason phrase of the statuses the proxy produces ("Bad Gateway"); "" for others.
std::string_view reason_phrase(int status) noexcept;

}  // namespace switchyard::proxy
