// libFuzzer target for http1::parse_request. A parse must accept only what it can write back:
// every complete head is checked for its invariants, written out canonically and parsed again to
// the same request, rewritten for the upstream and parsed again with the same framing; prefixes
// and tighter limits must never change an answer into a different one.

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
using http1::parse_error;
using http1::parse_status;

// Wide limits: fuzz inputs (4 KiB unless -max_len says otherwise) do not reach them.
constexpr http1::parse_limits wide_limits{64 * 1024, 100};
// Tight limits that ordinary inputs reach, with less storage than max_headers so that the
// storage bounds the fields too.
constexpr http1::parse_limits tight_limits{200, 10};
constexpr std::size_t tight_storage = 6;

struct request_parse {
    parse_status status = parse_status::error;
    parse_error error = parse_error::none;
    http1::request_head head;
};

request_parse parse(std::string_view buffer, std::span<http1::header_field> storage,
                    const http1::parse_limits& limits) {
    request_parse r;
    r.status = http1::parse_request(buffer, storage, limits, r.head, r.error);
    FUZZ_CHECK((r.status == parse_status::error) == (r.error != parse_error::none));
    return r;
}

// The same request, field by field and in what the parser concluded from it.
bool same_request(const http1::request_head& a, const http1::request_head& b) {
    return a.method == b.method && a.target == b.target && a.version_minor == b.version_minor &&
           fuzz::same_fields(a.fields, b.fields) && a.host == b.host && a.body == b.body &&
           a.content_length == b.content_length &&
           fuzz::same_connection(a.connection, b.connection) && a.keep_alive == b.keep_alive &&
           a.expect_continue == b.expect_continue && a.expect_other == b.expect_other;
}

bool same_answer(const request_parse& a, const request_parse& b) {
    if (a.status != b.status || a.error != b.error) {
        return false;
    }
    return a.status != parse_status::complete ||
           (same_request(a.head, b.head) && a.head.head_bytes == b.head.head_bytes);
}

bool is_limit_error(parse_error e) {
    return e == parse_error::head_too_large || e == parse_error::too_many_headers ||
           e == parse_error::method_too_long || e == parse_error::target_too_long;
}

std::string request_line(const http1::request_head& h) {
    std::string line;
    line.append(h.method).append(" ").append(h.target);
    line.append(h.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    return line;
}

std::string canonical_head(const http1::request_head& h) {
    std::string out = request_line(h);
    fuzz::append_canonical_fields(h.fields, out);
    return out;
}

void check_invariants(std::string_view buffer, std::span<http1::header_field> storage,
                      const http1::parse_limits& limits, const http1::request_head& h) {
    fuzz::check_head_invariants(buffer, storage, limits, h.fields, h.head_bytes);
    const std::string_view head = buffer.substr(0, h.head_bytes);

    // The request line is where the views say, after at most 4 empty lines (RFC 9112 §2.2).
    FUZZ_CHECK(fuzz::is_token(h.method));
    FUZZ_CHECK(!h.target.empty());
    FUZZ_CHECK(h.version_minor == 0 || h.version_minor == 1);
    const std::size_t line_start = static_cast<std::size_t>(h.method.data() - buffer.data());
    FUZZ_CHECK(line_start <= 8 && line_start % 2 == 0);
    for (std::size_t i = 0; i < line_start; i += 2) {
        FUZZ_CHECK(head.substr(i, 2) == "\r\n");
    }
    FUZZ_CHECK(head.substr(line_start).starts_with(request_line(h)));
    for (char c : h.target) {
        const auto u = static_cast<unsigned char>(c);
        FUZZ_CHECK(u > 0x20 && u < 0x7F && c != '#');
    }

    // Host: one for HTTP/1.1, at most one for HTTP/1.0, and `host` is its value.
    const std::size_t hosts = fuzz::count_fields(h.fields, "host");
    FUZZ_CHECK(hosts == 1 || (hosts == 0 && h.version_minor == 0));
    FUZZ_CHECK(hosts == 1 ? !h.host.empty() && fuzz::inside(h.host, head) : h.host.empty());
    for (const auto& f : h.fields) {
        if (http1::iequals(f.name, "host")) {
            FUZZ_CHECK(f.value.data() == h.host.data() && f.value.size() == h.host.size());
        }
    }

    // Framing (RFC 9112 §6.3): never both fields, never until_close for a request.
    const std::size_t cl = fuzz::count_fields(h.fields, "content-length");
    const std::size_t te = fuzz::count_fields(h.fields, "transfer-encoding");
    FUZZ_CHECK(cl == 0 || te == 0);
    switch (h.body) {
        case http1::body_kind::none:
            FUZZ_CHECK(cl == 0 && te == 0);
            break;
        case http1::body_kind::length:
            FUZZ_CHECK(cl > 0);
            break;
        case http1::body_kind::chunked:
            FUZZ_CHECK(te > 0 && h.version_minor == 1);
            break;
        case http1::body_kind::until_close:
            FUZZ_CHECK(false);
            break;
    }
    FUZZ_CHECK(h.body == http1::body_kind::length || h.content_length == 0);
    FUZZ_CHECK(h.keep_alive == fuzz::persistent(h.version_minor, h.connection));
    FUZZ_CHECK(!h.expect_continue || h.version_minor == 1);
}

// The canonical spelling parses to the same request, and writes back to itself.
void check_round_trip(const http1::request_head& h) {
    const std::string text = canonical_head(h);
    std::array<http1::header_field, wide_limits.max_headers> storage;
    const http1::parse_limits limits{std::max(wide_limits.max_head_bytes, text.size()),
                                     wide_limits.max_headers};
    const request_parse again = parse(text, storage, limits);
    FUZZ_CHECK(again.status == parse_status::complete);
    FUZZ_CHECK(same_request(again.head, h));
    FUZZ_CHECK(again.head.head_bytes == text.size());
    FUZZ_CHECK(canonical_head(again.head) == text);
}

// What the session sends upstream parses again, with the same method and framing, as one
// persistent HTTP/1.1 request with one Host and at most one framing field.
void check_forwarded(const http1::request_head& h) {
    if (h.method == "CONNECT" || h.expect_other) {
        return;  // answered by the proxy itself (405, 417), never forwarded
    }
    constexpr std::string_view fallback_host = "upstream.internal:8080";
    // As the session does: an Upgrade to an allowed protocol is kept, with Connection: upgrade;
    // any other is dropped.
    static const std::array<std::string, 1> allow{"websocket"};
    const bool upgrade = proxy::wants_upgrade(h, allow);
    const std::span<const std::string> kept =
        upgrade ? std::span<const std::string>(allow) : std::span<const std::string>();
    std::string out;
    proxy::write_upstream_request(
        h, {"192.0.2.1", "fuzz-request-id", true, fallback_host, false, kept, {}}, out);

    std::array<http1::header_field, 2 * wide_limits.max_headers> storage;
    const http1::parse_limits limits{out.size(), storage.size()};
    const request_parse sent = parse(out, storage, limits);
    FUZZ_CHECK(sent.status == parse_status::complete);
    const http1::request_head& s = sent.head;
    FUZZ_CHECK(s.head_bytes == out.size());
    FUZZ_CHECK(s.method == h.method);
    FUZZ_CHECK(s.version_minor == 1);
    FUZZ_CHECK(s.body == h.body);
    FUZZ_CHECK(s.content_length == h.content_length);
    FUZZ_CHECK(s.keep_alive && !s.connection.close && s.connection.has_other == upgrade);
    FUZZ_CHECK(fuzz::count_fields(s.fields, "upgrade") == (upgrade ? 1U : 0U));
    if (upgrade) {
        FUZZ_CHECK(proxy::wants_upgrade(s, allow));  // the next hop sees the same request
    }
    FUZZ_CHECK(!s.expect_continue && !s.expect_other);
    const std::size_t framing_fields = fuzz::count_fields(s.fields, "content-length") +
                                       fuzz::count_fields(s.fields, "transfer-encoding");
    FUZZ_CHECK(framing_fields <= 1);
    const bool absolute = h.target.front() != '/' && h.target != "*";
    if (absolute) {
        // RFC 9112 §3.2.2: origin-form upstream ("/" for an empty path), Host from the
        // authority.
        const std::string_view rest = h.target.substr(h.target.find("://") + 3);
        const std::size_t path_start = std::min(rest.find_first_of("/?"), rest.size());
        std::string path(rest.substr(path_start));
        if (path.empty() || path.front() == '?') {
            path.insert(0, "/");
        }
        FUZZ_CHECK(s.target == path);
        FUZZ_CHECK(s.host == rest.substr(0, path_start));
    } else {
        FUZZ_CHECK(s.target == h.target);
        FUZZ_CHECK(s.host == (h.host.empty() ? fallback_host : h.host));
    }
}

// A prefix of the input gets no answer but "read more" or the input's own.
void check_prefix(std::string_view input, std::size_t length,
                  std::span<http1::header_field> storage, const http1::parse_limits& limits,
                  const request_parse& whole) {
    if (length > input.size()) {
        return;
    }
    const request_parse part = parse(input.substr(0, length), storage, limits);
    if (whole.status == parse_status::complete && length >= whole.head.head_bytes) {
        FUZZ_CHECK(same_answer(part, whole));  // the bytes after a head change nothing
    } else {
        FUZZ_CHECK(part.status == parse_status::incomplete ||
                   (part.status == whole.status && part.error == whole.error &&
                    whole.status == parse_status::error));
    }
}

void check_prefixes(std::string_view input, std::span<http1::header_field> storage,
                    const http1::parse_limits& limits, const request_parse& whole) {
    const std::size_t n = input.size();
    if (n == 0) {
        return;
    }
    if (whole.status == parse_status::complete) {
        check_prefix(input, whole.head.head_bytes, storage, limits, whole);
        check_prefix(input, whole.head.head_bytes - 1, storage, limits, whole);
    }
    check_prefix(input, n - 1, storage, limits, whole);
    check_prefix(input, n / 2, storage, limits, whole);
    check_prefix(input, static_cast<std::size_t>(fuzz::input_hash(input) % n), storage, limits,
                 whole);
}

// Tighter limits can only turn an answer into a limit error, and only when the wide answer is
// beyond them.
void check_tight_against_wide(const request_parse& tight, const request_parse& wide) {
    if (tight.status == parse_status::error && is_limit_error(tight.error)) {
        if (wide.status == parse_status::complete) {
            FUZZ_CHECK(wide.head.head_bytes > tight_limits.max_head_bytes ||
                       wide.head.fields.size() > tight_storage);
        }
        return;
    }
    FUZZ_CHECK(same_answer(tight, wide));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = as_view(data, size);

    std::array<http1::header_field, wide_limits.max_headers> wide_storage;
    const request_parse wide = parse(input, wide_storage, wide_limits);
    std::array<http1::header_field, tight_storage> tight_storage_array;
    const request_parse tight = parse(input, tight_storage_array, tight_limits);

    if (wide.status == parse_status::complete) {
        check_invariants(input, wide_storage, wide_limits, wide.head);
        check_round_trip(wide.head);
        check_forwarded(wide.head);
    }
    if (tight.status == parse_status::complete) {
        check_invariants(input, tight_storage_array, tight_limits, tight.head);
    }
    check_tight_against_wide(tight, wide);

    // `wide` and `tight` keep views into their storage: the prefixes get storage of their own.
    std::array<http1::header_field, wide_limits.max_headers> prefix_storage;
    check_prefixes(input, prefix_storage, wide_limits, wide);
    std::array<http1::header_field, tight_storage> tight_prefix_storage;
    check_prefixes(input, tight_prefix_storage, tight_limits, tight);
    return 0;
}
