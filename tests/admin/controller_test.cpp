// The controller through the admin API: one writer of the split, the rollout endpoints and
// their refusals, webhooks, the metrics it counts, the smoke run, and the state file.

#include "admin/controller.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "tests/support/admin_stack.hpp"

namespace switchyard::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using upstream_response = upstream_server::response;

json::value call(admin_stack& s, std::string_view method, std::string_view target, int& status,
                 std::string_view body = {}) {
    return s.call(method, target, body, &status);
}

std::string error_of(const json::value& v) {
    const json::value* e = v.is_object() ? v.get_object().if_contains("error") : nullptr;
    return e != nullptr && e->is_string() ? std::string(e->get_string()) : "";
}

TEST(controller, manual_changes_are_refused_with_409_while_a_rollout_runs) {
    admin_stack s([](config::config& c) { c.analysis.interval = 1h; });
    int code = 0;
    call(s, "POST", "/rollout", code);
    ASSERT_EQ(code, 200);
    ASSERT_TRUE(s.wait_for_phase("progressing"));
    // Routes to `canary` and sticky pins learn of the rollout from the traffic word.
    EXPECT_TRUE(s.proxy().split().load_state().rollout);
    EXPECT_EQ(s.proxy().split().load_state().canary_slot(), std::optional<analysis::slot_index>(1));
    const auto before = s.proxy().split().load();
    for (const auto& [target, body] : std::vector<std::pair<std::string, std::string>>{
             {"/active-slot", "green"}, {"/weights", R"({"green": 50})"}}) {
        const json::value r = call(s, "PUT", target, code, body);
        EXPECT_EQ(code, 409) << target;
        EXPECT_EQ(r.at("phase"), "progressing") << json::serialize(r);
        EXPECT_NE(error_of(r).find("abort it"), std::string::npos) << error_of(r);
        EXPECT_EQ(s.proxy().split().load(), before) << target;
    }
    // Once it has ended, they work again.
    call(s, "POST", "/rollout/abort", code);
    ASSERT_EQ(code, 200);
    EXPECT_EQ(s.proxy().split().load(), (analysis::traffic_split{0, 0}));
    EXPECT_FALSE(s.proxy().split().load_state().rollout);
    call(s, "PUT", "/weights", code, R"({"green": 30})");
    EXPECT_EQ(code, 200);
    EXPECT_EQ(s.proxy().split().load(), (analysis::traffic_split{0, 30}));
}

TEST(controller, actions_that_do_not_fit_the_phase_get_409_and_change_nothing) {
    admin_stack s;
    int code = 0;
    for (const char* action : {"/rollout/promote", "/rollout/pause", "/rollout/resume",
                               "/rollout/approve", "/rollout/abort", "/rollback"}) {
        const json::value r = call(s, "POST", action, code);
        EXPECT_EQ(code, 409) << action;
        EXPECT_EQ(r.at("phase"), "idle") << action;
        EXPECT_FALSE(error_of(r).empty()) << action;
    }
    EXPECT_EQ(s.phase(), "idle");
    EXPECT_EQ(s.proxy().split().load(), (analysis::traffic_split{0, 0}));
    // A second rollout while one runs is refused too.
    call(s, "POST", "/rollout", code);
    ASSERT_EQ(code, 200);
    const json::value again = call(s, "POST", "/rollout", code);
    EXPECT_EQ(code, 409);
    EXPECT_NE(error_of(again).find("already"), std::string::npos) << error_of(again);
    // Unknown actions are 404, wrong methods 405.
    call(s, "POST", "/rollout/launch", code);
    EXPECT_EQ(code, 404);
    call(s, "GET", "/rollout/promote", code);
    EXPECT_EQ(code, 405);
}

TEST(controller, every_action_answers_the_new_state) {
    admin_stack s([](config::config& c) { c.analysis.interval = 1h; });
    int code = 0;
    call(s, "POST", "/rollout", code);
    ASSERT_TRUE(s.wait_for_phase("progressing"));
    json::value r = call(s, "POST", "/rollout/promote", code);
    EXPECT_EQ(code, 200);
    EXPECT_EQ(r.at("weight"), 25);
    EXPECT_EQ(r.at("step"), 2);
    r = call(s, "POST", "/rollout/pause", code);
    EXPECT_EQ(r.at("phase"), "paused");
    EXPECT_EQ(r.at("resume_to"), "progressing");
    r = call(s, "POST", "/rollout/resume", code);
    EXPECT_EQ(r.at("phase"), "progressing");
    r = call(s, "POST", "/rollout/promote?full=true", code);
    EXPECT_EQ(r.at("phase"), "baking");
    EXPECT_EQ(s.proxy().split().load(), (analysis::traffic_split{1, 0}));
    r = call(s, "POST", "/rollback", code);
    EXPECT_EQ(code, 200);
    EXPECT_EQ(r.at("phase"), "rolled-back");
    EXPECT_EQ(s.proxy().split().load(), (analysis::traffic_split{0, 0}));
}

TEST(controller, bad_overrides_get_400_naming_each_key) {
    admin_stack s;
    int code = 0;
    const json::value r =
        call(s, "POST", "/rollout", code, R"({"strategy": "bluegreen", "stepz": [10, 100]})");
    EXPECT_EQ(code, 400);
    const auto& errors = r.at("errors").as_array();
    ASSERT_EQ(errors.size(), 2U) << json::serialize(r);
    EXPECT_NE(std::string(errors.at(0).as_string()).find("rollout.strategy"), std::string::npos);
    EXPECT_NE(std::string(errors.at(1).as_string()).find("rollout.stepz"), std::string::npos);
    EXPECT_EQ(s.phase(), "idle");
    call(s, "POST", "/rollout", code, "{not json");
    EXPECT_EQ(code, 400);
    EXPECT_EQ(s.phase(), "idle");
}

TEST(controller, mutating_calls_need_the_token) {
    admin_stack s([](config::config& c) { c.admin.token = "s3cret"; });
    int code = 0;
    for (const char* action : {"/rollout", "/rollout/abort", "/rollback"}) {
        call(s, "POST", action, code);
        EXPECT_EQ(code, 401) << action;
    }
    EXPECT_EQ(s.phase(), "idle");
    call(s, "GET", "/status", code);
    EXPECT_EQ(code, 200);
}

TEST(controller, status_shows_slots_endpoints_weights_and_rates) {
    admin_stack s;
    s.start_load(2);
    ASSERT_TRUE(eventually([&] {
        return s.status().at("slots").at("blue").at("requests_per_second").as_double() > 0;
    }));
    const json::value status = s.status();
    EXPECT_EQ(status.at("active"), "blue");
    EXPECT_EQ(status.at("weights"), json::parse(R"({"blue":100,"green":0})"));
    const auto& blue = status.at("slots").at("blue");
    EXPECT_EQ(blue.at("active"), true);
    EXPECT_EQ(blue.at("weight"), 100);
    EXPECT_EQ(blue.at("endpoints").at(0).at("address"),
              ("127.0.0.1:" + std::to_string(s.blue.port())).c_str());
    EXPECT_TRUE(blue.at("endpoints").at(0).at("health").is_null());  // not probed yet
    EXPECT_EQ(blue.at("error_rate"), 0.0);
    EXPECT_GT(blue.at("latency_p95_seconds").as_double(), 0.0);
    EXPECT_GE(blue.at("window_seconds").as_int64(), 1);
    EXPECT_EQ(blue.at("tunnels_open"), 0);
    EXPECT_EQ(status.at("slots").at("green").at("tunnels_open"), 0);
    EXPECT_EQ(status.at("rollout").at("phase"), "idle");
}

TEST(controller, events_are_posted_to_the_webhooks_in_order) {
    upstream_server hook("hook");
    upstream_server broken("broken", [](const upstream_server::request&) {
        upstream_response r;
        r.status = 500;
        return r;
    });
    admin_stack s([&](config::config& c) {
        c.webhooks.events = {
            {*config::parse_http_url("http://127.0.0.1:" + std::to_string(hook.port()) + "/events"),
             2s},
            {*config::parse_http_url("http://127.0.0.1:" + std::to_string(broken.port()) + "/x"),
             2s}};
    });
    s.start_load();
    int code = 0;
    call(s, "POST", "/rollout", code);
    ASSERT_TRUE(s.wait_for_phase("succeeded"));
    // Every event of /status reached the hook, in the same order.
    const json::value status = s.status();
    const auto& events = status.at("events").as_array();
    ASSERT_TRUE(hook.wait_for_requests(events.size()));
    json::array received;
    for (const auto& r : hook.requests()) {
        EXPECT_EQ(r.method, "POST");
        EXPECT_EQ(r.target, "/events");
        EXPECT_EQ(r.header("Content-Type"), "application/json");
        const json::value e = json::parse(r.body);
        EXPECT_FALSE(e.at("rollout").as_string().empty());
        EXPECT_TRUE(e.at("weights").is_object());
        EXPECT_TRUE(e.at("reason").is_string());
        EXPECT_TRUE(e.at("checks").is_array());
        received.push_back(e);
    }
    EXPECT_EQ(received, events);
    EXPECT_EQ(step_kinds(received),
              (std::vector<std::string>{"started", "progressing", "step", "step", "step",
                                        "promoted", "succeeded"}));
    // The failing hook is retried; it never held up the rollout or the other hook.
    EXPECT_TRUE(broken.wait_for_requests(2));
}

TEST(controller, a_failing_pre_rollout_hook_stops_the_rollout_before_traffic_moves) {
    upstream_server hook("hook", [](const upstream_server::request&) {
        upstream_response r;
        r.status = 422;
        return r;
    });
    admin_stack s([&](config::config& c) {
        c.webhooks.pre_rollout = {
            {*config::parse_http_url("http://127.0.0.1:" + std::to_string(hook.port()) + "/run"),
             2s}};
    });
    s.start_load();
    int code = 0;
    call(s, "POST", "/rollout", code);
    ASSERT_TRUE(s.wait_for_phase("aborted"));
    const json::value status = s.status();
    const std::string reason(status.at("rollout").at("reason").as_string());
    EXPECT_NE(reason.find("pre_rollout hook http://127.0.0.1:" + std::to_string(hook.port()) +
                          "/run: status 422"),
              std::string::npos)
        << reason;
    ASSERT_EQ(hook.request_count(), 1U);
    const json::value sent = json::parse(hook.requests()[0].body);
    EXPECT_EQ(sent.at("from"), "blue");
    EXPECT_EQ(sent.at("to"), "green");
    s.stop_load();
    EXPECT_EQ(s.load().with_body("green\n"), 0U);
}

TEST(controller, an_aborted_rollout_stops_its_validation) {
    std::atomic<bool> healthy{false};
    upstream_server hook("hook");
    admin_stack s([&](config::config& c) {
        c.rollout.health.deadline = 10s;
        c.webhooks.pre_rollout = {
            {*config::parse_http_url("http://127.0.0.1:" + std::to_string(hook.port()) + "/run"),
             2s}};
    });
    s.green.set_handler([&](const upstream_server::request&) {
        upstream_response r;
        r.status = healthy ? 200 : 503;
        return r;
    });
    int code = 0;
    call(s, "POST", "/rollout", code);
    ASSERT_TRUE(s.green.wait_for_requests(1));  // the gate is probing
    call(s, "POST", "/rollout/abort", code);
    ASSERT_EQ(code, 200);
    healthy = true;  // the gate would pass now, and the hook be called, were it still running
    // Its next round comes within half a second; give it four times that to show up.
    EXPECT_FALSE(hook.wait_for_requests(1, 2s));
    EXPECT_EQ(s.phase(), "aborted");
}

TEST(controller, a_blue_green_smoke_run_judges_both_slots_before_the_switch) {
    for (const bool green_fails : {false, true}) {
        admin_stack s;
        if (green_fails) {
            s.green.set_handler([](const upstream_server::request& r) {
                upstream_response res;
                res.status = r.target == "/health" ? 200 : 500;
                return res;
            });
        }
        int code = 0;
        call(s, "POST", "/rollout", code,
             R"({"strategy": "blue-green", "smoke": {"requests": 40, "paths": ["/a", "/b"]}})");
        ASSERT_EQ(code, 200);
        s.start_load();  // the bake needs traffic to judge
        ASSERT_TRUE(s.wait_for_phase(green_fails ? "aborted" : "succeeded"))
            << json::serialize(s.status());
        std::size_t smoke_to_green = 0;
        for (const auto& r : s.green.requests()) {
            smoke_to_green += r.target == "/a" || r.target == "/b" ? 1U : 0U;
        }
        EXPECT_EQ(smoke_to_green, 40U);
        std::size_t smoke_to_blue = 0;
        for (const auto& r : s.blue.requests()) {
            smoke_to_blue += r.target == "/a" || r.target == "/b" ? 1U : 0U;
        }
        EXPECT_EQ(smoke_to_blue, 40U);
        if (green_fails) {
            EXPECT_NE(std::string(s.status().at("rollout").at("reason").as_string())
                          .find("smoke run: error_rate 100%"),
                      std::string::npos);
            EXPECT_EQ(s.proxy().split().load(), (analysis::traffic_split{0, 0}));
        }
    }
}

long long sample(const std::string& text, const std::string& series) {
    const std::string key = "\n" + series + " ";
    const auto at = text.find(key);
    return at == std::string::npos ? -1 : std::stoll(text.substr(at + key.size()));
}

TEST(controller, counts_rollouts_rollbacks_checks_and_the_phase) {
    // The threshold judge: three failed intervals, each counted per check.
    admin_stack s(
        [](config::config& cfg) { cfg.analysis.method = config::analysis_method::threshold; });
    std::atomic<std::uint64_t> served{0};
    s.green.set_handler([&](const upstream_server::request& r) {
        upstream_response res;
        res.status = r.target != "/health" && served++ % 4 == 0 ? 500 : 200;
        return res;
    });
    s.start_load();
    int code = 0;
    call(s, "POST", "/rollout", code);
    ASSERT_TRUE(s.wait_for_phase("rolled-back"));
    const std::string text = "\n" + test::get(s.admin_port(), "/metrics").body;
    EXPECT_EQ(sample(text, R"(switchyard_rollout_phase{phase="rolled-back"})"), 1) << text;
    EXPECT_EQ(sample(text, R"(switchyard_rollout_phase{phase="progressing"})"), 0);
    // prometheus-cpp writes labels in name order.
    EXPECT_EQ(sample(text, R"(switchyard_rollouts_total{result="rolled-back",strategy="canary"})"),
              1);
    EXPECT_EQ(sample(text, R"(switchyard_rollouts_total{result="succeeded",strategy="canary"})"),
              0);
    EXPECT_EQ(sample(text, R"(switchyard_rollbacks_total{reason="error_rate"})"), 1);
    EXPECT_EQ(sample(text, R"(switchyard_analysis_checks_total{check="error_rate",result="fail"})"),
              3);
    EXPECT_GE(sample(text, R"(switchyard_upstream_response_seconds_count{slot="green"})"), 1);
}

TEST(controller, the_state_file_carries_a_manual_split_across_a_restart) {
    const auto path = fs::temp_directory_path() /
                      ("switchyard-controller-" + std::to_string(::getpid()) + ".json");
    fs::remove(path);
    {
        admin_stack s([&](config::config& c) { c.state_file = path.string(); });
        int code = 0;
        call(s, "PUT", "/weights", code, R"({"green": 15})");
        ASSERT_EQ(code, 200);
    }
    {
        admin_stack s([&](config::config& c) { c.state_file = path.string(); });
        EXPECT_EQ(s.proxy().split().load(), (analysis::traffic_split{0, 15}));
        EXPECT_EQ(s.status().at("weights").at("green"), 15);
    }
    fs::remove(path);
}

}  // namespace
}  // namespace switchyard::test
