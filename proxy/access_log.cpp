#include "proxy/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "proxy/text.hpp"

namespace switchyard::proxy {
namespace {

using namespace std::string_view_literals;

constexpr char hex_upper[] = "0123456789ABCDEF";

// `whole` then '.' then `fraction` on `digits` digits: 1.234 from (1, 234, 3).
void append_fixed(std::uint64_t whole, std::uint64_t fraction, int digits, std::string& out) {
    append_number(out, whole);
    out.push_back('.');
    std::array<char, 8> buf{};
    for (int i = digits - 1; i >= 0; --i) {
        buf[static_cast<std::size_t>(i)] = static_cast<char>('0' + fraction % 10);
        fraction /= 10;
    }
    out.append(buf.data(), static_cast<std::size_t>(digits));
}

std::uint64_t micros(std::chrono::microseconds d) noexcept {
    return d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
}

// Bytes a format must escape: 1 for JSON (RFC 8259 §7: quote, backslash, control characters;
// other bytes, UTF-8 included, pass through as they came), 2 for the combined format, 3 both.
constexpr std::array<std::uint8_t, 256> escape_table = [] {
    std::array<std::uint8_t, 256> t{};
    for (std::size_t c = 0; c < 256; ++c) {
        const bool control = c < 0x20;
        const bool special = c == '"' || c == '\\';
        t[c] = static_cast<std::uint8_t>(((control || special) ? 1 : 0) |
                                         ((control || special || c >= 0x7f) ? 2 : 0));
    }
    return t;
}();
constexpr std::uint8_t json_escape = 1;
constexpr std::uint8_t log_escape = 2;

// Appends `s`, escaping each byte the table marks for `which` with `escape(c, out)`; runs of
// plain bytes are appended whole.
template <class Escape>
void append_escaped(std::string_view s, std::uint8_t which, std::string& out, Escape escape) {
    const auto* p = s.data();
    const auto* const end = p + s.size();
    while (p != end) {
        const auto* run = p;
        while (p != end && (escape_table[static_cast<unsigned char>(*p)] & which) == 0) {
            ++p;
        }
        out.append(run, static_cast<std::size_t>(p - run));
        if (p != end) {
            escape(static_cast<unsigned char>(*p++), out);
        }
    }
}

void append_json_string(std::string_view s, std::string& out) {
    out += '"';
    append_escaped(s, json_escape, out, [](unsigned char c, std::string& o) {
        if (c == '"' || c == '\\') {
            const char esc[] = {'\\', static_cast<char>(c)};
            o.append(esc, sizeof esc);
        } else {
            const char esc[] = {'\\', 'u', '0', '0', hex_upper[c >> 4U], hex_upper[c & 0xfU]};
            o.append(esc, sizeof esc);
        }
    });
    out += '"';
}

// As nginx's ngx_escape_string for logs: '"', '\' , control bytes, DEL and bytes >= 0x80 become
// \xHH, so a field can neither end its quotes nor the line.
void append_log_escaped(std::string_view s, std::string& out) {
    append_escaped(s, log_escape, out, [](unsigned char c, std::string& o) {
        const char esc[] = {'\\', 'x', hex_upper[c >> 4U], hex_upper[c & 0xfU]};
        o.append(esc, sizeof esc);
    });
}

// A bare (unquoted) combined field: "-" when empty, escaped otherwise.
void append_bare(std::string_view s, std::string& out) {
    if (s.empty()) {
        out.push_back('-');
    } else {
        append_log_escaped(s, out);
    }
}

void append_quoted(std::string_view s, std::string& out) {
    out.push_back('"');
    append_bare(s, out);
    out.push_back('"');
}

void append_2(int v, std::string& out) {
    out.push_back(static_cast<char>('0' + v / 10));
    out.push_back(static_cast<char>('0' + v % 10));
}

}  // namespace

void format_json(const access_entry& e, std::string& out) {
    out.append(R"({"time":)"sv);
    append_json_string(e.time, out);
    out.append(R"(,"request_id":)"sv);
    append_json_string(e.request_id, out);
    out.append(R"(,"client":)"sv);
    append_json_string(e.client_ip, out);
    out.append(R"(,"method":)"sv);
    append_json_string(e.method, out);
    out.append(R"(,"path":)"sv);
    append_json_string(e.target, out);
    out.append(R"(,"status":)"sv);
    append_number(out, static_cast<std::uint64_t>(e.status > 0 ? e.status : 0));
    out.append(R"(,"duration_ms":)"sv);
    const auto us = micros(e.duration);
    append_fixed(us / 1000, us % 1000, 3, out);
    out.append(R"(,"bytes_in":)"sv);
    append_number(out, e.bytes_in);
    out.append(R"(,"bytes_out":)"sv);
    append_number(out, e.bytes_out);
    out.append(R"(,"slot":)"sv);
    append_json_string(e.slot, out);
    out.append(R"(,"endpoint":)"sv);
    append_json_string(e.endpoint, out);
    out.append(R"(,"user_agent":)"sv);
    append_json_string(e.user_agent, out);
    out.append(R"(,"referer":)"sv);
    append_json_string(e.referer, out);
    out.append("}\n"sv);
}

void format_combined(const access_entry& e, std::string& out) {
    append_bare(e.client_ip, out);
    out.append(" - - ["sv);
    out.append(e.time);
    out.append("] \""sv);
    if (e.method.empty()) {
        out.push_back('-');  // nothing parseable was received
    } else {
        append_log_escaped(e.method, out);
        out.push_back(' ');
        append_log_escaped(e.target, out);
        out.append(e.version_minor == 0 ? " HTTP/1.0"sv : " HTTP/1.1"sv);
    }
    out.append("\" "sv);
    append_number(out, static_cast<std::uint64_t>(e.status > 0 ? e.status : 0));
    out.push_back(' ');
    append_number(out, e.bytes_out);
    out.push_back(' ');
    append_quoted(e.referer, out);
    out.push_back(' ');
    append_quoted(e.user_agent, out);
    out.push_back(' ');
    append_bare(e.request_id, out);
    out.push_back(' ');
    append_bare(e.slot, out);
    out.push_back(' ');
    append_bare(e.endpoint, out);
    out.push_back(' ');
    const auto us = micros(e.duration);
    append_fixed(us / 1000000, (us / 1000) % 1000, 3, out);  // nginx's $request_time: ms
    out.push_back(' ');
    append_number(out, e.bytes_in);
    out.push_back('\n');
}

void format_time(std::time_t t, config::log_format format, std::string& out) {
    static constexpr std::array<std::string_view, 12> months = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    gmtime_r(&t, &tm);
    out.clear();
    if (format == config::log_format::json) {
        append_number(out, static_cast<std::uint64_t>(tm.tm_year + 1900));
        out.push_back('-');
        append_2(tm.tm_mon + 1, out);
        out.push_back('-');
        append_2(tm.tm_mday, out);
        out.push_back('T');
    } else {
        append_2(tm.tm_mday, out);
        out.push_back('/');
        out.append(months[static_cast<std::size_t>(tm.tm_mon)]);
        out.push_back('/');
        append_number(out, static_cast<std::uint64_t>(tm.tm_year + 1900));
        out.push_back(':');
    }
    append_2(tm.tm_hour, out);
    out.push_back(':');
    append_2(tm.tm_min, out);
    out.push_back(':');
    append_2(tm.tm_sec, out);
    out.append(format == config::log_format::json ? "Z" : " +0000");
}

// --- access_log_sink ---

namespace {

int open_log(const std::string& path) {
    // O_APPEND: every write lands at the current end, so after logrotate's copytruncate the
    // next lines start at offset 0 instead of leaving a hole of NUL bytes.
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

}  // namespace

access_log_sink::access_log_sink(std::string to) : to_(std::move(to)) {
    if (to_ == "stdout") {
        fd_ = STDOUT_FILENO;
    } else if (to_ == "stderr") {
        fd_ = STDERR_FILENO;
    } else {
        fd_ = open_log(to_);
        if (fd_ < 0) {
            throw std::runtime_error("cannot open access_log.to " + to_ + ": " +
                                     std::strerror(errno));
        }
        owned_ = true;
    }
}

access_log_sink::~access_log_sink() {
    if (owned_) {
        ::close(fd_);
    }
}

bool access_log_sink::reopen() {
    if (!owned_) {
        return true;
    }
    const int fd = open_log(to_);
    if (fd < 0) {
        spdlog::error("cannot reopen access log {}: {}; still writing to the old file", to_,
                      std::strerror(errno));
        return false;
    }
    // dup2 swaps the file under fd_ atomically: a concurrent write goes to the old or the new
    // file, never to a closed descriptor. dup2 does not copy O_CLOEXEC: set it again.
    int r = 0;
    do {
        r = ::dup2(fd, fd_);
    } while (r < 0 && errno == EINTR);
    const int err = errno;
    ::close(fd);
    if (r < 0) {
        spdlog::error("cannot reopen access log {}: {}", to_, std::strerror(err));
        return false;
    }
    ::fcntl(fd_, F_SETFD, FD_CLOEXEC);
    spdlog::info("access log {} reopened", to_);
    return true;
}

void access_log_sink::write_all(std::string_view bytes) noexcept {
    while (!bytes.empty()) {
        const auto n = ::write(fd_, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int err = errno;
            if (errors_.fetch_add(1, std::memory_order_relaxed) == 0) {
                spdlog::error("access log {}: write failed: {}; lines are dropped (logged once)",
                              to_, std::strerror(err));
            }
            return;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

// --- access_log_buffer ---

access_log_buffer::access_log_buffer(access_log_sink& sink, config::log_format format)
    : sink_(sink), format_(format), last_flush_(steady_clock::now()) {
    lines_.reserve(capacity);
    refresh_time(std::chrono::system_clock::now());
}

void access_log_buffer::refresh_time(std::chrono::system_clock::time_point now) {
    const std::time_t second = std::chrono::system_clock::to_time_t(now);
    if (second != time_second_) {
        time_second_ = second;
        format_time(second, format_, time_);
    }
}

void access_log_buffer::append_line(const access_entry& e) {
    if (format_ == config::log_format::json) {
        format_json(e, lines_);
    } else {
        format_combined(e, lines_);
    }
    if (lines_.size() >= flush_bytes) {
        flush();
    }
}

void access_log_buffer::flush_if_due(steady_clock::time_point now) {
    if (!lines_.empty() && now - last_flush_ >= flush_interval) {
        flush();
    }
}

void access_log_buffer::flush() {
    if (!lines_.empty()) {
        sink_.write_all(lines_);
        lines_.clear();  // the capacity stays
    }
    last_flush_ = steady_clock::now();
}

}  // namespace switchyard::proxy
