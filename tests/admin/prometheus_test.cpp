// The /metrics exposition: its shape, its numbers after real traffic, and promtool's verdict.

#include "admin/prometheus.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "admin/admin_server.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"

namespace switchyard::admin {
namespace {

using analysis::slot_totals;

slot_totals empty_totals() {
    return {};
}

// The value of the sample whose line starts with `series` followed by a space; -1 if absent.
long long sample_value(const std::string& text, const std::string& series) {
    const std::string key = "\n" + series + " ";
    const auto at = text.find(key);
    if (at == std::string::npos) {
        return -1;
    }
    return std::stoll(text.substr(at + key.size()));
}

TEST(prometheus, writes_counters_histogram_and_gauges) {
    std::array<slot_totals, 2> totals{empty_totals(), empty_totals()};
    totals[0].by_status[200 - 100] = 7;
    totals[0].by_status[502 - 100] = 1;
    totals[0].failures[0] = 1;                                                // connect
    totals[0].duration.buckets[analysis::latency_buckets::index(300)] = 5;    // 0.3 ms
    totals[0].duration.buckets[analysis::latency_buckets::index(20000)] = 3;  // 20 ms
    totals[0].duration.sum_micros = 5 * 300 + 3 * 20000;
    totals[1].in_flight = 2;
    std::string text = "\n";
    write_prometheus({{"blue", "green"}, totals, {0, 10}}, text);

    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_total{slot="blue",code="200"})"), 7);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_total{slot="blue",code="502"})"), 1);
    EXPECT_EQ(sample_value(text, R"(switchyard_upstream_errors_total{slot="blue",kind="connect"})"),
              1);
    EXPECT_EQ(sample_value(text, R"(switchyard_upstream_errors_total{slot="green",kind="reset"})"),
              0);
    const std::string bucket = "switchyard_http_request_duration_seconds_bucket";
    EXPECT_EQ(sample_value(text, bucket + R"({slot="blue",le="0.0005"})"), 5);
    EXPECT_EQ(sample_value(text, bucket + R"({slot="blue",le="0.01"})"), 5);
    EXPECT_EQ(sample_value(text, bucket + R"({slot="blue",le="0.025"})"), 8);
    EXPECT_EQ(sample_value(text, bucket + R"({slot="blue",le="+Inf"})"), 8);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_request_duration_seconds_count{slot="blue"})"),
              8);
    EXPECT_NE(text.find(R"(switchyard_http_request_duration_seconds_sum{slot="blue"} 0.0615)"),
              std::string::npos)
        << text;
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_in_flight{slot="green"})"), 2);
    EXPECT_EQ(sample_value(text, R"(switchyard_slot_weight{slot="blue"})"), 90);
    EXPECT_EQ(sample_value(text, R"(switchyard_slot_weight{slot="green"})"), 10);
    EXPECT_EQ(sample_value(text, R"(switchyard_active_slot{slot="blue"})"), 1);
    EXPECT_EQ(sample_value(text, R"(switchyard_active_slot{slot="green"})"), 0);
}

// Runs `promtool check metrics` on `text`; returns its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& text) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("switchyard-scrape-" + std::to_string(::getpid()) + ".txt");
    std::ofstream(path) << text;
    const std::string command = "promtool check metrics < " + path.string() + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    std::string output;
    std::array<char, 512> chunk{};
    while (pipe != nullptr && std::fgets(chunk.data(), chunk.size(), pipe) != nullptr) {
        output += chunk.data();
    }
    const int status = pipe != nullptr ? ::pclose(pipe) : -1;
    std::filesystem::remove(path);
    return {status, output};
}

TEST(prometheus, scrape_after_traffic_on_both_slots_passes_promtool) {
    test::upstream_server blue("blue");
    test::upstream_server green("green");
    const auto cfg = test::two_slot_config(blue.port(), green.port());
    test::running_proxy proxy(cfg, {0, 10});
    const auto shards = proxy.server().metrics_shards();
    admin_server admin(
        cfg, proxy.split(), [] { return true; }, [&] { return analysis::merge(shards); });
    admin.start();

    test::raw_client client(proxy.port());
    for (int i = 0; i < 100; ++i) {
        client.send(test::format_request("GET", "/"));
        ASSERT_EQ(client.read_response().status, 200);
    }
    // The last request is recorded when the worker resumes after writing it, which can be just
    // after the client read it: scrape until all 100 are in (bounded).
    test::response scrape = test::get(admin.port(), "/metrics");
    for (int i = 0;
         i < 1000 &&
         sample_value("\n" + scrape.body,
                      R"(switchyard_http_request_duration_seconds_count{slot="blue"})") +
                 sample_value("\n" + scrape.body,
                              R"(switchyard_http_request_duration_seconds_count{slot="green"})") <
             100;
         ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        scrape = test::get(admin.port(), "/metrics");
    }
    ASSERT_EQ(scrape.status, 200);
    EXPECT_EQ(scrape.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    const std::string text = "\n" + scrape.body;
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_total{slot="blue",code="200"})"), 90);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_total{slot="green",code="200"})"), 10);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_request_duration_seconds_count{slot="green"})"),
              10);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_in_flight{slot="blue"})"), 0);

    const auto [status, output] = promtool_check(scrape.body);
    EXPECT_EQ(status, 0) << "promtool (package prometheus; ./build.sh deps installs it):\n"
                         << output;
    EXPECT_EQ(output, "") << output;
    admin.stop();
}

}  // namespace
}  // namespace switchyard::admin
