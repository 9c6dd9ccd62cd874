#pragma once
// HTTP/1.1 message-head parsing and chunked framing (RFC 9112), strict and allocation-free.
//
// The parsers read a complete head in place: every string_view points into the caller's buffer,
// and header fields are written into caller-provided storage. Nothing here allocates, throws or
// keeps state between calls except chunked_parser, which is a resumable state machine.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace switchyard::http1 {

// Why a message was refused. Each maps to a status (status_for) and a short reason (describe).
enum class parse_error : std::uint8_t {
    none,
    bad_request_line,       // 400: not "method SP target SP HTTP/1.x CRLF"
    bad_method,             // 400: method is not a token
    bad_target,             // 400: target has a byte outside RFC 3986, or is not origin/absolute/*
    bad_version,            // 400: not HTTP/1.0 or HTTP/1.1 (505 would also do; 400 is simpler)
    bad_header_name,        // 400: empty or non-token field name, or whitespace before the colon
    bad_header_value,       // 400: CR, LF or NUL (or another CTL but HTAB) in a field value
    obsolete_line_folding,  // 400: obs-fold (RFC 9112 §5.2)
    bare_lf,                // 400: a line ending in LF without CR
    missing_host,           // 400: HTTP/1.1 request without Host (RFC 9112 §3.2)
    duplicate_host,         // 400: more than one Host field
    bad_host,               // 400: Host value is not uri-host [":" port]
    bad_content_length,     // 400: Content-Length is not 1*DIGIT (or too large)
    conflicting_content_length,            // 400: Content-Length values differ
    content_length_and_transfer_encoding,  // 400: both present (RFC 9112 §6.3 ¶3: smuggling)
    chunked_not_final,         // 400: Transfer-Encoding present but chunked is not the final coding
    transfer_encoding_http10,  // 400: Transfer-Encoding in an HTTP/1.0 message
    unsupported_transfer_coding,  // 501: a coding other than chunked (e.g. "gzip, chunked")
    head_too_large,               // 431: the fields take the head past max_header_bytes
    method_too_long,              // 501: the method alone takes the head past max_header_bytes
    target_too_long,              // 414: the request line takes the head past max_header_bytes
    too_many_headers,             // 431: more than max_headers fields
    bad_chunk_size,               // 400: chunk-size line malformed or too large
    bad_chunk_data,               // 400: chunk data not followed by CRLF
    bad_trailer,                  // 400: malformed trailer section
    bad_status_line,              // responses only: not "HTTP/1.x 3DIGIT reason CRLF"
};

// Short text for an answer body, e.g. "both Content-Length and Transfer-Encoding".
std::string_view describe(parse_error e) noexcept;
// The status to answer a request with: 400, 414, 431 or 501.
int status_for(parse_error e) noexcept;

enum class parse_status : std::uint8_t { complete, incomplete, error };

struct header_field {
    std::string_view name;
    std::string_view value;  // leading and trailing OWS removed
};

enum class body_kind : std::uint8_t {
    none,         // no body: no Content-Length/Transfer-Encoding on a request, HEAD/1xx/204/304
    length,       // exactly content_length bytes
    chunked,      // chunked framing follows; see chunked_parser
    until_close,  // responses only: the body ends when the upstream closes (RFC 9112 §6.3 ¶8)
};

struct parse_limits {
    std::size_t max_head_bytes = 64 * 1024;  // request/status line + fields + final CRLF
    std::size_t max_headers = 100;           // also bounded by the storage span's size
};

// Flags gathered from the Connection field(s), parsed as a token list (RFC 9110 §7.6.1).
struct connection_options {
    bool close = false;
    bool keep_alive = false;
    bool has_other = false;  // names some other field, which a proxy must remove too
};

struct request_head {
    std::string_view method;
    std::string_view target;         // as received
    int version_minor = 1;           // HTTP/1.0 -> 0, HTTP/1.1 -> 1
    std::span<header_field> fields;  // in order, a prefix of the storage passed in
    std::string_view host;           // the Host value ("" for HTTP/1.0 without Host)
    body_kind body = body_kind::none;
    std::uint64_t content_length = 0;  // with body_kind::length
    connection_options connection;
    bool keep_alive = true;        // after this exchange the client connection may be reused
    bool expect_continue = false;  // Expect: 100-continue
    bool expect_other = false;     // Expect with any other expectation (417)
    std::size_t head_bytes = 0;    // bytes of the buffer the head took, final CRLF included
};

struct response_head {
    int status = 0;
    std::string_view reason;
    int version_minor = 1;
    std::span<header_field> fields;
    body_kind body = body_kind::none;
    std::uint64_t content_length = 0;
    connection_options connection;
    bool keep_alive = true;  // the upstream connection may be reused after the body
    std::size_t head_bytes = 0;
};

// Parses a request head from the start of `buffer`.
//  - complete: `out` is filled; out.head_bytes tells where the body starts.
//  - incomplete: the head has not ended yet and fits the limits so far; read more.
//  - error: `error` says why; answer status_for(error) and close.
// A head that has not ended within limits.max_head_bytes is an error: method_too_long while
// still in the method, target_too_long later in the request line, head_too_large in the fields.
// Leading empty lines before the request line are skipped (RFC 9112 §2.2).
parse_status parse_request(std::string_view buffer, std::span<header_field> storage,
                           const parse_limits& limits, request_head& out,
                           parse_error& error) noexcept;

// Parses a response head. `request_method_head` and the status decide body_kind per
// RFC 9112 §6.3: HEAD, 1xx, 204 and 304 have none; Transfer-Encoding with chunked last is
// chunked (and any Content-Length is ignored); other Transfer-Encoding is until_close; a valid
// Content-Length is length; otherwise until_close.
parse_status parse_response(std::string_view buffer, std::span<header_field> storage,
                            const parse_limits& limits, bool request_method_head,
                            response_head& out, parse_error& error) noexcept;

// True when `a` and `b` are equal ignoring ASCII case.
bool iequals(std::string_view a, std::string_view b) noexcept;

// Calls f(token) for each element of a comma-separated list (RFC 9110 §5.6.1), OWS trimmed,
// empty elements skipped.
template <class F>
void for_each_list_token(std::string_view list, F&& f) {
    std::size_t i = 0;
    while (i <= list.size()) {
        std::size_t comma = list.find(',', i);
        if (comma == std::string_view::npos) {
            comma = list.size();
        }
        std::string_view item = list.substr(i, comma - i);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
            item.remove_prefix(1);
        }
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
            item.remove_suffix(1);
        }
        if (!item.empty()) {
            f(item);
        }
        i = comma + 1;
    }
}

// Resumable validator/decoder of a chunked body (RFC 9112 §7.1): chunk-size [ext] CRLF data
// CRLF ... last-chunk trailer-section CRLF.
//
// feed() consumes bytes as they arrive, in pieces of any size. In pass-through mode the bytes
// are left as they are, to be forwarded verbatim with their framing; in decode mode the chunk
// data is moved to the front of the span and the framing dropped (for an HTTP/1.0 client).
class chunked_parser {
public:
    struct result {
        std::size_t consumed = 0;  // bytes of the input used; less than its size only when
                                   // done or on error
        std::size_t data = 0;      // decode mode: payload bytes now at the front of the span
        bool done = false;         // the final CRLF after the trailer section was consumed
        parse_error error = parse_error::none;
    };

    explicit chunked_parser(std::size_t max_trailer_bytes = 64 * 1024) noexcept
        : max_trailer_bytes_(max_trailer_bytes) {}

    result feed(std::span<char> input, bool decode) noexcept;

    // Payload bytes seen so far (excludes framing), for body limits.
    std::uint64_t payload_bytes() const noexcept { return payload_; }
    bool done() const noexcept { return state_ == state::done; }
    void reset() noexcept { *this = chunked_parser(max_trailer_bytes_); }

private:
    enum class state : std::uint8_t {
        size,             // hex digits of the chunk size
        ext_bws,          // BWS after the size or a value, before ';'
        ext_name_bws,     // BWS after ';', before an extension name
        ext_name,         // token: the extension name
        ext_name_end,     // BWS after a name, before '=' or ';'
        ext_value_bws,    // BWS after '=', before the value
        ext_token,        // token: the extension value
        ext_quoted,       // inside a quoted-string value
        ext_quoted_pair,  // the byte after a backslash in a quoted-string
        ext_quoted_end,   // after the closing DQUOTE
        size_lf,          // LF after the size line's CR
        data,             // `remaining_` payload bytes
        data_cr,          // CR after the data
        data_lf,          // LF after the data
        trailer_start,    // start of a trailer line, or the final CRLF
        trailer_line,     // field name of a trailer field line, up to ':'
        trailer_value,    // field value of a trailer field line, up to CR
        trailer_lf,       // LF ending a trailer field line
        final_lf,         // LF of the final CRLF
        done,
        failed,  // an error was reported; `error_` says which, and stays
    };

    // The state after byte `c` on a size line past its digits; failed when `c` cannot be there.
    static state next_on_size_line(state s, char c) noexcept;
    // A byte of the size line (digits, extensions, CR); counts it against the line's bound.
    parse_error on_size_line(char c) noexcept;
    // Payload from input[i] on, up to the chunk's end; moved down to *out when decoding.
    void take_data(std::span<char> input, std::size_t& i, std::size_t* out) noexcept;
    // The state after byte `c` of the trailer section; failed when `c` cannot be there.
    static state next_on_trailer(state s, char c) noexcept;

    std::size_t max_trailer_bytes_;
    state state_ = state::size;
    std::uint64_t remaining_ = 0;
    std::uint64_t payload_ = 0;
    std::size_t size_digits_ = 0;
    std::size_t line_bytes_ = 0;             // bytes of the current size line (extension bound)
    std::size_t trailer_bytes_ = 0;          // bytes of the trailer section so far
    parse_error error_ = parse_error::none;  // with state::failed
};

}  // namespace switchyard::http1
