// libFuzzer target for http1::chunked_parser. The input is a chunked body as it comes off the
// wire. It is fed whole, in two pieces split where the input's hash says, one byte at a time,
// and (when short) split at every offset, in both modes; every way must give the same answer.
// That answer must also be the reference's below: RFC 9112 §7.1 read as a grammar over the whole
// input, with the parser's bounds, which decides done / read more / refused (and at which
// byte) and the decoded payload.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http1.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace switchyard;
using fuzz::as_view;
using http1::chunked_parser;
using http1::parse_error;

// The parser's bounds: a chunk-size line of at most this many bytes, its CR included; at most
// 16 digits of size, and sizes up to 2^63 - 1.
constexpr std::size_t max_size_line = 4096;
constexpr std::size_t max_size_digits = 16;
constexpr std::uint64_t max_chunk_size = std::numeric_limits<std::int64_t>::max();
// A trailer bound that fuzz inputs reach, next to the default that they do not.
constexpr std::size_t small_trailer_bytes = 32;
constexpr std::size_t default_trailer_bytes = 64 * 1024;

// =============================================================================================
// The reference

enum class end_kind { done, incomplete, error };

struct outcome {
    end_kind kind = end_kind::incomplete;
    parse_error error = parse_error::none;
    std::size_t consumed = 0;  // done: the body's length; error: the refused byte's offset;
                               // incomplete: the input's length
    std::string payload;       // the chunk data before that point
};

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// RFC 9110 §5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
bool is_qdtext(char c) {
    return fuzz::is_field_byte(c) && c != '"' && c != '\\';
}

// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ).
bool is_quoted_pair_byte(char c) {
    return fuzz::is_field_byte(c);
}

// True when `line` (without its CRLF) is chunk-size [ chunk-ext ] within the parser's bounds on
// the size, with the size in `size`. RFC 9112 §7.1.1:
//   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//   chunk-ext-name = token, chunk-ext-val = token / quoted-string
bool read_size_line(std::string_view line, std::uint64_t& size) {
    const std::size_t n = line.size();
    std::size_t i = 0;
    size = 0;
    while (i < n && hex_value(line[i]) >= 0) {
        if (i == max_size_digits) {
            return false;
        }
        size = size * 16 + static_cast<std::uint64_t>(hex_value(line[i]));
        ++i;
    }
    if (i == 0 || size > max_chunk_size) {
        return false;
    }
    auto skip_bws = [&] {
        while (i < n && fuzz::is_ows(line[i])) {
            ++i;
        }
    };
    auto token = [&] {
        const std::size_t start = i;
        while (i < n && fuzz::is_tchar(line[i])) {
            ++i;
        }
        return i > start;
    };
    auto quoted_string = [&] {
        if (i == n || line[i] != '"') {
            return false;
        }
        for (++i; i < n; ++i) {
            if (line[i] == '"') {
                ++i;
                return true;
            }
            if (line[i] == '\\') {
                if (i + 1 == n || !is_quoted_pair_byte(line[i + 1])) {
                    return false;
                }
                ++i;
            } else if (!is_qdtext(line[i])) {
                return false;
            }
        }
        return false;
    };
    while (i < n) {
        skip_bws();
        if (i == n || line[i] != ';') {
            return false;
        }
        ++i;
        skip_bws();
        if (!token()) {
            return false;
        }
        const std::size_t after_name = i;
        skip_bws();
        if (i < n && line[i] == '=') {
            ++i;
            skip_bws();
            if (!quoted_string() && !token()) {
                return false;
            }
        } else {
            i = after_name;  // that BWS comes before the next ';'
        }
    }
    return true;
}

// True when some bytes can follow `prefix` to make a size line within the bounds: the parser
// must not refuse a line before it is wrong. From any point of the grammar one of these endings
// completes it.
bool viable_size_line(std::string_view prefix) {
    if (prefix.size() > max_size_line) {
        return false;
    }
    std::uint64_t size = 0;
    for (std::string_view ending : {"", "0", "a", ";a", "=a", "\"", "a\""}) {
        if (read_size_line(std::string(prefix).append(ending), size)) {
            return true;
        }
    }
    return false;
}

// The length of the longest prefix of `line` that viable_size_line accepts (a property that every
// prefix of a viable line has too, so a binary search finds it).
std::size_t longest_viable(std::string_view line) {
    if (viable_size_line(line)) {
        return line.size();
    }
    std::size_t good = 0;                                        // viable
    std::size_t bad = std::min(line.size(), max_size_line + 1);  // not viable
    while (bad - good > 1) {
        const std::size_t mid = good + (bad - good) / 2;
        (viable_size_line(line.substr(0, mid)) ? good : bad) = mid;
    }
    return good;
}

// chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 §7.1), over the whole input.
outcome reference_decode(std::string_view in, std::size_t max_trailer_bytes) {
    outcome r;
    const std::size_t n = in.size();
    auto finish = [&r](end_kind kind, parse_error e, std::size_t at) {
        r.kind = kind;
        r.error = e;
        r.consumed = at;
        return r;
    };
    auto more = [&] {
        return finish(end_kind::incomplete, parse_error::none, n);
    };

    std::size_t i = 0;
    for (;;) {
        // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; the line runs to the first CR.
        const std::size_t cr = std::min(in.find('\r', i), n);
        const std::string_view line = in.substr(i, cr - i);
        std::uint64_t size = 0;
        if (cr == n || line.size() >= max_size_line || !read_size_line(line, size)) {
            const std::size_t good = longest_viable(line);
            if (good == line.size() && cr == n) {
                return more();
            }
            return finish(end_kind::error, parse_error::bad_chunk_size, i + good);
        }
        if (cr + 1 == n) {
            return more();
        }
        if (in[cr + 1] != '\n') {
            return finish(end_kind::error, parse_error::bad_chunk_size, cr + 1);
        }
        i = cr + 2;
        if (size == 0) {
            break;  // last-chunk
        }
        if (n - i < size) {
            r.payload.append(in.substr(i));
            return more();
        }
        r.payload.append(in.substr(i, size));
        i += size;
        for (char c : {'\r', '\n'}) {
            if (i == n) {
                return more();
            }
            if (in[i] != c) {
                return finish(end_kind::error, parse_error::bad_chunk_data, i);
            }
            ++i;
        }
    }

    // trailer-section = *( field-line CRLF ), then CRLF; field-line = field-name ":" OWS
    // field-value OWS (RFC 9112 §5). The section, final CRLF included, is bounded: the byte at
    // `limit` is refused whatever it is.
    const std::size_t limit = i + max_trailer_bytes;
    auto refuse = [&](std::size_t at) {
        return finish(end_kind::error, parse_error::bad_trailer, std::min(at, limit));
    };
    auto trailer_more = [&] {
        return n > limit ? refuse(limit) : more();
    };
    for (;;) {
        if (i == n) {
            return trailer_more();
        }
        if (in[i] == '\r') {
            if (i + 1 == n) {
                return trailer_more();
            }
            if (in[i + 1] != '\n') {
                return refuse(i + 1);
            }
            return i + 1 >= limit ? refuse(limit)
                                  : finish(end_kind::done, parse_error::none, i + 2);
        }
        const std::size_t name = i;
        while (i < n && fuzz::is_tchar(in[i])) {
            ++i;
        }
        if (i == name) {
            return refuse(i);
        }
        if (i == n) {
            return trailer_more();
        }
        if (in[i] != ':') {
            return refuse(i);
        }
        ++i;
        while (i < n && fuzz::is_field_byte(in[i])) {
            ++i;
        }
        for (char c : {'\r', '\n'}) {
            if (i == n) {
                return trailer_more();
            }
            if (in[i] != c) {
                return refuse(i);
            }
            ++i;
        }
    }
}

// =============================================================================================
// The parser, fed in pieces

struct run_result {
    std::size_t consumed = 0;
    bool done = false;
    parse_error error = parse_error::none;
    std::string output;  // decode: the payload; pass-through: the bytes consumed
    std::uint64_t payload_bytes = 0;
};

bool same_run(const run_result& a, const run_result& b) {
    return a.consumed == b.consumed && a.done == b.done && a.error == b.error &&
           a.output == b.output && a.payload_bytes == b.payload_bytes;
}

// Feeds `input` to a new parser in pieces that end at `cuts` (ascending; a cut at the start or
// twice at one offset gives an empty piece), then the rest, and checks each answer against the
// contract of feed().
run_result run_parser(std::string_view input, bool decode, std::span<const std::size_t> cuts,
                      std::size_t max_trailer_bytes) {
    std::vector<std::size_t> ends;
    for (std::size_t cut : cuts) {
        if (cut <= input.size() && (ends.empty() || cut >= ends.back())) {
            ends.push_back(cut);
        }
    }
    ends.push_back(input.size());

    chunked_parser parser(max_trailer_bytes);
    run_result run;
    std::string buffer(input);
    std::size_t offset = 0;
    for (const std::size_t end : ends) {
        const std::size_t length = end - offset;
        const auto r = parser.feed(std::span<char>(buffer.data() + offset, length), decode);
        FUZZ_CHECK(r.consumed <= length);
        FUZZ_CHECK(r.data <= r.consumed);
        FUZZ_CHECK(!(r.done && r.error != parse_error::none));
        if (decode) {
            run.output.append(buffer.data() + offset, r.data);
        } else {
            FUZZ_CHECK(r.data == 0);
            // Pass-through leaves the bytes as they are.
            FUZZ_CHECK(std::memcmp(buffer.data() + offset, input.data() + offset, length) == 0);
            run.output.append(input.substr(offset, r.consumed));
        }
        run.consumed += r.consumed;
        FUZZ_CHECK(parser.done() == r.done);
        if (r.done || r.error != parse_error::none) {
            run.done = r.done;
            run.error = r.error;
            break;
        }
        FUZZ_CHECK(r.consumed == length);  // less only when done or refused
        offset = end;
    }
    run.payload_bytes = parser.payload_bytes();

    // Once done or refused, the parser takes nothing more and keeps its answer.
    char more[] = "0\r\n\r\n";
    const auto after = parser.feed(std::span<char>(more, sizeof more - 1), decode);
    FUZZ_CHECK(after.consumed == 0 || (!run.done && run.error == parse_error::none));
    if (run.done || run.error != parse_error::none) {
        FUZZ_CHECK(after.done == run.done && after.error == run.error && after.data == 0);
    }
    return run;
}

void check_against_reference(std::string_view input, const run_result& run, bool decode,
                             const outcome& ref) {
    FUZZ_CHECK(run.done == (ref.kind == end_kind::done));
    FUZZ_CHECK((run.error != parse_error::none) == (ref.kind == end_kind::error));
    FUZZ_CHECK(run.error == ref.error);
    FUZZ_CHECK(run.consumed == ref.consumed);
    FUZZ_CHECK(run.payload_bytes == ref.payload.size());
    FUZZ_CHECK(run.output ==
               (decode ? std::string_view(ref.payload) : input.substr(0, ref.consumed)));
}

// Every check on one body: against the reference, and fed in pieces against fed whole.
void check_body(std::string_view input) {
    const std::size_t n = input.size();

    for (const std::size_t trailer_bytes : {default_trailer_bytes, small_trailer_bytes}) {
        const outcome ref = reference_decode(input, trailer_bytes);
        for (const bool decode : {true, false}) {
            check_against_reference(input, run_parser(input, decode, {}, trailer_bytes), decode,
                                    ref);
        }
    }

    std::vector<std::size_t> cuts;
    for (const bool decode : {true, false}) {
        const run_result whole = run_parser(input, decode, {}, default_trailer_bytes);

        const std::size_t split = static_cast<std::size_t>(fuzz::input_hash(input) % (n + 1));
        cuts.assign({split});
        FUZZ_CHECK(same_run(run_parser(input, decode, cuts, default_trailer_bytes), whole));

        cuts.clear();
        for (std::size_t i = 1; i < n; ++i) {
            cuts.push_back(i);
        }
        FUZZ_CHECK(same_run(run_parser(input, decode, cuts, default_trailer_bytes), whole));

        if (n <= 64) {
            for (std::size_t i = 0; i <= n; ++i) {
                cuts.assign({i});
                FUZZ_CHECK(same_run(run_parser(input, decode, cuts, default_trailer_bytes), whole));
            }
        }
    }
}

// The size-line bound needs a line of 4096 bytes, as long as libFuzzer's default -max_len, and
// seeds that long slow every run (comparisons are traced byte by byte). So lines of each length
// around it, filled with an extension name, a quoted value or BWS, are checked once here.
void check_size_line_bound() {
    struct shape {
        std::string_view head;
        char filler;
        std::string_view tail;
    };
    for (const shape& s :
         {shape{"5;", 'e', ""}, shape{"5;a=\"", 'q', "\""}, shape{"5", ' ', ";a"}}) {
        for (std::size_t length = max_size_line - 2; length <= max_size_line + 1; ++length) {
            std::string body(s.head);
            body.append(length - s.head.size() - s.tail.size(), s.filler).append(s.tail);
            body.append("\r\nhello\r\n0\r\n\r\n");
            check_body(body);
            // With its CR, the line takes length + 1 bytes: at most max_size_line pass.
            const outcome ref = reference_decode(body, default_trailer_bytes);
            FUZZ_CHECK((ref.kind == end_kind::done) == (length + 1 <= max_size_line));
            FUZZ_CHECK(ref.kind == end_kind::done || ref.consumed == max_size_line);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    check_size_line_bound();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    check_body(as_view(data, size));
    return 0;
}
