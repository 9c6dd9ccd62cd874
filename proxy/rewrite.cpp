#include "proxy/rewrite.hpp"

#include "proxy/text.hpp"

namespace switchyard::proxy {
namespace {

using http1::iequals;

constexpr std::string_view crlf = "\r\n";

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append(crlf);
}

void append_status_line(std::string& out, int status, std::string_view reason) {
    out.append("HTTP/1.1 ");
    append_number(out, static_cast<std::uint64_t>(status));
    out.append(" ").append(reason).append(crlf);
}

void append_content_length(std::string& out, std::uint64_t length) {
    out.append("Content-Length: ");
    append_number(out, length);
    out.append(crlf);
}

// RFC 9110 §7.6.3: received-protocol is the version the sender spoke.
void append_via(std::string& out, int version_minor) {
    out.append(version_minor == 0 ? "Via: 1.0 switchyard\r\n" : "Via: 1.1 switchyard\r\n");
}

// What the proxy decided for the client connection: close it, or keep it open, which an
// HTTP/1.0 client is told (RFC 9112 §9.3: its default is to close).
void append_connection(std::string& out, bool close, bool client_http10) {
    if (close) {
        out.append("Connection: close\r\n");
    } else if (client_http10) {
        out.append("Connection: keep-alive\r\n");
    }
}

// RFC 9110 §7.6.1: fields a proxy never forwards, whatever Connection says.
bool is_hop_by_hop(std::string_view name) noexcept {
    switch (name.size()) {
        case 2:
            return iequals(name, "te");
        case 7:
            return iequals(name, "trailer") || iequals(name, "upgrade");
        case 10:
            return iequals(name, "connection") || iequals(name, "keep-alive");
        case 16:
            return iequals(name, "proxy-connection");
        default:
            return false;
    }
}

// True when a Connection field of `fields` names `name` (RFC 9110 §7.6.1: the sender lists
// fields meant for this hop only).
bool named_by_connection(std::span<const http1::header_field> fields,
                         std::string_view name) noexcept {
    for (const auto& f : fields) {
        if (!iequals(f.name, "connection")) {
            continue;
        }
        bool found = false;
        http1::for_each_list_token(
            f.value, [&](std::string_view token) { found = found || iequals(token, name); });
        if (found) {
            return true;
        }
    }
    return false;
}

// Fields Connection cannot remove: the body is relayed in the framing they declare, and an
// HTTP/1.1 request needs its Host (RFC 9112 §3.2). Without this, "Connection: content-length"
// from an upstream would leave the client a body it cannot delimit.
bool is_kept_whatever_connection_says(std::string_view name) noexcept {
    return iequals(name, "host") || iequals(name, "content-length") ||
           iequals(name, "transfer-encoding");
}

bool is_removed(std::string_view name, const http1::connection_options& conn,
                std::span<const http1::header_field> fields) noexcept {
    return is_hop_by_hop(name) || (conn.has_other && !is_kept_whatever_connection_says(name) &&
                                   named_by_connection(fields, name));
}

// Splits an absolute-form target into authority and origin-form path ("/" when empty).
void split_absolute(std::string_view target, std::string_view& authority, std::string_view& path) {
    const auto scheme_end = target.find("://");
    const auto rest = target.substr(scheme_end + 3);
    const auto slash = rest.find_first_of("/?");
    authority = rest.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
}

// Appends "Upgrade: <the protocols of the request that `allow` allows>" and Connection: upgrade.
void append_upgrade(std::string& out, std::span<const http1::header_field> fields,
                    std::span<const std::string> allow) {
    out.append("Connection: upgrade\r\nUpgrade: ");
    bool first = true;
    for (const auto& f : fields) {
        if (!iequals(f.name, "upgrade")) {
            continue;
        }
        http1::for_each_list_token(f.value, [&](std::string_view protocol) {
            if (upgrade_allowed(protocol, allow)) {
                out.append(first ? "" : ", ").append(protocol);
                first = false;
            }
        });
    }
    out.append(crlf);
}

// True when an Upgrade field of `fields` names a protocol `allow` allows.
bool names_allowed_upgrade(std::span<const http1::header_field> fields,
                           std::span<const std::string> allow) noexcept {
    bool found = false;
    for (const auto& f : fields) {
        if (iequals(f.name, "upgrade")) {
            http1::for_each_list_token(f.value, [&](std::string_view protocol) {
                found = found || upgrade_allowed(protocol, allow);
            });
        }
    }
    return found;
}

}  // namespace

bool upgrade_allowed(std::string_view protocol, std::span<const std::string> allow) noexcept {
    // RFC 9110 §7.8: protocol = protocol-name ["/" protocol-version].
    const std::string_view name = protocol.substr(0, protocol.find('/'));
    if (iequals(name, "h2c")) {
        return false;
    }
    for (const std::string& a : allow) {
        if (iequals(name, a)) {
            return true;
        }
    }
    return false;
}

bool wants_upgrade(const http1::request_head& req, std::span<const std::string> allow) noexcept {
    return req.version_minor == 1 && !allow.empty() && req.connection.has_other &&
           named_by_connection(req.fields, "upgrade") && names_allowed_upgrade(req.fields, allow);
}

bool switches_to_allowed(const http1::response_head& res,
                         std::span<const std::string> allow) noexcept {
    return names_allowed_upgrade(res.fields, allow);
}

void write_upstream_request(const http1::request_head& req, const request_context& ctx,
                            std::string& out) {
    std::string_view target = req.target;
    std::string_view host = req.host;
    const bool absolute = !target.empty() && target.front() != '/' && target != "*";
    if (absolute) {
        split_absolute(req.target, host, target);
    }

    out.append(req.method).append(" ");
    if (target.front() == '?') {
        out.append("/");  // RFC 9112 §3.2.1: an empty path is sent as "/", also before a query
    }
    out.append(target).append(" HTTP/1.1\r\n");
    if (absolute || req.host.empty()) {
        append_field(out, "Host", host.empty() ? ctx.fallback_host : host);
    }

    std::string_view forwarded_for;  // the client's X-Forwarded-For, all fields joined below
    bool several_forwarded_for = false;
    for (const auto& f : req.fields) {
        const auto& name = f.name;
        if (is_removed(name, req.connection, req.fields) || iequals(name, "content-length") ||
            iequals(name, "transfer-encoding") || iequals(name, "expect") ||
            iequals(name, "x-forwarded-proto") || iequals(name, "x-forwarded-host") ||
            (absolute && iequals(name, "host"))) {
            continue;
        }
        if (iequals(name, "x-forwarded-for")) {
            several_forwarded_for = several_forwarded_for || !forwarded_for.empty();
            forwarded_for = f.value;
            continue;
        }
        append_field(out, name, f.value);
    }
    if (!ctx.upgrade.empty()) {
        append_upgrade(out, req.fields, ctx.upgrade);
    }

    if (req.body == http1::body_kind::length) {
        append_content_length(out, req.content_length);
    } else if (req.body == http1::body_kind::chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }

    out.append("X-Forwarded-For: ");
    if (several_forwarded_for) {
        // Several fields are one list (RFC 9110 §5.3): keep them all, in order.
        for (const auto& f : req.fields) {
            if (iequals(f.name, "x-forwarded-for")) {
                out.append(f.value).append(", ");
            }
        }
    } else if (!forwarded_for.empty()) {
        out.append(forwarded_for).append(", ");
    }
    out.append(ctx.client_ip).append(crlf);
    out.append(ctx.tls ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n");
    if (!host.empty()) {
        append_field(out, "X-Forwarded-Host", host);
    }
    append_via(out, req.version_minor);
    if (ctx.add_request_id) {
        append_field(out, "X-Request-Id", ctx.request_id);
    }
    out.append(crlf);
}

void write_downstream_response(const http1::response_head& res, const response_context& ctx,
                               std::string& out) {
    append_status_line(out, res.status, res.reason);

    bool has_request_id = false;
    for (const auto& f : res.fields) {
        const auto& name = f.name;
        if (ctx.upgrade && iequals(name, "upgrade")) {
            append_field(out, name, f.value);  // the protocol switched to, for the client
            continue;
        }
        if (is_removed(name, res.connection, res.fields)) {
            continue;
        }
        if (iequals(name, "transfer-encoding")) {
            if (ctx.client_http10) {
                continue;  // decoded by the proxy, delimited by close
            }
        } else if (iequals(name, "content-length")) {
            // RFC 9112 §6.3 ¶3: Transfer-Encoding overrides it; never forward both. Without a
            // body (HEAD, 304) it tells the length the GET would have had: keep it.
            if (res.body == http1::body_kind::chunked ||
                res.body == http1::body_kind::until_close) {
                continue;
            }
            if (res.body == http1::body_kind::length) {
                continue;  // re-emitted below as one value: "5, 5" is not forwarded (RFC 9110 §8.6)
            }
        } else if (iequals(name, "x-request-id")) {
            has_request_id = true;
        }
        append_field(out, name, f.value);
    }
    if (res.body == http1::body_kind::length) {
        append_content_length(out, res.content_length);
    }
    append_via(out, res.version_minor);
    if (!has_request_id && !ctx.request_id.empty()) {
        append_field(out, "X-Request-Id", ctx.request_id);
    }
    if (!ctx.set_cookie.empty()) {
        append_field(out, "Set-Cookie", ctx.set_cookie);  // beside any of the upstream's
    }
    if (ctx.upgrade) {
        out.append("Connection: upgrade\r\n");
    } else {
        append_connection(out, ctx.close, ctx.client_http10);
    }
    out.append(crlf);
}

void write_error_response(int status, std::string_view reason, std::string_view request_id,
                          bool close, bool client_http10, std::string& out,
                          std::uint32_t retry_after) {
    append_status_line(out, status, reason_phrase(status));
    out.append("Content-Type: text/plain; charset=utf-8\r\n");
    append_content_length(out, reason.size() + 1);
    if (retry_after != 0) {
        out.append("Retry-After: ");
        append_number(out, retry_after);
        out.append(crlf);
    }
    if (!request_id.empty()) {
        append_field(out, "X-Request-Id", request_id);
    }
    append_connection(out, close, client_http10);
    out.append(crlf).append(reason).append("\n");
}

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
        case 100:
            return "Continue";
        case 400:
            return "Bad Request";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 417:
            return "Expectation Failed";
        case 431:
            return "Request Header Fields Too Large";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        default:
            return "";
    }
}

}  // namespace switchyard::proxy
