// End-to-end tests of the data plane: a real proxy::server on loopback between raw-socket
// clients and real upstream servers. Every wait is on a condition or a read with a timeout.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

using std::chrono::milliseconds;
using upstream_response = upstream_server::response;

// Two upstreams answering with their names, and a proxy in front of them.
struct proxy_test : ::testing::Test {
    upstream_server blue{"blue"};
    upstream_server green{"green"};

    config::config cfg() const { return two_slot_config(blue.port(), green.port()); }
};

// A loopback port that refuses connections: it was bound, then closed.
std::uint16_t refused_port() {
    const upstream_server gone("gone");
    return gone.port();
}

std::string get_request(std::string_view target = "/", std::vector<field> fields = {}) {
    return format_request("GET", target, fields);
}

// The proxy's totals once `n` requests are recorded (bounded wait). A request is recorded when
// its session resumes after the last write, which can be just after the client has read the
// answer.
analysis::per_slot<analysis::slot_totals> totals_after(running_proxy& proxy, std::uint64_t n) {
    const auto shards = proxy.server().metrics_shards();
    analysis::per_slot<analysis::slot_totals> totals;
    eventually([&] {
        totals = analysis::merge(shards);
        return totals[0].requests() + totals[1].requests() >= n;
    });
    return totals;
}

// --- forwarding and header rewrites ---

TEST_F(proxy_test, forwards_a_get_to_the_active_slot) {
    running_proxy proxy(cfg());
    const response res = get(proxy.port(), "/hello?x=1");
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "blue\n");
    ASSERT_EQ(blue.request_count(), 1U);
    EXPECT_EQ(blue.requests()[0].target, "/hello?x=1");
    EXPECT_EQ(green.request_count(), 0U);
}

TEST_F(proxy_test, rewrites_request_and_response_headers) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request("/", {{"Host", "shop.example"},
                                  {"Connection", "keep-alive, X-Hop"},
                                  {"X-Hop", "1"},
                                  {"Keep-Alive", "timeout=5"},
                                  {"Proxy-Connection", "keep-alive"},
                                  {"TE", "trailers"},
                                  {"Trailer", "X-T"},
                                  {"Upgrade", "h2c"},
                                  {"X-Forwarded-For", "203.0.113.7"},
                                  {"X-Forwarded-Proto", "https"},
                                  {"X-Forwarded-Host", "spoofed.example"},
                                  {"X-Kept", "yes"}}));
    const response res = client.read_response();
    ASSERT_EQ(res.status, 200);
    ASSERT_EQ(blue.request_count(), 1U);
    const auto req = blue.requests()[0];

    for (const char* gone :
         {"Connection", "X-Hop", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"}) {
        EXPECT_FALSE(req.has(gone)) << gone << " reached the upstream";
    }
    EXPECT_EQ(req.header("Host"), "shop.example");
    EXPECT_EQ(req.header("X-Kept"), "yes");
    EXPECT_EQ(req.header("X-Forwarded-For"), "203.0.113.7, 127.0.0.1");
    EXPECT_EQ(req.count("X-Forwarded-For"), 1U);
    EXPECT_EQ(req.header("X-Forwarded-Proto"), "http");
    EXPECT_EQ(req.count("X-Forwarded-Proto"), 1U);
    EXPECT_EQ(req.header("X-Forwarded-Host"), "shop.example");
    EXPECT_EQ(req.count("X-Forwarded-Host"), 1U);
    EXPECT_EQ(req.header("Via"), "1.1 switchyard");
    EXPECT_EQ(req.version_minor, 1);

    const std::string id = req.header("X-Request-Id");
    EXPECT_EQ(id.size(), 32U);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    EXPECT_EQ(res.header("X-Request-Id"), id);
    EXPECT_EQ(res.header("Via"), "1.1 switchyard");
    EXPECT_EQ(res.header("X-Upstream"), "blue");
}

TEST_F(proxy_test, request_ids_differ_between_requests) {
    running_proxy proxy(cfg());
    const auto a = get(proxy.port()).header("X-Request-Id");
    const auto b = get(proxy.port()).header("X-Request-Id");
    EXPECT_EQ(a.size(), 32U);
    EXPECT_NE(a, b);
}

TEST_F(proxy_test, passes_a_client_request_id_through_both_ways) {
    running_proxy proxy(cfg());
    const response res = get(proxy.port(), "/", {{"X-Request-Id", "trace-42"}});
    EXPECT_EQ(res.header("X-Request-Id"), "trace-42");
    ASSERT_EQ(blue.request_count(), 1U);
    EXPECT_EQ(blue.requests()[0].header("X-Request-Id"), "trace-42");
    EXPECT_EQ(blue.requests()[0].count("X-Request-Id"), 1U);
}

TEST_F(proxy_test, removes_hop_by_hop_fields_from_responses) {
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.body = "ok";
        r.fields = {{"Connection", "X-Private"},
                    {"X-Private", "secret"},
                    {"Keep-Alive", "timeout=5"},
                    {"X-Public", "yes"}};
        return r;
    });
    running_proxy proxy(cfg());
    const response res = get(proxy.port());
    EXPECT_EQ(res.body, "ok");
    EXPECT_FALSE(res.has("X-Private"));
    EXPECT_FALSE(res.has("Keep-Alive"));
    EXPECT_EQ(res.header("X-Public"), "yes");
}

TEST_F(proxy_test, absolute_form_target_goes_upstream_in_origin_form) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send("GET http://app.example:8080/path?q=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n");
    EXPECT_EQ(client.read_response().status, 200);
    ASSERT_EQ(blue.request_count(), 1U);
    const auto req = blue.requests()[0];
    EXPECT_EQ(req.target, "/path?q=1");
    EXPECT_EQ(req.header("Host"), "app.example:8080");
    EXPECT_EQ(req.count("Host"), 1U);
}

// --- keep-alive and ordering ---

TEST_F(proxy_test, keep_alive_reuses_connections_on_both_sides) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    for (int i = 0; i < 5; ++i) {
        client.send(get_request(
            std::string("/").append(std::to_string(i))));  // not "/" + ...: GCC bug 105651
        const response res = client.read_response();
        ASSERT_EQ(res.status, 200);
        EXPECT_FALSE(res.has("Connection"));
    }
    EXPECT_EQ(blue.connections_accepted(), 1U);
    for (const auto& r : blue.requests()) {
        EXPECT_EQ(r.connection_id, 1U);
    }
}

// A worker keeps a bounded number of sessions warm between requests; the connections past
// them wait parked, without a session, and get a new one when their next request comes.
TEST_F(proxy_test, keep_alive_connections_past_the_warm_ones_park_and_are_served_again) {
    constexpr std::size_t clients = 300;  // more than a worker keeps warm
    running_proxy proxy(cfg());
    std::vector<std::unique_ptr<raw_client>> held;
    for (std::size_t i = 0; i < clients; ++i) {
        held.push_back(std::make_unique<raw_client>(proxy.port()));
        held.back()->send(get_request());
        ASSERT_EQ(held.back()->read_response().status, 200) << i;
    }
    for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < clients; ++i) {
            held[i]->send(get_request(std::string("/again/").append(std::to_string(i))));
            const response res = held[i]->read_response();
            ASSERT_EQ(res.status, 200) << i;
            EXPECT_FALSE(res.has("Connection")) << i;
        }
    }
    EXPECT_EQ(proxy.server().connections(), clients);
    EXPECT_EQ(blue.request_count(), 3 * clients);
    // Drain closes them, parked or warm.
    proxy.server().drain(std::chrono::seconds(5));
    for (std::size_t i = 0; i < clients; ++i) {
        EXPECT_TRUE(held[i]->wait_closed()) << i;
    }
    EXPECT_EQ(proxy.server().connections(), 0U);
}

TEST_F(proxy_test, parked_connections_are_closed_after_the_idle_timeout) {
    constexpr std::size_t clients = 300;
    auto c = cfg();
    c.timeouts.idle = milliseconds(300);
    running_proxy proxy(c);
    std::vector<std::unique_ptr<raw_client>> held;
    for (std::size_t i = 0; i < clients; ++i) {
        held.push_back(std::make_unique<raw_client>(proxy.port()));
        held.back()->send(get_request());
        ASSERT_EQ(held.back()->read_response().status, 200) << i;
    }
    for (std::size_t i = 0; i < clients; ++i) {
        EXPECT_TRUE(held[i]->wait_closed()) << i;
    }
    EXPECT_TRUE(eventually([&] { return proxy.server().connections() == 0; }));
}

TEST_F(proxy_test, answers_pipelined_requests_in_order) {
    blue.set_handler([](const upstream_server::request& r) {
        upstream_response res;
        res.body = r.target;
        return res;
    });
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request("/one") + get_request("/two") + get_request("/three"));
    EXPECT_EQ(client.read_response().body, "/one");
    EXPECT_EQ(client.read_response().body, "/two");
    EXPECT_EQ(client.read_response().body, "/three");
}

TEST_F(proxy_test, closes_after_connection_close) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request("/", {{"Connection", "close"}}));
    const response res = client.read_response();
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.header("Connection"), "close");
    EXPECT_TRUE(client.wait_closed());
}

TEST_F(proxy_test, a_client_that_half_closes_after_its_request_gets_the_answer_then_the_close) {
    // The end of stream arrives with the request, so no later edge announces it: the proxy
    // answers, and notices the close when the idle connection is parked (DEVELOPERS.md).
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request());
    client.shutdown_send();
    const response res = client.read_response();
    EXPECT_EQ(res.status, 200);
    EXPECT_TRUE(client.wait_closed());
}

TEST_F(proxy_test, http10_client_without_keep_alive_is_closed_and_gets_a_host) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send("GET /old HTTP/1.0\r\n\r\n");
    const response res = client.read_response();
    EXPECT_EQ(res.status, 200);
    EXPECT_TRUE(client.wait_closed());
    ASSERT_EQ(blue.request_count(), 1U);
    const auto req = blue.requests()[0];
    EXPECT_EQ(req.version_minor, 1);
    EXPECT_EQ(req.header("Host"), "127.0.0.1:" + std::to_string(blue.port()));
    EXPECT_EQ(req.header("Via"), "1.0 switchyard");
}

TEST_F(proxy_test, http10_client_gets_a_chunked_response_decoded) {
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.body = "decoded body";
        r.frame = upstream_response::framing::chunked;
        return r;
    });
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const std::string all = client.read_until_close();
    EXPECT_NE(all.find("\r\n\r\ndecoded body"), std::string::npos) << all;
    EXPECT_EQ(all.find("Transfer-Encoding"), std::string::npos) << all;
}

// --- bodies ---

TEST_F(proxy_test, forwards_a_chunked_request_body) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(format_request("POST", "/upload", {{"Transfer-Encoding", "chunked"}},
                               "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"));
    EXPECT_EQ(client.read_response().status, 200);
    ASSERT_EQ(blue.request_count(), 1U);
    const auto req = blue.requests()[0];
    EXPECT_TRUE(req.chunked);
    EXPECT_EQ(req.body, "hello world");
}

TEST_F(proxy_test, forwards_a_chunked_response_body) {
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.body = std::string(100000, 'c');
        r.frame = upstream_response::framing::chunked;
        return r;
    });
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request());
    const response res = client.read_response();
    EXPECT_TRUE(res.chunked);
    EXPECT_EQ(res.body, std::string(100000, 'c'));
    client.send(get_request());  // the framing ended exactly: the connection is still usable
    EXPECT_EQ(client.read_response().status, 200);
}

TEST_F(proxy_test, forwards_a_close_delimited_response_and_closes) {
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.body = "until close";
        r.frame = upstream_response::framing::close;
        return r;
    });
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request());
    const std::string all = client.read_until_close();
    EXPECT_NE(all.find("Connection: close"), std::string::npos) << all;
    EXPECT_TRUE(all.ends_with("\r\n\r\nuntil close")) << all;
}

std::uint64_t resident_bytes() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with("VmRSS:")) {
            return std::stoull(line.substr(6)) * 1024;
        }
    }
    return 0;
}

// SWITCHYARD_STREAM_BYTES=1073741824 runs the 1 GiB acceptance measurement; the suite default
// keeps the run short. The RSS is of this whole process: proxy, upstream and client together.
std::uint64_t stream_bytes() {
    const char* env = std::getenv("SWITCHYARD_STREAM_BYTES");
    return env != nullptr ? std::stoull(env) : 64ULL * 1024 * 1024;
}

TEST_F(proxy_test, streams_a_large_upload_in_bounded_memory) {
    const std::uint64_t n = stream_bytes();
    blue.set_discard_bodies(true);
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request());  // warm up both connections before measuring
    ASSERT_EQ(client.read_response().status, 200);
    const std::uint64_t before = resident_bytes();
    client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(n) +
                "\r\n\r\n");
    client.send_filler(n);
    EXPECT_EQ(client.read_response().status, 200);
    const std::uint64_t growth = resident_bytes() - std::min(before, resident_bytes());
    EXPECT_EQ(blue.requests().back().body_size, n);
    EXPECT_LT(growth, 10U * 1024 * 1024) << "RSS grew by " << growth << " bytes";
    std::printf("upload of %llu bytes: RSS grew by %llu KiB\n", static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(growth / 1024));
}

TEST_F(proxy_test, streams_a_large_download_in_bounded_memory) {
    const std::uint64_t n = stream_bytes();
    blue.set_handler([n](const upstream_server::request& r) {
        upstream_response res;
        if (r.target == "/big") {
            res.stream_bytes = n;
        }
        return res;
    });
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request());
    ASSERT_EQ(client.read_response().status, 200);
    const std::uint64_t before = resident_bytes();
    client.send(get_request("/big"));
    const response res = client.read_response(false, std::chrono::seconds(10), true);
    const std::uint64_t growth = resident_bytes() - std::min(before, resident_bytes());
    EXPECT_EQ(res.body_size, n);
    EXPECT_LT(growth, 10U * 1024 * 1024) << "RSS grew by " << growth << " bytes";
    std::printf("download of %llu bytes: RSS grew by %llu KiB\n",
                static_cast<unsigned long long>(n), static_cast<unsigned long long>(growth / 1024));
}

TEST_F(proxy_test, streams_a_large_chunked_download) {
    blue.set_handler([](const upstream_server::request&) {
        upstream_response res;
        res.stream_bytes = 8 * 1024 * 1024;
        res.frame = upstream_response::framing::chunked;
        return res;
    });
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request());
    const response res = client.read_response(false, std::chrono::seconds(10), true);
    EXPECT_TRUE(res.chunked);
    EXPECT_EQ(res.body_size, 8U * 1024 * 1024);
}

TEST_F(proxy_test, head_response_has_no_body_and_keeps_framing) {
    blue.set_handler([](const upstream_server::request& r) {
        upstream_response res;
        res.body = r.method == "HEAD" ? "" : "0123456789";
        if (r.method == "HEAD") {
            res.fields = {{"Content-Length", "10"}};
        }
        return res;
    });
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(format_request("HEAD", "/"));
    const response head = client.read_response(true);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.header("Content-Length"), "10");
    client.send(get_request());
    EXPECT_EQ(client.read_response().body, "0123456789");
}

TEST_F(proxy_test, no_body_for_204_and_304) {
    blue.set_handler([](const upstream_server::request& r) {
        upstream_response res;
        res.status = r.target == "/204" ? 204 : r.target == "/304" ? 304 : 200;
        res.body = res.status == 200 ? "after" : "";
        return res;
    });
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request("/204"));
    EXPECT_EQ(client.read_response().status, 204);
    client.send(get_request("/304"));
    EXPECT_EQ(client.read_response().status, 304);
    client.send(get_request("/"));
    EXPECT_EQ(client.read_response().body, "after");
}

TEST_F(proxy_test, answers_expect_100_continue_itself) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(
        "PUT /doc HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    const response interim = client.read_response();
    EXPECT_EQ(interim.status, 100);
    client.send("hello");
    EXPECT_EQ(client.read_response().status, 200);
    ASSERT_EQ(blue.request_count(), 1U);
    EXPECT_EQ(blue.requests()[0].body, "hello");
    EXPECT_FALSE(blue.requests()[0].has("Expect"));
}

TEST_F(proxy_test, refuses_an_unknown_expectation_with_417) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request("/", {{"Expect", "something-else"}}));
    EXPECT_EQ(client.read_response().status, 417);
    EXPECT_EQ(blue.request_count(), 0U);
}

// --- error answers ---

// Sends raw bytes, expects `status` with a text reason, the connection closed, and nothing at
// the upstream.
void expect_refused(std::uint16_t port, const upstream_server& upstream, std::string_view bytes,
                    int status) {
    raw_client client(port);
    client.send(bytes);
    const response res = client.read_response();
    EXPECT_EQ(res.status, status) << bytes;
    EXPECT_EQ(res.header("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_FALSE(res.body.empty());
    EXPECT_EQ(res.header("Connection"), "close");
    EXPECT_TRUE(client.wait_closed());
    EXPECT_EQ(upstream.connections_accepted(), 0U) << bytes;
    EXPECT_EQ(upstream.bytes_received(), 0U) << bytes;
}

TEST_F(proxy_test, refuses_content_length_with_transfer_encoding) {
    running_proxy proxy(cfg());
    expect_refused(proxy.port(), blue,
                   "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                   400);
}

TEST_F(proxy_test, refuses_two_different_content_lengths) {
    running_proxy proxy(cfg());
    expect_refused(proxy.port(), blue,
                   "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                   "hello!",
                   400);
}

TEST_F(proxy_test, refuses_a_bad_chunk_size) {
    running_proxy proxy(cfg());
    expect_refused(
        proxy.port(), blue,
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", 400);
}

// RFC 9112 §7.1: whitespace after the size is BWS only before a chunk extension. The whole
// request is in hand, so it is refused before an upstream is chosen.
TEST_F(proxy_test, refuses_whitespace_after_a_chunk_size_and_sends_nothing_upstream) {
    running_proxy proxy(cfg());
    expect_refused(proxy.port(), blue,
                   "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5 \r\nhello\r\n0\r\n\r\n",
                   400);
    EXPECT_EQ(blue.request_count(), 0U);
    EXPECT_EQ(green.request_count(), 0U);
}

TEST_F(proxy_test, refuses_malformed_request_lines_and_fields) {
    running_proxy proxy(cfg());
    for (const char* bad :
         {"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
          "GET / HTTP/1.1\r\n\r\n",  // no Host
          "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET / HTTP/1.1\nHost: x\n\n",
          "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n",
          "GET / HTTP/2.0\r\nHost: x\r\n\r\n"}) {
        expect_refused(proxy.port(), blue, bad, 400);
    }
}

TEST_F(proxy_test, refuses_an_unknown_transfer_coding_with_501) {
    running_proxy proxy(cfg());
    expect_refused(proxy.port(), blue,
                   "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                   "0\r\n\r\n",
                   501);
}

TEST_F(proxy_test, refuses_connect_with_405) {
    running_proxy proxy(cfg());
    expect_refused(proxy.port(), blue, "CONNECT db.internal:5432 HTTP/1.1\r\nHost: x\r\n\r\n", 405);
}

TEST_F(proxy_test, refuses_a_head_over_max_header_bytes_with_431) {
    auto c = cfg();
    c.limits.max_header_bytes = 1024;
    running_proxy proxy(c);
    expect_refused(proxy.port(), blue, get_request("/", {{"X-Big", std::string(2000, 'a')}}), 431);
}

// RFC 9112 §3: the default max_header_bytes (64KiB) ends inside this target.
TEST_F(proxy_test, refuses_an_over_long_request_target_with_414) {
    running_proxy proxy(cfg());
    expect_refused(proxy.port(), blue, get_request("/" + std::string(70 * 1024, 'a')), 414);
    EXPECT_EQ(blue.request_count(), 0U);
}

TEST_F(proxy_test, refuses_an_over_long_method_with_501) {
    auto c = cfg();
    c.limits.max_header_bytes = 1024;
    running_proxy proxy(c);
    expect_refused(proxy.port(), blue, std::string(2000, 'M') + " / HTTP/1.1\r\nHost: x\r\n\r\n",
                   501);
}

TEST_F(proxy_test, refuses_too_many_fields_with_431) {
    auto c = cfg();
    c.limits.max_headers = 5;
    running_proxy proxy(c);
    std::vector<field> fields;
    for (int i = 0; i < 10; ++i) {
        fields.push_back({"X-F" + std::to_string(i), "v"});
    }
    expect_refused(proxy.port(), blue, get_request("/", fields), 431);
}

TEST_F(proxy_test, refuses_a_body_over_max_body_bytes_with_413) {
    auto c = cfg();
    c.limits.max_body_bytes = 10;
    running_proxy proxy(c);
    expect_refused(proxy.port(), blue,
                   "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world", 413);
    expect_refused(proxy.port(), blue,
                   "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "b\r\nhello world\r\n0\r\n\r\n",
                   413);
}

TEST_F(proxy_test, answers_408_when_the_head_does_not_arrive_in_time) {
    auto c = cfg();
    c.timeouts.request_header = milliseconds(200);
    running_proxy proxy(c);
    raw_client client(proxy.port());
    client.send("GET / HTTP/1.1\r\nHost:");
    const response res = client.read_response();
    EXPECT_EQ(res.status, 408);
    EXPECT_TRUE(client.wait_closed());
    EXPECT_EQ(blue.connections_accepted(), 0U);
}

TEST_F(proxy_test, closes_an_idle_connection_quietly) {
    auto c = cfg();
    c.timeouts.request_header = milliseconds(200);
    running_proxy proxy(c);
    raw_client client(proxy.port());
    EXPECT_EQ(client.read_until_close(), "");  // no 408 for a connection that sent nothing
}

TEST_F(proxy_test, answers_502_when_the_upstream_refuses_then_503_while_it_is_down) {
    const std::uint16_t closed_port = refused_port();
    running_proxy proxy(two_slot_config(closed_port, green.port()));
    raw_client client(proxy.port());
    client.send(get_request());
    const response first = client.read_response();
    EXPECT_EQ(first.status, 502);
    EXPECT_EQ(first.header("Content-Type"), "text/plain; charset=utf-8");
    // The failed endpoint is skipped for a while; the slot has no other, so: 503. The client
    // connection survives both answers (no request body was left unread).
    client.send(get_request());
    const response second = client.read_response();
    EXPECT_EQ(second.status, 503);
    EXPECT_NE(second.body.find("blue"), std::string::npos) << second.body;
    EXPECT_EQ(green.request_count(), 0U);
}

TEST_F(proxy_test, records_each_request_against_its_slot) {
    running_proxy proxy(two_slot_config(refused_port(), green.port()), {0, 50});
    raw_client client(proxy.port());
    for (int i = 0; i < 2; ++i) {  // the split sends one to each slot
        client.send(format_request("POST", "/", {}, "12345"));
        client.read_response();
    }
    const auto totals = totals_after(proxy, 2);
    const auto& blue_totals = totals[0];
    const auto& green_totals = totals[1];
    EXPECT_EQ(blue_totals.by_status[502 - 100], 1U);
    EXPECT_EQ(blue_totals.failures[0], 1U);  // connect
    EXPECT_EQ(blue_totals.errors(), 1U);
    EXPECT_EQ(green_totals.by_status[200 - 100], 1U);
    EXPECT_EQ(green_totals.errors(), 0U);
    EXPECT_EQ(green_totals.requests(), 1U);
    EXPECT_GT(green_totals.bytes_in, 5U);   // head and body
    EXPECT_GT(green_totals.bytes_out, 6U);  // head and "green\n"
    EXPECT_EQ(green_totals.in_flight, 0U);
    EXPECT_EQ(blue_totals.upstream.count(), 0U);  // no response: no upstream time
    EXPECT_EQ(green_totals.upstream.count(), 1U);
}

// Once blue's one request is recorded: the request's whole duration exceeds the upstream's own
// time by at least `client_micros`, the time the test's client made the proxy wait.
void expect_upstream_time_leaves_out(running_proxy& proxy, std::uint64_t client_micros) {
    const auto totals = totals_after(proxy, 1);
    ASSERT_EQ(totals[0].upstream.count(), 1U);
    const std::uint64_t duration = totals[0].duration.sum_micros;
    const std::uint64_t upstream = totals[0].upstream.sum_micros;
    ASSERT_GT(duration, upstream);
    EXPECT_GE(duration - upstream, client_micros)
        << "upstream " << upstream << " us of " << duration;
}

TEST_F(proxy_test, upstream_time_leaves_out_a_slow_client) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    const std::string request = get_request();
    client.send(request.substr(0, 10));
    std::this_thread::sleep_for(milliseconds(300));  // the slow client under test
    client.send(request.substr(10));
    ASSERT_EQ(client.read_response().status, 200);
    // The client's 300 ms pause is in the duration and not in the upstream's time (give or take
    // the moments between the client's first write and the proxy's first read).
    expect_upstream_time_leaves_out(proxy, 200'000);
}

TEST_F(proxy_test, upstream_time_leaves_out_a_slow_upload) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    const std::string body(1000, 'x');
    const std::string request = format_request("POST", "/", {}, body);
    client.send(request.substr(0, request.size() - 500));  // the head and half the body
    std::this_thread::sleep_for(milliseconds(300));        // the slow client under test
    client.send(request.substr(request.size() - 500));
    ASSERT_EQ(client.read_response().status, 200);
    expect_upstream_time_leaves_out(proxy, 200'000);
}

// A download larger than every socket buffer on the way, to a client that stops reading for a
// while: the proxy cannot read the upstream's last byte before the client has taken most of the
// body, and that wait is the client's, not the upstream's.
TEST_F(proxy_test, upstream_time_leaves_out_a_client_that_reads_slowly) {
    constexpr std::uint64_t body_bytes = 32 * 1024 * 1024;
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.stream_bytes = body_bytes;
        return r;
    });
    running_proxy proxy(cfg());
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    const int small = 64 * 1024;  // set before connect: the kernel does not grow it then
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(proxy.port());
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&at), sizeof at), 0);
    const std::string request = get_request("/", {{"Connection", "close"}});
    ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    std::this_thread::sleep_for(milliseconds(500));  // the slow reader under test
    std::uint64_t received = 0;
    std::vector<char> buf(256 * 1024);
    for (ssize_t n; (n = ::recv(fd, buf.data(), buf.size(), 0)) > 0;) {
        received += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
    ASSERT_GT(received, body_bytes);
    expect_upstream_time_leaves_out(proxy, 400'000);
}

TEST_F(proxy_test, answers_503_once_per_request) {
    const std::uint16_t closed_port = refused_port();
    running_proxy proxy(two_slot_config(closed_port, green.port()));
    raw_client client(proxy.port());
    client.send(get_request());
    ASSERT_EQ(client.read_response().status, 502);  // marks the endpoint down
    client.send(get_request() + get_request("/", {{"Connection", "close"}}));
    // Two requests, two answers, then the close the second asked for.
    const std::string all = client.read_until_close();
    std::size_t answers = 0;
    for (auto at = all.find("HTTP/1.1 503"); at != std::string::npos;
         at = all.find("HTTP/1.1 503", at + 1)) {
        ++answers;
    }
    EXPECT_EQ(answers, 2U) << all;
}

TEST_F(proxy_test, answers_504_when_the_upstream_is_too_slow) {
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.delay = milliseconds(1500);
        return r;
    });
    auto c = cfg();
    c.timeouts.upstream_response = milliseconds(200);
    running_proxy proxy(c);
    raw_client client(proxy.port());
    client.send(get_request());
    const response res = client.read_response();
    EXPECT_EQ(res.status, 504);
    // The slow connection is not reused: the next request gets a fresh one.
    blue.set_handler([](const upstream_server::request&) { return upstream_response{}; });
    client.send(get_request());
    EXPECT_EQ(client.read_response().status, 200);
}

TEST_F(proxy_test, answers_502_for_an_invalid_upstream_response) {
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.raw = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
        return r;
    });
    running_proxy proxy(cfg());
    EXPECT_EQ(get(proxy.port()).status, 502);
}

TEST_F(proxy_test, closes_connections_over_max_connections) {
    auto c = cfg();
    c.limits.max_connections = 1;
    running_proxy proxy(c);
    raw_client first(proxy.port());
    first.send(get_request());
    ASSERT_EQ(first.read_response().status, 200);  // the first is being served
    raw_client second(proxy.port());
    EXPECT_TRUE(second.wait_closed());
    first.send(get_request());  // and the first is unaffected
    EXPECT_EQ(first.read_response().status, 200);
}

TEST_F(proxy_test, refuses_to_share_its_port_with_another_listener) {
    running_proxy proxy(cfg());
    auto c = cfg();
    c.listen.port = proxy.port();
    analysis::split_state split({0, 0});
    EXPECT_THROW(proxy::server(c, split), std::runtime_error);
}

// --- the one retry ---

TEST_F(proxy_test, retries_an_idempotent_request_once_when_a_reused_connection_was_closed) {
    blue.set_handler([](const upstream_server::request& r) {
        upstream_response res;
        // The second request on any connection finds it closed, as after a keep-alive timeout.
        res.drop_without_answer = r.index_on_connection == 2;
        res.body = "fresh";
        return res;
    });
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request());
    ASSERT_EQ(client.read_response().status, 200);
    client.send(get_request());
    const response res = client.read_response();
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "fresh");
    EXPECT_EQ(blue.connections_accepted(), 2U);
}

TEST_F(proxy_test, does_not_retry_a_post_the_upstream_may_have_acted_on) {
    blue.set_handler([](const upstream_server::request& r) {
        upstream_response res;
        res.drop_without_answer = r.index_on_connection == 2;
        return res;
    });
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request());
    ASSERT_EQ(client.read_response().status, 200);
    client.send(format_request("POST", "/order", {}, "pay"));
    EXPECT_EQ(client.read_response().status, 502);
    EXPECT_EQ(blue.request_count(), 2U);
}

TEST_F(proxy_test, does_not_retry_on_a_fresh_connection) {
    blue.set_handler([](const upstream_server::request&) {
        upstream_response res;
        res.drop_without_answer = true;
        return res;
    });
    running_proxy proxy(cfg());
    EXPECT_EQ(get(proxy.port()).status, 502);
    EXPECT_EQ(blue.request_count(), 1U);
}

TEST_F(proxy_test, a_pooled_connection_closed_by_the_upstream_is_not_used) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request());
    ASSERT_EQ(client.read_response().status, 200);
    ASSERT_EQ(blue.close_idle_connections(), 1U);
    ASSERT_TRUE(blue.wait_for_open_connections(0));
    client.send(get_request());
    EXPECT_EQ(client.read_response().status, 200);
    EXPECT_EQ(blue.connections_accepted(), 2U);
}

// A request whose body could not all be written upstream must not leave its tail behind to
// be read as a request of its own (request smuggling).
TEST_F(proxy_test, closes_when_a_request_body_could_not_be_forwarded) {
    // A bare upstream that reads the first request's head and resets the connection.
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof at;
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&at), len), 0);
    ASSERT_EQ(::listen(listener, 8), 0);
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&at), &len), 0);
    std::promise<void> reset;
    std::thread bare([&] {
        const int conn = ::accept(listener, nullptr, nullptr);
        std::string head;
        char byte = 0;
        while (head.find("\r\n\r\n") == std::string::npos && ::read(conn, &byte, 1) == 1) {
            head += byte;
        }
        const linger abortive{1, 0};  // close with RST
        ::setsockopt(conn, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
        ::close(conn);
        reset.set_value();
    });
    running_proxy proxy(two_slot_config(ntohs(at.sin_port), green.port()));
    raw_client client(proxy.port());
    const std::string tail = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                std::to_string(5 + tail.size()) + "\r\n\r\nhello");
    reset.get_future().wait();
    client.send(tail);  // the rest of the body, shaped like a request
    EXPECT_EQ(client.read_response().status, 502);
    EXPECT_TRUE(client.wait_closed());
    bare.join();
    ::close(listener);
    EXPECT_EQ(green.request_count(), 0U);
}

// --- routing ---

TEST_F(proxy_test, switching_the_active_slot_moves_the_next_request) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send(get_request());
    EXPECT_EQ(client.read_response().body, "blue\n");
    proxy.split().store({1, 0});
    client.send(get_request());
    EXPECT_EQ(client.read_response().body, "green\n");
}

TEST_F(proxy_test, weighted_split_is_exact_over_100_sequential_requests) {
    running_proxy proxy(cfg(), {0, 10});
    raw_client client(proxy.port());
    int to_green = 0;
    for (int i = 0; i < 100; ++i) {
        client.send(get_request());
        const response res = client.read_response();
        ASSERT_EQ(res.status, 200);
        to_green += res.body == "green\n" ? 1 : 0;
    }
    EXPECT_EQ(to_green, 10);
}

TEST_F(proxy_test, switching_1000_times_under_load_loses_nothing) {
    auto c = cfg();
    c.workers = 2;
    running_proxy proxy(c);
    constexpr int clients = 4;
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> load;
    for (int t = 0; t < clients; ++t) {
        load.emplace_back([&] {
            try {
                raw_client client(proxy.port());
                // Bounded: the switching below ends the loop long before this count.
                for (int i = 0; i < 200000 && !stop.load(); ++i) {
                    client.send(get_request());
                    const response res = client.read_response();
                    (res.status == 200 ? ok : failures).fetch_add(1);
                }
            } catch (const std::exception& e) {
                failures.fetch_add(1);
                ADD_FAILURE() << e.what();
            }
        });
    }
    // Wait for traffic, then switch 1000 times, each switch after at least one more answer. The
    // wait is a spin, not a poll: the next answer comes within microseconds, a thousand times
    // over. It gives up after 10 s, and the load threads are joined before anything is asserted.
    int stalled_at = blue.wait_for_requests(1) ? -1 : 0;
    for (int i = 0; i < 1000 && stalled_at < 0; ++i) {
        const int seen = ok.load();
        proxy.split().store({static_cast<analysis::slot_index>(i % 2 == 0 ? 1 : 0), 0});
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (ok.load() == seen && failures.load() == 0) {
            if (std::chrono::steady_clock::now() >= until) {
                stalled_at = i;
                break;
            }
            std::this_thread::yield();
        }
    }
    stop = true;
    for (auto& t : load) {
        t.join();
    }
    EXPECT_EQ(stalled_at, -1) << "no answer after that switch";
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GE(ok.load(), 1000);
    EXPECT_GT(blue.request_count(), 0U);
    EXPECT_GT(green.request_count(), 0U);
}

// --- drain ---

TEST_F(proxy_test, drain_finishes_requests_in_flight_and_stops_accepting) {
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    blue.set_handler([released](const upstream_server::request&) {
        released.wait();
        upstream_response r;
        r.body = "finished";
        return r;
    });
    running_proxy proxy(cfg());
    raw_client idle_client(proxy.port());
    raw_client busy_client(proxy.port());
    busy_client.send(get_request());
    ASSERT_TRUE(blue.wait_for_requests(1));

    auto drained =
        std::async(std::launch::async, [&] { proxy.server().drain(std::chrono::seconds(10)); });
    EXPECT_TRUE(idle_client.wait_closed());  // an idle keep-alive connection is closed at once
    release.set_value();
    const response res = busy_client.read_response();
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "finished");
    EXPECT_EQ(res.header("Connection"), "close");
    drained.get();
    EXPECT_THROW(raw_client late(proxy.port()), std::exception);  // no longer listening
}

}  // namespace
}  // namespace switchyard::test
