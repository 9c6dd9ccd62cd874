// GET / and GET /series on the admin listener (README, "Live page"), and the recorder behind
// /series. The page itself runs in a browser in live_page_test.cpp.

#include "admin/series.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "admin/admin_server.hpp"
#include "admin/live_page.hpp"
#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::admin {
namespace {

namespace json = boost::json;
using analysis::sequential_test;
using analysis::test_evidence;
using analysis::traffic_split;

const analysis::per_slot<std::string> names{"blue", "green"};

analysis::per_slot<series_slot> quiet() {
    return {};
}

test_evidence evidence_of(std::string check, sequential_test test, double e, double alpha) {
    test_evidence t;
    t.check = std::move(check);
    t.test = test;
    t.alpha = alpha;
    t.e_value = e;
    t.e_threshold = 1 / alpha;
    return t;
}

TEST(series_recorder, a_point_holds_the_weights_each_slots_numbers_and_the_evidence) {
    series_recorder r;
    analysis::per_slot<series_slot> slots;
    slots[0] = {90, 90.0, 0.0, 0.012};
    slots[1] = {10, 10.0, 0.1, 0.25};
    const std::vector<test_evidence> evidence = {
        evidence_of("error_rate_ratio", sequential_test::errors, 3.5, 0.025),
        evidence_of("latency_p95_ratio", sequential_test::exceedance, 0.5, 0.0125)};
    r.record(1'800'000'000, traffic_split{0, 10}, slots, evidence);

    const json::object out = r.to_json(names);
    EXPECT_EQ(out.at("seconds"), 600);
    EXPECT_EQ(json::serialize(out.at("tests")),
              R"([{"check":"error_rate_ratio","test":"errors"},)"
              R"({"check":"latency_p95_ratio","test":"exceedance"}])");
    const auto& points = out.at("points").as_array();
    ASSERT_EQ(points.size(), 1U);
    const auto& p = points[0];
    EXPECT_EQ(p.at("t"), 1'800'000'000);
    EXPECT_EQ(json::serialize(p.at("weights")), R"({"blue":90,"green":10})");
    EXPECT_EQ(p.at("slots").at("blue").at("requests_per_second").as_double(), 90.0);
    EXPECT_EQ(p.at("slots").at("blue").at("error_rate").as_double(), 0.0);
    EXPECT_EQ(p.at("slots").at("blue").at("latency_p95_seconds").as_double(), 0.012);
    EXPECT_EQ(p.at("slots").at("green").at("error_rate").as_double(), 0.1);
    EXPECT_EQ(p.at("slots").at("green").at("latency_p95_seconds").as_double(), 0.25);
    const auto& e = p.at("evidence").as_array();
    ASSERT_EQ(e.size(), 2U);
    EXPECT_EQ(e[0].at("e_value").as_double(), 3.5);
    EXPECT_EQ(e[0].at("threshold").as_double(), 40.0);
    EXPECT_EQ(e[1].at("e_value").as_double(), 0.5);
    EXPECT_EQ(e[1].at("threshold").as_double(), 80.0);
}

TEST(series_recorder, a_slot_that_served_nothing_has_no_error_rate_or_p95) {
    series_recorder r;
    r.record(100, traffic_split{1, 0}, quiet(), {});
    const json::object out = r.to_json(names);
    const auto& p = out.at("points").as_array().at(0);
    EXPECT_EQ(json::serialize(p.at("weights")), R"({"blue":0,"green":100})");
    for (const char* slot : {"blue", "green"}) {
        EXPECT_EQ(p.at("slots").at(slot).at("requests_per_second").as_double(), 0.0);
        EXPECT_TRUE(p.at("slots").at(slot).at("error_rate").is_null());
        EXPECT_TRUE(p.at("slots").at(slot).at("latency_p95_seconds").is_null());
    }
}

TEST(series_recorder, empty_evidence_gives_no_tests_and_empty_evidence_per_point) {
    series_recorder r;
    for (std::int64_t t = 1; t <= 3; ++t) {
        r.record(t, traffic_split{0, 0}, quiet(), {});
    }
    const json::object out = r.to_json(names);
    EXPECT_TRUE(out.at("tests").as_array().empty());
    ASSERT_EQ(out.at("points").as_array().size(), 3U);
    for (const auto& p : out.at("points").as_array()) {
        EXPECT_TRUE(p.at("evidence").as_array().empty());
    }
}

TEST(series_recorder, keeps_the_last_600_seconds_oldest_first) {
    series_recorder r;
    for (std::int64_t t = 1; t <= 1000; ++t) {
        r.record(t, traffic_split{0, static_cast<std::uint8_t>(t % 101)}, quiet(), {});
    }
    EXPECT_EQ(r.size(), 600U);
    const json::object out = r.to_json(names);
    const auto& points = out.at("points").as_array();
    ASSERT_EQ(points.size(), 600U);
    for (std::size_t i = 0; i < points.size(); ++i) {
        const std::int64_t t = 401 + static_cast<std::int64_t>(i);
        ASSERT_EQ(points[i].at("t"), t);
        ASSERT_EQ(points[i].at("weights").at("green"), t % 101);
    }
}

TEST(series_recorder, since_leaves_out_the_points_already_seen) {
    series_recorder r;
    for (std::int64_t t = 10; t < 20; ++t) {
        r.record(t, traffic_split{0, 0}, quiet(), {});
    }
    const json::object out = r.to_json(names, 16);
    const auto& points = out.at("points").as_array();
    ASSERT_EQ(points.size(), 3U);
    EXPECT_EQ(points[0].at("t"), 17);
    EXPECT_EQ(points[2].at("t"), 19);
    EXPECT_TRUE(r.to_json(names, 19).at("points").as_array().empty());
}

TEST(series_recorder, times_only_go_forward) {
    series_recorder r;
    r.record(50, traffic_split{0, 0}, quiet(), {});
    r.record(50, traffic_split{0, 0}, quiet(), {});  // two ticks in one wall-clock second
    r.record(40, traffic_split{0, 0}, quiet(), {});  // the wall clock stepped back
    r.record(60, traffic_split{0, 0}, quiet(), {});
    const json::object out = r.to_json(names);
    const auto& points = out.at("points").as_array();
    ASSERT_EQ(points.size(), 4U);
    EXPECT_EQ(points[0].at("t"), 50);
    EXPECT_EQ(points[1].at("t"), 51);
    EXPECT_EQ(points[2].at("t"), 52);
    EXPECT_EQ(points[3].at("t"), 60);
}

TEST(series_recorder, the_tests_names_outlive_a_rollout_and_the_values_stay_finite) {
    series_recorder r;
    const std::vector<test_evidence> evidence = {
        evidence_of("error_rate_ratio", sequential_test::errors,
                    std::numeric_limits<double>::infinity(), 0.05)};
    r.record(1, traffic_split{0, 10}, quiet(), evidence);
    r.record(2, traffic_split{0, 0}, quiet(), {});  // the rollout ended: no tests now
    const json::object out = r.to_json(names);
    ASSERT_EQ(out.at("tests").as_array().size(), 1U);
    EXPECT_EQ(out.at("tests").as_array()[0].at("check"), "error_rate_ratio");
    const auto& points = out.at("points").as_array();
    EXPECT_EQ(points[0].at("evidence").as_array()[0].at("e_value").as_double(),
              std::numeric_limits<double>::max());
    EXPECT_TRUE(points[1].at("evidence").as_array().empty());
    // JSON has no infinity: what the recorder answers parses back.
    EXPECT_NO_THROW(json::parse(json::serialize(out)));
}

TEST(series_recorder, the_quantile_test_has_bounds_not_a_line_and_is_left_out) {
    series_recorder r;
    const std::vector<test_evidence> evidence = {
        evidence_of("latency_p95_ratio", sequential_test::exceedance, 2.0, 0.0025),
        evidence_of("latency_p95_ratio", sequential_test::quantile, 1.0, 0.0015),
        evidence_of("error_rate_ratio", sequential_test::errors, 3.0, 0.0025)};
    r.record(1, traffic_split{0, 10}, quiet(), evidence);
    const json::object out = r.to_json(names);
    const auto& tests = out.at("tests").as_array();
    ASSERT_EQ(tests.size(), 2U);
    EXPECT_EQ(tests[0].at("test"), "exceedance");
    EXPECT_EQ(tests[1].at("test"), "errors");
    const auto& point = out.at("points").as_array()[0].at("evidence").as_array();
    ASSERT_EQ(point.size(), 2U);
    EXPECT_EQ(point[1].at("e_value").as_double(), 3.0);
}

TEST(series_recorder, records_at_most_max_tests) {
    series_recorder r;
    std::vector<test_evidence> evidence;
    for (std::size_t i = 0; i < series_recorder::max_tests + 3; ++i) {
        evidence.push_back(
            evidence_of("check" + std::to_string(i), sequential_test::errors, 1.0, 0.01));
    }
    r.record(1, traffic_split{0, 10}, quiet(), evidence);
    const json::object out = r.to_json(names);
    EXPECT_EQ(out.at("tests").as_array().size(), series_recorder::max_tests);
    EXPECT_EQ(out.at("points").as_array()[0].at("evidence").as_array().size(),
              series_recorder::max_tests);
}

// --- through the admin listener ---

class admin_listener {
public:
    admin_listener()
        : cfg_(test::two_slot_config(1, 2)),
          split_({0, 0}),
          server_(cfg_, split_, [] { return true; }) {
        server_.start();
    }
    test::response request(std::string_view method, std::string_view target) {
        test::raw_client client(server_.port());
        client.send(test::format_request(method, target, {}, {}));
        return client.read_response(method == "HEAD");
    }

private:
    config::config cfg_;
    analysis::split_state split_;
    admin_server server_;
};

// The text between `open` and `close` in `html`.
std::string_view between(std::string_view html, std::string_view open, std::string_view close) {
    const std::size_t start = html.find(open);
    if (start == std::string_view::npos) {
        return {};
    }
    const std::size_t end = html.find(close, start);
    return html.substr(start + open.size(), end - start - open.size());
}

TEST(live_page, get_root_serves_the_page_as_html_with_a_strict_policy) {
    admin_listener admin;
    const test::response r = admin.request("GET", "/");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(r.header("Cache-Control"), "no-store");
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
    EXPECT_TRUE(r.body.starts_with("<!DOCTYPE html>"));
    EXPECT_NE(r.body.find("/series"), std::string::npos);
    for (const char* control :
         {"/rollout/promote", "/rollout/pause", "/rollout/resume", "/rollout/abort", "/rollback"}) {
        EXPECT_NE(r.body.find(control), std::string::npos) << control;
    }
    // Self-contained: nothing loaded from anywhere else.
    EXPECT_EQ(r.body.find("<script src"), std::string::npos);
    EXPECT_EQ(r.body.find("<link"), std::string::npos);
    EXPECT_EQ(r.body.find("http://"), std::string::npos);
    EXPECT_EQ(r.body.find("https://"), std::string::npos);

    const std::string csp = r.header("Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
    // The hashes are those of the script and the style served, so both run and nothing else.
    EXPECT_NE(csp.find("script-src " + csp_hash(between(r.body, "<script>", "</script>"))),
              std::string::npos)
        << csp;
    EXPECT_NE(csp.find("style-src " + csp_hash(between(r.body, "<style>", "</style>"))),
              std::string::npos)
        << csp;
}

TEST(live_page, csp_hash_is_base64_of_sha256) {
    // RFC 6234's SHA-256 of "abc", in base64.
    EXPECT_EQ(csp_hash("abc"), "'sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0='");
}

TEST(live_page, other_methods_on_root_answer_405) {
    admin_listener admin;
    for (const char* method : {"POST", "PUT", "DELETE"}) {
        const test::response r = admin.request(method, "/");
        EXPECT_EQ(r.status, 405) << method;
        EXPECT_EQ(r.header("Allow"), "GET") << method;
        EXPECT_EQ(r.header("Content-Type"), "application/json") << method;
    }
    const test::response head = admin.request("HEAD", "/");
    EXPECT_EQ(head.status, 200);
    EXPECT_TRUE(head.body.empty());
}

TEST(series_endpoint, answers_the_split_the_rollout_and_a_point_a_second) {
    admin_listener admin;
    json::value series;
    // The controller records a point as each second ends.
    ASSERT_TRUE(test::eventually([&] {
        const test::response r = admin.request("GET", "/series");
        series = json::parse(r.body);
        return r.status == 200 && !series.at("points").as_array().empty();
    })) << json::serialize(series);
    EXPECT_EQ(series.at("seconds"), 600);
    EXPECT_EQ(json::serialize(series.at("slots")), R"(["blue","green"])");
    EXPECT_EQ(series.at("active"), "blue");
    EXPECT_EQ(json::serialize(series.at("weights")), R"({"blue":100,"green":0})");
    EXPECT_EQ(series.at("rollout").at("phase"), "idle");
    EXPECT_TRUE(series.at("events").is_array());
    EXPECT_TRUE(series.at("tests").as_array().empty());  // the threshold judge: no evidence
    const auto& p = series.at("points").as_array().back();
    EXPECT_GT(p.at("t").as_int64(), 1'700'000'000);  // unix seconds
    EXPECT_EQ(json::serialize(p.at("weights")), R"({"blue":100,"green":0})");
    EXPECT_EQ(p.at("slots").at("green").at("requests_per_second").as_double(), 0.0);
    EXPECT_TRUE(p.at("evidence").as_array().empty());

    const std::int64_t last = p.at("t").as_int64();
    const test::response newer = admin.request("GET", "/series?since=" + std::to_string(last));
    ASSERT_EQ(newer.status, 200);
    // Named: a range-for over a member of a temporary would read a destroyed value.
    const json::value newer_series = json::parse(newer.body);
    for (const auto& q : newer_series.at("points").as_array()) {
        EXPECT_GT(q.at("t").as_int64(), last);
    }
}

TEST(series_endpoint, refuses_a_bad_since_and_other_methods) {
    admin_listener admin;
    const test::response bad = admin.request("GET", "/series?since=yesterday");
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("since"), std::string::npos) << bad.body;
    const test::response post = admin.request("POST", "/series");
    EXPECT_EQ(post.status, 405);
    EXPECT_EQ(post.header("Allow"), "GET");
}

}  // namespace
}  // namespace switchyard::admin
