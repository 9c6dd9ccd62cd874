// Self-test of the loopback fixtures: raw_client against upstream_server, no proxy in between.
#include "tests/support/loopback.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <cerrno>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

namespace switchyard::test {
namespace {

using std::chrono::milliseconds;
using upstream_response = upstream_server::response;

TEST(loopback, get_round_trips_with_exact_head) {
    upstream_server upstream("alpha");
    raw_client client(upstream.port());
    const std::string sent =
        "GET /a/b?c=d HTTP/1.1\r\nHost: example.test\r\nX-One: 1\r\n"
        "x-one: 2\r\n\r\n";
    client.send(sent);
    const response res = client.read_response();

    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.reason, "OK");
    EXPECT_EQ(res.version_minor, 1);
    EXPECT_EQ(res.body, "alpha\n");
    EXPECT_EQ(res.header("x-upstream"), "alpha");
    EXPECT_EQ(res.header("Content-Length"), "6");
    EXPECT_EQ(res.raw_head, "HTTP/1.1 200 OK\r\nX-Upstream: alpha\r\nContent-Length: 6\r\n\r\n");

    ASSERT_EQ(upstream.request_count(), 1u);
    const auto req = upstream.requests().at(0);
    EXPECT_EQ(req.method, "GET");
    EXPECT_EQ(req.target, "/a/b?c=d");
    EXPECT_EQ(req.version_minor, 1);
    EXPECT_EQ(req.raw_head, sent);
    ASSERT_EQ(req.fields.size(), 3u);
    EXPECT_EQ(req.fields[1].name, "X-One");
    EXPECT_EQ(req.fields[2].name, "x-one");
    EXPECT_EQ(req.header("X-ONE"), "1");
    EXPECT_EQ(req.count("x-one"), 2u);
    EXPECT_EQ(req.header("absent"), "");
    EXPECT_FALSE(req.chunked);
    EXPECT_EQ(req.connection_id, 1u);
    EXPECT_EQ(upstream.bytes_received(), sent.size());
}

TEST(loopback, get_helper_adds_host_with_port) {
    upstream_server upstream;
    const response res = get(upstream.port(), "/x", {{"X-Test", "yes"}});
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "upstream\n");
    ASSERT_TRUE(upstream.wait_for_requests(1));
    const auto req = upstream.requests().at(0);
    EXPECT_EQ(req.header("Host"), "127.0.0.1:" + std::to_string(upstream.port()));
    EXPECT_EQ(req.header("X-Test"), "yes");
}

TEST(loopback, chunked_post_is_decoded_and_echoed_chunked) {
    upstream_server upstream("echo", [](const upstream_server::request& req) {
        upstream_response res;
        res.body = req.body;
        res.frame = upstream_response::framing::chunked;
        return res;
    });
    raw_client client(upstream.port());
    // The body arrives in several writes, one of them splitting a chunk-size line.
    client.send(
        "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    client.send("6\r");
    client.send("\n world\r\n0\r\n\r\n");
    const response res = client.read_response();

    EXPECT_EQ(res.status, 200);
    EXPECT_TRUE(res.chunked);
    EXPECT_EQ(res.header("Transfer-Encoding"), "chunked");
    EXPECT_FALSE(res.has("Content-Length"));
    EXPECT_EQ(res.body, "hello world");

    const auto req = upstream.requests().at(0);
    EXPECT_EQ(req.method, "POST");
    EXPECT_TRUE(req.chunked);
    EXPECT_EQ(req.body, "hello world");
    EXPECT_EQ(req.body_size, 11u);
    EXPECT_EQ(upstream.body_bytes_received(), 11u);
}

TEST(loopback, keep_alive_serves_sequential_and_pipelined_requests_on_one_connection) {
    upstream_server upstream;
    raw_client client(upstream.port());
    for (int i = 0; i < 3; ++i) {
        client.send(format_request("GET", "/seq/" + std::to_string(i)));
        EXPECT_EQ(client.read_response().status, 200);
    }
    // Two pipelined requests in one write, the second with a body.
    client.send(format_request("GET", "/p1") + format_request("PUT", "/p2", {}, "data"));
    EXPECT_EQ(client.read_response().body, "upstream\n");
    EXPECT_EQ(client.read_response().body, "upstream\n");

    const auto reqs = upstream.requests();
    ASSERT_EQ(reqs.size(), 5u);
    for (std::size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_EQ(reqs[i].connection_id, 1u);
        EXPECT_EQ(reqs[i].index_on_connection, i + 1);
    }
    EXPECT_EQ(reqs[4].target, "/p2");
    EXPECT_EQ(reqs[4].body, "data");
    EXPECT_EQ(upstream.connections_accepted(), 1u);
    EXPECT_EQ(upstream.connections_open(), 1u);
}

TEST(loopback, connection_close_request_closes_after_the_response) {
    upstream_server upstream;
    raw_client client(upstream.port());
    client.send(format_request("GET", "/", {{"Connection", "close"}}));
    const response res = client.read_response();
    EXPECT_EQ(res.header("Connection"), "close");
    EXPECT_TRUE(client.wait_closed());
    EXPECT_TRUE(upstream.wait_for_open_connections(0));
}

class streamed : public ::testing::TestWithParam<upstream_response::framing> {};

TEST_P(streamed, response_body_is_generated_and_framed) {
    // Not a multiple of the 64 KiB block, so the last write is partial.
    constexpr std::uint64_t size = 3 * 1024 * 1024 + 17;
    const auto frame = GetParam();
    upstream_server upstream("stream", [frame](const upstream_server::request&) {
        upstream_response res;
        res.stream_bytes = size;
        res.frame = frame;
        return res;
    });
    raw_client client(upstream.port());
    client.send(format_request("GET", "/big"));
    const response res = client.read_response();
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body_size, size);
    EXPECT_EQ(res.body, std::string(size, filler_byte));
    EXPECT_EQ(res.chunked, frame == upstream_response::framing::chunked);
    EXPECT_EQ(res.has("Content-Length"), frame == upstream_response::framing::length);
    if (frame == upstream_response::framing::close) {
        EXPECT_TRUE(client.wait_closed());
    } else {
        // Still keep-alive: a second request on the same connection, body discarded.
        client.send(format_request("GET", "/big"));
        const response again = client.read_response(false, std::chrono::seconds(10), true);
        EXPECT_EQ(again.body_size, size);
        EXPECT_TRUE(again.body.empty());
        EXPECT_EQ(upstream.connections_accepted(), 1u);
    }
}

INSTANTIATE_TEST_SUITE_P(loopback, streamed,
                         ::testing::Values(upstream_response::framing::length,
                                           upstream_response::framing::chunked,
                                           upstream_response::framing::close));

TEST(loopback, head_response_has_length_but_no_body) {
    upstream_server upstream;
    raw_client client(upstream.port());
    client.send(format_request("HEAD", "/"));
    const response head = client.read_response(true);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.header("Content-Length"), "9");
    EXPECT_TRUE(head.body.empty());
    // Nothing was left behind: the next response parses from its first byte.
    client.send(format_request("GET", "/"));
    EXPECT_EQ(client.read_response().body, "upstream\n");
}

TEST(loopback, close_idle_connections_closes_only_idle_ones) {
    upstream_server upstream("pool");
    // Declared after the server, so an early return breaks the promise and frees the handler
    // before the server joins its thread.
    std::promise<void> release;
    upstream.set_handler(
        [released = release.get_future().share()](const upstream_server::request& req) {
            if (req.target == "/hold") {
                released.wait();
            }
            return upstream_response{};
        });

    raw_client idle(upstream.port());
    const std::string first = format_request("GET", "/");
    idle.send(first);
    EXPECT_EQ(idle.read_response().status, 200);

    raw_client busy(upstream.port());
    const std::string hold = format_request("GET", "/hold");
    busy.send(hold);
    ASSERT_TRUE(upstream.wait_for_requests(2));  // the handler for /hold is running

    raw_client partial(upstream.port());
    const std::string partial_head = "GET /partial HTTP/1.1\r\nHost: h\r\n";
    partial.send(partial_head);
    ASSERT_TRUE(upstream.wait_for_bytes_received(first.size() + hold.size() + partial_head.size()));
    EXPECT_EQ(upstream.connections_open(), 3u);

    EXPECT_EQ(upstream.close_idle_connections(), 1u);
    EXPECT_TRUE(idle.wait_closed());

    // The busy connection still gets its answer, the partial one can finish its request.
    release.set_value();
    EXPECT_EQ(busy.read_response().status, 200);
    partial.send("\r\n");
    EXPECT_EQ(partial.read_response().status, 200);
    EXPECT_EQ(upstream.connections_open(), 2u);

    // Both are idle now.
    EXPECT_EQ(upstream.close_idle_connections(), 2u);
    EXPECT_TRUE(busy.wait_closed());
    EXPECT_TRUE(partial.wait_closed());
    EXPECT_TRUE(upstream.wait_for_open_connections(0));

    // A new connection gets the next id.
    raw_client fresh(upstream.port());
    fresh.send(format_request("GET", "/"));
    EXPECT_EQ(fresh.read_response().status, 200);
    EXPECT_EQ(upstream.requests().back().connection_id, 4u);
}

TEST(loopback, expect_100_continue_is_answered_before_the_body) {
    upstream_server upstream;
    raw_client client(upstream.port());
    client.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    const response interim = client.read_response();
    EXPECT_EQ(interim.status, 100);
    EXPECT_EQ(upstream.request_count(), 0u);
    client.send("abc");
    const response final_response = client.read_response();
    EXPECT_EQ(final_response.status, 200);
    const auto req = upstream.requests().at(0);
    EXPECT_TRUE(req.sent_100_continue);
    EXPECT_EQ(req.body, "abc");
}

TEST(loopback, response_options_raw_drop_reset_and_interim) {
    upstream_server upstream("opts", [](const upstream_server::request& req) {
        upstream_response res;
        if (req.target == "/raw") {
            res.raw = "HTTP/1.1 299 Odd\r\nContent-Length: 2\r\n\r\nhi";
        } else if (req.target == "/drop") {
            res.drop_without_answer = true;
        } else if (req.target == "/reset") {
            res.reset_without_answer = true;
        } else if (req.target == "/continue") {
            res.send_100_continue = true;
            res.status = 204;
        } else if (req.target == "/close") {
            res.close_after = true;
            res.body = "bye";
        }
        return res;
    });

    raw_client client(upstream.port());
    client.send(format_request("GET", "/raw"));
    const response raw = client.read_response();
    EXPECT_EQ(raw.status, 299);
    EXPECT_EQ(raw.reason, "Odd");
    EXPECT_EQ(raw.body, "hi");

    client.send(format_request("GET", "/continue"));
    EXPECT_EQ(client.read_response().status, 100);
    const response no_content = client.read_response();
    EXPECT_EQ(no_content.status, 204);
    EXPECT_FALSE(no_content.has("Content-Length"));

    client.send(format_request("GET", "/close"));
    const response closing = client.read_response();
    EXPECT_EQ(closing.body, "bye");
    EXPECT_EQ(closing.header("Connection"), "close");
    EXPECT_TRUE(client.wait_closed());

    raw_client dropped(upstream.port());
    dropped.send(format_request("GET", "/drop"));
    EXPECT_THROW(dropped.read_response(), std::runtime_error);

    raw_client reset(upstream.port());
    reset.send(format_request("GET", "/reset"));
    EXPECT_EQ(reset.read_until_close(), "");
}

TEST(loopback, large_upload_is_counted_not_stored_when_discarding) {
    constexpr std::uint64_t size = 64ull * 1024 * 1024;
    upstream_server upstream;
    upstream.set_discard_bodies(true);
    raw_client client(upstream.port());
    client.send(format_request("POST", "/up", {{"Content-Length", std::to_string(size)}}));
    client.send_filler(size);
    EXPECT_EQ(client.read_response().status, 200);
    const auto req = upstream.requests().at(0);
    EXPECT_TRUE(req.body.empty());
    EXPECT_EQ(req.body_size, size);
    EXPECT_EQ(upstream.body_bytes_received(), size);
    EXPECT_GT(upstream.bytes_received(), size);
}

TEST(loopback, malformed_request_gets_400_and_close) {
    upstream_server upstream;
    raw_client client(upstream.port());
    client.send("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx");
    const response res = client.read_response();
    EXPECT_EQ(res.status, 400);
    EXPECT_TRUE(client.wait_closed());
    EXPECT_EQ(upstream.bad_requests(), 1u);
    EXPECT_EQ(upstream.request_count(), 0u);
}

TEST(loopback, delay_holds_the_answer_and_client_read_times_out) {
    upstream_server upstream("slow", [](const upstream_server::request&) {
        upstream_response res;
        res.delay = std::chrono::seconds(60);  // cut short by the destructor
        return res;
    });
    raw_client client(upstream.port());
    client.send(format_request("GET", "/"));
    ASSERT_TRUE(upstream.wait_for_requests(1));
    EXPECT_THROW(client.read_response(false, milliseconds(100)), std::runtime_error);
}

TEST(loopback, destructor_closes_live_connections) {
    std::optional<upstream_server> upstream(std::in_place);
    raw_client idle(upstream->port());
    raw_client partial(upstream->port());
    partial.send("GET / HTTP/1.1\r\n");
    ASSERT_TRUE(upstream->wait_for_open_connections(2));
    const auto port = upstream->port();
    upstream.reset();
    EXPECT_TRUE(idle.wait_closed());
    EXPECT_TRUE(partial.wait_closed());
    EXPECT_THROW(raw_client refused(port), std::runtime_error);
}

TEST(loopback, wait_closed_is_false_while_the_peer_stays_open) {
    upstream_server upstream;
    raw_client client(upstream.port());
    EXPECT_FALSE(client.wait_closed(milliseconds(50)));
}

TEST(loopback, after_write_holds_the_connection_and_reset_after_then_aborts_it) {
    std::promise<void> release;
    const std::shared_future<void> released = release.get_future().share();
    upstream_server upstream("half", [released](const upstream_server::request&) {
        upstream_response res;
        res.raw = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf";
        res.after_write = [released] {
            released.wait();
        };
        res.reset_after = true;
        return res;
    });
    // A bare socket, to tell the reset from an orderly close.
    bare_connection client(upstream.port());
    const std::string request = format_request("GET", "/");
    ASSERT_EQ(::send(client.fd(), request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    std::string got;
    char buf[256];
    while (got.find("half") == std::string::npos) {
        const ssize_t n = ::recv(client.fd(), buf, sizeof buf, 0);
        ASSERT_GT(n, 0);
        got.append(buf, static_cast<std::size_t>(n));
    }
    EXPECT_EQ(got, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
    EXPECT_EQ(upstream.connections_open(), 1u);  // held in after_write
    release.set_value();
    EXPECT_EQ(::recv(client.fd(), buf, sizeof buf, 0), -1);
    EXPECT_EQ(errno, ECONNRESET);
    EXPECT_TRUE(upstream.wait_for_open_connections(0));
}

TEST(loopback, raw_close_after_closes_without_a_connection_field) {
    upstream_server upstream("raw", [](const upstream_server::request&) {
        upstream_response res;
        res.raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        res.close_after = true;
        return res;
    });
    raw_client client(upstream.port());
    client.send(format_request("GET", "/"));
    EXPECT_EQ(client.read_until_close(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

TEST(loopback, read_until_returns_up_to_the_marker_and_keeps_the_rest) {
    upstream_server upstream;
    raw_client client(upstream.port());
    client.send(format_request("GET", "/", {{"Connection", "close"}}));
    EXPECT_EQ(client.read_until("\r\n"), "HTTP/1.1 200 OK\r\n");
    const std::string rest = client.read_until_close();
    EXPECT_TRUE(rest.ends_with("\r\n\r\nupstream\n")) << rest;
    EXPECT_EQ(rest.find("HTTP/1.1"), std::string::npos) << rest;
}

TEST(loopback, read_until_throws_when_the_peer_closes_first) {
    upstream_server upstream;
    raw_client client(upstream.port());
    client.send(format_request("GET", "/", {{"Connection", "close"}}));
    EXPECT_THROW(client.read_until("never sent"), std::runtime_error);
}

TEST(loopback, bare_connection_connects_and_closes) {
    upstream_server upstream;
    std::optional<bare_connection> client(std::in_place, upstream.port());
    ASSERT_GE(client->fd(), 0);
    ASSERT_TRUE(upstream.wait_for_open_connections(1));
    bare_connection moved = std::move(*client);
    EXPECT_EQ(client->fd(), -1);
    client.reset();  // a moved-from connection closes nothing
    EXPECT_EQ(upstream.connections_open(), 1u);
    moved.close();
    EXPECT_TRUE(upstream.wait_for_open_connections(0));
    const std::uint16_t closed_port = [] {
        const upstream_server gone("gone");
        return gone.port();
    }();
    EXPECT_THROW(bare_connection refused(closed_port), std::system_error);
}

}  // namespace
}  // namespace switchyard::test
