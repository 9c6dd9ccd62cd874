// The access log: both line formats exactly, escaping of hostile values, the buffer and sink,
// and a running proxy writing to a file that is rotated by rename + reopen and by copytruncate.

#include "proxy/access_log.hpp"

#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

namespace fs = std::filesystem;
using proxy::access_entry;
using std::chrono::milliseconds;

constexpr std::time_t fixed_time = 1795326337;  // 2026-11-22T05:45:37Z

access_entry sample_entry(std::string_view time) {
    access_entry e;
    e.time = time;
    e.request_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    e.client_ip = "127.0.0.1";
    e.method = "GET";
    e.target = "/x?y=1";
    e.version_minor = 1;
    e.slot = "blue";
    e.endpoint = "127.0.0.1:8001";
    e.status = 200;
    e.duration = std::chrono::microseconds(1234);
    e.bytes_in = 78;
    e.bytes_out = 145;
    e.user_agent = "curl/8.0";
    e.referer = "";
    return e;
}

std::string time_text(config::log_format f) {
    std::string out;
    proxy::format_time(fixed_time, f, out);
    return out;
}

// A fresh directory for one test's files, removed at the end.
struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "switchyard-access-log-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
        out.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

// --- formats ---

TEST(access_log_format, time_in_both_formats) {
    EXPECT_EQ(time_text(config::log_format::json), "2026-11-22T05:45:37Z");
    EXPECT_EQ(time_text(config::log_format::combined), "22/Nov/2026:05:45:37 +0000");
}

TEST(access_log_format, json_line_of_a_fixed_entry) {
    const auto t = time_text(config::log_format::json);
    std::string out;
    proxy::format_json(sample_entry(t), out);
    EXPECT_EQ(out,
              R"({"time":"2026-11-22T05:45:37Z","request_id":"4bf92f3577b34da6a3ce929d0e0e4736",)"
              R"("client":"127.0.0.1","method":"GET","path":"/x?y=1","status":200,)"
              R"("duration_ms":1.234,"bytes_in":78,"bytes_out":145,"slot":"blue",)"
              R"("endpoint":"127.0.0.1:8001","user_agent":"curl/8.0","referer":""})"
              "\n");
}

TEST(access_log_format, combined_line_of_a_fixed_entry) {
    const auto t = time_text(config::log_format::combined);
    std::string out;
    proxy::format_combined(sample_entry(t), out);
    EXPECT_EQ(out,
              R"(127.0.0.1 - - [22/Nov/2026:05:45:37 +0000] "GET /x?y=1 HTTP/1.1" 200 145 "-" )"
              R"("curl/8.0" 4bf92f3577b34da6a3ce929d0e0e4736 blue 127.0.0.1:8001 0.001 78)"
              "\n");
}

TEST(access_log_format, combined_line_of_an_unparsed_request) {
    access_entry e;
    e.time = "22/Nov/2026:05:45:37 +0000";
    e.client_ip = "10.0.0.1";
    e.status = 400;
    e.duration = std::chrono::microseconds(2'500'000);
    e.bytes_out = 120;
    std::string out;
    proxy::format_combined(e, out);
    EXPECT_EQ(
        out, "10.0.0.1 - - [22/Nov/2026:05:45:37 +0000] \"-\" 400 120 \"-\" \"-\" - - - 2.500 0\n");
}

TEST(access_log_format, json_escapes_hostile_values) {
    auto e = sample_entry("2026-11-22T05:45:37Z");
    const std::string target = "/a\"b\\c\nd\re\tf\x01g\x1f h\xc3\xa9";
    const std::string agent = "evil\"}\n{\"status\":999";
    e.target = target;
    e.user_agent = agent;
    e.referer = "\\";
    std::string out;
    proxy::format_json(e, out);
    ASSERT_EQ(out.back(), '\n');
    EXPECT_EQ(out.find('\n'), out.size() - 1) << "one line only";
    EXPECT_NE(out.find(R"(\u0001)"), std::string::npos);
    EXPECT_NE(out.find(R"(\u000A)"), std::string::npos);

    const auto v = boost::json::parse(out);
    const auto& o = v.as_object();
    EXPECT_EQ(o.at("path").as_string(), target);
    EXPECT_EQ(o.at("user_agent").as_string(), agent);
    EXPECT_EQ(o.at("referer").as_string(), "\\");
    EXPECT_EQ(o.at("status").as_int64(), 200);
    EXPECT_DOUBLE_EQ(o.at("duration_ms").as_double(), 1.234);
    EXPECT_EQ(o.size(), 13U);
}

TEST(access_log_format, combined_escapes_as_nginx_does) {
    auto e = sample_entry("22/Nov/2026:05:45:37 +0000");
    e.target = "/a\"b\\c\nd\xff";
    e.user_agent = "x\" \"y";
    std::string out;
    proxy::format_combined(e, out);
    EXPECT_EQ(out.find('\n'), out.size() - 1) << "one line only";
    EXPECT_NE(out.find(R"("GET /a\x22b\x5Cc\x0Ad\xFF HTTP/1.1")"), std::string::npos) << out;
    EXPECT_NE(out.find(R"("x\x22 \x22y")"), std::string::npos) << out;
}

// --- buffer and sink ---

TEST(access_log_sink, refuses_a_path_it_cannot_open_and_names_it) {
    try {
        proxy::access_log_sink sink("/nonexistent-dir/access.log");
        FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/access.log"), std::string::npos);
    }
}

TEST(access_log_buffer, writes_nothing_until_flushed_then_everything_at_once) {
    const temp_dir dir;
    const auto path = dir.path / "access.log";
    proxy::access_log_sink sink(path.string());
    proxy::access_log_buffer buf(sink, config::log_format::json);
    const auto e = sample_entry(buf.time());
    buf.append_line(e);
    buf.append_line(e);
    EXPECT_EQ(read_file(path), "");
    const auto start = std::chrono::steady_clock::now();
    buf.flush_if_due(start);  // too soon since construction
    EXPECT_EQ(read_file(path), "");
    buf.flush_if_due(start + proxy::access_log_buffer::flush_interval);
    EXPECT_EQ(lines_of(read_file(path)).size(), 2U);
    EXPECT_TRUE(buf.pending().empty());
    EXPECT_EQ(sink.write_errors(), 0U);
}

TEST(access_log_buffer, writes_once_it_holds_flush_bytes) {
    const temp_dir dir;
    const auto path = dir.path / "access.log";
    proxy::access_log_sink sink(path.string());
    proxy::access_log_buffer buf(sink, config::log_format::combined);
    const auto e = sample_entry(buf.time());
    std::size_t appended = 0;
    while (read_file(path).empty()) {
        buf.append_line(e);
        ++appended;
        ASSERT_LT(appended, proxy::access_log_buffer::flush_bytes) << "never flushed";
    }
    EXPECT_TRUE(buf.pending().empty());
    EXPECT_GE(read_file(path).size(), proxy::access_log_buffer::flush_bytes);
    EXPECT_EQ(lines_of(read_file(path)).size(), appended);
}

// --- a running proxy ---

struct access_log_proxy_test : ::testing::Test {
    upstream_server blue{"blue"};
    upstream_server green{"green"};
    temp_dir dir;
    fs::path path = dir.path / "access.log";

    config::config cfg(config::log_format format = config::log_format::json) const {
        auto c = two_slot_config(blue.port(), green.port());
        c.access_log.to = path.string();
        c.access_log.format = format;
        return c;
    }

    static void send_requests(std::uint16_t port, int from, int to) {
        for (int i = from; i < to; ++i) {
            const auto res =
                get(port, "/r" + std::to_string(i),
                    {{"X-Request-Id", "req-" + std::to_string(i)}, {"User-Agent", "test-agent"}});
            ASSERT_EQ(res.status, 200);
        }
    }

    std::size_t line_count(const fs::path& p) const { return lines_of(read_file(p)).size(); }
};

TEST_F(access_log_proxy_test, logs_one_json_line_per_request) {
    constexpr int n = 5;
    {
        running_proxy proxy(cfg());
        send_requests(proxy.port(), 0, n);
        // A request the parser refuses is logged too, unrouted.
        {
            raw_client client(proxy.port());
            client.send("GET / HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n");
            EXPECT_EQ(client.read_response().status, 400);
            EXPECT_TRUE(client.wait_closed());
        }  // closed: the proxy's lingering close ends at once
        ASSERT_TRUE(eventually([&] { return proxy.server().connections() == 0; }));
        proxy.server().drain(milliseconds(5000));  // flushes every worker's lines
    }
    const auto lines = lines_of(read_file(path));
    ASSERT_EQ(lines.size(), std::size_t{n} + 1);
    // Each request was answered before the next was sent, so the lines are in order.
    for (int i = 0; i < n; ++i) {
        const auto v = boost::json::parse(lines[static_cast<std::size_t>(i)]);
        const auto& o = v.as_object();
        EXPECT_EQ(o.at("request_id").as_string(), "req-" + std::to_string(i));
        EXPECT_EQ(o.at("path").as_string(), "/r" + std::to_string(i));
        EXPECT_EQ(o.at("method").as_string(), "GET");
        EXPECT_EQ(o.at("status").as_int64(), 200);
        EXPECT_EQ(o.at("slot").as_string(), "blue");
        EXPECT_EQ(o.at("endpoint").as_string(), "127.0.0.1:" + std::to_string(blue.port()));
        EXPECT_EQ(o.at("client").as_string(), "127.0.0.1");
        EXPECT_EQ(o.at("user_agent").as_string(), "test-agent");
        EXPECT_GT(o.at("bytes_in").as_int64(), 0);
        EXPECT_GT(o.at("bytes_out").as_int64(), 0);
    }
    const auto bad = boost::json::parse(lines.back());
    EXPECT_EQ(bad.at("status").as_int64(), 400);
    EXPECT_EQ(bad.at("slot").as_string(), "");
    EXPECT_EQ(bad.at("method").as_string(), "");
}

TEST_F(access_log_proxy_test, logs_combined_lines) {
    {
        running_proxy proxy(cfg(config::log_format::combined));
        send_requests(proxy.port(), 0, 2);
        proxy.server().drain(milliseconds(5000));
    }
    const auto lines = lines_of(read_file(path));
    ASSERT_EQ(lines.size(), 2U);
    const std::string tail =
        " req-1 blue 127.0.0.1:" + std::to_string(blue.port()) + " ";  // then time, bytes in
    EXPECT_NE(lines[1].find("\"GET /r1 HTTP/1.1\" 200 "), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("\"-\" \"test-agent\"" + tail), std::string::npos) << lines[1];
    EXPECT_EQ(lines[1].rfind("127.0.0.1 - - [", 0), 0U) << lines[1];
}

TEST_F(access_log_proxy_test, reopen_after_rename_writes_to_a_new_file) {
    running_proxy proxy(cfg());
    send_requests(proxy.port(), 0, 3);
    ASSERT_TRUE(eventually([&] { return line_count(path) == 3; }));

    const auto rotated = dir.path / "access.log.1";
    fs::rename(path, rotated);
    send_requests(proxy.port(), 3, 4);  // before reopen: still goes to the renamed file
    ASSERT_TRUE(eventually([&] { return line_count(rotated) == 4; }));
    ASSERT_TRUE(proxy.server().reopen_access_log());
    send_requests(proxy.port(), 4, 7);
    proxy.server().drain(milliseconds(5000));

    EXPECT_EQ(line_count(rotated), 4U);
    const auto lines = lines_of(read_file(path));
    ASSERT_EQ(lines.size(), 3U);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        EXPECT_EQ(boost::json::parse(lines[i]).at("request_id").as_string(),
                  "req-" + std::to_string(i + 4));
    }
}

TEST_F(access_log_proxy_test, copytruncate_leaves_complete_lines_from_the_start) {
    running_proxy proxy(cfg());
    send_requests(proxy.port(), 0, 3);
    ASSERT_TRUE(eventually([&] { return line_count(path) == 3; }));

    fs::resize_file(path, 0);  // what logrotate's copytruncate does after copying
    send_requests(proxy.port(), 3, 5);
    proxy.server().drain(milliseconds(5000));

    const auto text = read_file(path);
    EXPECT_EQ(text.find('\0'), std::string::npos) << "a hole of NUL bytes at the start";
    const auto lines = lines_of(text);
    ASSERT_EQ(lines.size(), 2U);
    EXPECT_EQ(boost::json::parse(lines[0]).at("request_id").as_string(), "req-3");
    EXPECT_EQ(boost::json::parse(lines[1]).at("request_id").as_string(), "req-4");
}

TEST_F(access_log_proxy_test, refuses_to_start_when_the_file_cannot_be_opened) {
    auto c = cfg();
    c.access_log.to = (dir.path / "missing" / "access.log").string();
    analysis::split_state split({0, 0});
    EXPECT_THROW(proxy::server(c, split), std::runtime_error);
}

}  // namespace
}  // namespace switchyard::test
