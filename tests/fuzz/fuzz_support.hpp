#pragma once
// What the libFuzzer targets of tests/fuzz share: a check that stops the run with a message (a
// crash to libFuzzer, which saves the input), character classes written from the RFC grammar
// rather than taken from the parser, and small helpers on views.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "proxy/http1.hpp"

// Stops the run when `cond` is false, naming it. A macro only for #cond and the line.
#define FUZZ_CHECK(cond) \
    ((cond) ? static_cast<void>(0) : ::switchyard::fuzz::check_failed(#cond, __FILE__, __LINE__))

namespace switchyard::fuzz {

[[noreturn]] inline void check_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    std::abort();
}

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// FNV-1a of the input: split points and prefix lengths follow the input, so the fuzzer steers
// them by mutating it, while a seed file stays a plain message.
inline std::uint64_t input_hash(std::string_view s) {
    std::uint64_t h = 0xcbf29ce484222325;
    for (char c : s) {
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3;
    }
    return h;
}

// True when `part` is empty or lies within `whole`.
inline bool inside(std::string_view part, std::string_view whole) {
    if (part.empty()) {
        return true;
    }
    std::less_equal<const char*> le;
    return le(whole.data(), part.data()) &&
           le(part.data() + part.size(), whole.data() + whole.size());
}

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
// "_" / "`" / "|" / "~" / DIGIT / ALPHA.
inline bool is_tchar(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

inline bool is_token(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (!is_tchar(c)) {
            return false;
        }
    }
    return true;
}

inline bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

// RFC 9110 §5.5: field-vchar / SP / HTAB, obs-text included.
inline bool is_field_byte(char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == '\t' || (u >= 0x20 && u != 0x7F);
}

// A field value as the parser must leave it: field bytes only, no OWS at either end.
inline bool is_trimmed_field_value(std::string_view v) {
    for (char c : v) {
        if (!is_field_byte(c)) {
            return false;
        }
    }
    return v.empty() || (!is_ows(v.front()) && !is_ows(v.back()));
}

inline bool same_fields(std::span<const http1::header_field> a,
                        std::span<const http1::header_field> b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].name != b[i].name || a[i].value != b[i].value) {
            return false;
        }
    }
    return true;
}

inline bool same_connection(const http1::connection_options& a,
                            const http1::connection_options& b) {
    return a.close == b.close && a.keep_alive == b.keep_alive && a.has_other == b.has_other;
}

// How many fields are named `name`, ignoring case.
inline std::size_t count_fields(std::span<const http1::header_field> fields,
                                std::string_view name) {
    std::size_t n = 0;
    for (const auto& f : fields) {
        n += http1::iequals(f.name, name) ? 1 : 0;
    }
    return n;
}

// Appends the fields as "name: value" lines and the empty line that ends a head: the one
// spelling every parse of them must give back unchanged.
inline void append_canonical_fields(std::span<const http1::header_field> fields, std::string& out) {
    for (const auto& f : fields) {
        out.append(f.name).append(": ").append(f.value).append("\r\n");
    }
    out.append("\r\n");
}

// Checks what every complete head shares: head_bytes within the input and the limit, the head
// ending in the empty line, the fields a prefix of the storage within the limit, each name a
// token and each value trimmed, all views inside the head.
inline void check_head_invariants(std::string_view buffer, std::span<http1::header_field> storage,
                                  const http1::parse_limits& limits,
                                  std::span<const http1::header_field> fields,
                                  std::size_t head_bytes) {
    FUZZ_CHECK(head_bytes <= buffer.size());
    FUZZ_CHECK(head_bytes <= limits.max_head_bytes);
    FUZZ_CHECK(head_bytes >= 4);
    const std::string_view head = buffer.substr(0, head_bytes);
    FUZZ_CHECK(head.ends_with("\r\n\r\n"));
    FUZZ_CHECK(fields.data() == storage.data() || fields.empty());
    FUZZ_CHECK(fields.size() <= storage.size());
    FUZZ_CHECK(fields.size() <= limits.max_headers);
    for (const auto& f : fields) {
        FUZZ_CHECK(is_token(f.name));
        FUZZ_CHECK(inside(f.name, head));
        FUZZ_CHECK(is_trimmed_field_value(f.value));
        FUZZ_CHECK(inside(f.value, head));
        FUZZ_CHECK(f.name.data() + f.name.size() < head.data() + head.size());
        FUZZ_CHECK(f.name.data()[f.name.size()] == ':');
    }
}

// RFC 9112 §9.3: what a message's version and Connection options say about the connection.
inline bool persistent(int version_minor, const http1::connection_options& c) {
    return !c.close && (version_minor == 1 || c.keep_alive);
}

}  // namespace switchyard::fuzz
