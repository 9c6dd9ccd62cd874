#pragma once
// Where new requests go: the traffic split between the two slots, published to the workers.
//
// The split is two small numbers, so the "immutable snapshot swapped atomically" is one atomic
// word: a worker reads it once per request (a plain load of a line that is almost never written,
// no read-modify-write) and keeps the value it read for the whole request, so a request in
// flight finishes on the slot it started on while the next one sees the change.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace switchyard::analysis {

// A slot by its position in the configuration: 0 or 1.
using slot_index = std::uint8_t;
// How many slots there are: the two of blue-green, whatever their names.
inline constexpr std::size_t slot_count = 2;
// One T per slot, indexed by slot_index.
template <class T>
using per_slot = std::array<T, slot_count>;

struct traffic_split {
    slot_index active = 0;          // the slot that takes what the other does not
    std::uint8_t other_weight = 0;  // percent of requests sent to the other slot, 0..100

    // With two slots, the other is the one that is not active.
    static_assert(slot_count == 2);
    slot_index other() const noexcept { return static_cast<slot_index>(active ^ 1U); }
    // Percent of requests slot `s` receives.
    std::uint8_t weight(slot_index s) const noexcept {
        return s == active ? static_cast<std::uint8_t>(100U - other_weight) : other_weight;
    }
    friend bool operator==(const traffic_split&, const traffic_split&) = default;
};

// The current split, shared by all threads. Writers (the admin API, later the rollout) are rare
// and serialize among themselves; readers are the workers, once per request.
class split_state {
public:
    explicit split_state(traffic_split initial) noexcept : word_(pack(initial)) {}

    traffic_split load() const noexcept { return unpack(word_.load(std::memory_order_acquire)); }
    void store(traffic_split s) noexcept { word_.store(pack(s), std::memory_order_release); }

private:
    static std::uint32_t pack(traffic_split s) noexcept {
        return static_cast<std::uint32_t>(s.active) |
               (static_cast<std::uint32_t>(s.other_weight) << 8U);
    }
    static traffic_split unpack(std::uint32_t w) noexcept {
        return {static_cast<slot_index>(w & 1U), static_cast<std::uint8_t>((w >> 8U) & 0xffU)};
    }

    std::atomic<std::uint32_t> word_;
};

// Turns a split into a slot per request, exactly: of any 100 consecutive picks under one split,
// the other slot gets exactly `other_weight` (Bresenham's line, not a coin toss), spread evenly.
// One per worker; not thread-safe.
class split_picker {
public:
    slot_index pick(traffic_split s) noexcept;

private:
    std::uint32_t position_ = 0;  // request number modulo 100
};

}  // namespace switchyard::analysis
