#include "admin/http_client.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "config/config.hpp"
#include "tests/support/loopback.hpp"

namespace switchyard::admin {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;
using test::upstream_server;
using namespace std::chrono_literals;

// Long enough never to expire on a slow machine; only the deadline tests expect one to.
constexpr milliseconds generous = 20s;

config::address loopback(std::uint16_t port) {
    return {"127.0.0.1", port};
}

// Runs the coroutine on an io_context of the test's own until it completes.
http_result run_fetch(const config::address& at, http_request request,
                      milliseconds deadline = generous) {
    net::io_context io;
    std::optional<http_result> result;
    std::exception_ptr error;
    net::co_spawn(io, fetch(at, std::move(request), deadline),
                  [&](std::exception_ptr e, http_result r) {
                      error = e;
                      result = std::move(r);
                  });
    io.run();
    if (error) {
        std::rethrow_exception(error);
    }
    EXPECT_TRUE(result.has_value());
    return result.value_or(http_result{});
}

upstream_server::handler answer(upstream_server::response res) {
    return [res = std::move(res)](const upstream_server::request&) {
        return res;
    };
}

upstream_server::response status(int code, std::string body = {}) {
    upstream_server::response res;
    res.status = code;
    res.body = std::move(body);
    return res;
}

TEST(http_client, returns_status_and_body_and_sends_the_request) {
    upstream_server upstream("origin", answer(status(200, "delivered\n")));
    http_request request;
    request.method = "POST";
    request.target = "/hooks/rollout?attempt=1";
    request.body = R"({"slot":"green"})";
    request.content_type = "application/json";
    request.fields = {{"Authorization", "Bearer s3cret"}, {"X-Event", "switched"}};

    const http_result result = run_fetch(loopback(upstream.port()), request);

    EXPECT_EQ(result.failure, http_failure::none) << result.error;
    EXPECT_EQ(result.status, 200u);
    EXPECT_EQ(result.body, "delivered\n");
    EXPECT_TRUE(result.ok());
    EXPECT_EQ(result.describe(), "status 200");

    const auto seen = upstream.requests();
    ASSERT_EQ(seen.size(), 1u);
    const auto& r = seen[0];
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/hooks/rollout?attempt=1");
    EXPECT_EQ(r.version_minor, 1);
    EXPECT_EQ(r.header("Host"), "127.0.0.1:" + std::to_string(upstream.port()));
    EXPECT_EQ(r.count("Host"), 1u);
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_EQ(r.header("Content-Length"), std::to_string(request.body.size()));
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_EQ(r.header("Authorization"), "Bearer s3cret");
    EXPECT_EQ(r.header("X-Event"), "switched");
    EXPECT_EQ(r.body, request.body);
    EXPECT_FALSE(r.chunked);
}

TEST(http_client, get_has_no_body_and_empty_post_says_length_zero) {
    upstream_server upstream;
    const auto at = loopback(upstream.port());

    EXPECT_TRUE(run_fetch(at, {}).ok());
    http_request post;
    post.method = "POST";
    post.target = "/ping";
    EXPECT_TRUE(run_fetch(at, post).ok());

    const auto seen = upstream.requests();
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].method, "GET");
    EXPECT_EQ(seen[0].target, "/");
    EXPECT_FALSE(seen[0].has("Content-Length"));
    EXPECT_FALSE(seen[0].has("Content-Type"));
    EXPECT_EQ(seen[1].method, "POST");
    EXPECT_EQ(seen[1].header("Content-Length"), "0");
}

TEST(http_client, host_field_replaces_the_address) {
    upstream_server upstream;
    http_request request;
    request.fields = {{"host", "app-green.internal"}};

    EXPECT_TRUE(run_fetch(loopback(upstream.port()), request).ok());

    const auto seen = upstream.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].count("Host"), 1u);
    EXPECT_EQ(seen[0].header("Host"), "app-green.internal");
}

TEST(http_client, error_status_is_an_answer_not_a_failure) {
    upstream_server upstream("origin", answer(status(503, "not ready\n")));

    const http_result result = run_fetch(loopback(upstream.port()), {});

    EXPECT_EQ(result.failure, http_failure::none) << result.error;
    EXPECT_EQ(result.status, 503u);
    EXPECT_EQ(result.body, "not ready\n");
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(result.describe(), "status 503");
    EXPECT_TRUE(result.error.empty());
}

TEST(http_client, refused_when_nothing_listens) {
    // A socket bound but not listening keeps the port ours for the test, and the kernel refuses
    // connections to it.
    net::io_context io;
    tcp::socket bound(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    const auto port = bound.local_endpoint().port();

    const http_result result = run_fetch(loopback(port), {});

    EXPECT_EQ(result.failure, http_failure::refused) << result.error;
    EXPECT_EQ(result.error, "connection refused");
    EXPECT_EQ(result.describe(), "refused");
    EXPECT_FALSE(result.ok());
}

TEST(http_client, times_out_when_the_answer_is_late) {
    auto late = status(200, "too late\n");
    late.delay = 5s;
    upstream_server upstream("slow", answer(late));

    const http_result result = run_fetch(loopback(upstream.port()), {}, 300ms);

    EXPECT_EQ(result.failure, http_failure::timeout) << result.error;
    // Which step it was depends on the machine's speed; reading the response, normally.
    EXPECT_EQ(result.error.rfind("timed out after 300 ms while ", 0), 0u) << result.error;
    EXPECT_EQ(result.describe(), "timeout");
    EXPECT_EQ(result.status, 0u);
}

TEST(http_client, past_deadline_times_out_before_any_io) {
    upstream_server upstream;

    const http_result result = run_fetch(loopback(upstream.port()), {}, 0ms);

    EXPECT_EQ(result.failure, http_failure::timeout) << result.error;
    EXPECT_EQ(upstream.request_count(), 0u);
}

TEST(http_client, reset_without_answer_is_reset) {
    upstream_server::response res;
    res.reset_without_answer = true;
    upstream_server upstream("rude", answer(res));

    const http_result result = run_fetch(loopback(upstream.port()), {});

    EXPECT_EQ(result.failure, http_failure::reset) << result.error;
    EXPECT_EQ(result.describe(), "reset");
}

TEST(http_client, close_without_answer_is_reset) {
    upstream_server::response res;
    res.drop_without_answer = true;
    upstream_server upstream("quiet", answer(res));

    const http_result result = run_fetch(loopback(upstream.port()), {});

    EXPECT_EQ(result.failure, http_failure::reset) << result.error;
    EXPECT_EQ(result.error, "connection closed before a complete response");
}

TEST(http_client, close_in_the_middle_of_the_body_is_reset) {
    upstream_server::response res;
    res.raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this";
    upstream_server upstream("short", answer(res));

    const http_result result = run_fetch(loopback(upstream.port()), {});

    EXPECT_EQ(result.failure, http_failure::reset) << result.error;
    EXPECT_EQ(result.status, 0u);
}

TEST(http_client, malformed_response_is_protocol) {
    upstream_server::response res;
    res.raw = "this is not HTTP at all\r\n\r\n";
    upstream_server upstream("garbage", answer(res));

    const http_result result = run_fetch(loopback(upstream.port()), {});

    EXPECT_EQ(result.failure, http_failure::protocol) << result.error;
    EXPECT_EQ(result.describe().rfind("invalid response: ", 0), 0u) << result.describe();
    EXPECT_FALSE(result.ok());
}

TEST(http_client, body_over_the_limit_is_protocol_whatever_the_framing) {
    using framing = upstream_server::response::framing;
    for (const auto frame : {framing::length, framing::chunked, framing::close}) {
        upstream_server::response res;
        res.stream_bytes = max_body_bytes + 1;
        res.frame = frame;
        upstream_server upstream("big", answer(res));

        const http_result result = run_fetch(loopback(upstream.port()), {});

        EXPECT_EQ(result.failure, http_failure::protocol)
            << "framing " << static_cast<int>(frame) << ": " << result.error;
        EXPECT_EQ(result.error, "invalid response: body longer than 1048576 bytes");
        EXPECT_TRUE(result.body.empty());
    }
}

TEST(http_client, body_at_the_limit_is_accepted) {
    upstream_server::response res;
    res.stream_bytes = max_body_bytes;
    res.frame = upstream_server::response::framing::chunked;
    upstream_server upstream("full", answer(res));

    const http_result result = run_fetch(loopback(upstream.port()), {});

    EXPECT_TRUE(result.ok()) << result.describe();
    EXPECT_EQ(result.body.size(), max_body_bytes);
    EXPECT_EQ(result.body.find_first_not_of(test::filler_byte), std::string::npos);
}

TEST(http_client, close_delimited_body_is_read_to_the_end) {
    auto res = status(200, "until the end\n");
    res.frame = upstream_server::response::framing::close;
    upstream_server upstream("old", answer(res));

    const http_result result = run_fetch(loopback(upstream.port()), {});

    EXPECT_TRUE(result.ok()) << result.describe();
    EXPECT_EQ(result.body, "until the end\n");
}

TEST(http_client, answer_to_head_has_no_body) {
    upstream_server upstream("origin", answer(status(200, "a body HEAD must not read\n")));
    http_request request;
    request.method = "HEAD";

    const http_result result = run_fetch(loopback(upstream.port()), request);

    EXPECT_TRUE(result.ok()) << result.describe();
    EXPECT_TRUE(result.body.empty());
    const auto seen = upstream.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].method, "HEAD");
}

TEST(http_client, interim_100_continue_is_skipped) {
    auto res = status(201, "created\n");
    res.send_100_continue = true;
    upstream_server upstream("eager", answer(res));

    const http_result result = run_fetch(loopback(upstream.port()), {});

    EXPECT_EQ(result.status, 201u) << result.describe();
    EXPECT_EQ(result.body, "created\n");
}

TEST(http_client, unresolvable_name_is_resolve) {
    // RFC 6761 §6.4: .invalid never resolves.
    const http_result result = run_fetch({"no-such-host.invalid", 80}, {});

    EXPECT_EQ(result.failure, http_failure::resolve) << result.error;
    EXPECT_EQ(result.error.rfind("cannot resolve no-such-host.invalid: ", 0), 0u) << result.error;
    EXPECT_EQ(result.describe(), result.error);
}

TEST(http_client, name_is_resolved_and_connected) {
    upstream_server upstream;

    // localhost may come first as ::1, where nothing listens: the next address is tried.
    const http_result result = run_fetch({"localhost", upstream.port()}, {});

    EXPECT_TRUE(result.ok()) << result.describe();
    const auto seen = upstream.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].header("Host"), "localhost:" + std::to_string(upstream.port()));
}

TEST(http_client, request_that_would_split_the_head_is_not_sent) {
    upstream_server upstream;
    http_request bad_value;
    bad_value.fields = {{"Authorization", "Bearer token-from-a-file\n"}};
    http_request bad_target;
    bad_target.target = "/health HTTP/1.1\r\nX-Injected: 1";
    http_request framing_field;
    framing_field.fields = {{"Transfer-Encoding", "chunked"}};
    http_request bad_method;
    bad_method.method = "GET /";

    for (const auto& request : {bad_value, bad_target, framing_field, bad_method}) {
        const http_result result = run_fetch(loopback(upstream.port()), request);
        EXPECT_EQ(result.failure, http_failure::other) << result.error;
        EXPECT_EQ(result.error.rfind("invalid request: ", 0), 0u) << result.error;
        EXPECT_EQ(result.error.find("token-from-a-file"), std::string::npos) << result.error;
    }
    EXPECT_EQ(upstream.connections_accepted(), 0u);
}

TEST(http_client, fetch_blocking_returns_the_answer) {
    upstream_server upstream("origin", answer(status(200, "green\n")));
    http_request request;
    request.target = "/active-slot";

    const http_result result = fetch_blocking(loopback(upstream.port()), request, generous);

    EXPECT_TRUE(result.ok()) << result.describe();
    EXPECT_EQ(result.body, "green\n");
    const auto seen = upstream.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].target, "/active-slot");
}

TEST(http_client, fetch_blocking_reports_failures_as_values) {
    auto late = status(200);
    late.delay = 5s;
    upstream_server upstream("slow", answer(late));
    net::io_context io;
    tcp::socket bound(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));

    EXPECT_EQ(fetch_blocking(loopback(upstream.port()), {}, 300ms).failure, http_failure::timeout);
    EXPECT_EQ(fetch_blocking(loopback(bound.local_endpoint().port()), {}, generous).failure,
              http_failure::refused);
    EXPECT_EQ(fetch_blocking({"no-such-host.invalid", 80}, {}, generous).failure,
              http_failure::resolve);
}

}  // namespace
}  // namespace switchyard::admin
