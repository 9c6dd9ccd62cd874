#include "config/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace switchyard::config {
namespace {

using namespace std::chrono_literals;

constexpr const char* two_slots =
    "slots:\n"
    "  blue:  { endpoints: [\"backend-blue:8000\"] }\n"
    "  green: { endpoints: [\"backend-green:8000\"] }\n";

// Every error, one per line, for assertion messages.
std::string dump(const load_result& result) {
    std::string out;
    for (const config_error& e : result.errors) {
        out += format_error("test.yaml", e) + "\n";
    }
    return out;
}

// The error at `path`, or nullptr.
const config_error* error_at(const load_result& result, const std::string& path) {
    for (const config_error& e : result.errors) {
        if (e.path == path) {
            return &e;
        }
    }
    return nullptr;
}

void expect_check(const check_config& c, std::string_view name, check_metric metric,
                  check_kind kind, double limit, double floor) {
    EXPECT_EQ(c.name, name);
    EXPECT_EQ(c.metric, metric) << name;
    EXPECT_EQ(c.kind, kind) << name;
    EXPECT_DOUBLE_EQ(c.limit, limit) << name;
    EXPECT_DOUBLE_EQ(c.floor, floor) << name;
}

config parse_ok(const std::string& text) {
    load_result result = parse_config(text);
    EXPECT_TRUE(result.errors.empty()) << dump(result);
    if (!result.value) {
        ADD_FAILURE() << "no value";
        return config{};
    }
    return std::move(*result.value);
}

// Parses text that must fail with exactly one error, and returns it.
config_error only_error(const std::string& text) {
    load_result result = parse_config(text);
    EXPECT_FALSE(result.value.has_value());
    EXPECT_EQ(result.errors.size(), 1u) << dump(result);
    return result.errors.empty() ? config_error{} : result.errors.front();
}

// A file in the temporary directory, removed when the test ends.
class temp_file {
public:
    explicit temp_file(const std::string& contents) {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "switchyard-config-test-XXXXXX").string();
        const int fd = ::mkstemp(pattern.data());
        EXPECT_GE(fd, 0);
        ::close(fd);
        path_ = pattern;
        std::ofstream(path_, std::ios::binary) << contents;
    }
    ~temp_file() { std::filesystem::remove(path_); }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

TEST(config_parse, minimal_config_gets_every_default) {
    const config c = parse_ok(two_slots);
    EXPECT_EQ(c.listen, (address{"0.0.0.0", 8080}));
    EXPECT_EQ(c.workers, 0u);  // auto
    EXPECT_EQ(c.admin.listen, (address{"127.0.0.1", 8081}));
    EXPECT_EQ(c.admin.token, "");
    EXPECT_EQ(c.admin.token_file, "");
    ASSERT_EQ(c.slots.size(), 2u);
    EXPECT_EQ(c.slots[0].name, "blue");
    EXPECT_EQ(c.slots[0].endpoints, (std::vector<address>{{"backend-blue", 8000}}));
    EXPECT_EQ(c.slots[1].name, "green");
    EXPECT_EQ(c.slots[1].endpoints, (std::vector<address>{{"backend-green", 8000}}));
    EXPECT_EQ(c.active, "blue");
    EXPECT_EQ(c.state_file, "/var/lib/switchyard/state.json");
    EXPECT_EQ(c.access_log.to, "off");
    EXPECT_EQ(c.access_log.format, log_format::json);
    EXPECT_EQ(c.timeouts.connect, 2s);
    EXPECT_EQ(c.timeouts.request_header, 10s);
    EXPECT_EQ(c.timeouts.upstream_response, 60s);
    EXPECT_EQ(c.timeouts.idle, 60s);
    EXPECT_EQ(c.timeouts.drain, 30s);
    EXPECT_EQ(c.limits.max_header_bytes, 64u * 1024);
    EXPECT_EQ(c.limits.max_headers, 100u);
    EXPECT_EQ(c.limits.max_body_bytes, 0u);
    EXPECT_EQ(c.limits.max_connections, 10000u);
    EXPECT_EQ(c.upstream.max_idle, 32u);
    EXPECT_EQ(c.upstream.idle_timeout, 30s);
    EXPECT_EQ(c.upstream.fail_timeout, 5s);
    EXPECT_EQ(c.upstream.resolve_interval, 5s);
    EXPECT_EQ(c.analysis.interval, 10s);
    EXPECT_EQ(c.analysis.threshold, 3u);
    EXPECT_EQ(c.analysis.min_requests, 20u);
    EXPECT_EQ(c.analysis.method, analysis_method::sequential);
    EXPECT_DOUBLE_EQ(c.analysis.alpha, 0.01);
    EXPECT_EQ(c.analysis.promote, promote_rule::interval);
    EXPECT_EQ(c.analysis.max_step_duration, std::chrono::minutes(10));
    EXPECT_EQ(c.analysis.inconclusive_limit, 5u);
    EXPECT_TRUE(c.analysis.fast_rollback.enabled);
    EXPECT_DOUBLE_EQ(c.analysis.fast_rollback.error_rate, 0.5);
    EXPECT_EQ(c.analysis.fast_rollback.min_requests, 10u);
    EXPECT_EQ(c.analysis.fast_rollback.window, 1s);
    ASSERT_EQ(c.analysis.checks.size(), 4u);
    expect_check(c.analysis.checks[0], "error_rate", check_metric::error_rate, check_kind::max,
                 0.05, 0);
    expect_check(c.analysis.checks[1], "latency_p95", check_metric::latency_p95, check_kind::max,
                 2.0, 0);
    expect_check(c.analysis.checks[2], "error_rate_ratio", check_metric::error_rate,
                 check_kind::max_ratio_to_stable, 2.0, 0.01);
    expect_check(c.analysis.checks[3], "latency_p95_ratio", check_metric::latency_p95,
                 check_kind::max_ratio_to_stable, 1.5, 0.005);
    EXPECT_EQ(c.rollout.strategy, rollout_strategy::canary);
    EXPECT_EQ(c.rollout.steps, (std::vector<std::uint32_t>{10, 25, 50, 75, 100}));
    EXPECT_FALSE(c.rollout.approval);
    EXPECT_EQ(c.rollout.bake, 5min);
    EXPECT_EQ(c.rollout.health.path, "/health");
    EXPECT_EQ(c.rollout.health.deadline, 30s);
    EXPECT_EQ(c.rollout.smoke.requests, 0u);
    EXPECT_TRUE(c.webhooks.pre_rollout.empty());
    EXPECT_TRUE(c.webhooks.events.empty());
}

TEST(config_parse, every_key_round_trips) {
    const config c = parse_ok(R"(
listen: 0.0.0.0:9090
workers: 4
admin:
  listen: "[::1]:9091"
  token: s3cret
slots:
  green: { endpoints: ["10.0.0.2:8000", "[::1]:8001"] }
  blue:
    endpoints:
      - backend-blue:8000
active: blue
state_file: /tmp/state.json
access_log: { to: stderr, format: combined }
timeouts: { connect: 250ms, request_header: 5s, upstream_response: 2m, idle: 1h, drain: 15s }
limits: { max_header_bytes: 32KiB, max_headers: 50, max_body_bytes: 10MiB, max_connections: 500 }
upstream: { max_idle: 8, idle_timeout: 45s, fail_timeout: 2s, resolve_interval: 500ms }
analysis:
  method: threshold
  alpha: 5%
  promote: interval
  interval: 20s
  threshold: 2
  min_requests: 50
  inconclusive_limit: 7
  fast_rollback: { error_rate: 0.9, min_requests: 30, window: 2s }
  checks:
    - { metric: error_rate, max: 1% }
    - { metric: latency_p95, max: 500ms }
    - { max_ratio_to_stable: 3, metric: error_rate, floor: 2% }
    - metric: latency_p99
      max_ratio_to_stable: 1.25
      floor: 20ms
      name: slow_tail
    - { metric: success_rate, min: 99% }
    - { metric: latency_p50, min: 1ms }
    - { metric: latency_p90, max: 1s }
    - { metric: latency_p999, max: 3s }
rollout:
  strategy: blue-green
  steps: [5, 50, 100]
  approval: true
  bake: 0
  health: { path: /ready, deadline: 45s }
  smoke: { requests: 50, paths: ["/", "/api?x=1"] }
webhooks:
  pre_rollout: [ { url: "http://tests:8080/run", timeout: 60s } ]
  events:
    - url: http://hooks.example/notify
    - { url: "http://[::1]:9000/x?y=1", timeout: 3s }
)");
    EXPECT_EQ(c.listen, (address{"0.0.0.0", 9090}));
    EXPECT_EQ(c.workers, 4u);
    EXPECT_EQ(c.admin.listen, (address{"::1", 9091}));
    EXPECT_EQ(c.admin.token, "s3cret");
    EXPECT_EQ(c.admin.token_file, "");
    ASSERT_EQ(c.slots.size(), 2u);
    EXPECT_EQ(c.slots[0].name, "green");  // file order, not alphabetical
    EXPECT_EQ(c.slots[0].endpoints, (std::vector<address>{{"10.0.0.2", 8000}, {"::1", 8001}}));
    EXPECT_EQ(c.slots[1].name, "blue");
    EXPECT_EQ(c.slots[1].endpoints, (std::vector<address>{{"backend-blue", 8000}}));
    EXPECT_EQ(c.active, "blue");
    EXPECT_EQ(c.state_file, "/tmp/state.json");
    EXPECT_EQ(c.access_log.to, "stderr");
    EXPECT_EQ(c.access_log.format, log_format::combined);
    EXPECT_EQ(c.timeouts.connect, 250ms);
    EXPECT_EQ(c.timeouts.request_header, 5s);
    EXPECT_EQ(c.timeouts.upstream_response, 2min);
    EXPECT_EQ(c.timeouts.idle, 1h);
    EXPECT_EQ(c.timeouts.drain, 15s);
    EXPECT_EQ(c.limits.max_header_bytes, 32u * 1024);
    EXPECT_EQ(c.limits.max_headers, 50u);
    EXPECT_EQ(c.limits.max_body_bytes, 10u * 1024 * 1024);
    EXPECT_EQ(c.limits.max_connections, 500u);
    EXPECT_EQ(c.upstream.max_idle, 8u);
    EXPECT_EQ(c.upstream.idle_timeout, 45s);
    EXPECT_EQ(c.upstream.fail_timeout, 2s);
    EXPECT_EQ(c.upstream.resolve_interval, 500ms);
    EXPECT_DOUBLE_EQ(c.analysis.alpha, 0.05);
    EXPECT_EQ(c.analysis.interval, 20s);
    EXPECT_EQ(c.analysis.threshold, 2u);
    EXPECT_EQ(c.analysis.min_requests, 50u);
    EXPECT_EQ(c.analysis.inconclusive_limit, 7u);
    EXPECT_TRUE(c.analysis.fast_rollback.enabled);
    EXPECT_DOUBLE_EQ(c.analysis.fast_rollback.error_rate, 0.9);
    EXPECT_EQ(c.analysis.fast_rollback.min_requests, 30u);
    EXPECT_EQ(c.analysis.fast_rollback.window, 2s);
    ASSERT_EQ(c.analysis.checks.size(), 8u);
    expect_check(c.analysis.checks[0], "error_rate", check_metric::error_rate, check_kind::max,
                 0.01, 0);
    expect_check(c.analysis.checks[1], "latency_p95", check_metric::latency_p95, check_kind::max,
                 0.5, 0);  // seconds
    expect_check(c.analysis.checks[2], "error_rate_ratio", check_metric::error_rate,
                 check_kind::max_ratio_to_stable, 3.0, 0.02);
    expect_check(c.analysis.checks[3], "slow_tail", check_metric::latency_p99,
                 check_kind::max_ratio_to_stable, 1.25, 0.02);
    expect_check(c.analysis.checks[4], "success_rate", check_metric::success_rate, check_kind::min,
                 0.99, 0);
    expect_check(c.analysis.checks[5], "latency_p50", check_metric::latency_p50, check_kind::min,
                 0.001, 0);
    expect_check(c.analysis.checks[6], "latency_p90", check_metric::latency_p90, check_kind::max,
                 1.0, 0);
    expect_check(c.analysis.checks[7], "latency_p999", check_metric::latency_p999, check_kind::max,
                 3.0, 0);
    EXPECT_EQ(c.rollout.strategy, rollout_strategy::blue_green);
    EXPECT_EQ(c.rollout.steps, (std::vector<std::uint32_t>{5, 50, 100}));
    EXPECT_TRUE(c.rollout.approval);
    EXPECT_EQ(c.rollout.bake, 0s);
    EXPECT_EQ(c.rollout.health.path, "/ready");
    EXPECT_EQ(c.rollout.health.deadline, 45s);
    EXPECT_EQ(c.rollout.smoke.requests, 50u);
    EXPECT_EQ(c.rollout.smoke.paths, (std::vector<std::string>{"/", "/api?x=1"}));
    ASSERT_EQ(c.webhooks.pre_rollout.size(), 1u);
    EXPECT_EQ(c.webhooks.pre_rollout[0].url.text, "http://tests:8080/run");
    EXPECT_EQ(c.webhooks.pre_rollout[0].url.at, (address{"tests", 8080}));
    EXPECT_EQ(c.webhooks.pre_rollout[0].url.target, "/run");
    EXPECT_EQ(c.webhooks.pre_rollout[0].timeout, 60s);
    ASSERT_EQ(c.webhooks.events.size(), 2u);
    EXPECT_EQ(c.webhooks.events[0].url.text, "http://hooks.example/notify");
    EXPECT_EQ(c.webhooks.events[0].url.at, (address{"hooks.example", 80}));
    EXPECT_EQ(c.webhooks.events[0].timeout, 10s);  // the default
    EXPECT_EQ(c.webhooks.events[1].url.at, (address{"::1", 9000}));
    EXPECT_EQ(c.webhooks.events[1].url.target, "/x?y=1");
    EXPECT_EQ(c.webhooks.events[1].timeout, 3s);
}

// The README's example of every key built so far, verbatim but for the token file, which does
// not exist here.
TEST(config_parse, product_example_is_valid) {
    const config c = parse_ok(R"(
listen: 0.0.0.0:8080
workers: auto                      # event-loop threads; auto = one per core
admin:
  listen: 127.0.0.1:8081
  token: example-token
slots:
  blue:  { endpoints: ["backend-blue:8000"] }   # host:port; names resolved at start and on reload
  green: { endpoints: ["backend-green:8000"] }
active: blue                       # the slot that takes all traffic when no rollout runs
state_file: /var/lib/switchyard/state.json     # active slot, weights and rollout survive restarts
access_log: { to: off, format: json }          # off | stdout | stderr | a file path; json | combined
timeouts: { connect: 2s, request_header: 10s, upstream_response: 60s, idle: 60s, drain: 30s,
            tunnel_idle: 1h }
limits: { max_header_bytes: 64KiB, max_headers: 100, max_body_bytes: 0, max_connections: 10000 }   # body 0 = unlimited, streamed
upgrade: { allow: [websocket] }    # Upgrade protocols tunnelled after a 101; [] refuses all
listen_proxy_protocol: off         # v1 | v2 | off
analysis:
  method: threshold                # threshold (per interval) | sequential (anytime-valid, every second; becomes the default once it is shown better)
  alpha: 1%                        # sequential: bound on the false-rollback probability over the whole rollout
  promote: interval                # interval | evidence (a step also needs the canary shown within tolerance)
  interval: 10s                    # one judgement per interval; the least time a step takes
  threshold: 3                     # failed judgements in a row before rollback
  min_requests: 20                 # fewer requests in a window = inconclusive, never a pass
  inconclusive_limit: 5            # inconclusive intervals in a row before the rollout pauses
  fast_rollback: { error_rate: 50%, min_requests: 10, window: 1s }   # hard failures do not wait for the interval; off to disable
  checks:
    - { metric: error_rate,  max: 5% }                     # 5xx and upstream failures / all
    - { metric: latency_p95, max: 2s }
    - { metric: error_rate,  max_ratio_to_stable: 2.0 }    # canary vs max(stable, floor), same window
    - { metric: latency_p95, max_ratio_to_stable: 1.5, floor: 5ms }   # latency = the upstream's own time
    # metrics: error_rate, success_rate, latency_p50 | p90 | p95 | p99 | p999
rollout:
  strategy: canary                 # canary | blue-green
  steps: [10, 25, 50, 75, 100]     # canary weight after each passing interval
  approval: false                  # true: wait for POST /rollout/approve before the last step
  bake: 5m                         # after promotion keep judging; a breach reverts to the old slot
  health: { path: /health, deadline: 30s }   # before traffic moves, every endpoint of the new slot answers 2xx
  smoke: { requests: 200, paths: ["/"] }     # blue-green only, optional: judged on both slots before the switch
webhooks:
  pre_rollout: [ { url: "http://tests:8080/run", timeout: 60s } ]   # must answer 2xx before traffic moves
  events:      [ { url: "http://hooks.example/notify" } ]           # every rollout event as JSON
)");
    EXPECT_EQ(c.access_log.to, "off");
    EXPECT_EQ(c.workers, 0u);
    EXPECT_EQ(c.admin.token, "example-token");
    EXPECT_EQ(c.analysis.checks.size(), 4u);
    EXPECT_EQ(c.rollout.smoke.requests, 200u);
    EXPECT_EQ(c.webhooks.pre_rollout.size(), 1u);
    EXPECT_EQ(c.webhooks.events.size(), 1u);
    EXPECT_EQ(c.upgrade.allow, std::vector<std::string>{"websocket"});
}

// The acceptance case: a misspelt top-level key and a bad endpoint are both reported, each with
// its path and line, not just the first one found.
TEST(config_parse, reports_misspelt_key_and_bad_endpoint_together) {
    const load_result result = parse_config(
        "lisen: 0.0.0.0:8080\n"
        "slots:\n"
        "  blue:  { endpoints: [\"backend:abc\"] }\n"
        "  green: { endpoints: [\"backend-green:8000\"] }\n");
    EXPECT_FALSE(result.value.has_value());
    ASSERT_EQ(result.errors.size(), 2u) << dump(result);

    const config_error* key = error_at(result, "lisen");
    ASSERT_NE(key, nullptr) << dump(result);
    EXPECT_EQ(key->line, 1);
    EXPECT_EQ(key->message, "unknown key \"lisen\"; did you mean \"listen\"?");

    const config_error* endpoint = error_at(result, "slots.blue.endpoints[0]");
    ASSERT_NE(endpoint, nullptr) << dump(result);
    EXPECT_EQ(endpoint->line, 3);
    EXPECT_EQ(endpoint->message, "expected host:port, got \"backend:abc\"");

    EXPECT_EQ(format_error("switchyard.yaml", *endpoint),
              "switchyard.yaml:3: slots.blue.endpoints[0]: expected host:port, got "
              "\"backend:abc\"");
}

TEST(config_parse, unknown_key_without_close_match_has_no_suggestion) {
    const config_error e = only_error(std::string(two_slots) + "colour: blue\n");
    EXPECT_EQ(e.path, "colour");
    EXPECT_EQ(e.line, 4);
    EXPECT_EQ(e.message, "unknown key \"colour\"");
}

TEST(config_parse, unknown_nested_keys_name_their_path) {
    const load_result result = parse_config(std::string(two_slots) +
                                            "timeouts:\n"
                                            "  conect: 2s\n"
                                            "admin: { listen: 127.0.0.1:8081, tokn: x }\n"
                                            "analysis:\n"
                                            "  checks:\n"
                                            "    - { metric: error_rate, max: 5%, mx: 1 }\n"
                                            "rollout: { health: { pth: /x } }\n");
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    const config_error* e = error_at(result, "timeouts.conect");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 5);
    EXPECT_EQ(e->message, "unknown key \"conect\"; did you mean \"connect\"?");
    e = error_at(result, "admin.tokn");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 6);
    EXPECT_EQ(e->message, "unknown key \"tokn\"; did you mean \"token\"?");
    e = error_at(result, "analysis.checks[0].mx");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 9);
    EXPECT_EQ(e->message, "unknown key \"mx\"; did you mean \"max\"?");
    e = error_at(result, "rollout.health.pth");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 10);
    EXPECT_EQ(e->message, "unknown key \"pth\"; did you mean \"path\"?");
}

TEST(config_parse, unknown_key_inside_a_slot) {
    const config_error e = only_error(
        "slots:\n"
        "  blue:  { endpoints: [\"a:1\"], endpoint: [\"b:2\"] }\n"
        "  green: { endpoints: [\"c:3\"] }\n");
    EXPECT_EQ(e.path, "slots.blue.endpoint");
    EXPECT_EQ(e.line, 2);
    EXPECT_EQ(e.message, "unknown key \"endpoint\"; did you mean \"endpoints\"?");
}

TEST(config_parse, swapped_letters_count_as_one_edit) {
    const config_error e = only_error(std::string(two_slots) + "lsiten: 0.0.0.0:80\n");
    EXPECT_EQ(e.message, "unknown key \"lsiten\"; did you mean \"listen\"?");
}

TEST(config_parse, duplicate_key_is_an_error) {
    const config_error e =
        only_error(std::string(two_slots) + "listen: 0.0.0.0:80\nlisten: 0.0.0.0:81\n");
    EXPECT_EQ(e.path, "listen");
    EXPECT_EQ(e.line, 5);
    EXPECT_EQ(e.message, "duplicate key \"listen\" (first on line 4)");
}

TEST(config_parse, wrong_types_are_errors) {
    const load_result result = parse_config(std::string(two_slots) +
                                            "timeouts: 5s\n"
                                            "listen: [0.0.0.0:80]\n"
                                            "workers: { n: 1 }\n"
                                            "rollout: { steps: 10, approval: maybe }\n"
                                            "limits: { max_headers: lots }\n");
    ASSERT_EQ(result.errors.size(), 6u) << dump(result);
    const config_error* e = error_at(result, "timeouts");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 4);
    EXPECT_EQ(e->message, "expected a map, got \"5s\"");
    e = error_at(result, "listen");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 5);
    EXPECT_EQ(e->message, "expected host:port, got a list");
    e = error_at(result, "workers");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message, "expected auto or a number of threads, got a map");
    e = error_at(result, "rollout.steps");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message, "expected a list of weights such as [10, 25, 50, 100], got \"10\"");
    e = error_at(result, "rollout.approval");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message, "expected true or false, got \"maybe\"");
    e = error_at(result, "limits.max_headers");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 8);
    EXPECT_EQ(e->message, "expected an integer >= 1, got \"lots\"");
}

TEST(config_parse, top_level_must_be_a_map) {
    const config_error e = only_error("- a\n- b\n");
    EXPECT_EQ(e.path, "");
    EXPECT_EQ(e.line, 1);
    EXPECT_EQ(e.message, "expected a map of settings at the top level, got a list");
}

TEST(config_parse, missing_slots_has_no_line) {
    const config_error e = only_error("listen: 0.0.0.0:8080\n");
    EXPECT_EQ(e.path, "slots");
    EXPECT_EQ(e.line, 0);
    EXPECT_NE(e.message.find("missing key \"slots\""), std::string::npos) << e.message;
    EXPECT_EQ(format_error("s.yaml", e), "s.yaml: slots: " + e.message);
}

TEST(config_parse, empty_text_misses_slots) {
    const config_error e = only_error("");
    EXPECT_EQ(e.path, "slots");
}

TEST(config_parse, wrong_slot_count) {
    config_error e = only_error("slots:\n  blue: { endpoints: [\"a:1\"] }\n");
    EXPECT_EQ(e.path, "slots");
    EXPECT_EQ(e.line, 1);
    EXPECT_EQ(e.message, "expected exactly two slots, got 1");

    e = only_error(
        "slots:\n"
        "  blue: { endpoints: [\"a:1\"] }\n"
        "  green: { endpoints: [\"b:1\"] }\n"
        "  red: { endpoints: [\"c:1\"] }\n");
    EXPECT_EQ(e.message, "expected exactly two slots, got 3");

    e = only_error("slots: {}\n");
    EXPECT_EQ(e.message, "expected exactly two slots, got 0");
}

TEST(config_parse, slots_must_be_a_map) {
    const config_error e = only_error("slots: [blue, green]\n");
    EXPECT_EQ(e.path, "slots");
    EXPECT_EQ(e.line, 1);
    EXPECT_NE(e.message.find("got a list"), std::string::npos) << e.message;
}

TEST(config_parse, slot_names_are_restricted) {
    const load_result result = parse_config(
        "slots:\n"
        "  Blue: { endpoints: [\"a:1\"] }\n"
        "  this-name-is-far-too-long-for-a-slot: { endpoints: [\"b:1\"] }\n");
    ASSERT_EQ(result.errors.size(), 2u) << dump(result);
    EXPECT_EQ(result.errors[0].path, "slots.Blue");
    EXPECT_EQ(result.errors[0].line, 2);
    EXPECT_EQ(result.errors[0].message,
              "expected a slot name of 1 to 32 characters from a-z, 0-9, _ and -, got \"Blue\"");
    EXPECT_EQ(result.errors[1].path, "slots.this-name-is-far-too-long-for-a-slot");
    EXPECT_EQ(result.errors[1].line, 3);

    // Exactly 32 characters is fine.
    const config c = parse_ok(
        "slots:\n"
        "  abcdefghijklmnopqrstuvwxyz_-0123: { endpoints: [\"a:1\"] }\n"
        "  v2: { endpoints: [\"b:1\"] }\n");
    EXPECT_EQ(c.active, "abcdefghijklmnopqrstuvwxyz_-0123");
}

TEST(config_parse, slot_needs_at_least_one_endpoint) {
    const load_result result = parse_config(
        "slots:\n"
        "  blue: { endpoints: [] }\n"
        "  green: {}\n");
    ASSERT_EQ(result.errors.size(), 2u) << dump(result);
    const config_error* e = error_at(result, "slots.blue.endpoints");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 2);
    EXPECT_EQ(e->message, "expected at least one endpoint (host:port)");
    e = error_at(result, "slots.green.endpoints");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 3);
    EXPECT_EQ(e->message, "missing key \"endpoints\": a list of host:port");
}

TEST(config_parse, every_bad_endpoint_is_reported) {
    const load_result result = parse_config(
        "slots:\n"
        "  blue:\n"
        "    endpoints:\n"
        "      - good:1\n"
        "      - \"bad\"\n"
        "      - also:bad\n"
        "  green: { endpoints: [\"x:0\"] }\n");
    ASSERT_EQ(result.errors.size(), 3u) << dump(result);
    EXPECT_EQ(result.errors[0].path, "slots.blue.endpoints[1]");
    EXPECT_EQ(result.errors[0].line, 5);
    EXPECT_EQ(result.errors[1].path, "slots.blue.endpoints[2]");
    EXPECT_EQ(result.errors[1].line, 6);
    EXPECT_EQ(result.errors[1].message, "expected host:port, got \"also:bad\"");
    EXPECT_EQ(result.errors[2].path, "slots.green.endpoints[0]");  // port 0 cannot be dialled
    EXPECT_EQ(result.errors[2].line, 7);
}

TEST(config_parse, active_must_name_a_slot) {
    config_error e = only_error(std::string(two_slots) + "active: gren\n");
    EXPECT_EQ(e.path, "active");
    EXPECT_EQ(e.line, 4);
    EXPECT_EQ(e.message,
              "expected the name of a slot (\"blue\" or \"green\"), got \"gren\"; did you mean "
              "\"green\"?");

    // `active` before `slots` in the file is fine.
    const config c = parse_ok("active: green\n" + std::string(two_slots));
    EXPECT_EQ(c.active, "green");
}

TEST(config_parse, listen_ports_may_be_zero_for_ephemeral_binds) {
    const config c =
        parse_ok(std::string(two_slots) + "listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\n");
    EXPECT_EQ(c.listen.port, 0);
    EXPECT_EQ(c.admin.listen.port, 0);
}

TEST(config_parse, admin_must_not_share_the_proxy_address) {
    const config_error e =
        only_error(std::string(two_slots) + "listen: 0.0.0.0:80\nadmin: { listen: 0.0.0.0:80 }\n");
    EXPECT_EQ(e.path, "admin.listen");
    EXPECT_EQ(e.line, 5);
}

TEST(config_parse, workers_auto_or_positive_integer) {
    EXPECT_EQ(parse_ok(std::string(two_slots) + "workers: auto\n").workers, 0u);
    EXPECT_EQ(parse_ok(std::string(two_slots) + "workers: 1\n").workers, 1u);
    for (const char* bad : {"0", "-1", "two", "1.5", "99999"}) {
        const config_error e = only_error(std::string(two_slots) + "workers: " + bad + "\n");
        EXPECT_EQ(e.path, "workers") << bad;
        EXPECT_EQ(e.message,
                  std::string("expected auto or a number of threads from 1 to 1024, got \"") + bad +
                      "\"");
    }
}

TEST(config_parse, timeouts_must_be_positive_durations) {
    config_error e = only_error(std::string(two_slots) + "timeouts: { connect: 0s }\n");
    EXPECT_EQ(e.path, "timeouts.connect");
    EXPECT_EQ(e.line, 4);
    EXPECT_EQ(e.message, "expected a duration above zero, got \"0s\"");

    e = only_error(std::string(two_slots) + "timeouts:\n  idle: 30\n");
    EXPECT_EQ(e.path, "timeouts.idle");
    EXPECT_EQ(e.line, 5);
    EXPECT_EQ(e.message, "expected a duration such as 250ms, 2s, 5m or 1h, got \"30\"");

    e = only_error(std::string(two_slots) + "timeouts:\n  drain:\n");
    EXPECT_EQ(e.path, "timeouts.drain");
    EXPECT_EQ(e.line, 5);  // the key's line, not the next token's
    EXPECT_EQ(e.message, "expected a duration such as 250ms, 2s, 5m or 1h, got nothing");
}

TEST(config_parse, limits_have_floors) {
    const load_result result =
        parse_config(std::string(two_slots) +
                     "limits: { max_header_bytes: 512, max_headers: 0, max_connections: 0,"
                     " max_body_bytes: 1.5MiB }\n");
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    const config_error* e = error_at(result, "limits.max_header_bytes");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message, "expected a size of at least 1KiB, got \"512\"");
    e = error_at(result, "limits.max_headers");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message, "expected an integer >= 1, got \"0\"");
    ASSERT_NE(error_at(result, "limits.max_connections"), nullptr) << dump(result);
    e = error_at(result, "limits.max_body_bytes");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message,
              "expected a size such as 64KiB, 10MiB, 1GiB or 1024 (bytes), got \"1.5MiB\"");

    EXPECT_EQ(parse_ok(std::string(two_slots) + "limits: { max_header_bytes: 1KiB }\n")
                  .limits.max_header_bytes,
              1024u);
}

TEST(config_parse, upstream_keep_alive_may_be_off) {
    const config c = parse_ok(std::string(two_slots) + "upstream: { max_idle: 0 }\n");
    EXPECT_EQ(c.upstream.max_idle, 0u);
    EXPECT_EQ(c.upstream.idle_timeout, 30s);
}

TEST(config_parse, upgrade_allows_websocket_by_default) {
    const config c = parse_ok(two_slots);
    EXPECT_EQ(c.upgrade.allow, std::vector<std::string>{"websocket"});
    EXPECT_EQ(c.timeouts.tunnel_idle, 1h);
}

TEST(config_parse, upgrade_allow_is_a_list_of_protocol_names_in_lower_case) {
    const config c = parse_ok(std::string(two_slots) +
                              "upgrade: { allow: [WebSocket, my-proto, websocket] }\n"
                              "timeouts: { tunnel_idle: 200ms }\n");
    EXPECT_EQ(c.upgrade.allow, (std::vector<std::string>{"websocket", "my-proto"}));
    EXPECT_EQ(c.timeouts.tunnel_idle, 200ms);
    EXPECT_TRUE(
        parse_ok(std::string(two_slots) + "upgrade: { allow: [] }\n").upgrade.allow.empty());
}

TEST(config_parse, sticky_is_off_by_default_and_has_defaults_when_given) {
    EXPECT_FALSE(parse_ok(two_slots).sticky.has_value());
    const config c = parse_ok(std::string(two_slots) + "sticky: {}\n");
    ASSERT_TRUE(c.sticky.has_value());
    EXPECT_EQ(c.sticky->cookie, "sy_slot");
    EXPECT_EQ(c.sticky->ttl, 1h);
    const config d = parse_ok(std::string(two_slots) + "sticky: { cookie: app_slot, ttl: 30m }\n");
    EXPECT_EQ(d.sticky->cookie, "app_slot");
    EXPECT_EQ(d.sticky->ttl, 30min);
}

TEST(config_parse, sticky_refuses_a_bad_cookie_name_and_unknown_keys) {
    config_error e = only_error(std::string(two_slots) + "sticky:\n  cookie: \"my slot\"\n");
    EXPECT_EQ(e.path, "sticky.cookie");
    EXPECT_EQ(e.line, 5);
    EXPECT_NE(e.message.find("expected a cookie name"), std::string::npos) << e.message;

    e = only_error(std::string(two_slots) + "sticky: { cookie: a, max_age: 1h }\n");
    EXPECT_EQ(e.path, "sticky.max_age");

    e = only_error(std::string(two_slots) + "sticky: { ttl: 0s }\n");
    EXPECT_EQ(e.path, "sticky.ttl");
}

TEST(config_parse, upgrade_refuses_h2c_and_bad_names) {
    config_error e = only_error(std::string(two_slots) + "upgrade:\n  allow: [websocket, H2C]\n");
    EXPECT_EQ(e.path, "upgrade.allow[1]");
    EXPECT_EQ(e.line, 5);
    EXPECT_EQ(e.message,
              "h2c cannot be allowed: HTTP/2 is not offered, so an upgrade to it is always "
              "refused");

    e = only_error(std::string(two_slots) + "upgrade: { allow: [\"websocket/13\"] }\n");
    EXPECT_EQ(e.path, "upgrade.allow[0]");
    EXPECT_EQ(e.message, "expected a protocol name such as websocket, got \"websocket/13\"");

    e = only_error(std::string(two_slots) + "upgrade: { allow: websocket }\n");
    EXPECT_EQ(e.path, "upgrade.allow");
    EXPECT_EQ(e.message,
              "expected a list of protocol names such as [websocket], got \"websocket\"");

    e = only_error(std::string(two_slots) + "upgrade: { alow: [websocket] }\n");
    EXPECT_EQ(e.path, "upgrade.alow");
    EXPECT_EQ(e.message, "unknown key \"alow\"; did you mean \"allow\"?");
}

TEST(config_parse, hold_has_defaults_and_bounds) {
    config c = parse_ok(two_slots);
    EXPECT_EQ(c.hold.max_requests, 1000u);
    EXPECT_EQ(c.hold.max_wait, 30s);

    c = parse_ok(std::string(two_slots) + "hold: { max_requests: 0, max_wait: 200ms }\n");
    EXPECT_EQ(c.hold.max_requests, 0u);
    EXPECT_EQ(c.hold.max_wait, 200ms);

    config_error e = only_error(std::string(two_slots) + "hold:\n  max_wait: 0s\n");
    EXPECT_EQ(e.path, "hold.max_wait");
    EXPECT_EQ(e.line, 5);

    e = only_error(std::string(two_slots) + "hold: { max_request: 10 }\n");
    EXPECT_EQ(e.path, "hold.max_request");
    EXPECT_EQ(e.message, "unknown key \"max_request\"; did you mean \"max_requests\"?");

    e = only_error(std::string(two_slots) + "hold: { max_requests: -1 }\n");
    EXPECT_EQ(e.path, "hold.max_requests");
}

TEST(config_parse, resolve_interval_is_at_least_100ms) {
    const config_error e =
        only_error(std::string(two_slots) + "upstream: { resolve_interval: 10ms }\n");
    EXPECT_EQ(e.path, "upstream.resolve_interval");
    EXPECT_EQ(e.message, "expected at least 100ms, got \"10ms\"");
    EXPECT_EQ(parse_ok(std::string(two_slots) + "upstream: { resolve_interval: 100ms }\n")
                  .upstream.resolve_interval,
              100ms);
}

TEST(config_parse, access_log_format_is_json_or_combined) {
    const config_error e = only_error(std::string(two_slots) + "access_log: { format: jsn }\n");
    EXPECT_EQ(e.path, "access_log.format");
    EXPECT_EQ(e.message, "expected json or combined, got \"jsn\"; did you mean \"json\"?");
    EXPECT_EQ(
        parse_ok(std::string(two_slots) + "access_log: { to: /var/log/sw.log }\n").access_log.to,
        "/var/log/sw.log");
}

TEST(config_parse, listen_proxy_protocol_is_v1_v2_or_off) {
    EXPECT_EQ(parse_ok(std::string(two_slots)).listen_proxy_protocol, proxy_protocol_version::off);
    EXPECT_EQ(
        parse_ok(std::string(two_slots) + "listen_proxy_protocol: v1\n").listen_proxy_protocol,
        proxy_protocol_version::v1);
    EXPECT_EQ(
        parse_ok(std::string(two_slots) + "listen_proxy_protocol: v2\n").listen_proxy_protocol,
        proxy_protocol_version::v2);
    EXPECT_EQ(
        parse_ok(std::string(two_slots) + "listen_proxy_protocol: off\n").listen_proxy_protocol,
        proxy_protocol_version::off);
    const config_error e = only_error(std::string(two_slots) + "listen_proxy_protocol: v3\n");
    EXPECT_EQ(e.path, "listen_proxy_protocol");
    EXPECT_EQ(e.line, 4);
    EXPECT_EQ(e.message, "expected v1, v2 or off, got \"v3\"; did you mean \"v1\"?");
    const config_error on = only_error(std::string(two_slots) + "listen_proxy_protocol: true\n");
    EXPECT_EQ(on.path, "listen_proxy_protocol");
}

TEST(config_parse, check_needs_exactly_one_limit) {
    const load_result result =
        parse_config(std::string(two_slots) +
                     "analysis:\n"
                     "  checks:\n"
                     "    - { metric: error_rate }\n"
                     "    - { metric: error_rate, max: 5%, max_ratio_to_stable: 2 }\n"
                     "    - { max: 5% }\n");
    ASSERT_EQ(result.errors.size(), 3u) << dump(result);
    const config_error* e = error_at(result, "analysis.checks[0]");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 6);
    EXPECT_EQ(e->message, "expected one of max, min and max_ratio_to_stable, got none");
    e = error_at(result, "analysis.checks[1]");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 7);
    EXPECT_EQ(e->message, "expected one of max, min and max_ratio_to_stable, got more than one");
    e = error_at(result, "analysis.checks[2].metric");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 8);
    EXPECT_EQ(e->message,
              "missing key \"metric\": error_rate, success_rate, latency_p50, latency_p90, "
              "latency_p95, latency_p99, latency_p999, mirror_mismatch_rate");
}

TEST(config_parse, check_max_unit_follows_the_metric) {
    const load_result result =
        parse_config(std::string(two_slots) +
                     "analysis:\n"
                     "  checks:\n"
                     "    - { metric: error_rate, max: 2s }\n"
                     "    - { metric: latency_p95, max: 5% }\n"
                     "    - { metric: latency_p95, max_ratio_to_stable: 0 }\n"
                     "    - { metric: error_rates, max: 5% }\n");
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    const config_error* e = error_at(result, "analysis.checks[0].max");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 6);
    EXPECT_EQ(e->message, "expected a rate from 0 to 1 such as 5% or 0.05, got \"2s\"");
    e = error_at(result, "analysis.checks[1].max");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 7);
    EXPECT_EQ(e->message, "expected a duration such as 250ms, 2s, 5m or 1h, got \"5%\"");
    e = error_at(result, "analysis.checks[2].max_ratio_to_stable");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message, "expected a number above zero such as 1.5, got \"0\"");
    e = error_at(result, "analysis.checks[3].metric");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 9);
    EXPECT_EQ(e->message,
              "expected error_rate, success_rate, latency_p50, latency_p90, latency_p95, "
              "latency_p99, latency_p999, mirror_mismatch_rate, got \"error_rates\"; did you mean "
              "\"error_rate\"?");
}

TEST(config_parse, explicit_empty_checks_is_an_error) {
    const config_error e = only_error(std::string(two_slots) + "analysis: { checks: [] }\n");
    EXPECT_EQ(e.path, "analysis.checks");
    EXPECT_EQ(e.line, 4);
}

TEST(config_parse, custom_checks_replace_the_defaults) {
    const config c = parse_ok(std::string(two_slots) +
                              "analysis: { checks: [ { metric: error_rate, max: 0 } ] }\n");
    ASSERT_EQ(c.analysis.checks.size(), 1u);
    expect_check(c.analysis.checks[0], "error_rate", check_metric::error_rate, check_kind::max, 0,
                 0);
}

TEST(config_parse, analysis_counts_have_floors) {
    const load_result result = parse_config(
        std::string(two_slots) + "analysis: { threshold: 0, min_requests: 0, interval: 0 }\n");
    ASSERT_EQ(result.errors.size(), 3u) << dump(result);
    EXPECT_NE(error_at(result, "analysis.threshold"), nullptr);
    EXPECT_NE(error_at(result, "analysis.min_requests"), nullptr);
    EXPECT_NE(error_at(result, "analysis.interval"), nullptr);
}

TEST(config_parse, rollout_steps_are_validated) {
    config_error e = only_error(std::string(two_slots) + "rollout: { steps: [10, 50, 25, 100] }\n");
    EXPECT_EQ(e.path, "rollout.steps[2]");
    EXPECT_EQ(e.line, 4);
    EXPECT_EQ(e.message, "expected a weight above the step before (50), got 25");

    e = only_error(std::string(two_slots) + "rollout:\n  steps:\n    - 10\n    - 50\n");
    EXPECT_EQ(e.path, "rollout.steps[1]");
    EXPECT_EQ(e.line, 7);
    EXPECT_EQ(e.message, "expected the last step to be 100, got 50");

    e = only_error(std::string(two_slots) + "rollout: { steps: [0, 100] }\n");
    EXPECT_EQ(e.path, "rollout.steps[0]");
    EXPECT_EQ(e.message, "expected an integer from 1 to 100, got \"0\"");

    e = only_error(std::string(two_slots) + "rollout: { steps: [50, 101] }\n");
    EXPECT_EQ(e.path, "rollout.steps[1]");

    e = only_error(std::string(two_slots) + "rollout: { steps: [10, 10, 100] }\n");
    EXPECT_EQ(e.path, "rollout.steps[1]");

    e = only_error(std::string(two_slots) + "rollout: { steps: [] }\n");
    EXPECT_EQ(e.path, "rollout.steps");
    EXPECT_EQ(e.message, "expected at least one step");

    EXPECT_EQ(parse_ok(std::string(two_slots) + "rollout: { steps: [100] }\n").rollout.steps,
              (std::vector<std::uint32_t>{100}));
}

TEST(config_parse, rollout_strategy_and_health) {
    const load_result result =
        parse_config(std::string(two_slots) +
                     "rollout: { strategy: bluegreen, health: { path: health, deadline: 0s } }\n");
    ASSERT_EQ(result.errors.size(), 3u) << dump(result);
    const config_error* e = error_at(result, "rollout.strategy");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message,
              "expected canary or blue-green, got \"bluegreen\"; did you mean \"blue-green\"?");
    e = error_at(result, "rollout.health.path");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message, "expected a path starting with /, got \"health\"");
    EXPECT_NE(error_at(result, "rollout.health.deadline"), nullptr) << dump(result);
}

TEST(config_parse, webhooks_must_be_plain_http) {
    const load_result result = parse_config(std::string(two_slots) +
                                            "webhooks:\n"
                                            "  pre_rollout:\n"
                                            "    - { url: \"https://tests/run\" }\n"
                                            "    - { url: \"ftp://tests/run\" }\n"
                                            "    - { url: \"http:///nohost\" }\n"
                                            "    - { timeout: 5s }\n"
                                            "  events: [ { url: \"http://h:99999/\" } ]\n");
    ASSERT_EQ(result.errors.size(), 5u) << dump(result);
    const config_error* e = error_at(result, "webhooks.pre_rollout[0].url");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 6);
    EXPECT_EQ(e->message,
              "https is not supported yet; expected an http:// URL, got \"https://tests/run\"");
    e = error_at(result, "webhooks.pre_rollout[1].url");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message,
              "expected an http:// URL such as http://host:8080/path, got \"ftp://tests/run\"");
    EXPECT_NE(error_at(result, "webhooks.pre_rollout[2].url"), nullptr) << dump(result);
    e = error_at(result, "webhooks.pre_rollout[3].url");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 9);
    EXPECT_EQ(e->message, "missing key \"url\": an http:// URL");
    EXPECT_NE(error_at(result, "webhooks.events[0].url"), nullptr) << dump(result);
}

TEST(config_parse, empty_sections_keep_their_defaults) {
    const config c = parse_ok(std::string(two_slots) +
                              "webhooks:\n"
                              "timeouts: {}\n"
                              "analysis:\n");
    EXPECT_EQ(c.timeouts.connect, 2s);
    EXPECT_EQ(c.analysis.checks.size(), 4u);
}

TEST(config_parse, inline_token) {
    EXPECT_EQ(parse_ok(std::string(two_slots) + "admin: { token: abc }\n").admin.token, "abc");
    const config_error e = only_error(std::string(two_slots) + "admin: { token: \"\" }\n");
    EXPECT_EQ(e.path, "admin.token");
    EXPECT_EQ(e.message, "the token is empty; expected a token");
}

TEST(config_parse, token_file_is_read_and_trimmed) {
    const temp_file token("  s3cret-token \n\n");
    const config c =
        parse_ok(std::string(two_slots) + "admin:\n  token_file: " + token.path() + "\n");
    EXPECT_EQ(c.admin.token, "  s3cret-token");  // trailing whitespace only
    EXPECT_EQ(c.admin.token_file, token.path());
}

TEST(config_parse, unreadable_token_file_names_the_key_and_line) {
    const std::string missing =
        (std::filesystem::temp_directory_path() / "switchyard-no-such-token-file").string();
    const config_error e =
        only_error(std::string(two_slots) +
                   "admin:\n  listen: 127.0.0.1:8081\n  token_file: " + missing + "\n");
    EXPECT_EQ(e.path, "admin.token_file");
    EXPECT_EQ(e.line, 6);
    EXPECT_EQ(e.message, "cannot read token file \"" + missing + "\": No such file or directory");
}

TEST(config_parse, empty_token_file_is_an_error) {
    const temp_file token("\n");
    const config_error e =
        only_error(std::string(two_slots) + "admin: { token_file: " + token.path() + " }\n");
    EXPECT_EQ(e.path, "admin.token_file");
    EXPECT_EQ(e.message, "token file \"" + token.path() + "\" is empty; expected a token");
}

TEST(config_parse, token_and_token_file_are_exclusive) {
    const temp_file token("x\n");
    const config_error e = only_error(std::string(two_slots) +
                                      "admin:\n  token: abc\n  token_file: " + token.path() + "\n");
    EXPECT_EQ(e.path, "admin.token_file");
    EXPECT_EQ(e.line, 6);
    EXPECT_EQ(e.message, "expected either token or token_file, not both");
}

TEST(config_parse, token_beyond_loopback_is_left_to_the_caller) {
    const config c = parse_ok(std::string(two_slots) + "admin: { listen: 0.0.0.0:8081 }\n");
    EXPECT_EQ(c.admin.token, "");
    EXPECT_FALSE(is_loopback(c.admin.listen));
}

TEST(config_parse, yaml_syntax_error_has_a_line) {
    const config_error e = only_error(
        "listen: 0.0.0.0:8080\n"
        "slots:\n"
        "  blue: { endpoints: [\"a:1\"\n"
        "  green: { endpoints: [\"b:1\"] }\n");
    EXPECT_EQ(e.path, "");
    EXPECT_GE(e.line, 3);
    EXPECT_EQ(e.message.rfind("invalid YAML: ", 0), 0u) << e.message;
}

TEST(config_parse, bad_indentation_is_a_syntax_error) {
    const config_error e = only_error("listen: 0.0.0.0:8080\n  workers: 2\n");
    EXPECT_EQ(e.line, 2);
    EXPECT_EQ(e.message.rfind("invalid YAML: ", 0), 0u) << e.message;
}

TEST(config_parse, several_documents_are_an_error) {
    const config_error e = only_error(std::string(two_slots) + "---\n" + two_slots);
    EXPECT_EQ(e.message, "expected one YAML document, got 2");
}

TEST(config_load, reads_a_file) {
    const temp_file file(two_slots);
    const load_result result = load_config_file(file.path());
    ASSERT_TRUE(result.value.has_value()) << dump(result);
    EXPECT_EQ(result.value->slots.size(), 2u);
}

TEST(config_parse, the_sequential_method_with_evidence_and_its_step_limit) {
    const load_result result = parse_config(std::string(two_slots) +
                                            "analysis: { promote: evidence, method: sequential, "
                                            "alpha: 0.5%, max_step_duration: 90s }\n");
    ASSERT_TRUE(result.value.has_value()) << dump(result);
    const analysis_config& a = result.value->analysis;
    EXPECT_EQ(a.method, analysis_method::sequential);
    EXPECT_EQ(a.promote, promote_rule::evidence);
    EXPECT_DOUBLE_EQ(a.alpha, 0.005);
    EXPECT_EQ(a.max_step_duration, std::chrono::seconds(90));
}

TEST(config_parse, analysis_method_promote_and_alpha_errors_name_their_keys) {
    const load_result result = parse_config(std::string(two_slots) +
                                            "analysis:\n  method: bayesian\n  alpha: 0\n"
                                            "  max_step_duration: soon\n");
    ASSERT_EQ(result.errors.size(), 3u) << dump(result);
    const config_error* e = error_at(result, "analysis.method");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_NE(e->message.find("sequential"), std::string::npos) << e->message;
    EXPECT_EQ(e->line, 5);
    EXPECT_NE(error_at(result, "analysis.alpha"), nullptr) << dump(result);
    EXPECT_NE(error_at(result, "analysis.max_step_duration"), nullptr) << dump(result);
    // Evidence of non-inferiority comes from the sequential tests only.
    const load_result threshold = parse_config(
        std::string(two_slots) + "analysis: { promote: evidence, method: threshold }\n");
    ASSERT_EQ(threshold.errors.size(), 1u) << dump(threshold);
    e = error_at(threshold, "analysis.promote");
    ASSERT_NE(e, nullptr) << dump(threshold);
    EXPECT_EQ(e->message, "promote: evidence needs method: sequential");
}

TEST(config_parse, fast_rollback_is_a_map_or_off) {
    EXPECT_FALSE(parse_ok(std::string(two_slots) + "analysis: { fast_rollback: off }\n")
                     .analysis.fast_rollback.enabled);
    const load_result result =
        parse_config(std::string(two_slots) +
                     "analysis:\n"
                     "  fast_rollback: { error_rate: 0, min_requests: 0, window: 0s, typo: 1 }\n");
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    for (const char* path :
         {"analysis.fast_rollback.error_rate", "analysis.fast_rollback.min_requests",
          "analysis.fast_rollback.window", "analysis.fast_rollback.typo"}) {
        const config_error* e = error_at(result, path);
        ASSERT_NE(e, nullptr) << path << "\n" << dump(result);
        EXPECT_EQ(e->line, 5) << path;
    }
    const config_error e =
        only_error(std::string(two_slots) + "analysis: { fast_rollback: sometimes }\n");
    EXPECT_EQ(e.path, "analysis.fast_rollback");
    EXPECT_NE(e.message.find("expected off or a map"), std::string::npos) << e.message;
}

TEST(config_parse, check_floor_name_and_metric_rules) {
    const load_result result =
        parse_config(std::string(two_slots) +
                     "analysis:\n"
                     "  checks:\n"
                     "    - { metric: error_rate, max: 5%, floor: 1% }\n"
                     "    - { metric: success_rate, max_ratio_to_stable: 2 }\n"
                     "    - { metric: latency_p95, max_ratio_to_stable: 2, floor: 5% }\n"
                     "    - { metric: error_rate, max: 5%, name: Bad-Name }\n"
                     "    - { metric: error_rate, max: 1% }\n"
                     "    - { metric: error_rate, max: 2% }\n");
    ASSERT_EQ(result.errors.size(), 5u) << dump(result);
    const config_error* e = error_at(result, "analysis.checks[0].floor");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message, "floor applies to max_ratio_to_stable checks only");
    e = error_at(result, "analysis.checks[1].max_ratio_to_stable");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_NE(e->message.find("for success_rate use min"), std::string::npos) << e->message;
    e = error_at(result, "analysis.checks[2].floor");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message, "expected a duration such as 250ms, 2s, 5m or 1h, got \"5%\"");
    EXPECT_NE(error_at(result, "analysis.checks[3].name"), nullptr) << dump(result);
    e = error_at(result, "analysis.checks[5]");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->line, 11);
    EXPECT_EQ(e->message,
              "duplicate check name \"error_rate\" (first on line 10); set name: to tell them "
              "apart");
}

TEST(config_parse, smoke_and_state_file) {
    const load_result result = parse_config(
        std::string(two_slots) + "rollout: { smoke: { requests: 0, paths: [health] } }\n");
    ASSERT_EQ(result.errors.size(), 2u) << dump(result);
    EXPECT_NE(error_at(result, "rollout.smoke.requests"), nullptr) << dump(result);
    const config_error* e = error_at(result, "rollout.smoke.paths[0]");
    ASSERT_NE(e, nullptr) << dump(result);
    EXPECT_EQ(e->message, "expected a path starting with /, got \"health\"");

    EXPECT_EQ(parse_ok(std::string(two_slots) + "state_file: off\n").state_file, "off");
}

TEST(parse_http_url, splits_host_port_and_target) {
    auto u = parse_http_url("http://hooks.example/notify?a=1#frag");
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(u->at, (address{"hooks.example", 80}));
    EXPECT_EQ(u->target, "/notify?a=1");  // the fragment is not sent
    EXPECT_EQ(u->text, "http://hooks.example/notify?a=1#frag");

    u = parse_http_url("http://127.0.0.1:8081");
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(u->at, (address{"127.0.0.1", 8081}));
    EXPECT_EQ(u->target, "/");

    u = parse_http_url("http://[::1]:9000?x");
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(u->at, (address{"::1", 9000}));
    EXPECT_EQ(u->target, "/?x");

    for (const char* bad : {"https://h/", "ftp://h/", "http://", "http:///x", "http://h:99999/",
                            "http://user:pw@h/", "http://h/a b", "h:80"}) {
        EXPECT_FALSE(parse_http_url(bad).has_value()) << bad;
    }
}

TEST(parse_rollout_overrides, applies_rollout_keys_over_the_configured_ones) {
    rollout_config base;
    base.bake = 10s;
    const auto r = parse_rollout_overrides(
        R"({"strategy": "blue-green", "steps": [20, 100], "health": {"path": "/ready"}})", base);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front().message;
    ASSERT_TRUE(r.value.has_value());
    EXPECT_EQ(r.value->strategy, rollout_strategy::blue_green);
    EXPECT_EQ(r.value->steps, (std::vector<std::uint32_t>{20, 100}));
    EXPECT_EQ(r.value->health.path, "/ready");
    EXPECT_EQ(r.value->health.deadline, base.health.deadline);  // untouched keys stay
    EXPECT_EQ(r.value->bake, 10s);

    const auto empty = parse_rollout_overrides("", base);
    ASSERT_TRUE(empty.value.has_value());
    EXPECT_EQ(empty.value->bake, 10s);
}

TEST(parse_rollout_overrides, names_every_bad_key) {
    const auto r = parse_rollout_overrides(R"({"strategy": "bg", "stepz": [1]})", {});
    EXPECT_FALSE(r.value.has_value());
    ASSERT_EQ(r.errors.size(), 2u);
    EXPECT_EQ(r.errors[0].path, "rollout.strategy");
    EXPECT_EQ(r.errors[1].path, "rollout.stepz");
    EXPECT_NE(r.errors[1].message.find("did you mean \"steps\""), std::string::npos)
        << r.errors[1].message;

    const auto broken = parse_rollout_overrides(R"({"strategy": )", {});
    ASSERT_EQ(broken.errors.size(), 1u);
    EXPECT_NE(broken.errors[0].message.find("invalid JSON"), std::string::npos);
    EXPECT_EQ(parse_rollout_overrides("[1, 2]", {}).errors.size(), 1u);
}

TEST(config_load, unreadable_file_is_one_error) {
    const std::string missing =
        (std::filesystem::temp_directory_path() / "switchyard-no-such-config.yaml").string();
    const load_result result = load_config_file(missing);
    EXPECT_FALSE(result.value.has_value());
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].line, 0);
    EXPECT_EQ(format_error(missing, result.errors[0]),
              missing + ": cannot read file: No such file or directory");
}

TEST(config_load, directory_is_one_error) {
    const load_result result = load_config_file(std::filesystem::temp_directory_path().string());
    EXPECT_FALSE(result.value.has_value());
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].message, "cannot read file: Is a directory");
}

TEST(format_error, includes_line_when_known) {
    EXPECT_EQ(format_error("a.yaml", {"timeouts.connect", 7, "expected a duration"}),
              "a.yaml:7: timeouts.connect: expected a duration");
    EXPECT_EQ(format_error("a.yaml", {"slots", 0, "missing"}), "a.yaml: slots: missing");
    EXPECT_EQ(format_error("a.yaml", {"", 3, "invalid YAML: x"}), "a.yaml:3: invalid YAML: x");
}

}  // namespace
}  // namespace switchyard::config

namespace switchyard::config {
namespace {

// Two slots, green's endpoint spoken to over TLS with `settings` (a flow map's body).
std::string green_tls(const std::string& settings) {
    return "slots:\n"
           "  blue:  { endpoints: [\"backend-blue:8000\"] }\n"
           "  green:\n"
           "    endpoints: [\"backend-green:8443\"]\n"
           "    tls: { " +
           settings + " }\n";
}

TEST(config_tls, listener_and_upstream_tls_round_trip) {
    temp_file cert("certificate");
    temp_file key("key");
    temp_file ca("ca");
    const config c =
        parse_ok("tls: { listen: 127.0.0.1:8443, cert: " + cert.path() + ", key: " + key.path() +
                 ", min_version: \"1.3\" }\n"
                 "timeouts: { tls_handshake: 3s }\n"
                 "slots:\n"
                 "  blue:  { endpoints: [\"backend-blue:8000\"] }\n"
                 "  green:\n"
                 "    endpoints: [\"backend-green:8443\"]\n"
                 "    tls: { ca: " +
                 ca.path() + ", sni: app.internal }\n");
    ASSERT_TRUE(c.tls.has_value());
    EXPECT_EQ(c.tls->listen, (address{"127.0.0.1", 8443}));
    EXPECT_EQ(c.tls->cert, cert.path());
    EXPECT_EQ(c.tls->key, key.path());
    EXPECT_EQ(c.tls->min_version, tls_version::v1_3);
    EXPECT_EQ(c.timeouts.tls_handshake, 3s);
    EXPECT_TRUE(c.plain_listener);
    EXPECT_FALSE(c.slots[0].tls.has_value());
    ASSERT_TRUE(c.slots[1].tls.has_value());
    EXPECT_TRUE(c.slots[1].tls->verify);  // verifies unless told otherwise
    EXPECT_EQ(c.slots[1].tls->ca, ca.path());
    EXPECT_EQ(c.slots[1].tls->sni, "app.internal");
}

TEST(config_tls, defaults) {
    const config c = parse_ok(two_slots);
    EXPECT_FALSE(c.tls.has_value());
    EXPECT_EQ(c.timeouts.tls_handshake, 10s);
    temp_file cert("certificate");
    const config t = parse_ok(std::string("tls: { cert: ") + cert.path() + ", key: " + cert.path() +
                              " }\n" + two_slots);
    EXPECT_EQ(t.tls->listen, (address{"0.0.0.0", 8443}));
    EXPECT_EQ(t.tls->min_version, tls_version::v1_2);
    const config u = parse_ok(green_tls("verify: false"));
    ASSERT_TRUE(u.slots[1].tls.has_value());
    EXPECT_FALSE(u.slots[1].tls->verify);
}

TEST(config_tls, an_unreadable_certificate_names_its_key_and_line) {
    const auto result = parse_config(std::string(two_slots) +
                                     "tls:\n"
                                     "  cert: /nonexistent/fullchain.pem\n");
    const config_error* cert = error_at(result, "tls.cert");
    ASSERT_NE(cert, nullptr) << dump(result);
    EXPECT_EQ(cert->line, 5);
    EXPECT_NE(cert->message.find("/nonexistent/fullchain.pem"), std::string::npos);
    const config_error* key = error_at(result, "tls.key");
    ASSERT_NE(key, nullptr) << dump(result);
    EXPECT_NE(key->message.find("missing key"), std::string::npos);
}

TEST(config_tls, tls_below_1_2_is_not_offered) {
    temp_file cert("certificate");
    const auto e = only_error(std::string("tls: { cert: ") + cert.path() + ", key: " + cert.path() +
                              ", min_version: \"1.1\" }\n" + two_slots);
    EXPECT_EQ(e.path, "tls.min_version");
    EXPECT_EQ(e.line, 1);
    EXPECT_NE(e.message.find("\"1.2\""), std::string::npos) << e.message;
}

TEST(config_tls, listen_off_needs_a_tls_listener) {
    const auto e = only_error(std::string("listen: off\n") + two_slots);
    EXPECT_EQ(e.path, "listen");
    EXPECT_EQ(e.line, 1);
    temp_file cert("certificate");
    const config c = parse_ok(std::string("listen: off\ntls: { cert: ") + cert.path() +
                              ", key: " + cert.path() + " }\n" + two_slots);
    EXPECT_FALSE(c.plain_listener);
}

TEST(config_tls, the_tls_listener_needs_an_address_of_its_own) {
    temp_file cert("certificate");
    const auto e = only_error(std::string("listen: 0.0.0.0:8443\ntls: { cert: ") + cert.path() +
                              ", key: " + cert.path() + " }\n" + two_slots);
    EXPECT_EQ(e.path, "tls.listen");
}

TEST(config_tls, unknown_upstream_tls_key_is_an_error) {
    const auto e = only_error(green_tls("verfy: false"));
    EXPECT_EQ(e.path, "slots.green.tls.verfy");
    EXPECT_NE(e.message.find("verify"), std::string::npos) << e.message;
}

// --- mirror (README, "Mirroring") ---

TEST(config_parse, mirror_is_off_when_absent_and_gets_defaults_when_present) {
    EXPECT_FALSE(parse_ok(two_slots).mirror.has_value());
    const config c = parse_ok(std::string(two_slots) + "mirror: {}\n");
    ASSERT_TRUE(c.mirror.has_value());
    EXPECT_EQ(c.mirror->percent, 10u);
    EXPECT_EQ(c.mirror->methods, (std::vector<std::string>{"GET", "HEAD"}));
    EXPECT_EQ(c.mirror->max_body, 64u * 1024);
    EXPECT_EQ(c.mirror->queue, 1000u);
}

TEST(config_parse, mirror_keys_round_trip) {
    const config c = parse_ok(std::string(two_slots) +
                              "mirror: { percent: 25, methods: [GET, POST, GET], max_body: 1MiB, "
                              "queue: 50 }\n");
    ASSERT_TRUE(c.mirror.has_value());
    EXPECT_EQ(c.mirror->percent, 25u);
    EXPECT_EQ(c.mirror->methods, (std::vector<std::string>{"GET", "POST"}));
    EXPECT_EQ(c.mirror->max_body, 1024u * 1024);
    EXPECT_EQ(c.mirror->queue, 50u);
}

TEST(config_parse, mirror_errors_name_the_key_and_line) {
    const std::string text = std::string(two_slots) +
                             "mirror:\n"
                             "  percent: 101\n"
                             "  methods: [GET, \"BAD METHOD\"]\n"
                             "  max_body: lots\n"
                             "  queue: 0\n"
                             "  qeue: 5\n";
    const load_result result = parse_config(text);
    EXPECT_FALSE(result.value.has_value());
    ASSERT_EQ(result.errors.size(), 5u) << dump(result);
    const auto* percent = error_at(result, "mirror.percent");
    ASSERT_NE(percent, nullptr) << dump(result);
    EXPECT_EQ(percent->line, 5);
    EXPECT_NE(percent->message.find("from 0 to 100"), std::string::npos);
    const auto* method = error_at(result, "mirror.methods[1]");
    ASSERT_NE(method, nullptr) << dump(result);
    EXPECT_EQ(method->line, 6);
    ASSERT_NE(error_at(result, "mirror.max_body"), nullptr) << dump(result);
    EXPECT_EQ(error_at(result, "mirror.max_body")->line, 7);
    ASSERT_NE(error_at(result, "mirror.queue"), nullptr) << dump(result);
    const auto* typo = error_at(result, "mirror.qeue");
    ASSERT_NE(typo, nullptr) << dump(result);
    EXPECT_NE(typo->message.find("did you mean \"queue\""), std::string::npos) << typo->message;
}

TEST(config_parse, mirror_methods_must_not_be_empty) {
    const config_error e = only_error(std::string(two_slots) + "mirror: { methods: [] }\n");
    EXPECT_EQ(e.path, "mirror.methods");
    EXPECT_NE(e.message.find("at least one method"), std::string::npos);
}

TEST(config_parse, mirror_mismatch_rate_is_a_check_metric_that_needs_mirror) {
    const std::string checks =
        "analysis:\n"
        "  checks:\n"
        "    - { metric: mirror_mismatch_rate, max: 5% }\n";
    const config c = parse_ok(std::string(two_slots) + checks + "mirror: { percent: 5 }\n");
    ASSERT_EQ(c.analysis.checks.size(), 1u);
    expect_check(c.analysis.checks[0], "mirror_mismatch_rate", check_metric::mirror_mismatch_rate,
                 check_kind::max, 0.05, 0);
    EXPECT_FALSE(is_latency(check_metric::mirror_mismatch_rate));

    const config_error off = only_error(std::string(two_slots) + checks);
    EXPECT_EQ(off.path, "analysis.checks[0]");
    EXPECT_NE(off.message.find("needs mirror"), std::string::npos) << off.message;
    const config_error zero =
        only_error(std::string(two_slots) + checks + "mirror: { percent: 0 }\n");
    EXPECT_EQ(zero.path, "mirror");
    EXPECT_EQ(zero.line, 7);

    const config_error ratio = only_error(std::string(two_slots) +
                                          "analysis:\n  checks:\n    - { metric: "
                                          "mirror_mismatch_rate, max_ratio_to_stable: 2 }\n"
                                          "mirror: {}\n");
    EXPECT_NE(ratio.message.find("takes max only"), std::string::npos) << ratio.message;
}

}  // namespace
}  // namespace switchyard::config

// --- routes and preview ---

namespace switchyard::config {
namespace {

TEST(config_routes, the_readme_examples_parse_in_order) {
    const config c = parse_ok(std::string(two_slots) +
                              "routes:\n"
                              "  - { name: testers, match: { header: { X-Canary: \"true\" } }, "
                              "to: canary }\n"
                              "  - { name: beta, match: { cookie: { beta_user: \"true\" } }, "
                              "to: canary }\n"
                              "  - { name: api, match: { path_prefix: /api, method: [GET, HEAD], "
                              "query: { v: \"2\" } }, to: green }\n"
                              "  - { name: ops, match: { headers: [ { name: X-Debug, present: "
                              "true } ] }, to: stable }\n");
    ASSERT_EQ(c.routes.size(), 4u);
    EXPECT_EQ(c.routes[0].name, "testers");
    EXPECT_EQ(c.routes[0].to, route_target::canary);
    ASSERT_EQ(c.routes[0].match.headers.size(), 1u);
    EXPECT_EQ(c.routes[0].match.headers[0],
              (value_match{"X-Canary", value_match_kind::exact, "true"}));
    EXPECT_EQ(c.routes[1].match.cookies[0],
              (value_match{"beta_user", value_match_kind::exact, "true"}));
    EXPECT_EQ(c.routes[2].to, route_target::slot);
    EXPECT_EQ(c.routes[2].slot, "green");
    EXPECT_EQ(c.routes[2].match.path_prefix, "/api");
    EXPECT_EQ(c.routes[2].match.methods, (std::vector<std::string>{"GET", "HEAD"}));
    EXPECT_EQ(c.routes[2].match.query[0], (query_match{"v", "2"}));
    EXPECT_EQ(c.routes[3].to, route_target::stable);
    EXPECT_EQ(c.routes[3].match.headers[0].kind, value_match_kind::present);
}

TEST(config_routes, defaults_are_no_routes_and_the_standard_preview_headers) {
    const config c = parse_ok(two_slots);
    EXPECT_TRUE(c.routes.empty());
    EXPECT_EQ(c.preview.header, "X-Switchyard-Slot");
    EXPECT_EQ(c.preview.token_header, "X-Switchyard-Token");
    EXPECT_TRUE(c.preview.from.empty());
}

TEST(config_routes, header_list_takes_prefix_regex_present_and_absent) {
    const config c = parse_ok(std::string(two_slots) +
                              "routes:\n"
                              "  - name: r\n"
                              "    to: blue\n"
                              "    match:\n"
                              "      headers:\n"
                              "        - { name: X-Canary, prefix: tr }\n"
                              "        - { name: X-User, regex: \"^[a-f0-9]+$\" }\n"
                              "        - { name: X-Debug, present: true }\n"
                              "        - { name: X-Off, present: false }\n"
                              "      cookies: [ { name: session, present: true } ]\n");
    const auto& h = c.routes.at(0).match.headers;
    ASSERT_EQ(h.size(), 4u);
    EXPECT_EQ(h[0], (value_match{"X-Canary", value_match_kind::prefix, "tr"}));
    EXPECT_EQ(h[1], (value_match{"X-User", value_match_kind::regex, "^[a-f0-9]+$"}));
    EXPECT_EQ(h[2].kind, value_match_kind::present);
    EXPECT_EQ(h[3].kind, value_match_kind::absent);
    EXPECT_EQ(c.routes[0].match.cookies.at(0).kind, value_match_kind::present);
}

TEST(config_routes, a_bad_regex_names_its_key_path_and_line) {
    const config_error e = only_error(std::string(two_slots) +
                                      "routes:\n"
                                      "  - name: r\n"
                                      "    to: canary\n"
                                      "    match:\n"
                                      "      headers:\n"
                                      "        - name: X-User\n"
                                      "          regex: \"([a-z\"\n");
    EXPECT_EQ(e.path, "routes[0].match.headers[0].regex");
    EXPECT_EQ(e.line, 10);
    EXPECT_NE(e.message.find("invalid regular expression"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("([a-z"), std::string::npos) << e.message;
}

TEST(config_routes, name_match_and_to_are_required) {
    const load_result r = parse_config(std::string(two_slots) + "routes:\n  - { to: blue }\n");
    EXPECT_FALSE(r.value);
    ASSERT_NE(error_at(r, "routes[0].name"), nullptr) << dump(r);
    ASSERT_NE(error_at(r, "routes[0].match"), nullptr) << dump(r);
    EXPECT_EQ(error_at(r, "routes[0].name")->line, 5);
}

TEST(config_routes, names_are_unique) {
    const config_error e = only_error(std::string(two_slots) +
                                      "routes:\n"
                                      "  - { name: a, match: { path_prefix: /a }, to: blue }\n"
                                      "  - { name: a, match: { path_prefix: /b }, to: green }\n");
    EXPECT_EQ(e.path, "routes[1].name");
    EXPECT_EQ(e.line, 6);
    EXPECT_NE(e.message.find("duplicate route name \"a\" (first on line 5)"), std::string::npos)
        << e.message;
}

TEST(config_routes, to_names_canary_stable_or_a_slot) {
    const config_error e = only_error(std::string(two_slots) +
                                      "routes:\n"
                                      "  - { name: a, match: { path_prefix: /a }, to: purple }\n");
    EXPECT_EQ(e.path, "routes[0].to");
    EXPECT_EQ(e.line, 5);
    EXPECT_NE(e.message.find("canary, stable or a slot name (blue, green)"), std::string::npos)
        << e.message;
}

TEST(config_routes, unknown_match_key_is_an_error) {
    const config_error e = only_error(std::string(two_slots) +
                                      "routes:\n"
                                      "  - { name: a, match: { heade: { X: y } }, to: blue }\n");
    EXPECT_EQ(e.path, "routes[0].match.heade");
    EXPECT_NE(e.message.find("did you mean \"header\""), std::string::npos) << e.message;
}

TEST(config_routes, a_header_list_entry_takes_exactly_one_condition) {
    const config_error e =
        only_error(std::string(two_slots) +
                   "routes:\n"
                   "  - { name: a, match: { headers: [ { name: X, exact: a, prefix: b } ] }, "
                   "to: blue }\n");
    EXPECT_EQ(e.path, "routes[0].match.headers[0]");
    EXPECT_NE(e.message.find("one of exact, prefix, regex or present"), std::string::npos)
        << e.message;
}

TEST(config_routes, header_names_and_methods_are_tokens) {
    const load_result r =
        parse_config(std::string(two_slots) +
                     "routes:\n"
                     "  - { name: a, match: { header: { \"X Y\": v }, method: \"G T\" }, to: "
                     "blue }\n");
    EXPECT_NE(error_at(r, "routes[0].match.header.X Y"), nullptr) << dump(r);
    EXPECT_NE(error_at(r, "routes[0].match.method"), nullptr) << dump(r);
}

TEST(config_routes, at_most_64_routes) {
    std::string text = std::string(two_slots) + "routes:\n";
    for (int i = 0; i < 65; ++i) {
        text += "  - { name: r" + std::to_string(i) + ", match: { path_prefix: /x }, to: blue }\n";
    }
    const config_error e = only_error(text);
    EXPECT_EQ(e.path, "routes");
    EXPECT_NE(e.message.find("at most 64 routes, got 65"), std::string::npos) << e.message;
}

TEST(config_preview, headers_and_address_ranges) {
    const config c = parse_ok(std::string(two_slots) +
                              "preview: { header: X-Slot, token_header: X-Token, from: "
                              "[10.0.0.0/8, 192.168.1.7, \"fd00::/8\"] }\n");
    EXPECT_EQ(c.preview.header, "X-Slot");
    EXPECT_EQ(c.preview.token_header, "X-Token");
    ASSERT_EQ(c.preview.from.size(), 3u);
    EXPECT_EQ(c.preview.from[0].prefix, 96 + 8);
    EXPECT_EQ(c.preview.from[0].address[10], 0xff);
    EXPECT_EQ(c.preview.from[0].address[12], 10);
    EXPECT_EQ(c.preview.from[1].prefix, 128);
    EXPECT_EQ(c.preview.from[2].prefix, 8);
    EXPECT_EQ(c.preview.from[2].address[0], 0xfd);
}

TEST(config_preview, a_bad_range_names_its_place) {
    const config_error e =
        only_error(std::string(two_slots) + "preview:\n  from: [10.0.0.0/8, 10.0.0.0/33]\n");
    EXPECT_EQ(e.path, "preview.from[1]");
    EXPECT_EQ(e.line, 5);
    EXPECT_NE(e.message.find("prefix length from 0 to 32"), std::string::npos) << e.message;
}

TEST(config_preview, the_two_headers_differ) {
    const config_error e =
        only_error(std::string(two_slots) + "preview: { header: X-A, token_header: x-a }\n");
    EXPECT_EQ(e.path, "preview.token_header");
}

}  // namespace
}  // namespace switchyard::config

namespace switchyard::config {
namespace {

std::string green_health(const std::string& keys) {
    return "slots:\n"
           "  blue:  { endpoints: [\"backend-blue:8000\"] }\n"
           "  green:\n"
           "    endpoints: [\"backend-green:8000\"]\n" +
           keys;
}

TEST(config_health, absent_means_no_checks_and_no_ejection) {
    const config c = parse_ok(two_slots);
    EXPECT_FALSE(c.slots[0].health_check.has_value());
    EXPECT_FALSE(c.slots[0].passive.has_value());
}

TEST(config_health, every_key_is_read) {
    const config c = parse_ok(green_health(
        "    health_check: { path: /ready, interval: 50ms, timeout: 40ms, healthy: 1, "
        "unhealthy: 4 }\n"
        "    passive: { consecutive_5xx: 3, consecutive_connect_failures: 0, eject: 2s }\n"));
    ASSERT_TRUE(c.slots[1].health_check.has_value());
    EXPECT_EQ(c.slots[1].health_check->path, "/ready");
    EXPECT_EQ(c.slots[1].health_check->interval, 50ms);
    EXPECT_EQ(c.slots[1].health_check->timeout, 40ms);
    EXPECT_EQ(c.slots[1].health_check->healthy, 1U);
    EXPECT_EQ(c.slots[1].health_check->unhealthy, 4U);
    ASSERT_TRUE(c.slots[1].passive.has_value());
    EXPECT_EQ(c.slots[1].passive->consecutive_5xx, 3U);
    EXPECT_EQ(c.slots[1].passive->consecutive_connect_failures, 0U);
    EXPECT_EQ(c.slots[1].passive->eject, 2s);
    EXPECT_FALSE(c.slots[0].health_check.has_value());
}

TEST(config_health, empty_maps_take_the_defaults) {
    const config c = parse_ok(green_health("    health_check: {}\n    passive: {}\n"));
    EXPECT_EQ(c.slots[1].health_check, health_check_config{});
    EXPECT_EQ(c.slots[1].health_check->path, "/health");
    EXPECT_EQ(c.slots[1].health_check->interval, 5s);
    EXPECT_EQ(c.slots[1].health_check->timeout, 1s);
    EXPECT_EQ(c.slots[1].health_check->healthy, 2U);
    EXPECT_EQ(c.slots[1].health_check->unhealthy, 3U);
    EXPECT_EQ(c.slots[1].passive->consecutive_5xx, 5U);
    EXPECT_EQ(c.slots[1].passive->consecutive_connect_failures, 1U);
    EXPECT_EQ(c.slots[1].passive->eject, 30s);
}

TEST(config_health, unknown_keys_name_their_path_and_line) {
    const auto e = only_error(green_health("    health_check:\n      intervall: 1s\n"));
    EXPECT_EQ(e.path, "slots.green.health_check.intervall");
    EXPECT_EQ(e.line, 6);
    EXPECT_NE(e.message.find("interval"), std::string::npos) << e.message;
    const auto p = only_error(green_health("    passive: { consecutive_500: 2 }\n"));
    EXPECT_EQ(p.path, "slots.green.passive.consecutive_500");
}

TEST(config_health, bad_values_are_errors) {
    EXPECT_EQ(only_error(green_health("    health_check: { path: health }\n")).path,
              "slots.green.health_check.path");
    EXPECT_EQ(only_error(green_health("    health_check: { healthy: 0 }\n")).path,
              "slots.green.health_check.healthy");
    EXPECT_EQ(only_error(green_health("    health_check: { interval: 0s }\n")).path,
              "slots.green.health_check.interval");
    EXPECT_EQ(only_error(green_health("    passive: { eject: soon }\n")).path,
              "slots.green.passive.eject");
    EXPECT_EQ(only_error(green_health("    passive: { consecutive_5xx: -1 }\n")).path,
              "slots.green.passive.consecutive_5xx");
}

TEST(config_health, the_timeout_fits_in_the_interval) {
    const auto e =
        only_error(green_health("    health_check: { interval: 100ms, timeout: 200ms }\n"));
    EXPECT_EQ(e.path, "slots.green.health_check.timeout");
    EXPECT_EQ(e.line, 5);
}

}  // namespace
}  // namespace switchyard::config
