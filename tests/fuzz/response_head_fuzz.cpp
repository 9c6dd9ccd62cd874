// libFuzzer target for http1::parse_response, as the answer to a HEAD request and to any other.
// Every complete head is checked for its invariants and the body length RFC 9112 §6.3 gives it,
// written out canonically and parsed again to the same response, rewritten for the client and
// parsed again with the framing the session relies on; prefixes and tighter limits must never
// change an answer into a different one.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "proxy/http1.hpp"
#include "proxy/rewrite.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace switchyard;
using fuzz::as_view;
using http1::body_kind;
using http1::parse_error;
using http1::parse_status;

constexpr http1::parse_limits wide_limits{64 * 1024, 100};
constexpr http1::parse_limits tight_limits{200, 10};
constexpr std::size_t tight_storage = 6;

struct response_parse {
    parse_status status = parse_status::error;
    parse_error error = parse_error::none;
    http1::response_head head;
};

response_parse parse(std::string_view buffer, std::span<http1::header_field> storage,
                     const http1::parse_limits& limits, bool head_request) {
    response_parse r;
    r.status = http1::parse_response(buffer, storage, limits, head_request, r.head, r.error);
    FUZZ_CHECK((r.status == parse_status::error) == (r.error != parse_error::none));
    return r;
}

// The same status line and fields.
bool same_head(const http1::response_head& a, const http1::response_head& b) {
    return a.status == b.status && a.reason == b.reason && a.version_minor == b.version_minor &&
           fuzz::same_fields(a.fields, b.fields) &&
           fuzz::same_connection(a.connection, b.connection);
}

// ... and the same conclusions about the body and the connection.
bool same_response(const http1::response_head& a, const http1::response_head& b) {
    return same_head(a, b) && a.body == b.body && a.content_length == b.content_length &&
           a.keep_alive == b.keep_alive;
}

bool same_answer(const response_parse& a, const response_parse& b) {
    if (a.status != b.status || a.error != b.error) {
        return false;
    }
    return a.status != parse_status::complete ||
           (same_response(a.head, b.head) && a.head.head_bytes == b.head.head_bytes);
}

bool is_limit_error(parse_error e) {
    return e == parse_error::head_too_large || e == parse_error::too_many_headers;
}

// Errors that come from the framing fields, which a response to HEAD does not have.
bool is_framing_error(parse_error e) {
    return e == parse_error::transfer_encoding_http10 ||
           e == parse_error::unsupported_transfer_coding || e == parse_error::bad_content_length ||
           e == parse_error::conflicting_content_length;
}

std::string status_line(const http1::response_head& h) {
    std::string line = h.version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
    line.append(std::to_string(h.status)).append(" ").append(h.reason).append("\r\n");
    return line;
}

std::string canonical_head(const http1::response_head& h) {
    std::string out = status_line(h);
    fuzz::append_canonical_fields(h.fields, out);
    return out;
}

void check_invariants(std::string_view buffer, std::span<http1::header_field> storage,
                      const http1::parse_limits& limits, bool head_request,
                      const http1::response_head& h) {
    fuzz::check_head_invariants(buffer, storage, limits, h.fields, h.head_bytes);
    const std::string_view head = buffer.substr(0, h.head_bytes);

    FUZZ_CHECK(h.status >= 100 && h.status <= 599);
    FUZZ_CHECK(h.version_minor == 0 || h.version_minor == 1);
    FUZZ_CHECK(fuzz::inside(h.reason, head));
    for (char c : h.reason) {
        FUZZ_CHECK(fuzz::is_field_byte(c));
    }
    // The status line is the start of the head; a reason may only be empty without its SP.
    const std::string line = status_line(h);
    if (h.reason.empty() && head[12] == '\r') {
        FUZZ_CHECK(head.starts_with(line.substr(0, 12)));
    } else {
        FUZZ_CHECK(head.starts_with(line));
    }

    // RFC 9112 §6.3 in its order.
    const std::size_t cl = fuzz::count_fields(h.fields, "content-length");
    const std::size_t te = fuzz::count_fields(h.fields, "transfer-encoding");
    if (head_request || h.status < 200 || h.status == 204 || h.status == 304) {
        FUZZ_CHECK(h.body == body_kind::none);
    } else if (te > 0) {
        FUZZ_CHECK(h.version_minor == 1);
        FUZZ_CHECK(h.body == body_kind::chunked || h.body == body_kind::until_close);
    } else if (cl > 0) {
        FUZZ_CHECK(h.body == body_kind::length);
    } else {
        FUZZ_CHECK(h.body == body_kind::until_close);
    }
    FUZZ_CHECK(h.body == body_kind::length || h.content_length == 0);
    FUZZ_CHECK(h.keep_alive == (h.body != body_kind::until_close &&
                                fuzz::persistent(h.version_minor, h.connection)));
}

void check_round_trip(const http1::response_head& h, bool head_request) {
    const std::string text = canonical_head(h);
    std::array<http1::header_field, wide_limits.max_headers> storage;
    const http1::parse_limits limits{std::max(wide_limits.max_head_bytes, text.size()),
                                     wide_limits.max_headers};
    const response_parse again = parse(text, storage, limits, head_request);
    FUZZ_CHECK(again.status == parse_status::complete);
    FUZZ_CHECK(same_response(again.head, h));
    FUZZ_CHECK(again.head.head_bytes == text.size());
    FUZZ_CHECK(canonical_head(again.head) == text);
}

// What the session sends the client parses again as the same status with the framing the session
// relays: the same, except that a chunked body to an HTTP/1.0 client is decoded and delimited
// by closing. The session closes when the body runs until close or is decoded, and may close
// after any other response (the client's Connection: close, a drain).
void check_forwarded(const http1::response_head& h, bool head_request) {
    for (const int variant : {0, 1, 2, 3}) {
        const bool client_http10 = (variant & 1) != 0;
        const bool close = (variant & 2) != 0 || h.body == body_kind::until_close ||
                           (h.body == body_kind::chunked && client_http10);
        std::string out;
        proxy::write_downstream_response(h, {"fuzz-request-id", close, client_http10}, out);

        std::array<http1::header_field, 2 * wide_limits.max_headers> storage;
        const http1::parse_limits limits{out.size(), storage.size()};
        const response_parse sent = parse(out, storage, limits, head_request);
        FUZZ_CHECK(sent.status == parse_status::complete);
        const http1::response_head& s = sent.head;
        FUZZ_CHECK(s.head_bytes == out.size());
        FUZZ_CHECK(s.status == h.status && s.reason == h.reason && s.version_minor == 1);
        const bool decoded = h.body == body_kind::chunked && client_http10;
        FUZZ_CHECK(s.body == (decoded ? body_kind::until_close : h.body));
        FUZZ_CHECK(s.content_length == h.content_length);
        FUZZ_CHECK(s.connection.close == close && !s.connection.has_other);
        FUZZ_CHECK(s.connection.keep_alive == (client_http10 && !close));
        if (h.body != body_kind::none) {
            FUZZ_CHECK(fuzz::count_fields(s.fields, "content-length") == 0 ||
                       fuzz::count_fields(s.fields, "transfer-encoding") == 0);
        }
    }
}

void check_prefix(std::string_view input, std::size_t length,
                  std::span<http1::header_field> storage, const http1::parse_limits& limits,
                  bool head_request, const response_parse& whole) {
    if (length > input.size()) {
        return;
    }
    const response_parse part = parse(input.substr(0, length), storage, limits, head_request);
    if (whole.status == parse_status::complete && length >= whole.head.head_bytes) {
        FUZZ_CHECK(same_answer(part, whole));
    } else {
        FUZZ_CHECK(part.status == parse_status::incomplete ||
                   (part.status == whole.status && part.error == whole.error &&
                    whole.status == parse_status::error));
    }
}

void check_prefixes(std::string_view input, std::span<http1::header_field> storage,
                    const http1::parse_limits& limits, bool head_request,
                    const response_parse& whole) {
    const std::size_t n = input.size();
    if (n == 0) {
        return;
    }
    if (whole.status == parse_status::complete) {
        check_prefix(input, whole.head.head_bytes, storage, limits, head_request, whole);
        check_prefix(input, whole.head.head_bytes - 1, storage, limits, head_request, whole);
    }
    check_prefix(input, n - 1, storage, limits, head_request, whole);
    check_prefix(input, static_cast<std::size_t>(fuzz::input_hash(input) % n), storage, limits,
                 head_request, whole);
}

void check_tight_against_wide(const response_parse& tight, const response_parse& wide) {
    if (tight.status == parse_status::error && is_limit_error(tight.error)) {
        if (wide.status == parse_status::complete) {
            FUZZ_CHECK(wide.head.head_bytes > tight_limits.max_head_bytes ||
                       wide.head.fields.size() > tight_storage);
        }
        return;
    }
    FUZZ_CHECK(same_answer(tight, wide));
}

// The request method changes the body only: the head is read the same, and a response to HEAD
// is refused only for what both would refuse.
void check_head_against_other(const response_parse& for_head, const response_parse& for_get) {
    if (for_head.status != parse_status::complete) {
        FUZZ_CHECK(for_get.status == for_head.status && for_get.error == for_head.error);
        return;
    }
    if (for_get.status == parse_status::error) {
        FUZZ_CHECK(is_framing_error(for_get.error));
        return;
    }
    FUZZ_CHECK(for_get.status == parse_status::complete);
    FUZZ_CHECK(same_head(for_head.head, for_get.head));
    FUZZ_CHECK(for_head.head.head_bytes == for_get.head.head_bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = as_view(data, size);

    std::array<http1::header_field, wide_limits.max_headers> head_storage;
    const response_parse for_head = parse(input, head_storage, wide_limits, true);
    std::array<http1::header_field, wide_limits.max_headers> get_storage;
    const response_parse for_get = parse(input, get_storage, wide_limits, false);
    check_head_against_other(for_head, for_get);

    for (const bool head_request : {true, false}) {
        const response_parse& wide = head_request ? for_head : for_get;
        std::span<http1::header_field> wide_storage = head_request ? head_storage : get_storage;
        if (wide.status == parse_status::complete) {
            check_invariants(input, wide_storage, wide_limits, head_request, wide.head);
            check_round_trip(wide.head, head_request);
            check_forwarded(wide.head, head_request);
        }

        std::array<http1::header_field, tight_storage> tight_storage_array;
        const response_parse tight = parse(input, tight_storage_array, tight_limits, head_request);
        if (tight.status == parse_status::complete) {
            check_invariants(input, tight_storage_array, tight_limits, head_request, tight.head);
        }
        check_tight_against_wide(tight, wide);

        std::array<http1::header_field, wide_limits.max_headers> prefix_storage;
        check_prefixes(input, prefix_storage, wide_limits, head_request, wide);
        std::array<http1::header_field, tight_storage> tight_prefix_storage;
        check_prefixes(input, tight_prefix_storage, tight_limits, head_request, tight);
    }
    return 0;
}
