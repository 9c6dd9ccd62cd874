#include "analysis/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace switchyard::analysis {

static_assert(latency_buckets::index(latency_buckets::max_micros) == latency_buckets::count - 1);
static_assert(latency_buckets::upper(latency_buckets::count - 1) ==
              latency_buckets::max_micros + 1);

namespace {

void add_into(latency_totals& t, const latency_counters& c) noexcept {
    for (std::size_t i = 0; i < c.buckets.size(); ++i) {
        t.buckets[i] += c.buckets[i].load();
    }
    t.sum_micros += c.sum_micros.load();
}

constexpr std::size_t status_min = 100;
constexpr std::size_t status_5xx = 500 - status_min;  // by_status index of 500

bool is_5xx(std::uint16_t status) noexcept {
    return status >= 500 && status <= 599;
}

}  // namespace

// What one call costs: a compare or two on the status, one bit_width and a shift per histogram,
// and 8 (10 with a failure) load+add+store pairs on lines only this worker writes: no lock prefix,
// no cache-line transfer, about 50 instructions (GCC 12 -O2). A loop of 1e8 calls takes 8 ns per
// call on the shared 2-core dev machine; that loop is bound by store-to-load forwarding on the
// same few counters, which the proxy's spacing of calls hides. The budget is 20 ns.
void metrics_shard::request_finished(slot_index slot, const request_record& r) noexcept {
    slot_counters& c = slots_[slot];
    if (r.status >= status_min && r.status < status_min + c.by_status.size()) {
        c.by_status[r.status - status_min].add();
    } else {
        // Status 0 means nothing was sent. Anything else outside 100..599 is not a status
        // (RFC 9110 §15 defines 1xx..5xx), so no valid answer reached the client either: counting
        // it here keeps requests() exact without clamping a bogus code into a real class.
        c.no_status.add();
    }
    if (r.failure != upstream_failure::none) {
        c.failures[static_cast<std::size_t>(r.failure) - 1].add();
        if (!is_5xx(r.status)) {
            c.failed_without_5xx.add();
        }
    }
    c.finished.add();
    c.duration.record(r.latency);
    if (r.upstream_time) {
        c.upstream.record(*r.upstream_time);
    }
    c.bytes_in.add(r.bytes_in);
    c.bytes_out.add(r.bytes_out);
    if (r.pinned) {
        c.pinned.add();
    }
}

// Once per mirrored request, off the primary's path: the same load+add+store pairs.
void metrics_shard::mirror_finished(slot_index slot, const mirror_record& r) noexcept {
    mirror_counters& c = slots_[slot].mirror;
    if (r.failure != upstream_failure::none) {
        c.failures[static_cast<std::size_t>(r.failure) - 1].add();
    } else if (r.status >= status_min && r.status < status_min + c.by_status.size()) {
        c.by_status[r.status - status_min].add();
    } else {
        // Not a status (see request_finished): counted as the protocol failure it is.
        c.failures[static_cast<std::size_t>(upstream_failure::protocol) - 1].add();
    }
    if (r.response_time) {
        c.response.record(*r.response_time);
    }
}

std::string_view mirror_drop_name(mirror_drop d) noexcept {
    return d == mirror_drop::queue_full ? "queue_full" : "body_too_large";
}

std::uint64_t mirror_totals::requests() const noexcept {
    std::uint64_t n = 0;
    for (const std::uint64_t v : by_status) {
        n += v;
    }
    for (const std::uint64_t v : failures) {
        n += v;
    }
    return n;
}

std::uint64_t mirror_totals::errors() const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = status_5xx; i < status_5xx + 100; ++i) {
        n += by_status[i];
    }
    for (const std::uint64_t v : failures) {
        n += v;
    }
    return n;
}

void latency_counters::record(std::chrono::microseconds latency) noexcept {
    // A negative duration can only come from a clock bug; count it as 0 rather than as 2^64.
    const auto micros = static_cast<std::uint64_t>(std::max<std::int64_t>(latency.count(), 0));
    buckets[latency_buckets::index(micros)].add();
    sum_micros.add(micros);
}

std::uint64_t latency_totals::count() const noexcept {
    std::uint64_t n = 0;
    for (const std::uint64_t v : buckets) {
        n += v;
    }
    return n;
}

std::uint64_t slot_totals::requests() const noexcept {
    std::uint64_t n = no_status;
    for (const std::uint64_t v : by_status) {
        n += v;
    }
    return n;
}

std::uint64_t slot_totals::errors() const noexcept {
    std::uint64_t n = failed_without_5xx;
    for (std::size_t i = status_5xx; i < status_5xx + 100; ++i) {
        n += by_status[i];
    }
    return n;
}

std::string_view tls_failure_name(tls_failure f) noexcept {
    switch (f) {
        case tls_failure::timeout:
            return "timeout";
        case tls_failure::closed:
            return "closed";
        case tls_failure::protocol_version:
            return "protocol_version";
        case tls_failure::no_shared_cipher:
            return "no_shared_cipher";
        case tls_failure::http_request:
            return "http_request";
        case tls_failure::certificate:
            return "certificate";
        case tls_failure::other:
            break;
    }
    return "other";
}

tls_failure_totals merge_tls_failures(std::span<const metrics_shard* const> shards) {
    tls_failure_totals out{};
    for (const metrics_shard* shard : shards) {
        for (std::size_t i = 0; i < tls_failure_kinds; ++i) {
            out[i] += shard->tls_failures()[i].load();
        }
    }
    return out;
}

std::string_view proxy_protocol_failure_name(proxy_protocol_failure f) noexcept {
    switch (f) {
        case proxy_protocol_failure::missing:
            return "missing";
        case proxy_protocol_failure::wrong_version:
            return "wrong_version";
        case proxy_protocol_failure::malformed:
            return "malformed";
        case proxy_protocol_failure::timeout:
            return "timeout";
        case proxy_protocol_failure::closed:
            break;
    }
    return "closed";
}

proxy_protocol_failure_totals merge_proxy_protocol_failures(
    std::span<const metrics_shard* const> shards) {
    proxy_protocol_failure_totals out{};
    for (const metrics_shard* shard : shards) {
        for (std::size_t i = 0; i < proxy_protocol_failure_kinds; ++i) {
            out[i] += shard->proxy_protocol_failures()[i].load();
        }
    }
    return out;
}

route_totals merge_routes(std::span<const metrics_shard* const> shards) {
    route_totals out{};
    for (const metrics_shard* shard : shards) {
        for (std::size_t i = 0; i < route_counter_count; ++i) {
            out[i] += shard->routes()[i].load();
        }
    }
    return out;
}

per_slot<slot_totals> merge(std::span<const metrics_shard* const> shards) {
    per_slot<slot_totals> out;
    for (slot_index s = 0; s < slot_count; ++s) {
        slot_totals& t = out[s];
        for (const metrics_shard* shard : shards) {
            const slot_counters& c = shard->slot(s);
            // Load finished before started: the writer bumps started first, so this order sees
            // started >= finished on a machine that keeps loads in order (x86). Relaxed loads of
            // two counters promise no order though, hence the clamp at 0.
            const std::uint64_t finished = c.finished.load();
            const std::uint64_t started = c.started.load();
            t.in_flight += started > finished ? started - finished : 0;
            const std::uint64_t closed = c.tunnels_closed.load();  // before opened, as above
            const std::uint64_t opened = c.tunnels_opened.load();
            t.tunnels_open += opened > closed ? opened - closed : 0;
            t.tunnels_total += opened;
            for (std::size_t i = 0; i < c.by_status.size(); ++i) {
                t.by_status[i] += c.by_status[i].load();
            }
            t.no_status += c.no_status.load();
            for (std::size_t i = 0; i < c.failures.size(); ++i) {
                t.failures[i] += c.failures[i].load();
            }
            t.failed_without_5xx += c.failed_without_5xx.load();
            t.bytes_in += c.bytes_in.load();
            t.bytes_out += c.bytes_out.load();
            t.pinned += c.pinned.load();
            add_into(t.duration, c.duration);
            add_into(t.upstream, c.upstream);
            mirror_totals& m = t.mirror;
            for (std::size_t i = 0; i < c.mirror.by_status.size(); ++i) {
                m.by_status[i] += c.mirror.by_status[i].load();
            }
            for (std::size_t i = 0; i < c.mirror.failures.size(); ++i) {
                m.failures[i] += c.mirror.failures[i].load();
            }
            // Loaded after the statuses: a mismatch is counted after its copy's status, so
            // this order never sees more mismatches than copies on x86 (as in_flight above).
            m.mismatches += c.mirror.mismatches.load();
            for (std::size_t i = 0; i < c.mirror.dropped.size(); ++i) {
                m.dropped[i] += c.mirror.dropped[i].load();
            }
            add_into(m.response, c.mirror.response);
        }
    }
    return out;
}

std::chrono::microseconds quantile(std::span<const std::uint64_t> histogram, double q) noexcept {
    std::uint64_t total = 0;
    for (const std::uint64_t v : histogram) {
        total += v;
    }
    if (total == 0) {
        return std::chrono::microseconds{0};
    }
    // The rank of the wanted value, 1-based: ceil(q * total), at least the first, at most the last.
    const double wanted = std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(total));
    const std::uint64_t rank =
        std::clamp<std::uint64_t>(static_cast<std::uint64_t>(wanted), 1, total);
    const std::size_t buckets = std::min(histogram.size(), latency_buckets::count);
    std::uint64_t seen = 0;
    std::size_t i = 0;
    for (; i < buckets; ++i) {
        seen += histogram[i];
        if (seen >= rank) {
            break;
        }
    }
    i = std::min(i, buckets - 1);  // only if the histogram is longer than count (misuse)
    const std::uint64_t lo = latency_buckets::lower(i);
    const std::uint64_t mid = lo + (latency_buckets::upper(i) - lo) / 2;  // lo for 1-wide buckets
    return std::chrono::microseconds{static_cast<std::chrono::microseconds::rep>(mid)};
}

namespace {

// What a counter gained from `before` to `now`; nothing when it shrank (see difference()).
std::uint64_t gain(std::uint64_t now, std::uint64_t before) noexcept {
    return now > before ? now - before : 0;
}

// A second's count is kept in 32 bits: 4 billion requests per second per slot is out of reach.
std::uint32_t narrow(std::uint64_t n) noexcept {
    return static_cast<std::uint32_t>(
        std::min<std::uint64_t>(n, std::numeric_limits<std::uint32_t>::max()));
}

}  // namespace

double slot_window::error_rate() const noexcept {
    return requests == 0 ? 0.0 : static_cast<double>(errors) / static_cast<double>(requests);
}

slot_window difference(const slot_totals& later, const slot_totals& earlier) {
    slot_window out;
    out.requests = gain(later.requests(), earlier.requests());
    out.errors = gain(later.errors(), earlier.errors());
    out.pinned = gain(later.pinned, earlier.pinned);
    for (std::size_t i = 0; i < latency_buckets::count; ++i) {
        out.upstream_latency[i] = gain(later.upstream.buckets[i], earlier.upstream.buckets[i]);
    }
    return out;
}

slot_window mirror_difference(const slot_totals& later, const slot_totals& earlier) {
    slot_window out;
    out.shadow = true;
    out.requests = gain(later.mirror.requests(), earlier.mirror.requests());
    out.errors = gain(later.mirror.errors(), earlier.mirror.errors());
    out.mismatches = gain(later.mirror.mismatches, earlier.mirror.mismatches);
    for (std::size_t i = 0; i < latency_buckets::count; ++i) {
        out.upstream_latency[i] =
            gain(later.mirror.response.buckets[i], earlier.mirror.response.buckets[i]);
    }
    return out;
}

double slot_window::mismatch_rate() const noexcept {
    return requests == 0 ? 0.0 : static_cast<double>(mismatches) / static_cast<double>(requests);
}

double metrics_window::span::rate() const noexcept {
    return seconds <= 0 ? 0.0 : static_cast<double>(stats.requests) / static_cast<double>(seconds);
}

// The ring is dense and allocated up front: count * 4 bytes per slot-second (2.9 KiB), 3.4 MiB
// for 600 s and 2 slots. A sparse ring would be smaller for a quiet proxy but larger in the worst
// case (every bucket touched), and this way push() never allocates.
metrics_window::metrics_window(std::size_t seconds) : ring_(std::max<std::size_t>(seconds, 1)) {
    for (entry& e : ring_) {
        for (slot_second& s : e.slots) {
            s.latency.assign(latency_buckets::count, 0);
        }
    }
}

void metrics_window::push(std::int64_t second, const per_slot<slot_totals>& totals) {
    if (last_ && second < last_second_) {
        return;  // the steady clock does not go back; a caller that does is ignored
    }
    if (last_) {
        entry& e = ring_[static_cast<std::size_t>(second) % ring_.size()];
        if (e.second != second) {
            e.second = second;
            e.covers = std::max<std::int64_t>(second - last_second_, 1);
            for (slot_second& s : e.slots) {
                s.requests = 0;
                s.errors = 0;
                s.pinned = 0;
                std::fill(s.latency.begin(), s.latency.end(), 0U);
            }
        }
        for (std::size_t slot = 0; slot < e.slots.size(); ++slot) {
            const slot_totals& now = totals[slot];
            const slot_totals& before = (*last_)[slot];
            slot_second& out = e.slots[slot];
            out.requests = narrow(out.requests + gain(now.requests(), before.requests()));
            out.errors = narrow(out.errors + gain(now.errors(), before.errors()));
            out.pinned = narrow(out.pinned + gain(now.pinned, before.pinned));
            for (std::size_t i = 0; i < latency_buckets::count; ++i) {
                out.latency[i] = narrow(out.latency[i] +
                                        gain(now.upstream.buckets[i], before.upstream.buckets[i]));
            }
        }
    }
    last_second_ = second;
    // The first push only sets the baseline. Later ones copy into the vectors already there
    // (same size), so they do not allocate.
    last_ = totals;
}

metrics_window::span metrics_window::over(slot_index slot, std::int64_t from,
                                          std::int64_t to) const {
    span out;
    // Only the `capacity` seconds up to the last push can be held; older ones were overwritten.
    const auto capacity = static_cast<std::int64_t>(ring_.size());
    from = std::max(from, last_second_ - capacity + 1);
    to = std::min(to, last_second_ + 1);
    for (std::int64_t second = from; second < to; ++second) {
        const entry& e = ring_[static_cast<std::size_t>(second) % ring_.size()];
        if (e.second != second) {
            continue;
        }
        const slot_second& s = e.slots[slot];
        out.seconds += e.covers;
        out.stats.requests += s.requests;
        out.stats.errors += s.errors;
        out.stats.pinned += s.pinned;
        for (std::size_t i = 0; i < latency_buckets::count; ++i) {
            out.stats.upstream_latency[i] += s.latency[i];
        }
    }
    return out;
}

std::size_t metrics_window::memory_bytes() const noexcept {
    std::size_t bytes = sizeof(*this) + ring_.capacity() * sizeof(entry);
    for (const entry& e : ring_) {
        for (const slot_second& s : e.slots) {
            bytes += s.latency.capacity() * sizeof(std::uint32_t);
        }
    }
    if (last_) {
        for (const slot_totals& t : *last_) {
            bytes += (t.duration.buckets.capacity() + t.upstream.buckets.capacity()) *
                     sizeof(std::uint64_t);
        }
    }
    return bytes;
}

}  // namespace switchyard::analysis
