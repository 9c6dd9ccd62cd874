#include "proxy/rewrite.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "proxy/http1.hpp"

namespace switchyard::proxy {
namespace {

using namespace std::literals;

// A head parsed by the proxy's own parser. It owns the bytes and the field storage the head's
// views point into, and is neither copied nor moved, so those views stay valid.
template <class Head>
class parsed {
public:
    explicit parsed(std::string_view text) : buffer_(text), storage_(64) {
        http1::parse_status status = http1::parse_status::error;
        if constexpr (std::is_same_v<Head, http1::request_head>) {
            status = http1::parse_request(buffer_, storage_, {}, head_, error_);
        } else {
            status = http1::parse_response(buffer_, storage_, {}, false, head_, error_);
        }
        complete_ = status == http1::parse_status::complete;
        EXPECT_TRUE(complete_) << "test input not parsed (" << http1::describe(error_) << "):\n"
                               << text;
    }
    parsed(const parsed&) = delete;
    parsed& operator=(const parsed&) = delete;

    const Head& head() const { return head_; }
    bool complete() const { return complete_; }

private:
    std::string buffer_;
    std::vector<http1::header_field> storage_;
    Head head_;
    http1::parse_error error_ = http1::parse_error::none;
    bool complete_ = false;
};

using parsed_request = parsed<http1::request_head>;
using parsed_response = parsed<http1::response_head>;

// A written head split into its lines, by a splitter independent of the parser.
struct written_head {
    std::string start_line;
    std::vector<std::pair<std::string, std::string>> fields;
    bool ends_with_empty_line = false;

    std::size_t count(std::string_view name) const {
        std::size_t n = 0;
        for (const auto& f : fields) {
            n += http1::iequals(f.first, name) ? 1U : 0U;
        }
        return n;
    }
    bool has(std::string_view name) const { return count(name) > 0; }
    // The first value of `name`, or "<absent>".
    std::string value(std::string_view name) const {
        for (const auto& f : fields) {
            if (http1::iequals(f.first, name)) {
                return f.second;
            }
        }
        return "<absent>";
    }
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& f : fields) {
            out.push_back(f.first);
        }
        return out;
    }
};

written_head split_head(std::string_view out) {
    written_head h;
    std::size_t pos = 0;
    bool first = true;
    while (pos < out.size()) {
        const auto end = out.find("\r\n", pos);
        if (end == std::string_view::npos) {
            ADD_FAILURE() << "head line without CRLF: " << out.substr(pos);
            break;
        }
        const std::string_view line = out.substr(pos, end - pos);
        pos = end + 2;
        if (first) {
            h.start_line = std::string(line);
            first = false;
            continue;
        }
        if (line.empty()) {
            h.ends_with_empty_line = true;
            EXPECT_EQ(pos, out.size()) << "bytes after the end of the head";
            break;
        }
        const auto colon = line.find(": ");
        if (colon == std::string_view::npos) {
            ADD_FAILURE() << "not a field line: " << line;
            continue;
        }
        h.fields.emplace_back(std::string(line.substr(0, colon)),
                              std::string(line.substr(colon + 2)));
    }
    EXPECT_TRUE(h.ends_with_empty_line) << out;
    return h;
}

request_context default_request_context() {
    request_context ctx;
    ctx.client_ip = "10.0.0.7";
    ctx.request_id = "req-1";
    ctx.add_request_id = true;
    ctx.fallback_host = "10.1.2.3:8000";
    return ctx;
}

// The upstream request written for `text`. The result must itself be a request the proxy's
// parser accepts (one framing, a Host), which is what an upstream server will check.
std::string upstream_bytes(std::string_view text,
                           const request_context& ctx = default_request_context()) {
    const parsed_request req(text);
    std::string out;
    if (req.complete()) {
        write_upstream_request(req.head(), ctx, out);
        const parsed_request again(out);
        EXPECT_TRUE(again.complete()) << "the upstream request does not parse";
    }
    return out;
}

written_head upstream_head(std::string_view text,
                           const request_context& ctx = default_request_context()) {
    return split_head(upstream_bytes(text, ctx));
}

std::string downstream_bytes(std::string_view text, const response_context& ctx) {
    const parsed_response res(text);
    std::string out;
    if (res.complete()) {
        write_downstream_response(res.head(), ctx, out);
    }
    return out;
}

written_head downstream_head(std::string_view text, const response_context& ctx) {
    return split_head(downstream_bytes(text, ctx));
}

// --- write_upstream_request ---

TEST(rewrite_upstream_request, writes_exact_head_for_simple_get) {
    EXPECT_EQ(upstream_bytes("GET /path?q=1 HTTP/1.1\r\n"
                             "Host: example.com\r\n"
                             "User-Agent: test/1\r\n"
                             "Accept: */*\r\n"
                             "\r\n"),
              "GET /path?q=1 HTTP/1.1\r\n"
              "Host: example.com\r\n"
              "User-Agent: test/1\r\n"
              "Accept: */*\r\n"
              "X-Forwarded-For: 10.0.0.7\r\n"
              "X-Forwarded-Proto: http\r\n"
              "X-Forwarded-Host: example.com\r\n"
              "Via: 1.1 switchyard\r\n"
              "X-Request-Id: req-1\r\n"
              "\r\n");
}

TEST(rewrite_upstream_request, appends_to_what_the_buffer_holds) {
    const parsed_request req("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n");
    std::string out = "previous";
    write_upstream_request(req.head(), default_request_context(), out);
    EXPECT_TRUE(out.starts_with("previousGET / HTTP/1.1\r\n")) << out;
}

TEST(rewrite_upstream_request, removes_hop_by_hop_fields) {
    const auto h = upstream_head(
        "GET / HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "Connection: keep-alive, X-Session-Hop\r\n"
        "Keep-Alive: timeout=5\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "TE: trailers\r\n"
        "Trailer: X-Checksum\r\n"
        "Upgrade: websocket\r\n"
        "X-Session-Hop: 1\r\n"
        "X-End-To-End: kept\r\n"
        "\r\n");
    for (const auto* name : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
                             "Upgrade", "X-Session-Hop"}) {
        EXPECT_FALSE(h.has(name)) << name;
    }
    EXPECT_EQ(h.value("X-End-To-End"), "kept");
    EXPECT_EQ(h.value("Host"), "example.com");
}

TEST(rewrite_upstream_request, removes_fields_named_by_every_connection_field_ignoring_case) {
    const auto h = upstream_head(
        "GET / HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "connection: x-first\r\n"
        "X-First: 1\r\n"
        "CONNECTION: X-SECOND , x-third\r\n"
        "x-second: 2\r\n"
        "X-Third: 3\r\n"
        "X-Fourth: 4\r\n"
        "\r\n");
    EXPECT_FALSE(h.has("X-First"));
    EXPECT_FALSE(h.has("X-Second"));
    EXPECT_FALSE(h.has("X-Third"));
    EXPECT_FALSE(h.has("Connection"));
    EXPECT_EQ(h.value("X-Fourth"), "4");
}

TEST(rewrite_upstream_request, keeps_host_when_connection_names_it) {
    // HTTP/1.1 requires Host (RFC 9112 §3.2); a client cannot make the proxy drop it.
    const auto h = upstream_head(
        "GET / HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "Connection: host\r\n"
        "\r\n");
    EXPECT_EQ(h.count("Host"), 1U);
    EXPECT_EQ(h.value("Host"), "example.com");
}

TEST(rewrite_upstream_request, keeps_framing_when_connection_names_it) {
    const auto h = upstream_head(
        "POST /upload HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "Connection: content-length, transfer-encoding\r\n"
        "Content-Length: 12\r\n"
        "\r\n");
    EXPECT_EQ(h.value("Content-Length"), "12");
    EXPECT_FALSE(h.has("Transfer-Encoding"));
}

TEST(rewrite_upstream_request, removes_expect) {
    const auto h = upstream_head(
        "PUT /item HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "Expect: 100-continue\r\n"
        "Content-Length: 5\r\n"
        "\r\n");
    EXPECT_FALSE(h.has("Expect"));
    EXPECT_EQ(h.value("Content-Length"), "5");
}

TEST(rewrite_upstream_request, creates_forwarded_for_with_client_ip) {
    const auto h = upstream_head("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    EXPECT_EQ(h.count("X-Forwarded-For"), 1U);
    EXPECT_EQ(h.value("X-Forwarded-For"), "10.0.0.7");
}

TEST(rewrite_upstream_request, appends_client_ip_to_existing_forwarded_for) {
    const auto h = upstream_head(
        "GET / HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "X-Forwarded-For: 203.0.113.1\r\n"
        "\r\n");
    EXPECT_EQ(h.count("X-Forwarded-For"), 1U);
    EXPECT_EQ(h.value("X-Forwarded-For"), "203.0.113.1, 10.0.0.7");
}

TEST(rewrite_upstream_request, joins_several_forwarded_for_fields_in_order) {
    const auto h = upstream_head(
        "GET / HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "X-Forwarded-For: 203.0.113.1\r\n"
        "Accept: */*\r\n"
        "x-forwarded-for: 198.51.100.2, 192.0.2.3\r\n"
        "\r\n");
    EXPECT_EQ(h.count("X-Forwarded-For"), 1U);
    EXPECT_EQ(h.value("X-Forwarded-For"), "203.0.113.1, 198.51.100.2, 192.0.2.3, 10.0.0.7");
}

TEST(rewrite_upstream_request, replaces_client_forwarded_proto_and_host) {
    const auto h = upstream_head(
        "GET / HTTP/1.1\r\n"
        "X-Forwarded-Proto: https\r\n"
        "Host: example.com\r\n"
        "X-Forwarded-Host: spoofed.example\r\n"
        "x-forwarded-proto: gopher\r\n"
        "\r\n");
    EXPECT_EQ(h.count("X-Forwarded-Proto"), 1U);
    EXPECT_EQ(h.value("X-Forwarded-Proto"), "http");
    EXPECT_EQ(h.count("X-Forwarded-Host"), 1U);
    EXPECT_EQ(h.value("X-Forwarded-Host"), "example.com");
}

TEST(rewrite_upstream_request, adds_via_with_version_the_client_spoke) {
    const auto h11 = upstream_head("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    EXPECT_EQ(h11.value("Via"), "1.1 switchyard");

    const auto h10 = upstream_head("GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
    EXPECT_EQ(h10.value("Via"), "1.0 switchyard");
    EXPECT_EQ(h10.start_line, "GET / HTTP/1.1");
}

TEST(rewrite_upstream_request, adds_request_id_only_when_asked) {
    auto ctx = default_request_context();
    ctx.add_request_id = false;
    const auto without = upstream_head("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", ctx);
    EXPECT_FALSE(without.has("X-Request-Id"));

    // The client's own id is an end-to-end field: forwarded as it is, not doubled.
    const auto client_id =
        upstream_head("GET / HTTP/1.1\r\nHost: example.com\r\nX-Request-Id: client-7\r\n\r\n", ctx);
    EXPECT_EQ(client_id.count("X-Request-Id"), 1U);
    EXPECT_EQ(client_id.value("X-Request-Id"), "client-7");

    ctx.add_request_id = true;
    ctx.request_id = "0123456789abcdef";
    const auto with = upstream_head("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", ctx);
    EXPECT_EQ(with.count("X-Request-Id"), 1U);
    EXPECT_EQ(with.value("X-Request-Id"), "0123456789abcdef");
}

TEST(rewrite_upstream_request, normalises_repeated_content_length_to_one_field) {
    const auto h = upstream_head(
        "POST /upload HTTP/1.1\r\n"
        "Content-Length: 5\r\n"
        "Host: example.com\r\n"
        "content-length: 5, 5\r\n"
        "\r\n");
    EXPECT_EQ(h.count("Content-Length"), 1U);
    EXPECT_EQ(h.value("Content-Length"), "5");
    EXPECT_FALSE(h.has("Transfer-Encoding"));
}

TEST(rewrite_upstream_request, writes_zero_content_length_it_received) {
    const auto h =
        upstream_head("POST /empty HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(h.count("Content-Length"), 1U);
    EXPECT_EQ(h.value("Content-Length"), "0");
}

TEST(rewrite_upstream_request, re_emits_chunked_transfer_encoding) {
    const auto h = upstream_head(
        "POST /upload HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "Transfer-Encoding: Chunked\r\n"
        "\r\n");
    EXPECT_EQ(h.count("Transfer-Encoding"), 1U);
    EXPECT_EQ(h.value("Transfer-Encoding"), "chunked");
    EXPECT_FALSE(h.has("Content-Length"));
}

TEST(rewrite_upstream_request, writes_no_framing_for_a_request_without_body) {
    const auto h = upstream_head("DELETE /item/3 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    EXPECT_FALSE(h.has("Content-Length"));
    EXPECT_FALSE(h.has("Transfer-Encoding"));
    EXPECT_EQ(h.start_line, "DELETE /item/3 HTTP/1.1");
}

TEST(rewrite_upstream_request, turns_absolute_form_into_origin_form_with_host_from_authority) {
    const auto h = upstream_head(
        "GET http://api.example:8080/v1/items?page=2 HTTP/1.1\r\n"
        "Host: other.example\r\n"
        "Accept: */*\r\n"
        "\r\n");
    EXPECT_EQ(h.start_line, "GET /v1/items?page=2 HTTP/1.1");
    EXPECT_EQ(h.count("Host"), 1U);
    EXPECT_EQ(h.value("Host"), "api.example:8080");
    EXPECT_EQ(h.value("X-Forwarded-Host"), "api.example:8080");
    EXPECT_EQ(h.value("Accept"), "*/*");
}

TEST(rewrite_upstream_request, sends_slash_for_absolute_form_without_path) {
    const auto bare = upstream_head("GET http://api.example HTTP/1.1\r\nHost: api.example\r\n\r\n");
    EXPECT_EQ(bare.start_line, "GET / HTTP/1.1");
    EXPECT_EQ(bare.value("Host"), "api.example");

    // RFC 9112 §3.2.1: an empty path is sent as "/", also when a query follows.
    const auto query =
        upstream_head("GET http://api.example?page=2 HTTP/1.1\r\nHost: api.example\r\n\r\n");
    EXPECT_EQ(query.start_line, "GET /?page=2 HTTP/1.1");
    EXPECT_EQ(query.value("Host"), "api.example");
}

TEST(rewrite_upstream_request, gives_http10_request_without_host_the_fallback_host) {
    const auto h = upstream_head("GET /old HTTP/1.0\r\nUser-Agent: ancient\r\n\r\n");
    EXPECT_EQ(h.start_line, "GET /old HTTP/1.1");
    EXPECT_EQ(h.count("Host"), 1U);
    EXPECT_EQ(h.value("Host"), "10.1.2.3:8000");
    EXPECT_EQ(h.value("Via"), "1.0 switchyard");
    EXPECT_EQ(h.value("User-Agent"), "ancient");
}

TEST(rewrite_upstream_request, always_writes_http11_request_line) {
    for (const auto* text : {"GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.0\r\nHost: a.example\r\n\r\n",
                             "HEAD /x HTTP/1.1\r\nHost: a.example\r\n\r\n",
                             "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n"}) {
        const auto out = upstream_bytes(text);
        const auto line = out.substr(0, out.find("\r\n"));
        EXPECT_TRUE(line.ends_with(" HTTP/1.1")) << line;
    }
    EXPECT_EQ(upstream_head("OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n").start_line,
              "OPTIONS * HTTP/1.1");
}

// --- write_downstream_response ---

TEST(rewrite_downstream_response, writes_exact_head_for_simple_response) {
    EXPECT_EQ(downstream_bytes("HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 5\r\n"
                               "\r\n",
                               {"req-1", false, false}),
              "HTTP/1.1 200 OK\r\n"
              "Content-Type: text/plain\r\n"
              "Content-Length: 5\r\n"
              "Via: 1.1 switchyard\r\n"
              "X-Request-Id: req-1\r\n"
              "\r\n");
}

TEST(rewrite_downstream_response, keeps_status_and_reason_and_speaks_http11) {
    const auto h = downstream_head("HTTP/1.0 404 Not Here\r\nContent-Length: 0\r\n\r\n", {});
    EXPECT_EQ(h.start_line, "HTTP/1.1 404 Not Here");
    EXPECT_EQ(h.value("Via"), "1.0 switchyard");
}

TEST(rewrite_downstream_response, removes_hop_by_hop_fields) {
    const auto h = downstream_head(
        "HTTP/1.1 200 OK\r\n"
        "Connection: keep-alive, X-Upstream-Hop\r\n"
        "Keep-Alive: timeout=5, max=100\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "TE: trailers\r\n"
        "Trailer: X-Checksum\r\n"
        "Upgrade: h2c\r\n"
        "X-Upstream-Hop: 1\r\n"
        "X-End-To-End: kept\r\n"
        "Content-Length: 2\r\n"
        "\r\n",
        {});
    for (const auto* name : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
                             "Upgrade", "X-Upstream-Hop"}) {
        EXPECT_FALSE(h.has(name)) << name;
    }
    EXPECT_EQ(h.value("X-End-To-End"), "kept");
    EXPECT_EQ(h.value("Content-Length"), "2");
}

TEST(rewrite_downstream_response, keeps_framing_when_connection_names_it) {
    // The proxy relays the body in the framing the upstream declared, so the client needs the
    // field that declares it, whatever the upstream's Connection says.
    const auto length = downstream_head(
        "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\n", {});
    EXPECT_EQ(length.value("Content-Length"), "5");

    const auto chunked = downstream_head(
        "HTTP/1.1 200 OK\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
        {});
    EXPECT_EQ(chunked.value("Transfer-Encoding"), "chunked");
}

TEST(rewrite_downstream_response, drops_content_length_when_body_is_chunked) {
    const auto h = downstream_head(
        "HTTP/1.1 200 OK\r\n"
        "Content-Length: 10\r\n"
        "Transfer-Encoding: chunked\r\n"
        "\r\n",
        {});
    EXPECT_FALSE(h.has("Content-Length"));
    EXPECT_EQ(h.value("Transfer-Encoding"), "chunked");
    EXPECT_FALSE(h.has("Connection"));
}

TEST(rewrite_downstream_response, drops_transfer_encoding_for_http10_client) {
    const auto h = downstream_head(
        "HTTP/1.1 200 OK\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n",
        {"req-1", true, true});
    EXPECT_FALSE(h.has("Transfer-Encoding"));
    EXPECT_FALSE(h.has("Content-Length"));
    EXPECT_EQ(h.value("Content-Type"), "text/plain");
    EXPECT_EQ(h.value("Connection"), "close");
}

TEST(rewrite_downstream_response, keeps_content_length_for_http10_client) {
    const auto h =
        downstream_head("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", {"req-1", false, true});
    EXPECT_EQ(h.value("Content-Length"), "7");
    EXPECT_FALSE(h.has("Transfer-Encoding"));
}

TEST(rewrite_downstream_response, adds_request_id_unless_upstream_sent_one) {
    const auto added =
        downstream_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {"req-9", false, false});
    EXPECT_EQ(added.count("X-Request-Id"), 1U);
    EXPECT_EQ(added.value("X-Request-Id"), "req-9");

    const auto upstream_id = downstream_head(
        "HTTP/1.1 200 OK\r\nx-request-id: from-upstream\r\nContent-Length: 0\r\n\r\n",
        {"req-9", false, false});
    EXPECT_EQ(upstream_id.count("X-Request-Id"), 1U);
    EXPECT_EQ(upstream_id.value("X-Request-Id"), "from-upstream");

    const auto none =
        downstream_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {"", false, false});
    EXPECT_FALSE(none.has("X-Request-Id"));
}

TEST(rewrite_downstream_response, says_connection_close_when_proxy_closes) {
    const auto h11 =
        downstream_head("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                        {"req-1", true, false});
    EXPECT_EQ(h11.count("Connection"), 1U);
    EXPECT_EQ(h11.value("Connection"), "close");

    const auto h10 =
        downstream_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {"req-1", true, true});
    EXPECT_EQ(h10.count("Connection"), 1U);
    EXPECT_EQ(h10.value("Connection"), "close");
}

TEST(rewrite_downstream_response, says_keep_alive_to_http10_client_kept_open) {
    const auto h10 =
        downstream_head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", {"req-1", false, true});
    EXPECT_EQ(h10.count("Connection"), 1U);
    EXPECT_EQ(h10.value("Connection"), "keep-alive");

    // HTTP/1.1 keeps alive by default: no Connection field at all, even if the upstream closes.
    const auto h11 =
        downstream_head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n",
                        {"req-1", false, false});
    EXPECT_FALSE(h11.has("Connection"));
}

// --- Upgrade (RFC 9110 §7.8) ---

const std::vector<std::string> websocket_only{"websocket"};

TEST(rewrite_upgrade, a_protocol_is_allowed_by_its_name_ignoring_case_and_version) {
    EXPECT_TRUE(upgrade_allowed("websocket", websocket_only));
    EXPECT_TRUE(upgrade_allowed("WebSocket", websocket_only));
    EXPECT_TRUE(upgrade_allowed("websocket/13", websocket_only));
    EXPECT_FALSE(upgrade_allowed("websockets", websocket_only));
    EXPECT_FALSE(upgrade_allowed("websocket", {}));
    const std::vector<std::string> with_h2c{"h2c", "websocket"};
    EXPECT_FALSE(upgrade_allowed("h2c", with_h2c));  // HTTP/2 is not offered, listed or not
    EXPECT_FALSE(upgrade_allowed("H2C/2", with_h2c));
}

TEST(rewrite_upgrade, wants_upgrade_needs_connection_upgrade_an_allowed_protocol_and_http11) {
    const parsed_request asks(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: "
        "websocket\r\n\r\n");
    EXPECT_TRUE(wants_upgrade(asks.head(), websocket_only));
    EXPECT_FALSE(wants_upgrade(asks.head(), {}));
    const parsed_request no_connection("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    EXPECT_FALSE(wants_upgrade(no_connection.head(), websocket_only));
    const parsed_request other(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\n");
    EXPECT_FALSE(wants_upgrade(other.head(), websocket_only));
    const parsed_request http10(
        "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    EXPECT_FALSE(wants_upgrade(http10.head(), websocket_only));
}

TEST(rewrite_upgrade, keeps_the_allowed_protocols_and_says_connection_upgrade) {
    request_context ctx = default_request_context();
    ctx.upgrade = websocket_only;
    const auto h = upstream_head(
        "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Hop\r\nX-Hop: 1\r\n"
        "Upgrade: h2c, foo/2, websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
        ctx);
    EXPECT_EQ(h.count("Connection"), 1U);
    EXPECT_EQ(h.value("Connection"), "upgrade");
    EXPECT_EQ(h.count("Upgrade"), 1U);
    EXPECT_EQ(h.value("Upgrade"), "websocket");
    EXPECT_FALSE(h.has("X-Hop"));
    EXPECT_EQ(h.value("Sec-WebSocket-Key"), "k");
}

TEST(rewrite_upgrade, a_101_keeps_upgrade_and_says_connection_upgrade) {
    response_context ctx{"req-1", false, false, true};
    const auto h = downstream_head(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: x\r\n\r\n",
        ctx);
    EXPECT_EQ(h.start_line, "HTTP/1.1 101 Switching Protocols");
    EXPECT_EQ(h.value("Upgrade"), "websocket");
    EXPECT_EQ(h.count("Connection"), 1U);
    EXPECT_EQ(h.value("Connection"), "upgrade");
    EXPECT_EQ(h.value("Sec-WebSocket-Accept"), "x");
    EXPECT_FALSE(h.has("Content-Length"));

    const parsed_response res(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\n\r\n");
    EXPECT_TRUE(switches_to_allowed(res.head(), websocket_only));
    const parsed_response other(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n");
    EXPECT_FALSE(switches_to_allowed(other.head(), std::vector<std::string>{"h2c"}));
    const parsed_response none("HTTP/1.1 101 Switching Protocols\r\n\r\n");
    EXPECT_FALSE(switches_to_allowed(none.head(), websocket_only));
}

TEST(rewrite_downstream_response, keeps_end_to_end_fields_in_order) {
    const auto h = downstream_head(
        "HTTP/1.1 201 Created\r\n"
        "Location: /items/4\r\n"
        "Set-Cookie: a=1\r\n"
        "Set-Cookie: b=2\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        {"", false, false});
    EXPECT_EQ(h.names(), (std::vector<std::string>{"Location", "Set-Cookie", "Set-Cookie",
                                                   "Content-Length", "Via"}));
    EXPECT_EQ(h.fields[1].second, "a=1");
    EXPECT_EQ(h.fields[2].second, "b=2");
}

// --- write_error_response and reason_phrase ---

TEST(rewrite_error_response, writes_exact_bytes) {
    std::string out;
    write_error_response(502, "upstream refused the connection", "req-1", true, false, out);
    EXPECT_EQ(out,
              "HTTP/1.1 502 Bad Gateway\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 32\r\n"
              "X-Request-Id: req-1\r\n"
              "Connection: close\r\n"
              "\r\n"
              "upstream refused the connection\n");
}

TEST(rewrite_error_response, content_length_matches_body) {
    for (const int status : {400, 408, 413, 414, 431, 501, 502, 503, 504}) {
        const std::string reason(static_cast<std::size_t>(status) / 10U, 'r');
        std::string out;
        write_error_response(status, reason, "", false, false, out);

        const parsed_response res(out);
        ASSERT_TRUE(res.complete()) << out;
        EXPECT_EQ(res.head().status, status);
        EXPECT_EQ(res.head().reason, reason_phrase(status));
        ASSERT_EQ(res.head().body, http1::body_kind::length);
        const std::string_view body = std::string_view(out).substr(res.head().head_bytes);
        EXPECT_EQ(res.head().content_length, body.size());
        EXPECT_EQ(body, reason + "\n");

        const auto h = split_head(out.substr(0, res.head().head_bytes));
        EXPECT_FALSE(h.has("X-Request-Id"));
        EXPECT_FALSE(h.has("Connection"));
    }
}

TEST(rewrite_error_response, adds_retry_after_when_given) {
    std::string out;
    write_error_response(503, "down for maintenance", "", false, false, out, 30);
    EXPECT_EQ(out,
              "HTTP/1.1 503 Service Unavailable\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 21\r\n"
              "Retry-After: 30\r\n"
              "\r\n"
              "down for maintenance\n");
}

TEST(rewrite_error_response, appends_to_what_the_buffer_holds) {
    std::string out = "HTTP/1.1 100 Continue\r\n\r\n";
    write_error_response(413, "body too large", "", true, false, out);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Content Too Large\r\n"))
        << out;
    EXPECT_TRUE(out.ends_with("\r\n\r\nbody too large\n")) << out;
}

TEST(rewrite_error_response, keeps_an_http10_client_alive_when_not_closing) {
    std::string out;
    write_error_response(503, "no healthy endpoint", "", false, true, out);
    EXPECT_NE(out.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << out;
    out.clear();
    write_error_response(503, "no healthy endpoint", "", false, false, out);
    EXPECT_EQ(out.find("Connection:"), std::string::npos) << out;
}

TEST(rewrite_reason_phrase, names_the_statuses_the_proxy_produces) {
    EXPECT_EQ(reason_phrase(100), "Continue");
    EXPECT_EQ(reason_phrase(400), "Bad Request");
    EXPECT_EQ(reason_phrase(405), "Method Not Allowed");
    EXPECT_EQ(reason_phrase(408), "Request Timeout");
    EXPECT_EQ(reason_phrase(413), "Content Too Large");
    EXPECT_EQ(reason_phrase(414), "URI Too Long");
    EXPECT_EQ(reason_phrase(417), "Expectation Failed");
    EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
    EXPECT_EQ(reason_phrase(501), "Not Implemented");
    EXPECT_EQ(reason_phrase(502), "Bad Gateway");
    EXPECT_EQ(reason_phrase(503), "Service Unavailable");
    EXPECT_EQ(reason_phrase(504), "Gateway Timeout");
}

TEST(rewrite_reason_phrase, is_empty_for_other_statuses) {
    EXPECT_EQ(reason_phrase(200), "");
    EXPECT_EQ(reason_phrase(299), "");
    EXPECT_EQ(reason_phrase(0), "");
    EXPECT_EQ(reason_phrase(-1), "");
}

}  // namespace
}  // namespace switchyard::proxy
