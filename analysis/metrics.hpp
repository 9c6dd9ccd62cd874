#pragma once
// Per-slot request metrics, recorded per worker and merged by readers.
//
// Each worker owns one metrics_shard and is its only writer. A counter is a relaxed atomic that
// the writer bumps with a load and a store (no read-modify-write, no lock prefix): on the request
// path that is a plain add to memory no other thread writes. Readers (the /metrics scrape, the
// analysis tick) load the same counters from any thread and merge the shards, never pausing the
// workers. (Envoy's thread-local stats, Seastar's per-shard counters.)

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "analysis/traffic_split.hpp"

namespace switchyard::analysis {

// A count written by one thread and read by any.
class counter {
public:
    void add(std::uint64_t n = 1) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t load() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

// Log-linear latency buckets (HDR style): values below 2^(sub_bucket_bits + 1) = 64 µs each
// have their own bucket; above, every power of two is cut into 2^sub_bucket_bits equal buckets,
// so a bucket's width is at most 1/32 of its lower bound and a quantile read at the bucket's
// midpoint is within 1/64 (1.6%) of the true value, from 1 µs up to `max_micros`. Larger values
// land in the last bucket.
struct latency_buckets {
    static constexpr unsigned sub_bucket_bits = 5;
    static constexpr std::uint64_t sub_buckets = 1U << sub_bucket_bits;  // 32
    static constexpr unsigned max_power = 27;                            // 2^27 µs ≈ 134 s
    static constexpr std::uint64_t max_micros = (std::uint64_t{1} << max_power) - 1;
    static constexpr std::size_t count = sub_buckets * (max_power - sub_bucket_bits + 1);

    // The bucket holding `micros` (clamped to max_micros). Below 64 the value is its own index;
    // above, `shift` drops all but the top 6 bits, whose low 5 bits pick the sub-bucket of the
    // power of two, and each power of two starts 32 indexes after the previous one.
    static constexpr std::size_t index(std::uint64_t micros) noexcept {
        constexpr unsigned exact_bits = sub_bucket_bits + 1;  // values below 64 are exact
        const std::uint64_t v = micros < max_micros ? micros : max_micros;
        const auto width = static_cast<unsigned>(std::bit_width(v));
        const unsigned shift = (width > exact_bits ? width : exact_bits) - exact_bits;
        return static_cast<std::size_t>((std::uint64_t{shift} << sub_bucket_bits) + (v >> shift));
    }
    // The smallest and one past the largest value of bucket `i` (i < count).
    static constexpr std::uint64_t lower(std::size_t i) noexcept {
        if (i < sub_buckets) {
            return i;
        }
        return (sub_buckets + (i & (sub_buckets - 1))) << shift_of(i);
    }
    static constexpr std::uint64_t upper(std::size_t i) noexcept {
        return lower(i) + (std::uint64_t{1} << shift_of(i));
    }

private:
    // log2 of the width of bucket `i`: 0 for the first 64 buckets, then one more per 32.
    static constexpr unsigned shift_of(std::size_t i) noexcept {
        const std::size_t power = i >> sub_bucket_bits;
        return power > 1 ? static_cast<unsigned>(power - 1) : 0U;
    }
};

// Why an exchange with an upstream failed; the `kind` label of switchyard_upstream_errors_total.
enum class upstream_failure : std::uint8_t { none, connect, timeout, reset, protocol };
inline constexpr std::size_t upstream_failure_kinds = 4;  // without `none`

// One finished request, as the proxy records it.
struct request_record {
    std::uint16_t status = 0;  // sent to the client; 0 when none was sent (client went away)
    upstream_failure failure = upstream_failure::none;
    std::chrono::microseconds latency{0};  // first byte read to last byte written
    std::uint64_t bytes_in = 0;            // from the client: head and body
    std::uint64_t bytes_out = 0;           // to the client: head and body
    // The upstream's own time, from the request head sent to the last byte of the response read
    // from it (Envoy's upstream_rq_time, nginx's $upstream_response_time), less the time spent
    // waiting on the client meanwhile, so that a slow upload or a slow reader of a large
    // download cannot inflate it. Absent when no complete response came from an upstream.
    std::optional<std::chrono::microseconds> upstream_time;
    bool pinned = false;  // sent to its slot by a sticky-session cookie (README, "Sticky sessions")
};

// A latency histogram in the fine buckets, written by one thread.
struct latency_counters {
    std::array<counter, latency_buckets::count> buckets;
    counter sum_micros;

    void record(std::chrono::microseconds latency) noexcept;
};

// A latency histogram summed over shards.
struct latency_totals {
    std::vector<std::uint64_t> buckets = std::vector<std::uint64_t>(latency_buckets::count);
    std::uint64_t sum_micros = 0;

    std::uint64_t count() const noexcept;
};

// Why a client's TLS handshake failed; the `reason` label of
// switchyard_tls_handshake_errors_total.
enum class tls_failure : std::uint8_t {
    timeout,           // not finished within timeouts.tls_handshake
    closed,            // the client closed or reset the connection first
    protocol_version,  // it offered no version we accept (TLS 1.2 and up)
    no_shared_cipher,  // nor a cipher suite or group we accept
    http_request,      // it spoke plain HTTP to the TLS port
    certificate,       // it refused our certificate (an alert such as unknown_ca)
    other,
};
inline constexpr std::size_t tls_failure_kinds = 7;
// "timeout", "protocol_version", ...: the label value.
std::string_view tls_failure_name(tls_failure f) noexcept;
using tls_failure_totals = std::array<std::uint64_t, tls_failure_kinds>;

// Counters of requests taken by a route (switchyard_route_requests_total), one per route of the
// configuration, which allows at most this many; the proxy's route table says which route
// counts into which counter (README, "Routes").
inline constexpr std::size_t route_counter_count = 64;
using route_totals = std::array<std::uint64_t, route_counter_count>;

// Mirrored requests (README, "Mirroring"): how the copy sent to a slot ended, and whether its
// status class matched the primary's.
enum class mirror_drop : std::uint8_t {
    queue_full,      // the worker's share of mirror.queue was in flight
    body_too_large,  // the body was over mirror.max_body
};
inline constexpr std::size_t mirror_drop_reasons = 2;
// "queue_full", "body_too_large": the `reason` label of switchyard_mirror_dropped_total.
std::string_view mirror_drop_name(mirror_drop d) noexcept;

// How one mirrored exchange ended.
struct mirror_record {
    std::uint16_t status = 0;  // of the mirror's answer; 0 when it failed (see failure)
    upstream_failure failure = upstream_failure::none;
    // From the copy written to the last byte of the answer read; absent without a whole answer.
    std::optional<std::chrono::microseconds> response_time;
};

// A status class for comparing a mirror with its primary: 2..5 for 2xx..5xx, 1 for a failure
// (no answer, or a status outside 200..599).
inline std::uint8_t status_class(std::uint16_t status, bool failed) noexcept {
    if (failed || status < 200 || status > 599) {
        return 1;
    }
    return static_cast<std::uint8_t>(status / 100);
}

// The mirror counters of one slot (the slot the copies went to) in one worker.
struct mirror_counters {
    std::array<counter, 500> by_status;                    // index: status - 100
    std::array<counter, upstream_failure_kinds> failures;  // no status: index kind - 1
    counter mismatches;  // status class differed from the primary's
    std::array<counter, mirror_drop_reasons> dropped;
    latency_counters response;  // mirror_record::response_time
};
// Why a client connection was closed before its PROXY protocol header was read (README, "PROXY
// protocol"); the `reason` label of switchyard_proxy_protocol_errors_total.
enum class proxy_protocol_failure : std::uint8_t {
    missing,        // the first bytes start no PROXY header (a client speaking HTTP or TLS)
    wrong_version,  // a header of the other version than listen_proxy_protocol's
    malformed,      // a header of the right version that breaks its grammar or limits
    timeout,        // not complete within timeouts.request_header
    closed,         // the client closed or reset the connection first
};
inline constexpr std::size_t proxy_protocol_failure_kinds = 5;
// "missing", "wrong_version", ...: the label value.
std::string_view proxy_protocol_failure_name(proxy_protocol_failure f) noexcept;
using proxy_protocol_failure_totals = std::array<std::uint64_t, proxy_protocol_failure_kinds>;

// The counters of one slot in one worker.
struct slot_counters {
    std::array<counter, 500> by_status;  // index: status - 100, statuses 100..599
    counter no_status;  // requests that ended with no answer sent, or a status outside 100..599
    std::array<counter, upstream_failure_kinds> failures;  // index: kind - 1
    // Requests with a failure whose status was not 5xx (none sent, or the failure came after a
    // 2xx head), so that errors() counts every failed request once without a per-status split.
    counter failed_without_5xx;
    counter bytes_in;
    counter bytes_out;
    counter pinned;   // finished requests a sticky cookie sent here
    counter started;  // in flight = started - finished
    counter finished;
    latency_counters duration;  // request_record::latency
    latency_counters upstream;  // request_record::upstream_time, when present
    // Tunnels (connections switched to another protocol by a 101): open = opened - closed.
    counter tunnels_opened;
    counter tunnels_closed;
    mirror_counters mirror;  // copies sent to this slot
};

// What one worker records. Written by that worker only; read by any thread. Cache-line aligned
// so that two workers' shards placed side by side never share a line.
class alignas(64) metrics_shard {
public:
    void request_started(slot_index slot) noexcept { slots_[slot].started.add(); }
    void request_finished(slot_index slot, const request_record& r) noexcept;
    // A tunnel opened on `slot` (after its request was recorded, with status 101), and its end.
    void tunnel_opened(slot_index slot) noexcept { slots_[slot].tunnels_opened.add(); }
    void tunnel_closed(slot_index slot) noexcept { slots_[slot].tunnels_closed.add(); }
    const slot_counters& slot(slot_index s) const noexcept { return slots_[s]; }

    // A copy sent to `slot` ended; once per mirrored request, on the worker that sent it.
    void mirror_finished(slot_index slot, const mirror_record& r) noexcept;
    // Its status class differed from its primary's.
    void mirror_mismatched(slot_index slot) noexcept { slots_[slot].mirror.mismatches.add(); }
    // A copy for `slot` was not sent.
    void mirror_dropped(slot_index slot, mirror_drop why) noexcept {
        slots_[slot].mirror.dropped[static_cast<std::size_t>(why)].add();
    }

    // Once per failed handshake, never per request.
    void tls_handshake_failed(tls_failure f) noexcept {
        tls_failures_[static_cast<std::size_t>(f)].add();
    }
    const std::array<counter, tls_failure_kinds>& tls_failures() const noexcept {
        return tls_failures_;
    }

    // A request a route took, by the route's counter (< route_counter_count).
    void route_taken(std::size_t counter) noexcept { routes_[counter].add(); }
    const std::array<counter, route_counter_count>& routes() const noexcept { return routes_; }

    // Once per refused connection, never per request.
    void proxy_protocol_failed(proxy_protocol_failure f) noexcept {
        proxy_protocol_failures_[static_cast<std::size_t>(f)].add();
    }
    const std::array<counter, proxy_protocol_failure_kinds>& proxy_protocol_failures()
        const noexcept {
        return proxy_protocol_failures_;
    }

private:
    per_slot<slot_counters> slots_;
    std::array<counter, tls_failure_kinds> tls_failures_;
    std::array<counter, route_counter_count> routes_;
    std::array<counter, proxy_protocol_failure_kinds> proxy_protocol_failures_;
};

// The mirror counters of a slot summed over shards.
struct mirror_totals {
    std::array<std::uint64_t, 500> by_status{};
    std::array<std::uint64_t, upstream_failure_kinds> failures{};
    std::uint64_t mismatches = 0;
    std::array<std::uint64_t, mirror_drop_reasons> dropped{};
    latency_totals response;

    std::uint64_t requests() const noexcept;  // ended copies: by_status + failures
    std::uint64_t errors() const noexcept;    // 5xx + failures, as slot_totals::errors()
};

// A slot's totals summed over all shards at one moment.
struct slot_totals {
    std::array<std::uint64_t, 500> by_status{};
    std::uint64_t no_status = 0;
    std::array<std::uint64_t, upstream_failure_kinds> failures{};
    std::uint64_t failed_without_5xx = 0;  // see slot_counters
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t pinned = 0;
    std::uint64_t in_flight = 0;
    std::uint64_t tunnels_open = 0;
    std::uint64_t tunnels_total = 0;  // opened since start
    latency_totals duration;
    latency_totals upstream;
    mirror_totals mirror;  // copies of the other slot's requests sent here

    std::uint64_t requests() const noexcept;  // finished requests: by_status + no_status
    // 5xx answers plus requests that ended in an upstream failure without a 5xx (README,
    // "5xx and upstream failures / all"): the by_status entries of statuses 500..599 (indexes
    // 400..499) + failed_without_5xx.
    std::uint64_t errors() const noexcept;
};

// Sums the shards; safe while the workers keep recording.
per_slot<slot_totals> merge(std::span<const metrics_shard* const> shards);
tls_failure_totals merge_tls_failures(std::span<const metrics_shard* const> shards);
route_totals merge_routes(std::span<const metrics_shard* const> shards);
proxy_protocol_failure_totals merge_proxy_protocol_failures(
    std::span<const metrics_shard* const> shards);

// Totals merged from the proxy's shards at the moment of the call (the /metrics scrape, the
// rollout engine's tick). Safe to call from any thread.
using metrics_source = std::function<per_slot<slot_totals>()>;

// Quantile q (0..1) of a latency histogram: the midpoint of the bucket holding the
// ceil(q * total)-th value (the first value for q = 0), which is the value itself below 64 µs;
// 0 for an empty histogram.
std::chrono::microseconds quantile(std::span<const std::uint64_t> histogram, double q) noexcept;

// What one slot did over a span of time: the input of a judgement. Latency is the upstream's own
// time (request_record::upstream_time), in the fine buckets, so any quantile can be read.
struct slot_window {
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;  // slot_totals::errors()
    // Built from the slot's mirrored answers (mirror_difference), not from its own traffic:
    // only such a window has mismatches, and only such a window judges mirror_mismatch_rate.
    bool shadow = false;
    std::uint64_t mismatches = 0;
    std::uint64_t pinned = 0;  // of `requests`, those a sticky cookie sent here
    std::vector<std::uint64_t> upstream_latency =
        std::vector<std::uint64_t>(latency_buckets::count);

    // errors / requests; 0 for an empty window (the judge never reads one: min_requests >= 1).
    double error_rate() const noexcept;
    double success_rate() const noexcept { return 1.0 - error_rate(); }
    // mismatches / requests; 0 for an empty window.
    double mismatch_rate() const noexcept;
    std::chrono::microseconds upstream_quantile(double q) const noexcept {
        return quantile(upstream_latency, q);
    }
};

// What slot totals gained from `earlier` to `later`. Totals only grow while the set of shards
// stays the same; a counter that shrank (a shard dropped) counts nothing rather than wrapping.
slot_window difference(const slot_totals& later, const slot_totals& earlier);
// The same for what the slot's mirrored answers gained: requests, errors (5xx and failures),
// mismatches, and the mirror's response time as the latency. A shadow window.
slot_window mirror_difference(const slot_totals& later, const slot_totals& earlier);

// Per-second history for /status and the live views: what each second added, per slot, keyed
// by the second on the steady clock, so "the last 10 s" means those seconds whatever the timing
// of the pushes. A push records what was added since the previous push as the traffic of its
// second. A late push leaves the seconds it skipped empty (a gap shows as a gap) and its entry
// says how many seconds its traffic came from, so a rate over a window stays right. One writer;
// not thread-safe.
class metrics_window {
public:
    // Holds the last `seconds` seconds (one at the least); over() finds nothing older.
    explicit metrics_window(std::size_t seconds = 600);

    // `second` counts seconds on the steady clock; pushes must not go back in time (an earlier
    // second is ignored). A second pushed twice accumulates. The first push only sets the
    // baseline. Never allocates once the first push has set the baseline.
    void push(std::int64_t second, const per_slot<slot_totals>& totals);

    struct span {
        slot_window stats;
        std::int64_t seconds = 0;      // seconds of traffic the entries in range came from
        double rate() const noexcept;  // requests per second; 0 when nothing was covered
    };
    // The entries for the seconds in [from, to), summed. Seconds outside the history (older than
    // its capacity, or never pushed) add nothing.
    span over(slot_index slot, std::int64_t from, std::int64_t to) const;
    // Heap and object bytes the window holds; fixed once the first push has set the baseline.
    std::size_t memory_bytes() const noexcept;

private:
    struct slot_second {  // what one second added to one slot
        std::uint32_t requests = 0;
        std::uint32_t errors = 0;
        std::uint32_t pinned = 0;
        std::vector<std::uint32_t> latency;  // sparse in practice; kept dense for simplicity
    };
    struct entry {
        std::int64_t second = -1;  // the second held; -1 when none
        std::int64_t covers = 0;   // seconds since the push before this one's second
        per_slot<slot_second> slots;
    };
    std::vector<entry> ring_;  // indexed by second modulo capacity
    std::int64_t last_second_ = 0;
    std::optional<per_slot<slot_totals>> last_;
};

}  // namespace switchyard::analysis
