#include "analysis/traffic_split.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <vector>

namespace switchyard::analysis {
namespace {

TEST(traffic_split, weight_of_each_slot) {
    const traffic_split s{1, 10};
    EXPECT_EQ(s.other(), 0);
    EXPECT_EQ(s.weight(0), 10);
    EXPECT_EQ(s.weight(1), 90);
}

TEST(split_state, round_trips_every_split) {
    split_state state({0, 0});
    for (slot_index active = 0; active < slot_count; ++active) {
        for (std::uint32_t w = 0; w <= 100; ++w) {
            const traffic_split s{active, static_cast<std::uint8_t>(w)};
            state.store(s);
            EXPECT_EQ(state.load(), s);
        }
    }
}

// Each writer changes its part of the word and keeps the others'.
TEST(split_state, flags_and_split_change_independently) {
    split_state state({1, 25});
    state.set_rollout(true, 0);
    state.set_hold(true);
    state.store({0, 40});
    traffic_state t = state.load_state();
    EXPECT_EQ(t.split, (traffic_split{0, 40}));
    EXPECT_TRUE(t.rollout);
    EXPECT_EQ(t.canary_slot(), std::optional<slot_index>(0));
    EXPECT_EQ(t.stable_slot(), 1);
    EXPECT_TRUE(t.hold);
    EXPECT_FALSE(t.maintenance);

    state.set_maintenance(true);
    state.set_hold(false);
    state.set_rollout(false, 1);
    t = state.load_state();
    EXPECT_EQ(t.split, (traffic_split{0, 40}));
    EXPECT_FALSE(t.rollout);
    EXPECT_EQ(t.canary_slot(), std::nullopt);
    EXPECT_EQ(t.stable_slot(), 0);  // the active slot when no rollout runs
    EXPECT_FALSE(t.hold);
    EXPECT_TRUE(t.maintenance);
}

// Every window of 100 consecutive picks, at any offset, gives the other slot exactly its weight.
TEST(split_picker, every_window_of_100_is_exact_for_every_weight) {
    for (std::uint32_t w = 0; w <= 100; ++w) {
        split_picker picker;
        const traffic_split s{0, static_cast<std::uint8_t>(w)};
        std::deque<slot_index> window;
        std::uint32_t in_window = 0;
        for (int i = 0; i < 1000; ++i) {
            const slot_index slot = picker.pick(s);
            window.push_back(slot);
            in_window += slot;
            if (window.size() > 100) {
                in_window -= window.front();
                window.pop_front();
            }
            if (window.size() == 100) {
                ASSERT_EQ(in_window, w) << "weight " << w << " window ending at " << i;
            }
        }
    }
}

TEST(split_picker, spreads_the_other_slot_evenly) {
    split_picker picker;
    std::vector<int> positions;
    for (int i = 0; i < 100; ++i) {
        if (picker.pick({0, 10}) == 1) {
            positions.push_back(i);
        }
    }
    ASSERT_EQ(positions.size(), 10U);
    for (std::size_t i = 1; i < positions.size(); ++i) {
        EXPECT_EQ(positions[i] - positions[i - 1], 10);
    }
}

TEST(split_picker, follows_the_active_slot) {
    split_picker picker;
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(picker.pick({1, 0}), 1);
    }
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(picker.pick({1, 100}), 0);
    }
}

}  // namespace
}  // namespace switchyard::analysis
