// The /metrics exposition: its shape, the shard collector's numbers, the control plane's counters,
// the numbers after real traffic, and promtool's verdict on each.

#include "admin/prometheus.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "admin/admin_server.hpp"
#include "analysis/rollout.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::admin {
namespace {

using analysis::latency_buckets;
using analysis::slot_totals;

// The value of the sample whose line starts with `series` followed by a space; -1 if absent.
double sample_value(const std::string& text, const std::string& series) {
    const std::string key = "\n" + series + " ";
    const auto at = text.find(key);
    if (at == std::string::npos) {
        return -1;
    }
    return std::stod(text.substr(at + key.size()));
}

// How many lines of `text` start with `prefix`.
int lines_starting(const std::string& text, const std::string& prefix) {
    int n = 0;
    for (auto at = text.find("\n" + prefix); at != std::string::npos;
         at = text.find("\n" + prefix, at + 1)) {
        ++n;
    }
    return n;
}

// A Collectable that answers fixed families, to serialize slot_families() of a made-up input.
class fixed_families final : public prometheus::Collectable {
public:
    explicit fixed_families(std::vector<prometheus::MetricFamily> families)
        : families_(std::move(families)) {}
    std::vector<prometheus::MetricFamily> Collect() const override { return families_; }

private:
    std::vector<prometheus::MetricFamily> families_;
};

TEST(prometheus, writes_counters_histograms_and_gauges) {
    analysis::per_slot<slot_totals> totals{};
    totals[0].by_status[200 - 100] = 7;
    totals[0].by_status[502 - 100] = 1;
    totals[0].no_status = 2;
    totals[0].failures[0] = 1;                                         // connect
    totals[0].duration.buckets[latency_buckets::index(300)] = 5;       // 0.3 ms
    totals[0].duration.buckets[latency_buckets::index(20000)] = 3;     // 20 ms
    totals[0].duration.buckets[latency_buckets::index(90000000)] = 1;  // 90 s: only +Inf
    totals[0].duration.sum_micros = 5 * 300 + 3 * 20000 + 90000000;
    // The fine bucket 992..1007 µs has its midpoint (999.5) under 1 ms: 1007 µs counts under
    // le="0.001". The next one, 1008..1023 µs, is counted under le="0.0025".
    totals[0].upstream.buckets[latency_buckets::index(200)] = 4;
    totals[0].upstream.buckets[latency_buckets::index(1007)] = 1;
    totals[0].upstream.buckets[latency_buckets::index(1008)] = 1;
    totals[0].upstream.buckets[latency_buckets::index(3000)] = 2;
    totals[0].upstream.sum_micros = 4 * 200 + 1007 + 1008 + 2 * 3000;
    totals[1].in_flight = 2;
    totals[0].tunnels_open = 1;
    totals[0].tunnels_total = 4;
    const fixed_families families(slot_families({{"blue", "green"}, totals, {0, 10}}));
    const std::array<const prometheus::Collectable*, 1> sources{&families};
    const std::string text = "\n" + serialize(sources);

    // Every family, once, in the documented order.
    const std::array<std::string, 14> types{
        "# TYPE switchyard_http_requests_total counter",
        "# TYPE switchyard_http_request_duration_seconds histogram",
        "# TYPE switchyard_upstream_response_seconds histogram",
        "# TYPE switchyard_upstream_errors_total counter",
        "# TYPE switchyard_http_requests_in_flight gauge",
        "# TYPE switchyard_slot_weight gauge",
        "# TYPE switchyard_active_slot gauge",
        "# TYPE switchyard_tunnels_open gauge",
        "# TYPE switchyard_tunnels_total counter",
        "# TYPE switchyard_sticky_requests_total counter",
        "# TYPE switchyard_mirror_requests_total counter",
        "# TYPE switchyard_mirror_response_seconds histogram",
        "# TYPE switchyard_mirror_mismatches_total counter",
        "# TYPE switchyard_mirror_dropped_total counter"};
    std::size_t previous = 0;
    for (const auto& type : types) {
        const auto at = text.find("\n" + type + "\n");
        ASSERT_NE(at, std::string::npos) << type << "\n" << text;
        EXPECT_GT(at, previous) << type;
        previous = at;
    }
    EXPECT_EQ(lines_starting(text, "# TYPE "), 14) << text;

    const std::string requests = "switchyard_http_requests_total";
    EXPECT_EQ(sample_value(text, requests + R"({slot="blue",code="200"})"), 7);
    EXPECT_EQ(sample_value(text, requests + R"({slot="blue",code="502"})"), 1);
    EXPECT_EQ(sample_value(text, requests + R"({slot="blue",code="0"})"), 2);
    EXPECT_EQ(sample_value(text, requests + R"({slot="green",code="200"})"), -1);  // zero: absent
    EXPECT_EQ(lines_starting(text, requests + "{"), 3);

    const std::string duration = "switchyard_http_request_duration_seconds";
    EXPECT_EQ(sample_value(text, duration + R"(_bucket{slot="blue",le="0.0005"})"), 5);
    EXPECT_EQ(sample_value(text, duration + R"(_bucket{slot="blue",le="0.01"})"), 5);
    EXPECT_EQ(sample_value(text, duration + R"(_bucket{slot="blue",le="0.025"})"), 8);
    EXPECT_EQ(sample_value(text, duration + R"(_bucket{slot="blue",le="60"})"), 8);
    EXPECT_EQ(sample_value(text, duration + R"(_bucket{slot="blue",le="+Inf"})"), 9);
    EXPECT_EQ(sample_value(text, duration + R"(_count{slot="blue"})"), 9);
    EXPECT_DOUBLE_EQ(sample_value(text, duration + R"(_sum{slot="blue"})"), 90.0615);
    EXPECT_EQ(sample_value(text, duration + R"(_bucket{slot="green",le="+Inf"})"), 0);
    EXPECT_EQ(sample_value(text, duration + R"(_count{slot="green"})"), 0);
    EXPECT_EQ(sample_value(text, duration + R"(_sum{slot="green"})"), 0);
    // 16 bounds and +Inf, per slot; +Inf written once although the serializer could add its own.
    EXPECT_EQ(lines_starting(text, duration + "_bucket{"), 2 * 17);

    const std::string upstream = "switchyard_upstream_response_seconds";
    EXPECT_EQ(sample_value(text, upstream + R"(_bucket{slot="blue",le="0.0005"})"), 4);
    EXPECT_EQ(sample_value(text, upstream + R"(_bucket{slot="blue",le="0.001"})"), 5);
    EXPECT_EQ(sample_value(text, upstream + R"(_bucket{slot="blue",le="0.0025"})"), 6);
    EXPECT_EQ(sample_value(text, upstream + R"(_bucket{slot="blue",le="0.005"})"), 8);
    EXPECT_EQ(sample_value(text, upstream + R"(_bucket{slot="blue",le="+Inf"})"), 8);
    EXPECT_EQ(sample_value(text, upstream + R"(_count{slot="blue"})"), 8);
    EXPECT_DOUBLE_EQ(sample_value(text, upstream + R"(_sum{slot="blue"})"), 0.008815);
    EXPECT_EQ(sample_value(text, upstream + R"(_count{slot="green"})"), 0);
    EXPECT_EQ(lines_starting(text, upstream + "_bucket{"), 2 * 17);
    EXPECT_NE(text.find("\n# HELP " + upstream + " The upstream's own time"), std::string::npos);

    const std::string errors = "switchyard_upstream_errors_total";
    EXPECT_EQ(sample_value(text, errors + R"({slot="blue",kind="connect"})"), 1);
    for (const std::string slot : {"blue", "green"}) {
        for (const std::string kind : {"timeout", "reset", "protocol"}) {
            EXPECT_EQ(
                sample_value(text, errors + R"({slot=")" + slot + R"(",kind=")" + kind + R"("})"),
                0)
                << slot << " " << kind;
        }
    }
    EXPECT_EQ(sample_value(text, errors + R"({slot="green",kind="connect"})"), 0);

    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_in_flight{slot="blue"})"), 0);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_in_flight{slot="green"})"), 2);
    EXPECT_EQ(sample_value(text, R"(switchyard_slot_weight{slot="blue"})"), 90);
    EXPECT_EQ(sample_value(text, R"(switchyard_slot_weight{slot="green"})"), 10);
    EXPECT_EQ(sample_value(text, R"(switchyard_active_slot{slot="blue"})"), 1);
    EXPECT_EQ(sample_value(text, R"(switchyard_active_slot{slot="green"})"), 0);
    EXPECT_EQ(sample_value(text, R"(switchyard_tunnels_open{slot="blue"})"), 1);
    EXPECT_EQ(sample_value(text, R"(switchyard_tunnels_open{slot="green"})"), 0);
    EXPECT_EQ(sample_value(text, R"(switchyard_tunnels_total{slot="blue"})"), 4);
    EXPECT_EQ(sample_value(text, R"(switchyard_tunnels_total{slot="green"})"), 0);
}

TEST(prometheus, mirror_families_count_copies_by_slot_and_drops_by_reason) {
    analysis::per_slot<slot_totals> totals{};
    auto& m = totals[1].mirror;  // copies sent to green
    m.by_status[200 - 100] = 6;
    m.by_status[500 - 100] = 3;
    m.failures[1] = 2;  // timeout
    m.mismatches = 5;
    m.dropped[0] = 4;                                      // queue_full
    totals[0].mirror.dropped[1] = 1;                       // body_too_large, for blue
    m.response.buckets[latency_buckets::index(3000)] = 9;  // 3 ms
    m.response.sum_micros = 9 * 3000;
    const fixed_families families(slot_families({{"blue", "green"}, totals, {0, 0}}));
    const std::array<const prometheus::Collectable*, 1> sources{&families};
    const std::string text = "\n" + serialize(sources);

    const std::string requests = "switchyard_mirror_requests_total";
    EXPECT_EQ(sample_value(text, requests + R"({slot="green",code="200"})"), 6);
    EXPECT_EQ(sample_value(text, requests + R"({slot="green",code="500"})"), 3);
    EXPECT_EQ(sample_value(text, requests + R"({slot="green",code="timeout"})"), 2);
    EXPECT_EQ(lines_starting(text, requests + "{"), 3) << text;  // zeros are absent
    const std::string latency = "switchyard_mirror_response_seconds";
    EXPECT_EQ(sample_value(text, latency + R"(_bucket{slot="green",le="0.0025"})"), 0);
    EXPECT_EQ(sample_value(text, latency + R"(_bucket{slot="green",le="0.005"})"), 9);
    EXPECT_EQ(sample_value(text, latency + R"(_count{slot="green"})"), 9);
    EXPECT_EQ(sample_value(text, latency + R"(_count{slot="blue"})"), 0);
    EXPECT_EQ(sample_value(text, R"(switchyard_mirror_mismatches_total{slot="green"})"), 5);
    EXPECT_EQ(sample_value(text, R"(switchyard_mirror_mismatches_total{slot="blue"})"), 0);
    // Drops are summed over the slots the copies were for.
    EXPECT_EQ(sample_value(text, R"(switchyard_mirror_dropped_total{reason="queue_full"})"), 4);
    EXPECT_EQ(sample_value(text, R"(switchyard_mirror_dropped_total{reason="body_too_large"})"), 1);
}

// One request as the proxy records it.
analysis::request_record record(std::uint16_t status, std::chrono::microseconds latency,
                                std::optional<std::chrono::microseconds> upstream_time,
                                analysis::upstream_failure failure = {}) {
    analysis::request_record r;
    r.status = status;
    r.latency = latency;
    r.upstream_time = upstream_time;
    r.failure = failure;
    return r;
}

void finish(analysis::metrics_shard& shard, analysis::slot_index slot,
            const analysis::request_record& r) {
    shard.request_started(slot);
    shard.request_finished(slot, r);
}

TEST(prometheus, shard_collector_merges_the_shards_at_each_scrape) {
    using std::chrono::microseconds;
    // Shards are large (two slots of fine histograms); keep them off the stack.
    const auto shards = std::make_unique<std::array<analysis::metrics_shard, 2>>();
    const std::vector<const analysis::metrics_shard*> pointers{&(*shards)[0], &(*shards)[1]};
    analysis::split_state split({1, 25});  // green active, blue 25%
    const shard_collector collector(
        {"blue", "green"}, [&] { return analysis::merge(pointers); }, split);
    const std::array<const prometheus::Collectable*, 1> sources{&collector};

    auto& a = (*shards)[0];
    auto& b = (*shards)[1];
    for (int i = 0; i < 3; ++i) {
        finish(a, 0, record(200, microseconds(300), microseconds(250)));
    }
    finish(b, 0, record(503, microseconds(2000), microseconds(1800)));
    // The client left before any answer, and the upstream reset: no upstream time.
    finish(b, 1, record(0, microseconds(40000), std::nullopt, analysis::upstream_failure::reset));
    a.request_started(1);  // still in flight

    std::string text = "\n" + serialize(sources);
    const std::string requests = "switchyard_http_requests_total";
    EXPECT_EQ(sample_value(text, requests + R"({slot="blue",code="200"})"), 3);
    EXPECT_EQ(sample_value(text, requests + R"({slot="blue",code="503"})"), 1);
    EXPECT_EQ(sample_value(text, requests + R"({slot="green",code="0"})"), 1);
    const std::string duration = "switchyard_http_request_duration_seconds";
    EXPECT_EQ(sample_value(text, duration + R"(_count{slot="blue"})"), 4);
    EXPECT_DOUBLE_EQ(sample_value(text, duration + R"(_sum{slot="blue"})"), 0.0029);
    EXPECT_EQ(sample_value(text, duration + R"(_bucket{slot="blue",le="0.0005"})"), 3);
    EXPECT_EQ(sample_value(text, duration + R"(_bucket{slot="blue",le="0.0025"})"), 4);
    EXPECT_EQ(sample_value(text, duration + R"(_count{slot="green"})"), 1);
    EXPECT_EQ(sample_value(text, duration + R"(_bucket{slot="green",le="0.025"})"), 0);
    EXPECT_EQ(sample_value(text, duration + R"(_bucket{slot="green",le="0.05"})"), 1);
    const std::string upstream = "switchyard_upstream_response_seconds";
    EXPECT_EQ(sample_value(text, upstream + R"(_count{slot="blue"})"), 4);
    EXPECT_DOUBLE_EQ(sample_value(text, upstream + R"(_sum{slot="blue"})"), 0.00255);
    EXPECT_EQ(sample_value(text, upstream + R"(_bucket{slot="blue",le="0.0005"})"), 3);
    EXPECT_EQ(sample_value(text, upstream + R"(_bucket{slot="blue",le="0.0025"})"), 4);
    EXPECT_EQ(sample_value(text, upstream + R"(_count{slot="green"})"), 0);  // no upstream time
    EXPECT_EQ(sample_value(text, upstream + R"(_bucket{slot="green",le="+Inf"})"), 0);
    const std::string errors = "switchyard_upstream_errors_total";
    EXPECT_EQ(sample_value(text, errors + R"({slot="green",kind="reset"})"), 1);
    EXPECT_EQ(sample_value(text, errors + R"({slot="blue",kind="reset"})"), 0);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_in_flight{slot="green"})"), 1);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_in_flight{slot="blue"})"), 0);
    EXPECT_EQ(sample_value(text, R"(switchyard_slot_weight{slot="blue"})"), 25);
    EXPECT_EQ(sample_value(text, R"(switchyard_slot_weight{slot="green"})"), 75);
    EXPECT_EQ(sample_value(text, R"(switchyard_active_slot{slot="green"})"), 1);
    EXPECT_EQ(sample_value(text, R"(switchyard_active_slot{slot="blue"})"), 0);

    // The next scrape sees what was recorded and switched since: nothing is cached.
    a.request_finished(1, record(200, microseconds(600), microseconds(500)));
    split.store({0, 0});
    text = "\n" + serialize(sources);
    EXPECT_EQ(sample_value(text, requests + R"({slot="green",code="200"})"), 1);
    EXPECT_EQ(sample_value(text, upstream + R"(_count{slot="green"})"), 1);
    EXPECT_EQ(sample_value(text, upstream + R"(_bucket{slot="green",le="0.0005"})"), 1);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_in_flight{slot="green"})"), 0);
    EXPECT_EQ(sample_value(text, R"(switchyard_slot_weight{slot="blue"})"), 100);
    EXPECT_EQ(sample_value(text, R"(switchyard_active_slot{slot="blue"})"), 1);

    // A collector without a metrics source (no proxy) exposes nothing.
    const shard_collector none({"blue", "green"}, {}, split);
    EXPECT_TRUE(none.Collect().empty());
}

constexpr const auto& phases = analysis::phase_names;

// The phases whose switchyard_rollout_phase series is 1, and the sum over every series.
std::pair<std::vector<std::string>, double> phases_at_one(const std::string& text) {
    std::vector<std::string> at_one;
    double sum = 0;
    const std::string prefix = "\nswitchyard_rollout_phase{phase=\"";
    for (auto at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
        const auto name_at = at + prefix.size();
        const auto name_end = text.find('"', name_at);
        const double value = std::stod(text.substr(text.find(' ', name_end) + 1));
        sum += value;
        if (value == 1) {
            at_one.push_back(text.substr(name_at, name_end - name_at));
        }
    }
    return {at_one, sum};
}

TEST(prometheus, control_metrics_count_and_show_one_phase) {
    control_metrics control(phases);
    const std::array<const prometheus::Collectable*, 1> sources{&control.collectable()};

    std::string text = "\n" + serialize(sources);
    // Every phase has a series, none at 1 before set_phase.
    EXPECT_EQ(lines_starting(text, "switchyard_rollout_phase{"), 9) << text;
    EXPECT_TRUE(phases_at_one(text).first.empty());
    // The six rollout series exist at 0 from the start. The registry keeps labels in a std::map,
    // so they come out sorted by name: result before strategy.
    const std::string rollouts = "switchyard_rollouts_total";
    EXPECT_EQ(lines_starting(text, rollouts + "{"), 6) << text;
    for (const std::string strategy : {"canary", "blue-green"}) {
        for (const std::string result : {"succeeded", "rolled-back", "aborted"}) {
            EXPECT_EQ(sample_value(text, rollouts + R"({result=")" + result + R"(",strategy=")" +
                                             strategy + R"("})"),
                      0)
                << strategy << " " << result;
        }
    }
    // The others appear on first use.
    EXPECT_EQ(lines_starting(text, "switchyard_rollbacks_total{"), 0);
    EXPECT_EQ(lines_starting(text, "switchyard_analysis_checks_total{"), 0);
    EXPECT_EQ(lines_starting(text, "switchyard_webhook_deliveries_total{"), 0);

    control.set_phase("waiting");
    control.set_phase("progressing");
    control.count_rollout("canary", "succeeded");
    control.count_rollout("canary", "succeeded");
    control.count_rollout("blue-green", "aborted");
    control.count_rollback("error_rate");
    control.count_check("latency_p95", "failed");
    control.count_check("latency_p95", "passed");
    control.count_check("latency_p95", "passed");
    control.count_webhook("events", "delivered");
    text = "\n" + serialize(sources);
    EXPECT_EQ(phases_at_one(text), std::make_pair(std::vector<std::string>{"progressing"}, 1.0))
        << text;
    EXPECT_EQ(sample_value(text, rollouts + R"({result="succeeded",strategy="canary"})"), 2);
    EXPECT_EQ(sample_value(text, rollouts + R"({result="aborted",strategy="blue-green"})"), 1);
    EXPECT_EQ(sample_value(text, rollouts + R"({result="rolled-back",strategy="canary"})"), 0);
    EXPECT_EQ(sample_value(text, R"(switchyard_rollbacks_total{reason="error_rate"})"), 1);
    EXPECT_EQ(sample_value(
                  text, R"(switchyard_analysis_checks_total{check="latency_p95",result="failed"})"),
              1);
    EXPECT_EQ(sample_value(
                  text, R"(switchyard_analysis_checks_total{check="latency_p95",result="passed"})"),
              2);
    EXPECT_EQ(sample_value(
                  text, R"(switchyard_webhook_deliveries_total{kind="events",result="delivered"})"),
              1);

    // Setting the same phase again keeps it; a phase outside the list gets its own series and is
    // still the only one at 1.
    control.set_phase("progressing");
    EXPECT_EQ(phases_at_one("\n" + serialize(sources)).first,
              std::vector<std::string>{"progressing"});
    control.set_phase("draining");
    text = "\n" + serialize(sources);
    EXPECT_EQ(phases_at_one(text), std::make_pair(std::vector<std::string>{"draining"}, 1.0))
        << text;
    EXPECT_EQ(lines_starting(text, "switchyard_rollout_phase{"), 10);
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

TEST(prometheus, shard_collector_control_and_tls_metrics_pass_promtool) {
    using std::chrono::microseconds;
    const auto shard = std::make_unique<analysis::metrics_shard>();
    const std::vector<const analysis::metrics_shard*> pointers{shard.get()};
    for (int i = 0; i < 50; ++i) {
        finish(
            *shard, static_cast<analysis::slot_index>(i % 2),
            record(i % 10 == 0 ? 502 : 200, microseconds(100 + 997 * i), microseconds(80 + 991 * i),
                   i % 10 == 0 ? analysis::upstream_failure::protocol
                               : analysis::upstream_failure::none));
    }
    finish(*shard, 1, record(0, microseconds(5000), std::nullopt));
    analysis::split_state split({0, 10});
    const shard_collector collector(
        {"blue", "green"}, [&] { return analysis::merge(pointers); }, split);
    control_metrics control(phases);
    control.set_phase("baking");
    control.count_rollout("canary", "rolled-back");
    control.count_rollback("latency_p95");
    control.count_check("error_rate", "passed");
    control.count_webhook("pre_rollout", "failed");
    shard->tls_handshake_failed(analysis::tls_failure::protocol_version);
    shard->tls_handshake_failed(analysis::tls_failure::protocol_version);
    const tls_collector tls([&] { return analysis::merge_tls_failures(pointers); });
    shard->proxy_protocol_failed(analysis::proxy_protocol_failure::malformed);
    const proxy_protocol_collector proxy_protocol(
        [&] { return analysis::merge_proxy_protocol_failures(pointers); });
    const std::array<const prometheus::Collectable*, 4> sources{&collector, &control.collectable(),
                                                                &tls, &proxy_protocol};
    const std::string text = serialize(sources);
    EXPECT_NE(text.find("switchyard_tls_handshake_errors_total{reason=\"protocol_version\"} 2"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("switchyard_tls_handshake_errors_total{reason=\"timeout\"} 0"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("switchyard_proxy_protocol_errors_total{reason=\"malformed\"} 1"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("switchyard_proxy_protocol_errors_total{reason=\"missing\"} 0"),
              std::string::npos)
        << text;

    // Every family of every source is there, so promtool judges each of them.
    for (const std::string family :
         {"switchyard_http_requests_total", "switchyard_http_request_duration_seconds",
          "switchyard_upstream_response_seconds", "switchyard_upstream_errors_total",
          "switchyard_http_requests_in_flight", "switchyard_slot_weight", "switchyard_active_slot",
          "switchyard_tunnels_open", "switchyard_tunnels_total", "switchyard_rollout_phase",
          "switchyard_rollouts_total", "switchyard_rollbacks_total",
          "switchyard_analysis_checks_total", "switchyard_webhook_deliveries_total",
          "switchyard_tls_handshake_errors_total", "switchyard_proxy_protocol_errors_total"}) {
        EXPECT_NE(text.find("# TYPE " + family + " "), std::string::npos) << family;
    }
    const auto [status, output] = promtool_check(text);
    EXPECT_EQ(status, 0) << "promtool (package prometheus; ./build.sh deps installs it):\n"
                         << output << "\n"
                         << text;
    EXPECT_EQ(output, "") << output;
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
    test::response scrape;
    test::eventually([&] {
        scrape = test::get(admin.port(), "/metrics");
        const std::string text = "\n" + scrape.body;
        return sample_value(text,
                            R"(switchyard_http_request_duration_seconds_count{slot="blue"})") +
                   sample_value(
                       text, R"(switchyard_http_request_duration_seconds_count{slot="green"})") >=
               100;
    });
    ASSERT_EQ(scrape.status, 200);
    EXPECT_EQ(scrape.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    const std::string text = "\n" + scrape.body;
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_total{slot="blue",code="200"})"), 90);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_total{slot="green",code="200"})"), 10);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_request_duration_seconds_count{slot="green"})"),
              10);
    EXPECT_EQ(sample_value(text, R"(switchyard_upstream_response_seconds_count{slot="green"})"),
              10);
    EXPECT_EQ(sample_value(text, R"(switchyard_http_requests_in_flight{slot="blue"})"), 0);

    const auto [status, output] = promtool_check(scrape.body);
    EXPECT_EQ(status, 0) << "promtool (package prometheus; ./build.sh deps installs it):\n"
                         << output;
    EXPECT_EQ(output, "") << output;
    admin.stop();
}

TEST(prometheus, route_requests_are_counted_by_route_and_pass_promtool) {
    route_collector::route_counts counts{{"testers", 3}, {"beta", 0}};
    const route_collector routes([&] { return counts; });
    const std::array<const prometheus::Collectable*, 1> sources{&routes};
    const std::string text = serialize(sources);
    EXPECT_NE(text.find("# TYPE switchyard_route_requests_total counter"), std::string::npos)
        << text;
    EXPECT_NE(text.find("switchyard_route_requests_total{route=\"testers\"} 3"), std::string::npos)
        << text;
    EXPECT_NE(text.find("switchyard_route_requests_total{route=\"beta\"} 0"), std::string::npos)
        << text;
    const auto [status, output] = promtool_check(text);
    EXPECT_EQ(status, 0) << output << "\n" << text;

    // Without routes there is no family at all.
    counts.clear();
    EXPECT_EQ(serialize(sources).find("switchyard_route_requests_total"), std::string::npos);
}

}  // namespace
}  // namespace switchyard::admin

namespace switchyard::admin {
namespace {

TEST(prometheus, endpoint_up_is_one_per_endpoint_and_passes_promtool) {
    auto table = std::make_shared<proxy::health_table>();
    table->endpoints.resize(3);
    table->endpoints[0].slot = 0;
    table->endpoints[0].name = "backend-blue:8000";
    table->endpoints[1].slot = 1;
    table->endpoints[1].name = "backend-green-1:8000";
    table->endpoints[1].failing_check = true;
    table->endpoints[2].slot = 1;
    table->endpoints[2].name = "backend-green-2:8000";
    table->endpoints[2].ejected = true;
    const proxy::health_snapshot snapshot = table;
    const endpoint_collector endpoints({"blue", "green"}, [snapshot] { return snapshot; });
    const std::array<const prometheus::Collectable*, 1> sources{&endpoints};
    const std::string text = "\n" + serialize(sources);
    EXPECT_EQ(lines_starting(text, "# TYPE switchyard_endpoint_up gauge"), 1) << text;
    EXPECT_EQ(
        sample_value(text, R"(switchyard_endpoint_up{slot="blue",endpoint="backend-blue:8000"})"),
        1);
    EXPECT_EQ(sample_value(
                  text, R"(switchyard_endpoint_up{slot="green",endpoint="backend-green-1:8000"})"),
              0);
    EXPECT_EQ(sample_value(
                  text, R"(switchyard_endpoint_up{slot="green",endpoint="backend-green-2:8000"})"),
              0);
    const auto [status, output] = promtool_check(text);
    EXPECT_EQ(status, 0) << output << "\n" << text;
}

}  // namespace
}  // namespace switchyard::admin
