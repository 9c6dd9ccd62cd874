#pragma once
// The access log (README, `access_log`): one line per request, formatted into a per-worker
// buffer on the request path and written to the destination off it, by the worker's tick.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace switchyard::proxy {

// One finished request, as the session hands it to the log. Views are valid for the call only.
struct access_entry {
    std::string_view time;  // the worker's cached timestamp, in the format's own form
    std::string_view request_id;
    std::string_view client_ip;
    std::string_view method;  // empty when the head could not be parsed
    std::string_view target;
    int version_minor = 1;      // HTTP/1.x of the request
    std::string_view slot;      // empty when the request was not routed
    std::string_view endpoint;  // empty when no endpoint was picked
    int status = 0;
    std::chrono::microseconds duration{0};
    std::uint64_t bytes_in = 0;   // request head and body bytes read from the client
    std::uint64_t bytes_out = 0;  // response head and body bytes written to the client
    std::string_view user_agent;
    std::string_view referer;
};

// Appends one line (with its '\n') for `e` to `out`.
//
// json: {"time":…,"request_id":…,"client":…,"method":…,"path":…,"status":200,
//        "duration_ms":1.234,"bytes_in":…,"bytes_out":…,"slot":…,"endpoint":…,
//        "user_agent":…,"referer":…}
// combined: nginx's combined format, then five fields of ours:
//   $remote_addr - - [$time_local] "$request" $status $bytes_sent "$http_referer"
//   "$http_user_agent" $request_id $slot $endpoint $request_time $request_length
// where $bytes_sent counts the response head too (nginx's combined has $body_bytes_sent; we
// count both together), $request_time is seconds with millisecond resolution and
// $request_length the request head and body bytes. Absent values are "-".
void format_json(const access_entry& e, std::string& out);
void format_combined(const access_entry& e, std::string& out);

// Replaces `out` with the time of the format: "2026-11-22T05:45:37Z" (json) or
// "22/Nov/2026:05:45:37 +0000" (combined), in UTC.
void format_time(std::time_t t, config::log_format format, std::string& out);

// Where the lines go: stdout, stderr or a file opened for appending. Shared by the workers,
// each writing whole buffers of whole lines; thread-safe.
class access_log_sink {
public:
    // `to` is "stdout", "stderr" or a path. Throws std::runtime_error naming the path when the
    // file cannot be opened.
    explicit access_log_sink(std::string to);
    ~access_log_sink();
    access_log_sink(const access_log_sink&) = delete;
    access_log_sink& operator=(const access_log_sink&) = delete;

    // Opens the path again (after a rename by logrotate) and puts the new file under the same
    // descriptor number, so a worker writing at that moment never sees a closed descriptor.
    // False (logged) when the path cannot be opened: the old file stays in use.
    bool reopen();
    // Writes every byte, retrying partial writes and EINTR. A failure is counted and logged
    // once; it never throws.
    void write_all(std::string_view bytes) noexcept;
    std::uint64_t write_errors() const noexcept { return errors_.load(std::memory_order_relaxed); }

private:
    std::string to_;
    int fd_ = -1;
    bool owned_ = false;  // a file of ours, not stdout or stderr
    std::atomic<std::uint64_t> errors_{0};
};

// One worker's lines waiting to be written, and its cached timestamp. Used by one thread at a
// time; owned by the server so it outlives the worker, as the metrics shards do.
class access_log_buffer {
public:
    using steady_clock = std::chrono::steady_clock;

    static constexpr std::size_t capacity = 64 * 1024;  // reserved once
    static constexpr std::size_t flush_bytes = 32 * 1024;
    // Below the longest tick period (250 ms), so a tick that finds lines waiting writes them.
    static constexpr std::chrono::milliseconds flush_interval{200};

    access_log_buffer(access_log_sink& sink, config::log_format format);

    // The timestamp for entries, refreshed by refresh_time.
    std::string_view time() const noexcept { return time_; }
    // Reformats the timestamp when the second has changed: once a second at most.
    void refresh_time(std::chrono::system_clock::time_point now);

    // Formats one line into the buffer; writes the buffer out once it holds flush_bytes.
    void append_line(const access_entry& e);
    // Writes the buffer out when it has waited flush_interval since the last write.
    void flush_if_due(steady_clock::time_point now);
    // Writes the buffer out now (one write).
    void flush();

    std::string_view pending() const noexcept { return lines_; }

private:
    access_log_sink& sink_;
    config::log_format format_;
    std::string lines_;
    std::string time_;
    std::time_t time_second_ = -1;
    steady_clock::time_point last_flush_;
};

}  // namespace switchyard::proxy
