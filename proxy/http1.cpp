#include "proxy/http1.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace switchyard::http1 {

namespace {

// Character classes as bits of one 256-entry table, so that each test is one load and a mask
// (no <cctype>: it is locale-dependent and slower).
enum char_class : std::uint8_t {
    tchar = 1 << 0,     // RFC 9110 §5.6.2 token characters
    target = 1 << 1,    // request-target bytes we accept: VCHAR except '#'
    field = 1 << 2,     // field-value bytes: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5)
    hexdig = 1 << 3,    // RFC 5234 HEXDIG, both cases
    reg_name = 1 << 4,  // RFC 3986 §3.2.2 reg-name: unreserved and sub-delims but ','
    ipv6 = 1 << 5,      // inside an IP-literal: HEXDIG, ':' and '.'
};

constexpr std::array<std::uint8_t, 256> make_char_table() noexcept {
    std::array<std::uint8_t, 256> t{};
    auto add = [&t](std::string_view chars, std::uint8_t bits) {
        for (char c : chars) {
            t[static_cast<unsigned char>(c)] |= bits;
        }
    };
    for (int c = 0; c < 256; ++c) {
        bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        bool digit = c >= '0' && c <= '9';
        std::uint8_t bits = 0;
        if (alpha || digit) {
            bits |= tchar | reg_name;
        }
        if (c >= 0x21 && c <= 0x7E && c != '#') {
            bits |= target;
        }
        if (c == '\t' || (c >= 0x20 && c <= 0x7E) || c >= 0x80) {
            bits |= field;
        }
        if (digit || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f')) {
            bits |= hexdig | ipv6;
        }
        t[static_cast<std::size_t>(c)] = bits;
    }
    add("!#$%&'*+-.^_`|~", tchar);
    // No ',' in a host: Host is a singleton, and "a,b" is what joining two of them gives
    // (RFC 9110 §5.3); no DNS name has one. '%' is checked with its two HEXDIG apart.
    add("-._~!$&'()*+;=", reg_name);
    add(":.", ipv6);
    return t;
}

constexpr std::array<std::uint8_t, 256> char_table = make_char_table();

constexpr bool is(char c, std::uint8_t cls) noexcept {
    return (char_table[static_cast<unsigned char>(c)] & cls) != 0;
}

constexpr bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}
constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

constexpr char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
}

constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = ascii_lower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

std::string_view make_view(const char* first, const char* last) noexcept {
    return {first, static_cast<std::size_t>(last - first)};
}

// RFC 9112 §2.2 asks servers to ignore at least one empty line before the request-line; a few
// more are tolerated, but a stream of them is not a request.
constexpr int max_leading_empty_lines = 4;

// Content-Length values above this many digits are refused, so the value fits in 63 bits.
constexpr std::size_t max_content_length_digits = 18;

// A chunk-size line (size, BWS and extensions) longer than this is refused: extensions carry
// nothing we use, and unbounded ones are a known resource attack (Go CVE-2023-39326, Node.js
// CVE-2024-22019).
constexpr std::size_t max_chunk_line_bytes = 4096;

// Chunk sizes beyond 2^63 - 1 are refused, as nginx refuses sizes beyond off_t.
constexpr std::uint64_t max_chunk_size =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

// ---------------------------------------------------------------------------------------------
// Field values

// host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2). With `require_port`, the port
// must be present and non-empty (authority-form of CONNECT, RFC 9110 §9.3.6).
bool valid_host(std::string_view h, bool require_port) noexcept {
    std::size_t i = 0;
    const std::size_t n = h.size();
    if (n == 0) {
        return false;
    }
    if (h[0] == '[') {
        // IP-literal: the characters of an IPv6address; its exact shape is left to the
        // resolver. IPvFuture and zone identifiers are refused.
        i = 1;
        while (i < n && is(h[i], ipv6)) {
            ++i;
        }
        if (i == 1 || i == n || h[i] != ']') {
            return false;
        }
        ++i;
    } else {
        while (i < n && h[i] != ':') {
            if (is(h[i], reg_name)) {
                ++i;
            } else if (h[i] == '%' && i + 2 < n && is(h[i + 1], hexdig) && is(h[i + 2], hexdig)) {
                i += 3;
            } else {
                return false;
            }
        }
        if (i == 0) {
            return false;  // empty host, e.g. ":80"
        }
    }
    if (i == n) {
        return !require_port;
    }
    if (h[i] != ':') {
        return false;
    }
    std::string_view port = h.substr(i + 1);
    if (port.empty()) {
        return !require_port;  // RFC 3986: port = *DIGIT
    }
    if (port.size() > 5) {
        return false;
    }
    unsigned value = 0;
    for (char c : port) {
        if (!is_digit(c)) {
            return false;
        }
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value <= 65535;
}

// The request-target forms of RFC 9112 §3.2. Bytes were already checked to be VCHAR but '#'.
parse_error check_target(std::string_view method, std::string_view t) noexcept {
    if (method == "CONNECT") {
        // authority-form only (RFC 9112 §3.2.3); the proxy refuses CONNECT itself.
        return valid_host(t, true) ? parse_error::none : parse_error::bad_target;
    }
    if (t.front() == '/') {
        return parse_error::none;  // origin-form
    }
    if (t == "*") {
        // asterisk-form is only for a server-wide OPTIONS (RFC 9112 §3.2.4).
        return method == "OPTIONS" ? parse_error::none : parse_error::bad_target;
    }
    // absolute-form (RFC 9112 §3.2.2), for the http and https schemes only.
    std::size_t scheme = 0;
    if (t.size() > 7 && iequals(t.substr(0, 7), "http://")) {
        scheme = 7;
    } else if (t.size() > 8 && iequals(t.substr(0, 8), "https://")) {
        scheme = 8;
    } else {
        return parse_error::bad_target;
    }
    std::string_view rest = t.substr(scheme);
    std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
    // RFC 9110 §4.2.4: userinfo is deprecated and its presence treated as an error; '@' is not
    // a reg-name character, so valid_host refuses it.
    return valid_host(authority, false) ? parse_error::none : parse_error::bad_target;
}

// Folds Content-Length field values into one number. RFC 9110 §8.6: a list of identical values
// (from one field or several) may be taken as one; anything else is an error. Empty list
// elements and anything but 1*DIGIT are refused (nginx refuses lists outright).
struct content_length_state {
    bool present = false;
    std::uint64_t value = 0;
    parse_error error = parse_error::none;

    void add(std::string_view field_value) noexcept {
        std::size_t i = 0;
        const std::size_t n = field_value.size();
        for (;;) {
            while (i < n && is_ows(field_value[i])) {
                ++i;
            }
            std::size_t first = i;
            std::uint64_t v = 0;
            while (i < n && is_digit(field_value[i])) {
                v = v * 10 + static_cast<std::uint64_t>(field_value[i] - '0');
                ++i;
                if (i - first > max_content_length_digits) {
                    fail(parse_error::bad_content_length);
                    return;
                }
            }
            if (i == first) {
                fail(parse_error::bad_content_length);  // empty element, sign or other byte
                return;
            }
            while (i < n && is_ows(field_value[i])) {
                ++i;
            }
            if (i < n && field_value[i] != ',') {
                fail(parse_error::bad_content_length);
                return;
            }
            if (present && v != value) {
                fail(parse_error::conflicting_content_length);
                return;
            }
            present = true;
            value = v;
            if (i == n) {
                return;
            }
            ++i;  // ','
        }
    }

    void fail(parse_error e) noexcept {
        present = true;
        if (error == parse_error::none) {
            error = e;
        }
    }
};

// The transfer codings of all Transfer-Encoding fields, as one list in order (RFC 9110 §5.3).
struct transfer_encoding_state {
    bool present = false;
    std::size_t codings = 0;  // list elements
    std::size_t chunked = 0;  // of which "chunked"
    bool last_chunked = false;
    bool malformed = false;  // an element with a byte outside tokens, ';', '=' and OWS

    void add(std::string_view field_value) noexcept {
        present = true;
        for_each_list_token(field_value, [this](std::string_view coding) {
            ++codings;
            last_chunked = iequals(coding, "chunked");
            if (last_chunked) {
                ++chunked;
                return;
            }
            // Quoted parameters could hide a comma, so that two parsers split the list
            // differently; nothing needs them, so any byte outside tokens and ";=" is refused.
            for (char c : coding) {
                if (!is(c, tchar) && c != ';' && c != '=' && !is_ows(c)) {
                    malformed = true;
                }
            }
        });
    }
};

// What the framing- and connection-related fields of a head say.
struct head_fields {
    std::size_t host_count = 0;
    std::string_view host;
    content_length_state content_length;
    transfer_encoding_state transfer_encoding;
    connection_options connection;
    bool expect_continue = false;
    bool expect_other = false;
};

head_fields summarize_fields(std::span<const header_field> fields) noexcept {
    head_fields h;
    for (const header_field& f : fields) {
        // Dispatch on the length first: most fields are none of these.
        switch (f.name.size()) {
            case 4:
                if (iequals(f.name, "host")) {
                    ++h.host_count;
                    h.host = f.value;
                }
                break;
            case 6:
                if (iequals(f.name, "expect")) {
                    for_each_list_token(f.value, [&h](std::string_view e) {
                        if (iequals(e, "100-continue")) {
                            h.expect_continue = true;
                        } else {
                            h.expect_other = true;
                        }
                    });
                }
                break;
            case 10:
                if (iequals(f.name, "connection")) {
                    for_each_list_token(f.value, [&h](std::string_view option) {
                        if (iequals(option, "close")) {
                            h.connection.close = true;
                        } else if (iequals(option, "keep-alive")) {
                            h.connection.keep_alive = true;
                        } else {
                            h.connection.has_other = true;
                        }
                    });
                }
                break;
            case 14:
                if (iequals(f.name, "content-length")) {
                    h.content_length.add(f.value);
                }
                break;
            case 17:
                if (iequals(f.name, "transfer-encoding")) {
                    h.transfer_encoding.add(f.value);
                }
                break;
            default:
                break;
        }
    }
    return h;
}

// RFC 9112 §9.3: HTTP/1.1 is persistent unless "close"; HTTP/1.0 only with "keep-alive".
bool persistent(int version_minor, const connection_options& c) noexcept {
    if (c.close) {
        return false;
    }
    return version_minor == 1 || c.keep_alive;
}

// ---------------------------------------------------------------------------------------------
// Head scanning. Every function takes the cursor `p` and the end of the bytes it may look at; it
// returns incomplete when it needs a byte past the end, so a head that is a prefix of a valid one
// is never an error, and a byte that no continuation can make valid is an error at once.

struct scan_result {
    parse_status status;
    parse_error error;
};

constexpr scan_result scan_ok{parse_status::complete, parse_error::none};
constexpr scan_result scan_more{parse_status::incomplete, parse_error::none};

constexpr scan_result scan_fail(parse_error e) noexcept {
    return {parse_status::error, e};
}

// The CRLF ending a line, at `p`. A CR followed by anything but LF is `bare_cr`.
scan_result scan_crlf(const char*& p, const char* end, parse_error bare_cr) noexcept {
    if (p == end) {
        return scan_more;
    }
    if (*p == '\n') {
        return scan_fail(parse_error::bare_lf);
    }
    if (*p != '\r') {
        return scan_fail(bare_cr);
    }
    if (p + 1 == end) {
        return scan_more;
    }
    if (p[1] != '\n') {
        return scan_fail(bare_cr);
    }
    p += 2;
    return scan_ok;
}

// "HTTP/1.0" or "HTTP/1.1" (case-sensitive, RFC 9112 §2.3), setting `minor`. Fails early on a
// prefix that cannot become one.
scan_result scan_version(const char*& p, const char* end, int& minor, parse_error error) noexcept {
    constexpr std::string_view name = "HTTP/1.";
    const std::size_t avail = static_cast<std::size_t>(end - p);
    if (std::memcmp(p, name.data(), std::min(avail, name.size())) != 0) {
        return scan_fail(error);
    }
    if (avail <= name.size()) {
        return scan_more;
    }
    char digit = p[name.size()];
    if (digit != '0' && digit != '1') {
        return scan_fail(error);
    }
    minor = digit - '0';
    p += name.size() + 1;
    if (p < end && is_digit(*p)) {
        return scan_fail(error);  // "HTTP/1.10"
    }
    return scan_ok;
}

// True when one of the 8 bytes of `w` is a CTL (below 0x20) or DEL; obs-text (0x80 and up) is
// not. The "hasless"/"haszero" word tricks: per byte the sums may borrow, but "any" is exact.
constexpr bool has_ctl_or_del(std::uint64_t w) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101;
    constexpr std::uint64_t high = 0x8080808080808080;
    const std::uint64_t below_space = (w - ones * 0x20) & ~w & high;
    const std::uint64_t x = w ^ (ones * 0x7F);
    const std::uint64_t del = (x - ones) & ~x & high;
    return (below_space | del) != 0;
}

// The first byte at or after `p` that is not a field-value byte (or `end`). Values are most of a
// head, so they are scanned 8 bytes at a time; a word with a CTL (HTAB, the CR) is done bytewise.
const char* skip_field_bytes(const char* p, const char* end) noexcept {
    while (end - p >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, sizeof w);
        if (has_ctl_or_del(w)) {
            break;
        }
        p += 8;
    }
    while (p < end && is(*p, field)) {
        ++p;
    }
    return p;
}

// request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3), with exactly one SP
// between the parts: lenient whitespace there is a smuggling vector (RFC 9112 §3 allows
// refusing it).
scan_result scan_request_line(const char*& p, const char* end, request_head& out) noexcept {
    const char* method = p;
    while (p < end && is(*p, tchar)) {
        ++p;
    }
    if (p == end) {
        return scan_more;
    }
    if (*p != ' ') {
        bool line_break = *p == '\r' || *p == '\n';
        return scan_fail(line_break ? parse_error::bad_request_line : parse_error::bad_method);
    }
    if (p == method) {
        return scan_fail(parse_error::bad_request_line);
    }
    out.method = make_view(method, p);
    ++p;

    const char* target_start = p;
    while (p < end && is(*p, char_class::target)) {
        ++p;
    }
    if (p == end) {
        return scan_more;
    }
    if (*p != ' ' || p == target_start) {
        // Two SPs, or a line ending after the target (HTTP/0.9), is a broken line; any other
        // byte (CTL, '#', obs-text) is a broken target. '#' is refused as HAProxy does since
        // CVE-2023-45539: a fragment is never sent, and path rules may see it differently.
        bool line = *p == ' ' || *p == '\r' || *p == '\n';
        return scan_fail(line ? parse_error::bad_request_line : parse_error::bad_target);
    }
    out.target = make_view(target_start, p);
    ++p;

    if (p == end) {
        return scan_more;
    }
    if (*p == ' ' || *p == '\r' || *p == '\n') {
        return scan_fail(parse_error::bad_request_line);
    }
    scan_result r = scan_version(p, end, out.version_minor, parse_error::bad_version);
    if (r.status != parse_status::complete) {
        return r;
    }
    if (p < end && *p != '\r' && *p != '\n') {
        return scan_fail(parse_error::bad_request_line);  // e.g. a trailing SP
    }
    r = scan_crlf(p, end, parse_error::bad_request_line);
    if (r.status != parse_status::complete) {
        return r;
    }
    parse_error e = check_target(out.method, out.target);
    return e == parse_error::none ? scan_ok : scan_fail(e);
}

// status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (RFC 9112 §4). A missing
// SP before an empty reason is accepted, as nginx does.
scan_result scan_status_line(const char*& p, const char* end, response_head& out) noexcept {
    scan_result r = scan_version(p, end, out.version_minor, parse_error::bad_status_line);
    if (r.status != parse_status::complete) {
        return r;
    }
    if (p == end) {
        return scan_more;
    }
    if (*p != ' ') {
        return scan_fail(parse_error::bad_status_line);
    }
    ++p;
    int status = 0;
    for (int i = 0; i < 3; ++i, ++p) {
        if (p == end) {
            return scan_more;
        }
        if (!is_digit(*p)) {
            return scan_fail(parse_error::bad_status_line);
        }
        status = status * 10 + (*p - '0');
    }
    if (status < 100 || status > 599) {
        return scan_fail(parse_error::bad_status_line);
    }
    out.status = status;
    if (p == end) {
        return scan_more;
    }
    const char* reason = p;
    if (*p == ' ') {
        ++p;
        reason = p;
        while (p < end && is(*p, field)) {
            ++p;
        }
    }
    out.reason = make_view(reason, p);
    return scan_crlf(p, end, parse_error::bad_status_line);
}

// field-line = field-name ":" OWS field-value OWS (RFC 9112 §5), up to and including the empty
// line that ends the head. Fields go to `storage`; `out_count` is how many.
scan_result scan_fields(const char*& p, const char* end, std::span<header_field> storage,
                        std::size_t max_fields, std::size_t& out_count) noexcept {
    std::size_t count = 0;
    for (;;) {
        if (p == end) {
            return scan_more;
        }
        char first = *p;
        if (first == '\r' || first == '\n') {
            out_count = count;
            return scan_crlf(p, end, parse_error::bad_header_name);
        }
        if (is_ows(first)) {
            // RFC 9112 §5.2: obs-fold is refused. Whitespace before the first field is refused
            // too (RFC 9112 §2.2), as a malformed field.
            return scan_fail(count == 0 ? parse_error::bad_header_name
                                        : parse_error::obsolete_line_folding);
        }
        if (count == max_fields) {
            return scan_fail(parse_error::too_many_headers);
        }

        const char* name = p;
        while (p < end && is(*p, tchar)) {
            ++p;
        }
        if (p == end) {
            return scan_more;
        }
        // No whitespace between name and colon (RFC 9112 §5.1: 400, a smuggling vector).
        if (*p != ':' || p == name) {
            return scan_fail(parse_error::bad_header_name);
        }
        const char* name_end = p;
        ++p;

        while (p < end && is_ows(*p)) {
            ++p;
        }
        const char* value = p;
        p = skip_field_bytes(p, end);
        if (p == end) {
            return scan_more;
        }
        const char* value_end = p;
        while (value_end > value && is_ows(value_end[-1])) {
            --value_end;
        }
        // The byte that stopped the value must start the CRLF: a NUL, another CTL or a lone CR
        // in a value is refused (RFC 9110 §5.5), never replaced by SP.
        scan_result r = scan_crlf(p, end, parse_error::bad_header_value);
        if (r.status != parse_status::complete) {
            return r;
        }
        storage[count++] = header_field{make_view(name, name_end), make_view(value, value_end)};
    }
}

// A head that has not ended within max_head_bytes will not fit (scanning stops there). This is
// known once max_head_bytes have come: the session's buffer never holds more than that.
scan_result finish_incomplete(std::string_view buffer, const parse_limits& limits) noexcept {
    return buffer.size() >= limits.max_head_bytes ? scan_fail(parse_error::head_too_large)
                                                  : scan_more;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string_view describe(parse_error e) noexcept {
    switch (e) {
        case parse_error::none:
            return "no error";
        case parse_error::bad_request_line:
            return "malformed request line";
        case parse_error::bad_method:
            return "invalid method";
        case parse_error::bad_target:
            return "invalid request target";
        case parse_error::bad_version:
            return "unsupported HTTP version";
        case parse_error::bad_header_name:
            return "invalid header field name";
        case parse_error::bad_header_value:
            return "invalid header field value";
        case parse_error::obsolete_line_folding:
            return "obsolete line folding";
        case parse_error::bare_lf:
            return "line not ending in CRLF";
        case parse_error::missing_host:
            return "missing Host";
        case parse_error::duplicate_host:
            return "more than one Host";
        case parse_error::bad_host:
            return "invalid Host";
        case parse_error::bad_content_length:
            return "invalid Content-Length";
        case parse_error::conflicting_content_length:
            return "conflicting Content-Length values";
        case parse_error::content_length_and_transfer_encoding:
            return "both Content-Length and Transfer-Encoding";
        case parse_error::chunked_not_final:
            return "chunked is not the final transfer coding";
        case parse_error::transfer_encoding_http10:
            return "Transfer-Encoding in HTTP/1.0";
        case parse_error::unsupported_transfer_coding:
            return "unsupported transfer coding";
        case parse_error::head_too_large:
            return "header section too large";
        case parse_error::method_too_long:
            return "method too long";
        case parse_error::target_too_long:
            return "request target too long";
        case parse_error::too_many_headers:
            return "too many header fields";
        case parse_error::bad_chunk_size:
            return "invalid chunk size";
        case parse_error::bad_chunk_data:
            return "chunk data not followed by CRLF";
        case parse_error::bad_trailer:
            return "invalid trailer section";
        case parse_error::bad_status_line:
            return "invalid status line";
    }
    return "invalid message";
}

int status_for(parse_error e) noexcept {
    switch (e) {
        case parse_error::head_too_large:
        case parse_error::too_many_headers:
            return 431;  // RFC 6585 §5
        case parse_error::target_too_long:
            return 414;  // RFC 9112 §3, RFC 9110 §15.5.15
        case parse_error::method_too_long:
            return 501;  // RFC 9112 §3
        case parse_error::unsupported_transfer_coding:
            return 501;  // RFC 9112 §6.1
        default:
            return 400;
    }
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

parse_status parse_request(std::string_view buffer, std::span<header_field> storage,
                           const parse_limits& limits, request_head& out,
                           parse_error& error) noexcept {
    out = request_head{};
    error = parse_error::none;
    // Nothing past max_head_bytes is looked at: a head that needs more is too large.
    const char* const begin = buffer.data();
    const char* const end = begin + std::min(buffer.size(), limits.max_head_bytes);
    const char* p = begin;

    scan_result r = scan_ok;
    int empty_lines = 0;
    while (r.status == parse_status::complete && p < end && (*p == '\r' || *p == '\n')) {
        r = empty_lines++ < max_leading_empty_lines
                ? scan_crlf(p, end, parse_error::bad_request_line)
                : scan_fail(parse_error::bad_request_line);
    }
    bool line_complete = false;
    if (r.status == parse_status::complete) {
        r = p == end ? scan_more : scan_request_line(p, end, out);
        line_complete = r.status == parse_status::complete;
    }
    std::size_t count = 0;
    if (r.status == parse_status::complete) {
        r = scan_fields(p, end, storage, std::min(limits.max_headers, storage.size()), count);
    }
    if (r.status == parse_status::incomplete) {
        r = finish_incomplete(buffer, limits);
        if (r.status == parse_status::error && !line_complete) {
            // RFC 9112 §3: a method longer than any implemented is 501, a request-target longer
            // than we wish to parse is 414. out.method is set once the SP after it was seen.
            r = scan_fail(out.method.empty() ? parse_error::method_too_long
                                             : parse_error::target_too_long);
        }
    }
    if (r.status != parse_status::complete) {
        error = r.error;
        return r.status;
    }
    out.fields = storage.first(count);
    out.head_bytes = static_cast<std::size_t>(p - begin);

    const head_fields h = summarize_fields(out.fields);
    auto fail = [&error](parse_error e) {
        error = e;
        return parse_status::error;
    };

    // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, for any request with more than
    // one, and for an invalid value.
    if (h.host_count > 1) {
        return fail(parse_error::duplicate_host);
    }
    if (h.host_count == 0) {
        if (out.version_minor == 1) {
            return fail(parse_error::missing_host);
        }
    } else if (!valid_host(h.host, false)) {
        return fail(parse_error::bad_host);
    }
    out.host = h.host;

    // Framing, RFC 9112 §6.
    const transfer_encoding_state& te = h.transfer_encoding;
    if (te.present) {
        if (out.version_minor == 0) {
            return fail(parse_error::transfer_encoding_http10);  // RFC 9112 §6.1
        }
        if (h.content_length.present) {
            return fail(parse_error::content_length_and_transfer_encoding);  // §6.3 ¶3
        }
        if (!te.last_chunked) {
            return fail(parse_error::chunked_not_final);  // RFC 9112 §6.3 ¶4
        }
        if (te.codings != 1) {
            // Another coding before chunked, or chunked twice (RFC 9112 §6.1 forbids it).
            return fail(parse_error::unsupported_transfer_coding);
        }
        out.body = body_kind::chunked;
    } else if (h.content_length.present) {
        if (h.content_length.error != parse_error::none) {
            return fail(h.content_length.error);
        }
        out.body = body_kind::length;
        out.content_length = h.content_length.value;
    }

    out.connection = h.connection;
    out.keep_alive = persistent(out.version_minor, h.connection);
    // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored.
    out.expect_continue = h.expect_continue && out.version_minor == 1;
    out.expect_other = h.expect_other;
    return parse_status::complete;
}

parse_status parse_response(std::string_view buffer, std::span<header_field> storage,
                            const parse_limits& limits, bool request_method_head,
                            response_head& out, parse_error& error) noexcept {
    out = response_head{};
    error = parse_error::none;
    const char* const begin = buffer.data();
    const char* const end = begin + std::min(buffer.size(), limits.max_head_bytes);
    const char* p = begin;

    scan_result r = p == end ? scan_more : scan_status_line(p, end, out);
    std::size_t count = 0;
    if (r.status == parse_status::complete) {
        r = scan_fields(p, end, storage, std::min(limits.max_headers, storage.size()), count);
    }
    if (r.status == parse_status::incomplete) {
        r = finish_incomplete(buffer, limits);
    }
    if (r.status != parse_status::complete) {
        error = r.error;
        return r.status;
    }
    out.fields = storage.first(count);
    out.head_bytes = static_cast<std::size_t>(p - begin);

    const head_fields h = summarize_fields(out.fields);
    out.connection = h.connection;
    auto fail = [&error](parse_error e) {
        error = e;
        return parse_status::error;
    };

    // RFC 9112 §6.3, in its order.
    const transfer_encoding_state& te = h.transfer_encoding;
    if (request_method_head || out.status < 200 || out.status == 204 || out.status == 304) {
        out.body = body_kind::none;  // ¶1-2: framing fields are not about this message
    } else if (te.present) {
        if (out.version_minor == 0) {
            // RFC 9112 §6.1: the framing of such a message is faulty.
            return fail(parse_error::transfer_encoding_http10);
        }
        if (te.chunked > 1 || te.malformed) {
            return fail(parse_error::unsupported_transfer_coding);
        }
        // ¶3-4: chunked last wins over any Content-Length (which the forwarder must drop);
        // otherwise the body runs until the upstream closes.
        out.body = te.last_chunked ? body_kind::chunked : body_kind::until_close;
    } else if (h.content_length.present) {
        if (h.content_length.error != parse_error::none) {
            return fail(h.content_length.error);  // ¶5: unrecoverable error
        }
        out.body = body_kind::length;
        out.content_length = h.content_length.value;
    } else {
        out.body = body_kind::until_close;  // ¶8
    }
    out.keep_alive =
        out.body != body_kind::until_close && persistent(out.version_minor, h.connection);
    return parse_status::complete;
}

// ---------------------------------------------------------------------------------------------
// chunked_parser
//
// chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 §7.1). Framing bytes are
// handled one at a time; chunk data in one step (memmove in decode mode).

// RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
// names are tokens and values tokens or quoted-strings. Extensions carry nothing we use, but one
// that another parser would read differently, or whitespace with no extension after it, could
// make two hops disagree on where a chunk starts, so each byte is checked against the grammar.
chunked_parser::state chunked_parser::next_on_size_line(state s, char c) noexcept {
    // After the size, a token value or a closing DQUOTE: more extensions, or the line's end.
    auto after_item = [](char b) {
        if (is_ows(b)) {
            return state::ext_bws;
        }
        if (b == ';') {
            return state::ext_name_bws;
        }
        return b == '\r' ? state::size_lf : state::failed;
    };
    switch (s) {
        case state::size:
        case state::ext_quoted_end:
            return after_item(c);
        case state::ext_bws:
            if (is_ows(c)) {
                return s;
            }
            return c == ';' ? state::ext_name_bws : state::failed;
        case state::ext_name_bws:
            if (is_ows(c)) {
                return s;
            }
            return is(c, tchar) ? state::ext_name : state::failed;  // `5;` CRLF has no name
        case state::ext_name:
            if (is(c, tchar)) {
                return s;
            }
            if (c == '=') {
                return state::ext_value_bws;
            }
            return is_ows(c) ? state::ext_name_end : after_item(c);
        case state::ext_name_end:
            if (is_ows(c)) {
                return s;
            }
            if (c == '=') {
                return state::ext_value_bws;
            }
            return c == ';' ? state::ext_name_bws : state::failed;
        case state::ext_value_bws:
            if (is_ows(c)) {
                return s;
            }
            if (c == '"') {
                return state::ext_quoted;
            }
            return is(c, tchar) ? state::ext_token : state::failed;
        case state::ext_token:
            return is(c, tchar) ? s : after_item(c);
        case state::ext_quoted:
            // qdtext is a field-value byte but DQUOTE and backslash (RFC 9110 §5.6.4).
            if (c == '"') {
                return state::ext_quoted_end;
            }
            if (c == '\\') {
                return state::ext_quoted_pair;
            }
            return is(c, field) ? s : state::failed;
        case state::ext_quoted_pair:
            return is(c, field) ? state::ext_quoted : state::failed;
        default:
            return state::failed;
    }
}

parse_error chunked_parser::on_size_line(char c) noexcept {
    if (state_ == state::size) {
        if (const int v = hex_value(c); v >= 0) {
            if (size_digits_ == 16 || remaining_ > (max_chunk_size >> 4)) {
                return parse_error::bad_chunk_size;
            }
            remaining_ = (remaining_ << 4) | static_cast<std::uint64_t>(v);
            ++size_digits_;
            ++line_bytes_;
            return parse_error::none;
        }
        if (size_digits_ == 0) {
            return parse_error::bad_chunk_size;  // chunk-size = 1*HEXDIG
        }
    } else if (line_bytes_ + 1 > max_chunk_line_bytes) {
        return parse_error::bad_chunk_size;
    }
    ++line_bytes_;
    state_ = next_on_size_line(state_, c);
    return state_ == state::failed ? parse_error::bad_chunk_size : parse_error::none;
}

chunked_parser::state chunked_parser::next_on_trailer(state s, char c) noexcept {
    switch (s) {
        case state::trailer_start:
            // A trailer field line starts with a token; whitespace would be obs-fold or a
            // malformed line (RFC 9112 §5.2, §7.1.2).
            if (c == '\r') {
                return state::final_lf;
            }
            return is(c, tchar) ? state::trailer_line : state::failed;
        case state::trailer_line:
            if (c == ':') {
                return state::trailer_value;
            }
            return is(c, tchar) ? s : state::failed;  // incl. SP before ':'
        case state::trailer_value:
            if (c == '\r') {
                return state::trailer_lf;
            }
            return is(c, field) ? s : state::failed;
        case state::trailer_lf:
            return c == '\n' ? state::trailer_start : state::failed;
        case state::final_lf:
            return c == '\n' ? state::done : state::failed;
        default:
            return state::failed;
    }
}

void chunked_parser::take_data(std::span<char> input, std::size_t& i, std::size_t* out) noexcept {
    const std::size_t take =
        static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size() - i));
    if (out != nullptr) {
        if (*out != i) {
            std::memmove(input.data() + *out, input.data() + i, take);
        }
        *out += take;
    }
    i += take;
    remaining_ -= take;
    payload_ += take;
    if (remaining_ == 0) {
        state_ = state::data_cr;
    }
}

chunked_parser::result chunked_parser::feed(std::span<char> input, bool decode) noexcept {
    result res;
    if (state_ == state::failed) {
        res.error = error_;
        return res;
    }
    char* const buf = input.data();
    const std::size_t n = input.size();
    std::size_t i = 0;    // read position
    std::size_t out = 0;  // decode mode: write position of payload

    auto fail = [&](parse_error e) {
        state_ = state::failed;
        error_ = e;
        res.consumed = i;
        res.data = out;
        res.error = e;
        return res;
    };

    while (i < n && state_ != state::done) {
        const char c = buf[i];
        switch (state_) {
            case state::size_lf:
                if (c != '\n') {
                    return fail(parse_error::bad_chunk_size);
                }
                if (remaining_ == 0) {
                    state_ = state::trailer_start;  // last-chunk
                    trailer_bytes_ = 0;
                } else {
                    state_ = state::data;
                }
                ++i;
                break;
            case state::data:
                take_data(input, i, decode ? &out : nullptr);
                break;
            case state::data_cr:
            case state::data_lf:
                if (c != (state_ == state::data_cr ? '\r' : '\n')) {
                    return fail(parse_error::bad_chunk_data);
                }
                if (state_ == state::data_cr) {
                    state_ = state::data_lf;
                } else {
                    state_ = state::size;
                    size_digits_ = 0;
                    line_bytes_ = 0;
                }
                ++i;
                break;
            case state::trailer_start:
            case state::trailer_line:
            case state::trailer_value:
            case state::trailer_lf:
            case state::final_lf:
                if (++trailer_bytes_ > max_trailer_bytes_) {
                    return fail(parse_error::bad_trailer);
                }
                state_ = next_on_trailer(state_, c);
                if (state_ == state::failed) {
                    return fail(parse_error::bad_trailer);
                }
                ++i;
                break;
            case state::done:
            case state::failed:
                break;
            default:  // the size line: its digits, extensions and CR
                if (const parse_error e = on_size_line(c); e != parse_error::none) {
                    return fail(e);
                }
                ++i;
                break;
        }
    }
    res.consumed = i;
    res.data = out;
    res.done = state_ == state::done;
    return res;
}

}  // namespace switchyard::http1
