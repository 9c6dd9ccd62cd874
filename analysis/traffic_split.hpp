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
#include <optional>

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

// What the data plane reads once per request: the split, and what routing needs to know beside
// it (README, "Routes", "Sticky sessions", "Hold and maintenance").
struct traffic_state {
    traffic_split split;
    bool rollout = false;      // a rollout runs: waiting through baking
    slot_index canary = 0;     // with `rollout`: the slot it moves toward
    bool hold = false;         // POST /hold: new requests wait until POST /release
    bool maintenance = false;  // POST /maintenance: every request is answered 503

    // The slot a running rollout moves toward; none when no rollout runs.
    std::optional<slot_index> canary_slot() const noexcept {
        return rollout ? std::optional<slot_index>(canary) : std::nullopt;
    }
    // The slot a running rollout moves away from; the active slot when none runs.
    slot_index stable_slot() const noexcept {
        return rollout ? static_cast<slot_index>(canary ^ 1U) : split.active;
    }
    friend bool operator==(const traffic_state&, const traffic_state&) = default;
};

// The current traffic state, shared by all threads. Writers (the admin API and the rollout, on
// the admin thread) are rare; readers are the workers, once per request, with one load.
class split_state {
public:
    explicit split_state(traffic_split initial) noexcept : word_(pack({initial})) {}

    traffic_split load() const noexcept { return load_state().split; }
    traffic_state load_state() const noexcept {
        return unpack(word_.load(std::memory_order_acquire));
    }
    // Each changes its part and keeps the rest.
    void store(traffic_split s) noexcept {
        update([s](traffic_state& t) { t.split = s; });
    }
    void set_rollout(bool running, slot_index canary) noexcept {
        update([=](traffic_state& t) {
            t.rollout = running;
            t.canary = running ? canary : 0;
        });
    }
    void set_hold(bool on) noexcept {
        update([on](traffic_state& t) { t.hold = on; });
    }
    void set_maintenance(bool on) noexcept {
        update([on](traffic_state& t) { t.maintenance = on; });
    }

private:
    template <class F>
    void update(F change) noexcept {
        std::uint32_t seen = word_.load(std::memory_order_relaxed);
        for (;;) {
            traffic_state t = unpack(seen);
            change(t);
            if (word_.compare_exchange_weak(seen, pack(t), std::memory_order_release,
                                            std::memory_order_relaxed)) {
                return;
            }
        }
    }
    static std::uint32_t pack(const traffic_state& t) noexcept {
        return static_cast<std::uint32_t>(t.split.active) |
               (static_cast<std::uint32_t>(t.split.other_weight) << 8U) |
               (static_cast<std::uint32_t>(t.rollout) << 16U) |
               (static_cast<std::uint32_t>(t.canary) << 17U) |
               (static_cast<std::uint32_t>(t.hold) << 18U) |
               (static_cast<std::uint32_t>(t.maintenance) << 19U);
    }
    static traffic_state unpack(std::uint32_t w) noexcept {
        traffic_state t;
        t.split = {static_cast<slot_index>(w & 1U), static_cast<std::uint8_t>((w >> 8U) & 0xffU)};
        t.rollout = ((w >> 16U) & 1U) != 0;
        t.canary = static_cast<slot_index>((w >> 17U) & 1U);
        t.hold = ((w >> 18U) & 1U) != 0;
        t.maintenance = ((w >> 19U) & 1U) != 0;
        return t;
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
