#include "proxy/http1.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchyard::http1 {

// Readable failure messages.
void PrintTo(parse_error e, std::ostream* os) {
    *os << describe(e);
}
void PrintTo(parse_status s, std::ostream* os) {
    *os << (s == parse_status::complete     ? "complete"
            : s == parse_status::incomplete ? "incomplete"
                                            : "error");
}
void PrintTo(body_kind b, std::ostream* os) {
    *os << (b == body_kind::none      ? "none"
            : b == body_kind::length  ? "length"
            : b == body_kind::chunked ? "chunked"
                                      : "until_close");
}

namespace {

using namespace std::literals;

// A parse with its own copy of the input and its own field storage, so the views in `head`
// stay valid as long as the object (both live in vectors, which keep their data when moved).
struct request_parse {
    std::vector<char> buffer;
    std::vector<header_field> storage;
    request_head head;
    parse_error error = parse_error::none;
    parse_status status = parse_status::error;

    std::string_view field(std::string_view name) const {
        for (const header_field& f : head.fields) {
            if (iequals(f.name, name)) {
                return f.value;
            }
        }
        return "<absent>";
    }
};

request_parse parse_req(std::string_view text, parse_limits limits = {},
                        std::size_t storage_size = 64) {
    request_parse r;
    r.buffer.assign(text.begin(), text.end());
    r.storage.resize(storage_size);
    r.status = parse_request(std::string_view(r.buffer.data(), r.buffer.size()), r.storage, limits,
                             r.head, r.error);
    return r;
}

// The error of a request that must be refused; `complete` or `incomplete` fail the test.
parse_error req_error(std::string_view text, parse_limits limits = {}) {
    request_parse r = parse_req(text, limits);
    EXPECT_EQ(r.status, parse_status::error) << "input: " << testing::PrintToString(text);
    return r.error;
}

struct response_parse {
    std::vector<char> buffer;
    std::vector<header_field> storage;
    response_head head;
    parse_error error = parse_error::none;
    parse_status status = parse_status::error;
};

response_parse parse_resp(std::string_view text, bool head_request = false,
                          parse_limits limits = {}, std::size_t storage_size = 64) {
    response_parse r;
    r.buffer.assign(text.begin(), text.end());
    r.storage.resize(storage_size);
    r.status = parse_response(std::string_view(r.buffer.data(), r.buffer.size()), r.storage, limits,
                              head_request, r.head, r.error);
    return r;
}

parse_error resp_error(std::string_view text, bool head_request = false) {
    response_parse r = parse_resp(text, head_request);
    EXPECT_EQ(r.status, parse_status::error) << "input: " << testing::PrintToString(text);
    return r.error;
}

// "GET / HTTP/1.1" with Host and the given extra field lines.
std::string get_with(std::string_view fields) {
    return "GET / HTTP/1.1\r\nHost: example.com\r\n" + std::string(fields) + "\r\n";
}

std::string post_with(std::string_view fields) {
    return "POST /upload HTTP/1.1\r\nHost: example.com\r\n" + std::string(fields) + "\r\n";
}

// =============================================================================================
// Requests: valid forms

TEST(http1_request, parses_a_simple_get) {
    std::string_view text =
        "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n"
        "Accept: */*\r\n\r\n";
    request_parse r = parse_req(text);
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.error, parse_error::none);
    EXPECT_EQ(r.head.method, "GET");
    EXPECT_EQ(r.head.target, "/index.html?q=1");
    EXPECT_EQ(r.head.version_minor, 1);
    EXPECT_EQ(r.head.host, "example.com");
    ASSERT_EQ(r.head.fields.size(), 3u);
    EXPECT_EQ(r.head.fields[0].name, "Host");
    EXPECT_EQ(r.head.fields[0].value, "example.com");
    EXPECT_EQ(r.head.fields[1].name, "User-Agent");
    EXPECT_EQ(r.head.fields[1].value, "curl/8.0");
    EXPECT_EQ(r.head.fields[2].name, "Accept");
    EXPECT_EQ(r.head.fields[2].value, "*/*");
    EXPECT_EQ(r.head.body, body_kind::none);
    EXPECT_EQ(r.head.content_length, 0u);
    EXPECT_TRUE(r.head.keep_alive);
    EXPECT_FALSE(r.head.expect_continue);
    EXPECT_FALSE(r.head.expect_other);
    EXPECT_EQ(r.head.head_bytes, text.size());
    // Fields are a prefix of the storage and views into the buffer.
    EXPECT_EQ(r.head.fields.data(), r.storage.data());
    EXPECT_EQ(r.head.method.data(), r.buffer.data());
}

TEST(http1_request, head_bytes_stop_before_the_body) {
    std::string text = post_with("Content-Length: 5\r\n") + "helloGET / HTTP/1.1\r\n";
    request_parse r = parse_req(text);
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.body, body_kind::length);
    EXPECT_EQ(r.head.content_length, 5u);
    EXPECT_EQ(text.substr(r.head.head_bytes, 5), "hello");
}

TEST(http1_request, parses_pipelined_requests_one_after_another) {
    std::string first = get_with("");
    std::string second = "HEAD /b HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n";
    std::string text = first + second;
    request_parse r1 = parse_req(text);
    ASSERT_EQ(r1.status, parse_status::complete);
    EXPECT_EQ(r1.head.head_bytes, first.size());
    request_parse r2 = parse_req(std::string_view(text).substr(r1.head.head_bytes));
    ASSERT_EQ(r2.status, parse_status::complete);
    EXPECT_EQ(r2.head.method, "HEAD");
    EXPECT_EQ(r2.head.target, "/b");
    EXPECT_FALSE(r2.head.keep_alive);
    EXPECT_EQ(r2.head.head_bytes, second.size());
}

TEST(http1_request, accepts_absolute_form) {
    for (std::string_view target :
         {"http://example.com/a?b=c"sv, "https://example.com:8443/"sv, "HTTP://EXAMPLE.com/"sv,
          "http://example.com"sv, "http://example.com?x"sv, "http://[::1]:8080/x"sv,
          "http://127.0.0.1/"sv}) {
        std::string text = "GET " + std::string(target) + " HTTP/1.1\r\nHost: example.com\r\n\r\n";
        request_parse r = parse_req(text);
        EXPECT_EQ(r.status, parse_status::complete) << target << ": " << describe(r.error);
        EXPECT_EQ(r.head.target, target);
    }
}

TEST(http1_request, accepts_asterisk_form_for_options_only) {
    request_parse r = parse_req("OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.method, "OPTIONS");
    EXPECT_EQ(r.head.target, "*");
    EXPECT_EQ(req_error("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_target);
    EXPECT_EQ(req_error("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_target);
    EXPECT_EQ(req_error("OPTIONS ** HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_target);
}

TEST(http1_request, accepts_authority_form_for_connect_only) {
    request_parse r =
        parse_req("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.method, "CONNECT");
    EXPECT_EQ(r.head.target, "example.com:443");
    EXPECT_EQ(parse_req("CONNECT [::1]:443 HTTP/1.1\r\nHost: a\r\n\r\n").status,
              parse_status::complete);

    EXPECT_EQ(req_error("GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
              parse_error::bad_target);
    EXPECT_EQ(req_error("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n"),
              parse_error::bad_target);  // port required
    EXPECT_EQ(req_error("CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n"),
              parse_error::bad_target);
    EXPECT_EQ(req_error("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_target);
    EXPECT_EQ(req_error("CONNECT http://a:1/ HTTP/1.1\r\nHost: a\r\n\r\n"),
              parse_error::bad_target);
}

TEST(http1_request, accepts_any_token_method) {
    for (std::string_view method : {"PURGE"sv, "M-SEARCH"sv, "get"sv, "X!#$%&'*+.^_`|~9"sv}) {
        std::string text = std::string(method) + " / HTTP/1.1\r\nHost: a\r\n\r\n";
        request_parse r = parse_req(text);
        EXPECT_EQ(r.status, parse_status::complete) << method;
        EXPECT_EQ(r.head.method, method);
    }
}

TEST(http1_request, keeps_percent_escapes_and_visible_ascii_in_the_target) {
    for (std::string_view target :
         {"/a%20b"sv, "/%zz"sv, "/x?a=[1]&b={2}|3"sv, "/~user/!$&'()*+,;=:@"sv, "/\"<>\\^`"sv}) {
        std::string text = "GET " + std::string(target) + " HTTP/1.1\r\nHost: a\r\n\r\n";
        request_parse r = parse_req(text);
        EXPECT_EQ(r.status, parse_status::complete) << target;
        EXPECT_EQ(r.head.target, target);
    }
}

TEST(http1_request, skips_a_few_leading_empty_lines) {
    request_parse r = parse_req("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.method, "GET");
    EXPECT_EQ(r.head.head_bytes, "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"sv.size());
    EXPECT_EQ(parse_req("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").status,
              parse_status::complete);
    EXPECT_EQ(req_error("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
              parse_error::bad_request_line);
    EXPECT_EQ(req_error("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bare_lf);
    EXPECT_EQ(req_error("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_request_line);
    EXPECT_EQ(parse_req("\r\n\r\n").status, parse_status::incomplete);
    EXPECT_EQ(parse_req("\r").status, parse_status::incomplete);
    EXPECT_EQ(parse_req("").status, parse_status::incomplete);
}

TEST(http1_request, http10_needs_no_host_and_closes_by_default) {
    request_parse r = parse_req("GET / HTTP/1.0\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.version_minor, 0);
    EXPECT_EQ(r.head.host, "");
    EXPECT_FALSE(r.head.keep_alive);

    r = parse_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_TRUE(r.head.keep_alive);
    EXPECT_TRUE(r.head.connection.keep_alive);
    EXPECT_EQ(r.head.host, "a");

    r = parse_req("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_FALSE(r.head.keep_alive);

    EXPECT_EQ(req_error("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"), parse_error::bad_host);
    EXPECT_EQ(req_error("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
              parse_error::duplicate_host);
}

TEST(http1_request, reads_connection_options) {
    request_parse r = parse_req(get_with("Connection: close\r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_TRUE(r.head.connection.close);
    EXPECT_FALSE(r.head.connection.has_other);
    EXPECT_FALSE(r.head.keep_alive);

    r = parse_req(get_with("Connection: Upgrade,  , keep-alive\r\nConnection: X-Foo\r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_FALSE(r.head.connection.close);
    EXPECT_TRUE(r.head.connection.keep_alive);
    EXPECT_TRUE(r.head.connection.has_other);
    EXPECT_TRUE(r.head.keep_alive);

    r = parse_req(get_with("Connection: CLOSE\r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_TRUE(r.head.connection.close);
    EXPECT_FALSE(r.head.keep_alive);

    // Not a list element: "closed" is another option.
    r = parse_req(get_with("Connection: closed\r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_FALSE(r.head.connection.close);
    EXPECT_TRUE(r.head.connection.has_other);
    EXPECT_TRUE(r.head.keep_alive);
}

TEST(http1_request, reads_expectations) {
    request_parse r = parse_req(post_with("Expect: 100-continue\r\nContent-Length: 3\r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_TRUE(r.head.expect_continue);
    EXPECT_FALSE(r.head.expect_other);

    r = parse_req(post_with("Expect: 100-Continue\r\n"));
    EXPECT_TRUE(r.head.expect_continue);

    r = parse_req(post_with("Expect: something-else\r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_FALSE(r.head.expect_continue);
    EXPECT_TRUE(r.head.expect_other);

    r = parse_req(post_with("Expect: 100-continue, foo\r\n"));
    EXPECT_TRUE(r.head.expect_continue);
    EXPECT_TRUE(r.head.expect_other);

    // RFC 9110 §10.1.1: an HTTP/1.0 client cannot receive 100 Continue.
    r = parse_req("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_FALSE(r.head.expect_continue);
}

TEST(http1_request, trims_optional_whitespace_around_values) {
    request_parse r =
        parse_req(get_with("X-A:value\r\nX-B: \t two  words \t \r\nX-C:\r\nX-D:   \r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.field("X-A"), "value");
    EXPECT_EQ(r.field("X-B"), "two  words");
    EXPECT_EQ(r.field("X-C"), "");
    EXPECT_EQ(r.field("X-D"), "");
}

TEST(http1_request, accepts_htab_and_obs_text_inside_values) {
    request_parse r = parse_req(get_with("X-A: a\tb\r\nX-B: caf\xc3\xa9 \xff\r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.field("X-A"), "a\tb");
    EXPECT_EQ(r.field("X-B"), "caf\xc3\xa9 \xff");
}

// =============================================================================================
// Requests: every error

TEST(http1_request, refuses_malformed_request_lines) {
    EXPECT_EQ(req_error("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_request_line);
    EXPECT_EQ(req_error("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_request_line);
    EXPECT_EQ(req_error("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), parse_error::bad_request_line);
    EXPECT_EQ(req_error(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_request_line);
    EXPECT_EQ(req_error("GET /\r\n\r\n"), parse_error::bad_request_line);  // HTTP/0.9
    EXPECT_EQ(req_error("GET / \r\n\r\n"), parse_error::bad_request_line);
    EXPECT_EQ(req_error("GET\r\n\r\n"), parse_error::bad_request_line);
    EXPECT_EQ(req_error("GET / HTTP/1.1\rHost: a\r\n\r\n"), parse_error::bad_request_line);
}

TEST(http1_request, refuses_non_token_methods) {
    EXPECT_EQ(req_error("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_method);
    EXPECT_EQ(req_error("GE\tT / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_method);
    EXPECT_EQ(req_error("G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_method);
    EXPECT_EQ(req_error("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n"sv), parse_error::bad_method);
    EXPECT_EQ(req_error("GET\xc3\xa9 / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_method);
    EXPECT_EQ(req_error("{GET} / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_method);
}

TEST(http1_request, refuses_bad_targets) {
    for (std::string_view target :
         {"/a#frag"sv, "/a\tb"sv, "/a\x7f"sv, "/caf\xc3\xa9"sv, "/\x01"sv, "/a\0b"sv,
          "example.com"sv, "a/b"sv, "ftp://example.com/"sv, "http://"sv, "http:///x"sv,
          "http://user@example.com/"sv, "http://exa mple"sv, "https://:80/"sv,
          "http:/example.com"sv, "*"sv, "*/"sv}) {
        std::string text = "GET " + std::string(target) + " HTTP/1.1\r\nHost: a\r\n\r\n";
        request_parse r = parse_req(text);
        EXPECT_EQ(r.status, parse_status::error) << testing::PrintToString(target);
        // A space inside the target splits the line instead.
        parse_error expected = target.find(' ') != std::string_view::npos ? parse_error::bad_version
                                                                          : parse_error::bad_target;
        EXPECT_EQ(r.error, expected) << testing::PrintToString(target);
    }
}

TEST(http1_request, refuses_other_versions) {
    for (std::string_view version :
         {"HTTP/1.2"sv, "HTTP/2.0"sv, "HTTP/0.9"sv, "http/1.1"sv, "HTTP/1"sv, "HTTP/11"sv,
          "HTTP/1.10"sv, "HTTPS/1.1"sv, "HTTP/1.x"sv, "HTTP/1.1x"sv}) {
        std::string text = "GET / " + std::string(version) + "\r\nHost: a\r\n\r\n";
        parse_error e = req_error(text);
        EXPECT_TRUE(e == parse_error::bad_version || e == parse_error::bad_request_line)
            << version << ": " << describe(e);
    }
    EXPECT_EQ(req_error("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), parse_error::bad_version);
    EXPECT_EQ(req_error("GET / http/1.1\r\nHost: a\r\n\r\n"), parse_error::bad_version);
    EXPECT_EQ(req_error("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), parse_error::bad_version);
    EXPECT_EQ(req_error("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), parse_error::bad_request_line);
}

TEST(http1_request, refuses_bad_field_names) {
    EXPECT_EQ(req_error(get_with("Transfer-Encoding : chunked\r\n")), parse_error::bad_header_name);
    EXPECT_EQ(req_error(get_with("X-A\t: b\r\n")), parse_error::bad_header_name);
    EXPECT_EQ(req_error(get_with(": empty name\r\n")), parse_error::bad_header_name);
    EXPECT_EQ(req_error(get_with("X@A: b\r\n")), parse_error::bad_header_name);
    EXPECT_EQ(req_error(get_with("X-A b: c\r\n")), parse_error::bad_header_name);
    EXPECT_EQ(req_error(get_with("no-colon\r\n")), parse_error::bad_header_name);
    EXPECT_EQ(req_error(get_with("X\0A: b\r\n"sv)), parse_error::bad_header_name);
    EXPECT_EQ(req_error(get_with("caf\xc3\xa9: b\r\n")), parse_error::bad_header_name);
    EXPECT_EQ(req_error(get_with("X-A: b\r\n\rX")), parse_error::bad_header_name);
    // RFC 9112 §2.2: whitespace between the request line and the first field.
    EXPECT_EQ(req_error("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), parse_error::bad_header_name);
}

TEST(http1_request, refuses_control_bytes_in_values) {
    EXPECT_EQ(req_error(get_with("X-A: a\0b\r\n"sv)), parse_error::bad_header_value);
    EXPECT_EQ(req_error(get_with("X-A: a\x01\r\n")), parse_error::bad_header_value);
    EXPECT_EQ(req_error(get_with("X-A: a\x7f\r\n")), parse_error::bad_header_value);
    EXPECT_EQ(req_error(get_with("X-A: a\x1b[0m\r\n")), parse_error::bad_header_value);
    EXPECT_EQ(req_error(get_with("X-A: a\rb\r\n")), parse_error::bad_header_value);
    EXPECT_EQ(req_error(get_with("X-A: a\r\r\n")), parse_error::bad_header_value);
    EXPECT_EQ(req_error(get_with("Transfer-Encoding: \x0b"
                                 "chunked\r\n")),
              parse_error::bad_header_value);
}

// Values are scanned a word at a time; a bad byte must be found at every offset, and every
// allowed byte (HTAB, SP, VCHAR, obs-text) passed over.
TEST(http1_request, checks_every_byte_of_long_values) {
    std::string allowed = "<";  // not starting with OWS, which is trimmed
    for (int c = 0; c < 256; ++c) {
        if (c == '\t' || (c >= 0x20 && c != 0x7F)) {
            allowed += static_cast<char>(c);
        }
    }
    allowed += '>';
    request_parse r = parse_req(get_with("X-All: " + allowed + "\r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.field("X-All"), allowed);

    for (char bad : {'\0', '\x01', '\x08', '\x0b', '\x1f', '\x7f'}) {
        for (std::size_t at = 0; at < 40; ++at) {
            std::string value(40, 'v');
            value[at] = bad;
            std::string text = get_with("X-Long: " + value + "\r\nX-Next: 1\r\n");
            EXPECT_EQ(req_error(text), parse_error::bad_header_value)
                << static_cast<int>(bad) << " at " << at;
        }
    }
}

TEST(http1_request, refuses_obsolete_line_folding) {
    EXPECT_EQ(req_error(get_with("X-A: a\r\n b\r\n")), parse_error::obsolete_line_folding);
    EXPECT_EQ(req_error(get_with("X-A: a\r\n\tb\r\n")), parse_error::obsolete_line_folding);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n")),
              parse_error::obsolete_line_folding);
}

TEST(http1_request, refuses_bare_lf_anywhere) {
    EXPECT_EQ(req_error("GET / HTTP/1.1\nHost: a\r\n\r\n"), parse_error::bare_lf);
    EXPECT_EQ(req_error("GET / HTTP/1.1\r\nHost: a\n\r\n"), parse_error::bare_lf);
    EXPECT_EQ(req_error("GET / HTTP/1.1\r\nHost: a\r\n\n"), parse_error::bare_lf);
    EXPECT_EQ(req_error("GET / HTTP/1.1\nHost: a\n\n"), parse_error::bare_lf);
    EXPECT_EQ(req_error(get_with("X-A: b\n")), parse_error::bare_lf);
    EXPECT_EQ(req_error(get_with("X-A:\n")), parse_error::bare_lf);
}

TEST(http1_request, enforces_host_rules) {
    EXPECT_EQ(req_error("GET / HTTP/1.1\r\n\r\n"), parse_error::missing_host);
    EXPECT_EQ(req_error("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n"), parse_error::missing_host);
    EXPECT_EQ(req_error("GET http://a/ HTTP/1.1\r\n\r\n"), parse_error::missing_host);
    EXPECT_EQ(req_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
              parse_error::duplicate_host);
    EXPECT_EQ(req_error("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
              parse_error::duplicate_host);

    for (std::string_view host :
         {""sv,        "a b"sv,     "a,b"sv,      "a/b"sv,  "a@b"sv, ":80"sv,         "a:b"sv,
          "a:80:80"sv, "a:65536"sv, "a:123456"sv, "[::1"sv, "[]"sv,  "[::1]x"sv,      "[v1.x]"sv,
          "a%zz"sv,    "a%4"sv,     "a\\b"sv,     "a?b"sv,  "a#b"sv, "caf\xc3\xa9"sv, "a\tb"sv}) {
        EXPECT_EQ(req_error("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n"),
                  parse_error::bad_host)
            << testing::PrintToString(host);
    }
    for (std::string_view host : {"example.com"sv, "EXAMPLE.com:8080"sv, "127.0.0.1"sv, "[::1]"sv,
                                  "[2001:db8::7]:443"sv, "xn--bcher-kva.example"sv, "a:"sv,
                                  "a:65535"sv, "my_host.local"sv, "a%41b"sv, "!$&'()*+;=-._~"sv}) {
        request_parse r = parse_req("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n");
        EXPECT_EQ(r.status, parse_status::complete) << host;
        EXPECT_EQ(r.head.host, host);
    }
}

TEST(http1_request, reads_content_length) {
    for (auto [value, expected] : std::vector<std::pair<std::string_view, std::uint64_t>>{
             {"0", 0},
             {"5", 5},
             {"005", 5},
             {"5, 5", 5},
             {"5,5,5", 5},
             {"123456789012345678", 123456789012345678u},
             {"999999999999999999", 999999999999999999u}}) {
        request_parse r = parse_req(post_with("Content-Length: " + std::string(value) + "\r\n"));
        ASSERT_EQ(r.status, parse_status::complete) << value;
        EXPECT_EQ(r.head.body, body_kind::length);
        EXPECT_EQ(r.head.content_length, expected);
    }
    // The same value in two fields is one (RFC 9110 §8.6), also written differently.
    request_parse r = parse_req(post_with("Content-Length: 7\r\nContent-Length: 07\r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.content_length, 7u);
}

TEST(http1_request, refuses_malformed_content_length) {
    for (std::string_view value :
         {""sv, "+5"sv, "-5"sv, "5 5"sv, "0x5"sv, "5a"sv, "five"sv, "5."sv, "5,,5"sv, ",5"sv,
          "5,"sv, "1234567890123456789"sv, "99999999999999999999999"sv, "5;q=1"sv}) {
        EXPECT_EQ(req_error(post_with("Content-Length: " + std::string(value) + "\r\n")),
                  parse_error::bad_content_length)
            << testing::PrintToString(value);
    }
}

TEST(http1_request, refuses_conflicting_content_lengths) {
    EXPECT_EQ(req_error(post_with("Content-Length: 5, 6\r\n")),
              parse_error::conflicting_content_length);
    EXPECT_EQ(req_error(post_with("Content-Length: 5\r\nContent-Length: 6\r\n")),
              parse_error::conflicting_content_length);
    EXPECT_EQ(req_error(post_with("Content-Length: 5\r\nX: y\r\ncontent-length: 50\r\n")),
              parse_error::conflicting_content_length);
}

TEST(http1_request, reads_chunked_transfer_encoding) {
    for (std::string_view fields :
         {"Transfer-Encoding: chunked\r\n"sv, "Transfer-Encoding: Chunked\r\n"sv,
          "transfer-encoding:CHUNKED \r\n"sv, "Transfer-Encoding: , chunked,\r\n"sv,
          "Transfer-Encoding: chunked\r\nTransfer-Encoding: \r\n"sv}) {
        request_parse r = parse_req(post_with(fields));
        ASSERT_EQ(r.status, parse_status::complete) << fields << describe(r.error);
        EXPECT_EQ(r.head.body, body_kind::chunked);
        EXPECT_EQ(r.head.content_length, 0u);
    }
}

TEST(http1_request, refuses_ambiguous_or_unsupported_transfer_encoding) {
    EXPECT_EQ(req_error(post_with("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n")),
              parse_error::content_length_and_transfer_encoding);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n")),
              parse_error::content_length_and_transfer_encoding);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding: chunked, identity\r\n")),
              parse_error::chunked_not_final);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding: gzip\r\n")), parse_error::chunked_not_final);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding: \r\n")), parse_error::chunked_not_final);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding: xchunked\r\n")),
              parse_error::chunked_not_final);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding: chunked;q=1\r\n")),
              parse_error::chunked_not_final);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n")),
              parse_error::chunked_not_final);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding: gzip, chunked\r\n")),
              parse_error::unsupported_transfer_coding);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding: chunked, chunked\r\n")),
              parse_error::unsupported_transfer_coding);
    EXPECT_EQ(req_error(post_with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")),
              parse_error::unsupported_transfer_coding);
    EXPECT_EQ(req_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
              parse_error::transfer_encoding_http10);
    EXPECT_EQ(status_for(parse_error::unsupported_transfer_coding), 501);
}

// The classic request-smuggling inputs: each must be refused, never framed one way or another.
TEST(http1_request, refuses_smuggling_classics) {
    struct smuggle {
        std::string_view fields;
        parse_error expected;
    };
    for (const smuggle& s : std::vector<smuggle>{
             {"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
              parse_error::content_length_and_transfer_encoding},
             {"Transfer-Encoding: chunked, identity\r\n", parse_error::chunked_not_final},
             {"Transfer-Encoding : chunked\r\n", parse_error::bad_header_name},
             {"Transfer-Encoding\t: chunked\r\n", parse_error::bad_header_name},
             {" Transfer-Encoding: chunked\r\n", parse_error::obsolete_line_folding},
             {"X: y\r\nTransfer-Encoding:\r\n chunked\r\n", parse_error::obsolete_line_folding},
             {"Transfer-Encoding: \x0b"
              "chunked\r\n",
              parse_error::bad_header_value},
             {"Transfer-Encoding: chunked\n", parse_error::bare_lf},
             {"Transfer-Encoding: chu\0nked\r\n"sv, parse_error::bad_header_value},
             {"Content-Length: +5\r\n", parse_error::bad_content_length},
             {"Content-Length: 5, 6\r\n", parse_error::conflicting_content_length},
             {"Content-Length: 5\r\nContent-Length: 6\r\n",
              parse_error::conflicting_content_length},
             {"Content-Length: 0x5\r\n", parse_error::bad_content_length},
             {"Content-Length: 5\x00"
              "0\r\n"sv,
              parse_error::bad_header_value},
             {"Content-Length : 5\r\n", parse_error::bad_header_name},
             {"Content-Length: 5\rX: y\r\n", parse_error::bad_header_value},
         }) {
        EXPECT_EQ(req_error(post_with(s.fields)), s.expected) << testing::PrintToString(s.fields);
    }
    // Two equal Content-Lengths are one.
    request_parse r = parse_req(post_with("Content-Length: 5\r\nContent-Length: 5\r\n"));
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.content_length, 5u);
    // A whole request with LF line ends.
    EXPECT_EQ(req_error("POST / HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc"),
              parse_error::bare_lf);
}

// =============================================================================================
// Requests: limits

TEST(http1_request, limits_the_number_of_fields) {
    parse_limits limits;
    limits.max_headers = 3;
    std::string three = get_with("A: 1\r\nB: 2\r\n");
    request_parse r = parse_req(three, limits);
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.fields.size(), 3u);
    EXPECT_EQ(req_error(get_with("A: 1\r\nB: 2\r\nC: 3\r\n"), limits),
              parse_error::too_many_headers);
    // Reported as soon as the fourth field starts.
    r = parse_req("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC", limits);
    EXPECT_EQ(r.status, parse_status::error);
    EXPECT_EQ(r.error, parse_error::too_many_headers);
    EXPECT_EQ(status_for(parse_error::too_many_headers), 431);

    // The storage bounds the count too.
    r = parse_req(three, parse_limits{}, 2);
    EXPECT_EQ(r.status, parse_status::error);
    EXPECT_EQ(r.error, parse_error::too_many_headers);
    r = parse_req(three, parse_limits{}, 3);
    EXPECT_EQ(r.status, parse_status::complete);
    r = parse_req("GET / HTTP/1.0\r\n\r\n", parse_limits{}, 0);
    EXPECT_EQ(r.status, parse_status::complete);
}

TEST(http1_request, limits_the_head_size) {
    std::string text = get_with("X-Pad: " + std::string(100, 'p') + "\r\n");
    parse_limits limits;
    limits.max_head_bytes = text.size();
    request_parse r = parse_req(text + "body bytes after the head", limits);
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.head_bytes, text.size());

    limits.max_head_bytes = text.size() - 1;
    EXPECT_EQ(req_error(text, limits), parse_error::head_too_large);
    limits.max_head_bytes = text.size() - 2;  // the final CRLF lies across the limit
    EXPECT_EQ(req_error(text, limits), parse_error::head_too_large);
    EXPECT_EQ(status_for(parse_error::head_too_large), 431);

    // An incomplete head is refused as soon as it fills the limit: it can no longer end
    // within it.
    limits.max_head_bytes = 64;
    std::string endless = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(200, 'p');
    EXPECT_EQ(parse_req(endless.substr(0, 63), limits).status, parse_status::incomplete);
    EXPECT_EQ(req_error(endless.substr(0, 64), limits), parse_error::head_too_large);
    EXPECT_EQ(req_error(endless.substr(0, 65), limits), parse_error::head_too_large);
    EXPECT_EQ(req_error(endless, limits), parse_error::head_too_large);
    EXPECT_EQ(req_error(std::string(100, '\r'), limits), parse_error::bad_request_line);
}

// RFC 9112 §3: an over-long method is 501, an over-long request-target 414; what decides is
// where the request line stands when the head reaches the limit.
TEST(http1_request, answers_an_over_long_request_line_by_where_it_stops) {
    parse_limits limits;
    limits.max_head_bytes = 64;
    EXPECT_EQ(parse_req(std::string(63, 'G'), limits).status, parse_status::incomplete);
    EXPECT_EQ(req_error(std::string(64, 'G'), limits), parse_error::method_too_long);
    EXPECT_EQ(req_error(std::string(100, 'G') + " / HTTP/1.1\r\n\r\n", limits),
              parse_error::method_too_long);
    EXPECT_EQ(req_error("\r\n" + std::string(100, 'G'), limits), parse_error::method_too_long);
    EXPECT_EQ(status_for(parse_error::method_too_long), 501);
    EXPECT_EQ(describe(parse_error::method_too_long), "method too long");

    // Once the SP after the method is in, the rest of the line is the target's.
    EXPECT_EQ(req_error(std::string(63, 'G') + " /", limits), parse_error::target_too_long);
    EXPECT_EQ(req_error("GET /" + std::string(100, 'a'), limits), parse_error::target_too_long);
    EXPECT_EQ(req_error("GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", limits),
              parse_error::target_too_long);
    const std::string line_to_limit = "GET /" + std::string(49, 'a') + " HTTP/1.1\r";
    ASSERT_EQ(line_to_limit.size(), 64u);
    EXPECT_EQ(req_error(line_to_limit + "\n", limits), parse_error::target_too_long);
    EXPECT_EQ(status_for(parse_error::target_too_long), 414);
    EXPECT_EQ(describe(parse_error::target_too_long), "request target too long");

    // A complete request line with fields past the limit stays 431.
    EXPECT_EQ(req_error("GET /" + std::string(30, 'a') +
                            " HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(40, 'p') + "\r\n\r\n",
                        limits),
              parse_error::head_too_large);
    // Malformed bytes before the limit are still 400, however long the line.
    EXPECT_EQ(req_error("G(T /" + std::string(100, 'a'), limits), parse_error::bad_method);
    EXPECT_EQ(req_error("GET /\x01" + std::string(100, 'a'), limits), parse_error::bad_target);
    // Under the default limit a long target is fine.
    request_parse r = parse_req("GET /" + std::string(60000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(r.status, parse_status::complete) << describe(r.error);
}

// =============================================================================================
// Requests: incremental parsing

// Every proper prefix of a valid head is incomplete; the whole is complete, with the same result.
TEST(http1_request, every_prefix_of_a_valid_head_is_incomplete) {
    for (std::string_view text : {
             "GET /a?b HTTP/1.1\r\nHost: example.com:80\r\nAccept: */*\r\n\r\n"sv,
             "\r\nPOST http://x.example/p HTTP/1.1\r\nHost: x.example\r\nContent-Length: 12\r\n"
             "Expect: 100-continue\r\nX-Empty:\r\nX-Ws: \t v \t\r\n\r\n"sv,
             "PUT /u HTTP/1.1\r\nhost: [::1]:8080\r\ntransfer-encoding: chunked\r\n"
             "Connection: keep-alive, x-a\r\n\r\n"sv,
             "OPTIONS * HTTP/1.0\r\n\r\n"sv,
             "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"sv,
         }) {
        request_parse whole = parse_req(text);
        ASSERT_EQ(whole.status, parse_status::complete) << text << describe(whole.error);
        EXPECT_EQ(whole.head.head_bytes, text.size());
        for (std::size_t n = 0; n < text.size(); ++n) {
            request_parse r = parse_req(text.substr(0, n));
            ASSERT_EQ(r.status, parse_status::incomplete)
                << testing::PrintToString(text.substr(0, n)) << ": " << describe(r.error);
        }
    }
}

// Once a prefix is complete or refused, every longer input gives the same answer: the parser
// never decides on bytes it has not seen. Checked on seeded random mutations of valid heads.
TEST(http1_request, answers_do_not_change_with_more_bytes) {
    const std::string base =
        "POST /p?q=1 HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\nX: y\r\n\r\nhello";
    const std::string alphabet = "\r\n \t:,;\0\x01\x7f\x80/#*0159aAzZ-HTP."s;
    std::mt19937 rng(12345);
    std::size_t complete = 0;
    for (int round = 0; round < 400; ++round) {
        std::string text = base;
        int mutations = 1 + static_cast<int>(rng() % 3);
        for (int m = 0; m < mutations; ++m) {
            std::size_t at = rng() % text.size();
            char c = alphabet[rng() % alphabet.size()];
            switch (rng() % 3) {
                case 0:
                    text[at] = c;
                    break;
                case 1:
                    text.insert(at, 1, c);
                    break;
                default:
                    text.erase(at, 1);
                    break;
            }
        }
        request_parse previous = parse_req(std::string_view(text).substr(0, 0));
        for (std::size_t n = 1; n <= text.size(); ++n) {
            request_parse r = parse_req(std::string_view(text).substr(0, n));
            if (previous.status != parse_status::incomplete) {
                ASSERT_EQ(r.status, previous.status) << testing::PrintToString(text) << " " << n;
                ASSERT_EQ(r.error, previous.error) << testing::PrintToString(text) << " " << n;
                ASSERT_EQ(r.head.head_bytes, previous.head.head_bytes);
            }
            if (r.status == parse_status::complete) {
                ASSERT_LE(r.head.head_bytes, n);
                for (const header_field& f : r.head.fields) {
                    ASSERT_GE(f.name.data(), r.buffer.data());
                    ASSERT_LE(f.value.data() + f.value.size(), r.buffer.data() + n);
                }
            }
            previous = std::move(r);
        }
        complete += previous.status == parse_status::complete;
    }
    EXPECT_GT(complete, 0u);  // some mutations leave a valid request
}

// =============================================================================================
// describe / status_for

TEST(http1_request, every_error_has_a_status_and_a_short_description) {
    const auto last = static_cast<int>(parse_error::bad_status_line);
    std::vector<std::string_view> seen;
    for (int i = 1; i <= last; ++i) {
        auto e = static_cast<parse_error>(i);
        std::string_view text = describe(e);
        EXPECT_FALSE(text.empty());
        EXPECT_LT(text.size(), 60u);
        EXPECT_EQ(std::count(seen.begin(), seen.end(), text), 0) << text;
        seen.push_back(text);
        int status = status_for(e);
        EXPECT_TRUE(status == 400 || status == 414 || status == 431 || status == 501) << text;
    }
    EXPECT_EQ(describe(parse_error::content_length_and_transfer_encoding),
              "both Content-Length and Transfer-Encoding");
    EXPECT_EQ(status_for(parse_error::bad_target), 400);
    EXPECT_EQ(status_for(parse_error::bad_chunk_size), 400);
}

TEST(http1_request, iequals_and_list_tokens) {
    EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
    EXPECT_FALSE(iequals("Content-Length", "Content-Lengt"));
    EXPECT_FALSE(iequals("a", "b"));
    EXPECT_FALSE(iequals("@", "`"));  // differ in the case bit, but are not letters
    EXPECT_TRUE(iequals("", ""));
    std::vector<std::string_view> items;
    for_each_list_token(" a ,, b\t,\tc d ,", [&items](std::string_view t) { items.push_back(t); });
    EXPECT_EQ(items, (std::vector<std::string_view>{"a", "b", "c d"}));
}

// =============================================================================================
// Responses

TEST(http1_response, parses_a_status_line_and_fields) {
    std::string_view text =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    response_parse r = parse_resp(text);
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.status, 200);
    EXPECT_EQ(r.head.reason, "OK");
    EXPECT_EQ(r.head.version_minor, 1);
    ASSERT_EQ(r.head.fields.size(), 2u);
    EXPECT_EQ(r.head.fields[1].name, "Content-Length");
    EXPECT_EQ(r.head.body, body_kind::length);
    EXPECT_EQ(r.head.content_length, 5u);
    EXPECT_TRUE(r.head.keep_alive);
    EXPECT_EQ(r.head.head_bytes, text.size() - 5);
}

TEST(http1_response, accepts_odd_but_valid_reasons) {
    response_parse r = parse_resp("HTTP/1.1 404 Not  Found \t\xe9\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.reason, "Not  Found \t\xe9");
    r = parse_resp("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.reason, "");
    r = parse_resp("HTTP/1.0 599\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.head.status, 599);
    EXPECT_EQ(r.head.reason, "");
    EXPECT_EQ(r.head.version_minor, 0);
}

TEST(http1_response, refuses_bad_status_lines) {
    for (std::string_view line :
         {"HTTP/1.1 099 X"sv, "HTTP/1.1 600 X"sv, "HTTP/1.1 20 X"sv, "HTTP/1.1 2000 X"sv,
          "HTTP/1.1 20x X"sv, "HTTP/1.1  200 X"sv, "HTTP/2 200 X"sv, "HTTP/1.2 200 X"sv,
          "http/1.1 200 X"sv, "ICY 200 OK"sv, "HTTP/1.1 200 O\x01K"sv, "HTTP/1.1 200 \0"sv,
          "HTTP/1.1 200\tOK"sv, "HTTP/1.1\t200 OK"sv, " HTTP/1.1 200 OK"sv, "HTTP/1.10 200 X"sv,
          "HTTP/1.1 200 O\rK"sv, "HTTP/1.1 -20 X"sv}) {
        std::string text = std::string(line) + "\r\nContent-Length: 0\r\n\r\n";
        EXPECT_EQ(resp_error(text), parse_error::bad_status_line) << testing::PrintToString(line);
    }
    EXPECT_EQ(resp_error("\r\nHTTP/1.1 200 OK\r\n\r\n"), parse_error::bad_status_line);
    EXPECT_EQ(resp_error("HTTP/1.1 200 OK\n\r\n"), parse_error::bare_lf);
}

TEST(http1_response, refuses_malformed_fields_like_requests) {
    EXPECT_EQ(resp_error("HTTP/1.1 200 OK\r\nX : y\r\n\r\n"), parse_error::bad_header_name);
    EXPECT_EQ(resp_error("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"sv), parse_error::bad_header_value);
    EXPECT_EQ(resp_error("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"),
              parse_error::obsolete_line_folding);
    EXPECT_EQ(resp_error("HTTP/1.1 200 OK\r\nX: a\n\r\n"), parse_error::bare_lf);
}

TEST(http1_response, decides_body_length_per_rfc9112_6_3) {
    struct body_case {
        std::string_view text;
        bool head_request;
        body_kind body;
        std::uint64_t length;
        bool keep_alive;
    };
    for (const body_case& c : std::vector<body_case>{
             {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, body_kind::none, 0, true},
             {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, body_kind::none, 0,
              true},
             {"HTTP/1.1 100 Continue\r\n\r\n", false, body_kind::none, 0, true},
             {"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false, body_kind::none, 0, true},
             {"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", false, body_kind::none, 0,
              true},
             {"HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n", false, body_kind::none, 0,
              true},
             {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, body_kind::chunked, 0,
              true},
             {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false,
              body_kind::chunked, 0, true},
             {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false,
              body_kind::chunked, 0, true},
             {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, body_kind::until_close,
              0, false},
             {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false,
              body_kind::until_close, 0, false},
             {"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", false, body_kind::length, 42, true},
             {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, body_kind::length, 0, true},
             {"HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\n", false, body_kind::length, 4, true},
             {"HTTP/1.1 200 OK\r\n\r\n", false, body_kind::until_close, 0, false},
             {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, body_kind::length, 1, false},
             {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", false,
              body_kind::length, 1, true},
             {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n", false,
              body_kind::length, 1, false},
             {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false, body_kind::until_close, 0,
              false},
         }) {
        response_parse r = parse_resp(c.text, c.head_request);
        ASSERT_EQ(r.status, parse_status::complete) << c.text << describe(r.error);
        EXPECT_EQ(r.head.body, c.body) << c.text;
        EXPECT_EQ(r.head.content_length, c.length) << c.text;
        EXPECT_EQ(r.head.keep_alive, c.keep_alive) << c.text;
    }
}

TEST(http1_response, refuses_broken_framing) {
    EXPECT_EQ(resp_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
              parse_error::bad_content_length);
    EXPECT_EQ(resp_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
              parse_error::conflicting_content_length);
    EXPECT_EQ(resp_error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
              parse_error::transfer_encoding_http10);
    EXPECT_EQ(resp_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
              parse_error::unsupported_transfer_coding);
    // A quoted parameter could hide a comma from one parser and not another.
    EXPECT_EQ(resp_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: x;p=\"a,chunked\"\r\n\r\n"),
              parse_error::unsupported_transfer_coding);
}

TEST(http1_response, reads_connection_options) {
    response_parse r = parse_resp(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ws\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_TRUE(r.head.connection.has_other);
    EXPECT_FALSE(r.head.connection.close);
    EXPECT_EQ(r.head.body, body_kind::none);
}

TEST(http1_response, every_prefix_of_a_valid_head_is_incomplete) {
    for (std::string_view text : {
             "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\n"sv,
             "HTTP/1.0 304\r\n\r\n"sv,
             "HTTP/1.1 500 \r\nTransfer-Encoding: chunked\r\n\r\n"sv,
         }) {
        ASSERT_EQ(parse_resp(text).status, parse_status::complete) << text;
        for (std::size_t n = 0; n < text.size(); ++n) {
            response_parse r = parse_resp(text.substr(0, n));
            ASSERT_EQ(r.status, parse_status::incomplete)
                << testing::PrintToString(text.substr(0, n)) << ": " << describe(r.error);
        }
    }
}

TEST(http1_response, applies_the_limits) {
    parse_limits limits;
    limits.max_headers = 1;
    response_parse r = parse_resp("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", false, limits);
    EXPECT_EQ(r.status, parse_status::error);
    EXPECT_EQ(r.error, parse_error::too_many_headers);

    limits = parse_limits{};
    limits.max_head_bytes = 32;
    r = parse_resp("HTTP/1.1 200 OK\r\nX-Pad: " + std::string(64, 'p'), false, limits);
    EXPECT_EQ(r.status, parse_status::error);
    EXPECT_EQ(r.error, parse_error::head_too_large);
}

// =============================================================================================
// chunked_parser

struct chunk_run {
    std::string output;  // decode: payload; pass-through: the bytes consumed
    std::size_t consumed = 0;
    bool done = false;
    parse_error error = parse_error::none;
};

// Feeds `body` in pieces of `piece` bytes (stopping at done or error) and gathers the output.
chunk_run run_chunked(std::string_view body, bool decode, std::size_t piece,
                      std::size_t max_trailer_bytes = 64 * 1024) {
    chunked_parser parser(max_trailer_bytes);
    std::string buffer(body);
    chunk_run run;
    std::size_t offset = 0;
    while (offset < buffer.size()) {
        std::size_t length = std::min(piece, buffer.size() - offset);
        chunked_parser::result r =
            parser.feed(std::span<char>(buffer.data() + offset, length), decode);
        EXPECT_LE(r.consumed, length);
        if (decode) {
            EXPECT_LE(r.data, r.consumed);
            run.output.append(buffer.data() + offset, r.data);
        } else {
            EXPECT_EQ(r.data, 0u);
            run.output.append(buffer.data() + offset, r.consumed);
        }
        run.consumed += r.consumed;
        if (r.error != parse_error::none) {
            run.error = r.error;
            EXPECT_FALSE(r.done);
            return run;
        }
        if (r.done) {
            run.done = true;
            EXPECT_TRUE(parser.done());
            return run;
        }
        EXPECT_EQ(r.consumed, length) << "consumed less without done or error";
        offset += length;
    }
    return run;
}

parse_error chunk_error(std::string_view body, std::size_t max_trailer_bytes = 64 * 1024) {
    chunk_run whole = run_chunked(body, true, body.size() + 1, max_trailer_bytes);
    chunk_run bytewise = run_chunked(body, false, 1, max_trailer_bytes);
    EXPECT_FALSE(whole.done) << testing::PrintToString(body);
    EXPECT_EQ(whole.error, bytewise.error) << testing::PrintToString(body);
    EXPECT_EQ(whole.consumed, bytewise.consumed) << testing::PrintToString(body);
    return whole.error;
}

TEST(chunked_parser, decodes_a_body) {
    std::string body = "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    chunked_parser parser;
    chunked_parser::result r = parser.feed(std::span<char>(body), true);
    EXPECT_TRUE(r.done);
    EXPECT_TRUE(parser.done());
    EXPECT_EQ(r.error, parse_error::none);
    EXPECT_EQ(r.consumed, body.size());
    EXPECT_EQ(r.data, 12u);
    EXPECT_EQ(body.substr(0, r.data), "hello, world");
    EXPECT_EQ(parser.payload_bytes(), 12u);
}

TEST(chunked_parser, passes_a_body_through_untouched) {
    const std::string original = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-T: v\r\n\r\n";
    std::string body = original;
    chunked_parser parser;
    chunked_parser::result r = parser.feed(std::span<char>(body), false);
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.consumed, body.size());
    EXPECT_EQ(r.data, 0u);
    EXPECT_EQ(body, original);
    EXPECT_EQ(parser.payload_bytes(), 12u);
}

TEST(chunked_parser, leaves_the_next_message_unconsumed) {
    std::string body = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    chunked_parser parser;
    chunked_parser::result r = parser.feed(std::span<char>(body), false);
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.consumed, 13u);
    EXPECT_EQ(body.substr(r.consumed), "GET / HTTP/1.1\r\n");
    // Once done, nothing more is taken.
    r = parser.feed(std::span<char>(body).subspan(13), false);
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_EQ(r.error, parse_error::none);

    std::string decoded = "3\r\nabc\r\n0\r\n\r\nrest";
    chunked_parser decoder;
    r = decoder.feed(std::span<char>(decoded), true);
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.consumed, 13u);
    EXPECT_EQ(decoded.substr(0, r.data), "abc");
    EXPECT_EQ(decoded.substr(r.consumed), "rest");
}

TEST(chunked_parser, accepts_extensions_whitespace_case_and_trailers) {
    std::string_view body =
        "A ; name=value;flag\r\n0123456789\r\n"
        "00000000000000f\t;q=\"a b\"\r\nfifteen bytes!!\r\n"
        "1;n=\"\\\"\xe9\"\r\nx\r\n"
        "000\r\nExpires: never\r\nX-Checksum:  abc \t\r\nX-Empty:\r\n\r\n";
    chunk_run run = run_chunked(body, true, body.size());
    EXPECT_TRUE(run.done) << describe(run.error);
    EXPECT_EQ(run.output, "0123456789fifteen bytes!!x");
    EXPECT_EQ(run.consumed, body.size());
}

TEST(chunked_parser, byte_by_byte_equals_all_at_once_in_both_modes) {
    std::string body;
    std::string payload;
    for (int i = 1; i <= 40; i += 3) {
        std::string chunk(static_cast<std::size_t>(i), static_cast<char>('a' + i % 26));
        char size[16];
        std::snprintf(size, sizeof size, "%x", i);
        body += std::string(size) + (i % 2 ? ";e=1" : "") + "\r\n" + chunk + "\r\n";
        payload += chunk;
    }
    body += "0\r\nT: v\r\n\r\n";
    for (bool decode : {true, false}) {
        chunk_run whole = run_chunked(body, decode, body.size());
        ASSERT_TRUE(whole.done);
        EXPECT_EQ(whole.consumed, body.size());
        EXPECT_EQ(whole.output, decode ? payload : body);
        for (std::size_t piece : {1u, 2u, 3u, 7u, 64u}) {
            chunk_run run = run_chunked(body, decode, piece);
            EXPECT_TRUE(run.done) << piece;
            EXPECT_EQ(run.consumed, whole.consumed) << piece;
            EXPECT_EQ(run.output, whole.output) << piece;
        }
    }
}

TEST(chunked_parser, every_split_in_two_gives_the_same_payload) {
    const std::string body = "4;x\r\nwiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n\r\n";
    for (std::size_t split = 0; split <= body.size(); ++split) {
        std::string buffer = body;
        chunked_parser parser;
        std::span<char> all(buffer);
        chunked_parser::result a = parser.feed(all.first(split), true);
        ASSERT_EQ(a.consumed, split);
        std::string out(buffer.data(), a.data);
        chunked_parser::result b = parser.feed(all.subspan(split), true);
        out.append(buffer.data() + split, b.data);
        EXPECT_TRUE(b.done || (split == body.size() && a.done));
        EXPECT_EQ(out, "wikipedia in \r\n\r\nchunks.") << split;
    }
}

// Seeded random mutations of a valid body: however the bytes are split, the parser gives the
// same answer (error, where, and payload).
TEST(chunked_parser, mutated_bodies_give_the_same_answer_in_any_pieces) {
    const std::string base = "4;a=b\r\nwiki\r\n5 ; c = \"d\"\r\npedia\r\n0\r\nT: v\r\n\r\nnext";
    const std::string alphabet = "\r\n \t;:=\"\\[0159aAfFgG\0\x7f\x80"s;
    std::mt19937 rng(4242);
    for (int round = 0; round < 2000; ++round) {
        std::string body = base;
        std::size_t at = rng() % body.size();
        char c = alphabet[rng() % alphabet.size()];
        switch (rng() % 3) {
            case 0:
                body[at] = c;
                break;
            case 1:
                body.insert(at, 1, c);
                break;
            default:
                body.erase(at, 1);
                break;
        }
        for (bool decode : {true, false}) {
            chunk_run whole = run_chunked(body, decode, body.size());
            for (std::size_t piece : {1u, 3u}) {
                chunk_run run = run_chunked(body, decode, piece);
                ASSERT_EQ(run.error, whole.error) << testing::PrintToString(body);
                ASSERT_EQ(run.done, whole.done) << testing::PrintToString(body);
                ASSERT_EQ(run.consumed, whole.consumed) << testing::PrintToString(body);
                ASSERT_EQ(run.output, whole.output) << testing::PrintToString(body);
            }
        }
    }
}

TEST(chunked_parser, refuses_bad_chunk_sizes) {
    EXPECT_EQ(chunk_error("\r\nabc"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("x\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("-1\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("+1\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("0x5\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error(" 5\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error(";5\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("5 5\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("5\n"), parse_error::bad_chunk_size);  // bare LF
    EXPECT_EQ(chunk_error("5\rx"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("5;a\nhello"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("5;a\0b\r\n"sv), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("5;a\x7f\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("5 x\r\n"), parse_error::bad_chunk_size);
    // More than 16 digits, even as leading zeros, and sizes beyond 2^63 - 1.
    EXPECT_EQ(chunk_error("00000000000000001\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("10000000000000000\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("8000000000000000\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("ffffffffffffffff\r\n"), parse_error::bad_chunk_size);
    // The size line is bounded, extensions included.
    EXPECT_EQ(chunk_error("5;" + std::string(5000, 'e') + "\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(chunk_error("5" + std::string(5000, ' ') + "\r\n"), parse_error::bad_chunk_size);
    EXPECT_EQ(status_for(parse_error::bad_chunk_size), 400);
}

// RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ).
TEST(chunked_parser, accepts_extensions_that_follow_the_grammar) {
    for (std::string_view line : {
             "5;name"sv,
             "5;name=value"sv,
             "5;name=\"quoted value\""sv,
             "5 ; name = value"sv,
             "5\t;\tname\t=\t\"v\""sv,
             "5;a;b=c;d=\"e\\\"f\";g"sv,
             "5;a=\"\";b=\"\x80\\\x81\""sv,
             "5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~"sv,
         }) {
        const std::string body = std::string(line) + "\r\nhello\r\n0;last=1\r\n\r\n";
        for (bool decode : {true, false}) {
            for (std::size_t piece : {body.size(), std::size_t{1}, std::size_t{2}}) {
                chunk_run run = run_chunked(body, decode, piece);
                EXPECT_TRUE(run.done)
                    << testing::PrintToString(line) << " " << piece << " " << describe(run.error);
                EXPECT_EQ(run.consumed, body.size());
                EXPECT_EQ(run.output, decode ? "hello" : body);
            }
        }
    }
}

// Each is refused at the byte the grammar cannot take, the same whether the line comes at once
// or one byte at a time; `at` is how many bytes were taken before it.
TEST(chunked_parser, refuses_extensions_outside_the_grammar) {
    struct bad_line {
        std::string_view text;
        std::size_t at;
    };
    for (const bad_line& bad : {
             bad_line{"5;\r\n", 2},            // ';' without a name
             bad_line{"5; \r\n", 3},           // ... also after BWS
             bad_line{"5;;a\r\n", 2},          // empty extension
             bad_line{"5;a;\r\n", 4},          // a trailing ';'
             bad_line{"5;bad[=x\r\n", 5},      // a name byte outside tchar
             bad_line{"5;=x\r\n", 2},          // no name
             bad_line{"5 \r\n", 2},            // whitespace with no extension after it
             bad_line{"5\t\r\n", 2},           // ... HTAB too
             bad_line{"5  \r\n", 3},           //
             bad_line{"5;a \r\n", 4},          // BWS after a name must lead to '=' or ';'
             bad_line{"5;a=b \r\n", 6},        // ... and after a value to ';'
             bad_line{"5;a=\"b\" \r\n", 8},    //
             bad_line{"5;a=\r\n", 4},          // '=' without a value
             bad_line{"5;a=b c\r\n", 6},       // two tokens
             bad_line{"5;a=[\r\n", 4},         // a value byte outside tchar
             bad_line{"5;a=b\"c\"\r\n", 5},    // DQUOTE inside a token
             bad_line{"5;a=\"b\"c\r\n", 7},    // bytes after the closing DQUOTE
             bad_line{"5;a=\"b\r\n", 6},       // an unterminated quoted-string
             bad_line{"5;a=\"\x01\"\r\n", 5},  // a CTL inside it
             bad_line{"5;a=\"\\\r\n", 6},      // a CR as a quoted-pair
             bad_line{"5;\xe9\r\n", 2},        // obs-text is not a name
             bad_line{"5;a\x7f\r\n", 3},       //
             bad_line{"5 =x\r\n", 2},          // BWS after the size leads to ';' only
         }) {
        const std::string body = std::string(bad.text) + "hello\r\n0\r\n\r\n";
        EXPECT_EQ(chunk_error(body), parse_error::bad_chunk_size)
            << testing::PrintToString(bad.text);
        for (bool decode : {true, false}) {
            chunk_run bytewise = run_chunked(body, decode, 1);
            EXPECT_EQ(bytewise.error, parse_error::bad_chunk_size)
                << testing::PrintToString(bad.text);
            EXPECT_EQ(bytewise.consumed, bad.at) << testing::PrintToString(bad.text);
            EXPECT_EQ(bytewise.output, decode ? "" : bad.text.substr(0, bad.at));
        }
    }
    // The line bound holds inside a quoted-string too.
    EXPECT_EQ(chunk_error("5;a=\"" + std::string(5000, 'q') + "\"\r\n"),
              parse_error::bad_chunk_size);
}

TEST(chunked_parser, accepts_the_largest_sizes_it_allows) {
    for (std::string_view size : {"7fffffffffffffff\r\n"sv, "0000000000000001\r\n"sv}) {
        chunk_run run = run_chunked(size, false, 1);
        EXPECT_EQ(run.error, parse_error::none) << size;
        EXPECT_EQ(run.consumed, size.size());
        EXPECT_FALSE(run.done);
    }
    std::string line = "5;" + std::string(4000, 'e') + "\r\nhello\r\n0\r\n\r\n";
    EXPECT_TRUE(run_chunked(line, true, 100).done);
}

TEST(chunked_parser, refuses_data_not_followed_by_crlf) {
    EXPECT_EQ(chunk_error("3\r\nabcd\r\n0\r\n\r\n"), parse_error::bad_chunk_data);
    EXPECT_EQ(chunk_error("3\r\nabc\n0\r\n\r\n"), parse_error::bad_chunk_data);
    EXPECT_EQ(chunk_error("3\r\nabc\r0\r\n\r\n"), parse_error::bad_chunk_data);
    EXPECT_EQ(chunk_error("3\r\nab\r\n0\r\n\r\n"), parse_error::bad_chunk_data);
}

TEST(chunked_parser, refuses_bad_trailers) {
    EXPECT_EQ(chunk_error("0\r\nX : y\r\n\r\n"), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\n: y\r\n\r\n"), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\nno-colon\r\n\r\n"), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\nX: a\r\n b\r\n\r\n"), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\n y: b\r\n\r\n"), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\nX: a\0b\r\n\r\n"sv), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\nX: a\rb\r\n\r\n"), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\nX: a\n\r\n"), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\n\n"), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\n\rx"), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\n@: b\r\n\r\n"), parse_error::bad_trailer);

    // The trailer section, final CRLF included, is bounded.
    std::string trailer = "X: " + std::string(20, 'v') + "\r\n\r\n";  // 27 bytes
    std::string body = "0\r\n" + trailer;
    EXPECT_TRUE(run_chunked(body, true, 1, trailer.size()).done);
    EXPECT_EQ(chunk_error(body, trailer.size() - 1), parse_error::bad_trailer);
    EXPECT_EQ(chunk_error("0\r\n" + std::string(100, 'x'), 50), parse_error::bad_trailer);
}

TEST(chunked_parser, errors_are_sticky_and_reset_starts_over) {
    chunked_parser parser;
    std::string bad = "zz";
    chunked_parser::result r = parser.feed(std::span<char>(bad), false);
    EXPECT_EQ(r.error, parse_error::bad_chunk_size);
    EXPECT_EQ(r.consumed, 0u);
    std::string good = "0\r\n\r\n";
    r = parser.feed(std::span<char>(good), false);
    EXPECT_EQ(r.error, parse_error::bad_chunk_size);
    EXPECT_FALSE(r.done);

    parser.reset();
    r = parser.feed(std::span<char>(good), false);
    EXPECT_EQ(r.error, parse_error::none);
    EXPECT_TRUE(r.done);
    parser.reset();
    EXPECT_FALSE(parser.done());
    EXPECT_EQ(parser.payload_bytes(), 0u);
}

TEST(chunked_parser, reports_where_the_error_is) {
    std::string body = "3\r\nabcX";
    chunked_parser parser;
    chunked_parser::result r = parser.feed(std::span<char>(body), true);
    EXPECT_EQ(r.error, parse_error::bad_chunk_data);
    EXPECT_EQ(r.consumed, 6u);  // the bytes before the offending one
    EXPECT_EQ(r.data, 3u);
    EXPECT_EQ(body.substr(0, 3), "abc");
}

TEST(chunked_parser, counts_payload_across_feeds) {
    chunked_parser parser;
    std::string a = "10\r\n0123456789";
    std::string b = "abcdef\r\n2\r\nxy";
    EXPECT_EQ(parser.feed(std::span<char>(a), false).consumed, a.size());
    EXPECT_EQ(parser.payload_bytes(), 10u);
    EXPECT_EQ(parser.feed(std::span<char>(b), false).consumed, b.size());
    EXPECT_EQ(parser.payload_bytes(), 18u);
    EXPECT_FALSE(parser.done());
    std::string empty;
    chunked_parser::result r = parser.feed(std::span<char>(empty), false);
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_FALSE(r.done);
}

}  // namespace
}  // namespace switchyard::http1
