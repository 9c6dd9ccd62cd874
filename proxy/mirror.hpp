#pragma once
// Shadow traffic (README, "Mirroring"): a copy of some of the requests that go to the stable slot
// is sent to the other slot, and its answer is measured and thrown away.
//
// Fire and forget: the copy is made from the rewritten head and the body bytes the session
// already holds, before the primary is sent, and goes out from a coroutine of its own on the
// worker's io_context, over a connection of its own (from the worker's pool for that endpoint).
// Nothing the primary does waits for it. The session and the copy meet once more, on the same
// thread, to compare status classes: whichever of the two ends last records a mismatch.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "analysis/metrics.hpp"
#include "analysis/traffic_split.hpp"

namespace switchyard::proxy {

class worker;

// The marker every copy carries, so that the mirrored slot (and its logs) can tell copies from
// user requests. The copy keeps the client's Host and X-Request-Id.
inline constexpr std::string_view mirror_header = "X-Switchyard-Mirror";

// One copy, shared by the session that made it and the coroutine that sends it (one thread).
struct mirror_job {
    std::string request;  // the upstream head with the marker, then the body bytes
    analysis::slot_index slot = 0;
    bool head = false;               // a HEAD: the answer has no body
    std::uint8_t primary_class = 0;  // analysis::status_class of the primary; 0 until known
    std::uint8_t mirror_class = 0;   // of the copy; 0 until its exchange has ended
    bool primary_ended = false;      // the primary's request has ended (answered or not)
};

// Per worker: which requests are mirrored, and how many copies are in flight. Not thread-safe.
class mirror_sender {
public:
    // Of every 100 consecutive calls with the same `percent`, exactly `percent` return true,
    // spread evenly (Bresenham, as analysis::split_picker).
    bool choose(std::uint32_t percent) noexcept {
        const std::uint32_t k = position_;
        position_ = position_ == 99 ? 0 : position_ + 1;
        return (k + 1) * percent / 100 > k * percent / 100;
    }
    // Takes a place for a copy; false when `limit` copies are in flight already.
    bool try_acquire(std::uint32_t limit) noexcept {
        if (in_flight_ >= limit) {
            return false;
        }
        ++in_flight_;
        return true;
    }
    void release() noexcept { --in_flight_; }
    std::uint32_t in_flight() const noexcept { return in_flight_; }

private:
    std::uint32_t position_ = 0;
    std::uint32_t in_flight_ = 0;
};

// Appends to `out` the copy of an upstream request head `head` (which ends with an empty line):
// the same head with the marker field added last.
void write_mirror_head(std::string_view head, std::string& out);

// Sends the copy from the worker's thread; the place it took in the worker's mirror_sender is
// given back when its exchange ends.
void spawn_mirror(worker& w, std::shared_ptr<mirror_job> job);

// The primary's request has ended with `status` (0: nothing was sent to the client), after an
// upstream failure or not. Records a mismatch in `metrics` when the copy has already ended with
// another status class.
void primary_ended(mirror_job& job, analysis::metrics_shard& metrics, std::uint16_t status,
                   bool failed) noexcept;

}  // namespace switchyard::proxy
