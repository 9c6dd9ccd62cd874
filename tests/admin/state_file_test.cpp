// The state file: what it keeps, how it is written, and what a missing, corrupt or unwritable
// one does.

#include "admin/state_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "admin/rollout_json.hpp"
#include "tests/support/temp_dir.hpp"

namespace switchyard::admin {
namespace {

using test::temp_dir;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using analysis::phase;

const slot_names names{"blue", "green"};

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

analysis::instant at(std::chrono::seconds s) {
    return {std::chrono::steady_clock::time_point(s),
            std::chrono::system_clock::time_point(std::chrono::hours(500'000) + s)};
}

// A rollout at its second step, with a finished one before it, as the machine leaves them.
saved_state rollout_in_progress() {
    analysis::rollout_machine m({});
    config::rollout_config first;
    first.strategy = config::rollout_strategy::blue_green;
    first.bake = 0s;
    m.start(at(1s), "first", first, {0, 0});
    m.validated(at(2s), "first", {});  // green is active now
    config::rollout_config second;
    second.steps = {20, 60, 100};
    second.health.path = "/ready";
    second.smoke.paths = {"/", "/a?b=c"};
    m.start(at(3s), "second", second, {1, 0});
    m.validated(at(4s), "second", {});
    m.promote(at(5s), false);
    return {m.split(), m.state()};
}

TEST(state_file, keeps_the_split_and_the_rollout_across_a_save_and_a_load) {
    temp_dir dir;
    const saved_state before = rollout_in_progress();
    ASSERT_EQ(before.split, (analysis::traffic_split{1, 60}));
    {
        state_file file(dir.file("state.json"), names);
        ASSERT_TRUE(file.save(before));
    }
    state_file file(dir.file("state.json"), names);
    const auto after = file.load();
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(after->split, before.split);
    const auto& r = after->rollout;
    const auto& b = before.rollout;
    EXPECT_EQ(r.id, "second");
    EXPECT_EQ(r.current, phase::progressing);
    EXPECT_EQ(r.stable, 1);
    EXPECT_EQ(r.canary, 0);
    EXPECT_EQ(r.step, 1U);
    EXPECT_EQ(r.weight, 60U);
    EXPECT_EQ(r.max_weight, 60U);
    EXPECT_EQ(r.config.steps, (std::vector<std::uint32_t>{20, 60, 100}));
    EXPECT_EQ(r.config.health.path, "/ready");
    EXPECT_EQ(r.config.smoke.paths, b.config.smoke.paths);
    EXPECT_EQ(r.config.bake, b.config.bake);
    EXPECT_EQ(r.started, b.started);
    EXPECT_EQ(r.last_transition, b.last_transition);
    EXPECT_EQ(r.reason, b.reason);
    ASSERT_EQ(r.history.size(), 1U);
    EXPECT_EQ(r.history[0].id, "first");
    EXPECT_EQ(r.history[0].result, phase::succeeded);
    EXPECT_EQ(r.history[0].strategy, config::rollout_strategy::blue_green);
    ASSERT_EQ(r.events.size(), b.events.size());
    for (std::size_t i = 0; i < r.events.size(); ++i) {
        EXPECT_EQ(r.events[i].kind, b.events[i].kind) << i;
        EXPECT_EQ(r.events[i].split, b.events[i].split) << i;
        EXPECT_EQ(r.events[i].at, b.events[i].at) << i;
    }
    // Written whole, with nothing left beside it.
    EXPECT_FALSE(fs::exists(dir.file("state.json.tmp")));
}

TEST(state_file, a_missing_file_gives_nothing_and_is_not_created_by_reading) {
    temp_dir dir;
    state_file file(dir.file("state.json"), names);
    EXPECT_FALSE(file.load().has_value());
    EXPECT_FALSE(fs::exists(dir.file("state.json")));
}

TEST(state_file, a_corrupt_file_is_kept_aside_and_ignored) {
    for (const std::string& contents :
         {std::string("not json"), std::string("{\"version\":1,\"slots\":[\"blue\""),
          std::string("{}"),
          state_to_json(rollout_in_progress(), {"green", "blue"}),  // other slots' file
          state_to_json(rollout_in_progress(), names).substr(0, 200)}) {
        temp_dir dir;
        const std::string path = dir.file("state.json");
        std::ofstream(path) << contents;
        state_file file(path, names);
        EXPECT_FALSE(file.load().has_value()) << contents;
        EXPECT_FALSE(fs::exists(path));
        EXPECT_EQ(read(path + ".corrupt"), contents);  // nothing is lost
        // The next save writes a fresh file.
        ASSERT_TRUE(file.save(rollout_in_progress()));
        EXPECT_TRUE(file.load().has_value());
    }
}

TEST(state_file, an_unwritable_directory_stops_the_start_naming_the_path) {
    temp_dir dir;
    const std::string plain = dir.file("plain");
    std::ofstream(plain) << "a file, not a directory";
    const std::string path = plain + "/state.json";
    try {
        state_file file(path, names);
        ADD_FAILURE() << "accepted a state file under a regular file";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST(state_file, creates_a_missing_directory) {
    temp_dir dir;
    const std::string path = dir.file("a/b/state.json");
    state_file file(path, names);
    EXPECT_TRUE(fs::is_directory(dir.file("a/b")));
    EXPECT_TRUE(file.save(rollout_in_progress()));
    EXPECT_TRUE(file.load().has_value());
}

TEST(state_file, a_failed_save_leaves_the_previous_file_whole) {
    temp_dir dir;
    const std::string path = dir.file("state.json");
    state_file file(path, names);
    ASSERT_TRUE(file.save(rollout_in_progress()));
    const std::string before = read(path);
    // The temporary file cannot be created where a directory of that name stands.
    fs::create_directories(path + ".tmp");
    saved_state other = rollout_in_progress();
    other.split = {0, 0};
    EXPECT_FALSE(file.save(other));
    EXPECT_EQ(read(path), before);
}

TEST(rollout_json, times_round_trip_to_the_millisecond) {
    const auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1795786662123));
    EXPECT_EQ(format_time(t), "2026-11-27T13:37:42.123Z");
    EXPECT_EQ(parse_time("2026-11-27T13:37:42.123Z"), t);
    EXPECT_FALSE(parse_time("2026-11-27 13:37:42").has_value());
    EXPECT_FALSE(parse_time("2026-11-27T13:37:42.123+01:00").has_value());
}

TEST(rollout_json, a_check_with_sequential_evidence_round_trips) {
    analysis::check_result c;
    c.name = "latency_p95_ratio";
    c.metric = config::check_metric::latency_p95;
    c.kind = config::check_kind::max_ratio_to_stable;
    c.result = analysis::verdict::fail;
    analysis::test_evidence exceedance;
    exceedance.check = c.name;
    exceedance.test = analysis::sequential_test::exceedance;
    exceedance.alpha = 0.0025;
    exceedance.e_value = 512.5;
    exceedance.e_threshold = 400;
    exceedance.p_value = 1 / 512.5;
    exceedance.e_value_within = 0.25;
    exceedance.canary_requests = 900;
    exceedance.stable_requests = 8100;
    exceedance.canary_events = 120;
    exceedance.stable_events = 405;
    exceedance.rejected = true;
    analysis::test_evidence quantile;
    quantile.check = c.name;
    quantile.test = analysis::sequential_test::quantile;
    quantile.alpha = 0.0015;
    quantile.step = 2;
    quantile.canary_lower = 0.3;
    quantile.canary_upper = 0.33;
    quantile.stable_lower = 0.012;
    quantile.stable_upper = 0.015;
    quantile.limit = 0.0225;
    quantile.canary_requests = 400;
    quantile.stable_requests = 3600;
    quantile.within = false;
    c.evidence = {exceedance, quantile};
    const boost::json::object o = to_json(c);
    ASSERT_TRUE(o.contains("evidence"));
    EXPECT_EQ(o.at("evidence").as_array().at(0).at("test"), "exceedance");
    EXPECT_FALSE(o.at("evidence").as_array().at(1).as_object().contains("e_value"));
    const analysis::check_result back = check_from_json(o);
    ASSERT_EQ(back.evidence.size(), 2U);
    EXPECT_EQ(to_json(back), o);
    // A check judged by the threshold method has no evidence member.
    c.evidence.clear();
    EXPECT_FALSE(to_json(c).contains("evidence"));
}

}  // namespace
}  // namespace switchyard::admin
