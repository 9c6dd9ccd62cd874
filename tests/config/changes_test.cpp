#include "config/changes.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace switchyard::config {
namespace {

using strings = std::vector<std::string>;

config parse_ok(const std::string& text) {
    load_result result = parse_config(text);
    EXPECT_TRUE(result.errors.empty());
    return result.value ? std::move(*result.value) : config{};
}

const std::string base =
    "listen: 127.0.0.1:8080\n"
    "slots:\n"
    "  blue:  { endpoints: [\"backend-blue:8000\"] }\n"
    "  green: { endpoints: [\"backend-green:8000\"] }\n";

TEST(config_changes, the_same_file_changes_nothing) {
    const auto changes = compare(parse_ok(base), parse_ok(base));
    EXPECT_TRUE(changes.changed.empty());
    EXPECT_TRUE(changes.restart_required.empty());
}

TEST(config_changes, live_keys_are_named_by_section_and_slot) {
    const config next = parse_ok(
        "listen: 127.0.0.1:8080\n"
        "slots:\n"
        "  blue:  { endpoints: [\"backend-blue:8000\"] }\n"
        "  green: { endpoints: [\"backend-green:9000\"] }\n"
        "timeouts: { idle: 5s }\n"
        "access_log: { to: stdout }\n"
        "analysis: { interval: 30s }\n"
        "rollout: { steps: [50, 100] }\n"
        "admin: { token: \"s3cret-s3cret-s3cret\" }\n");
    const auto changes = compare(parse_ok(base), next);
    EXPECT_EQ(changes.changed, (strings{"admin.token", "slots.green.endpoints", "access_log",
                                        "timeouts", "analysis", "rollout"}));
    EXPECT_TRUE(changes.restart_required.empty());
}

TEST(config_changes, hold_is_live) {
    const config next = parse_ok(base + "hold: { max_wait: 5s }\n");
    const auto changes = compare(parse_ok(base), next);
    EXPECT_EQ(changes.changed, strings{"hold"});
    EXPECT_TRUE(changes.restart_required.empty());
}

TEST(config_changes, restart_keys_are_named_and_kept_as_running) {
    const config running = parse_ok(base);
    const config next = parse_ok(
        "listen: 127.0.0.1:9090\n"
        "workers: 3\n"
        "state_file: off\n"
        "active: green\n"
        "admin: { listen: 127.0.0.1:9091 }\n"
        "limits: { max_connections: 5 }\n"
        "slots:\n"
        "  blue:  { endpoints: [\"backend-blue:8000\"] }\n"
        "  green: { endpoints: [\"backend-green:8000\"] }\n");
    const auto changes = compare(running, next);
    EXPECT_EQ(changes.restart_required,
              (strings{"listen", "workers", "admin.listen", "state_file", "active"}));
    EXPECT_EQ(changes.changed, (strings{"limits"}));

    const config live = live_part(running, next);
    EXPECT_EQ(live.listen, running.listen);
    EXPECT_EQ(live.workers, running.workers);
    EXPECT_EQ(live.admin.listen, running.admin.listen);
    EXPECT_EQ(live.state_file, running.state_file);
    EXPECT_EQ(live.active, running.active);
    EXPECT_EQ(live.limits.max_connections, 5U);  // the rest still applies
    EXPECT_TRUE(compare(running, live).restart_required.empty());
}

TEST(config_changes, listen_proxy_protocol_needs_a_restart) {
    const config running = parse_ok(base);
    const config next = parse_ok(base + "listen_proxy_protocol: v2\n");
    const auto changes = compare(running, next);
    EXPECT_EQ(changes.restart_required, (strings{"listen_proxy_protocol"}));
    EXPECT_TRUE(changes.changed.empty());
    EXPECT_EQ(live_part(running, next).listen_proxy_protocol, proxy_protocol_version::off);
}

TEST(config_changes, renamed_slots_need_a_restart_and_keep_their_endpoints) {
    const config running = parse_ok(base);
    const config next = parse_ok(
        "listen: 127.0.0.1:8080\n"
        "slots:\n"
        "  old: { endpoints: [\"a:1\"] }\n"
        "  new: { endpoints: [\"b:1\"] }\n");
    const auto changes = compare(running, next);
    EXPECT_EQ(changes.restart_required, (strings{"active", "slots"}));
    EXPECT_TRUE(changes.changed.empty());
    const config live = live_part(running, next);
    EXPECT_EQ(live.slots[0].name, "blue");
    EXPECT_EQ(live.slots[1].endpoints, running.slots[1].endpoints);
}

TEST(config_changes, routes_and_preview_apply_live) {
    const config next = parse_ok(std::string(base) +
                                 "routes: [ { name: testers, match: { header: { X-Canary: "
                                 "\"true\" } }, to: canary } ]\n"
                                 "preview: { from: [10.0.0.0/8] }\n");
    const auto changes = compare(parse_ok(base), next);
    EXPECT_EQ(changes.changed, (strings{"routes", "preview"}));
    EXPECT_TRUE(changes.restart_required.empty());
    EXPECT_EQ(live_part(parse_ok(base), next).routes, next.routes);
}

TEST(config_changes, mirror_changes_live) {
    const auto on = compare(parse_ok(base), parse_ok(base + "mirror: { percent: 20 }\n"));
    EXPECT_EQ(on.changed, (strings{"mirror"}));
    EXPECT_TRUE(on.restart_required.empty());
    const auto same = compare(parse_ok(base + "mirror: {}\n"), parse_ok(base + "mirror: {}\n"));
    EXPECT_TRUE(same.changed.empty());
}

}  // namespace
}  // namespace switchyard::config

namespace switchyard::config {
namespace {

TEST(config_changes, health_check_and_passive_apply_live) {
    const config next = parse_ok(
        "listen: 127.0.0.1:8080\n"
        "slots:\n"
        "  blue:  { endpoints: [\"backend-blue:8000\"], passive: { eject: 5s } }\n"
        "  green: { endpoints: [\"backend-green:8000\"], health_check: { interval: 2s } }\n");
    const auto changes = compare(parse_ok(base), next);
    EXPECT_EQ(changes.changed, (strings{"slots.blue.passive", "slots.green.health_check"}));
    EXPECT_TRUE(changes.restart_required.empty());
}

}  // namespace
}  // namespace switchyard::config
