// Upstreams that fail in the middle of an exchange: a reset or a stall inside a response body, a
// malformed response head, a pooled keep-alive connection closed just as it is reused. Each test
// checks the answer of the README's error table and that nothing is left open afterwards: the
// upstream's open connections, and this process's sockets (client, proxy and upstream ends
// together), come back to where they were before the client connected.

#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "analysis/metrics.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proc_stats.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

using namespace std::chrono_literals;
using upstream_response = upstream_server::response;
using analysis::upstream_failure;

// The proxy's own reasons for its answers (proxy/session.cpp), each followed by a newline.
constexpr std::string_view invalid_response = "upstream sent an invalid response\n";
constexpr std::string_view connection_failed = "upstream connection failed\n";
constexpr std::string_view timed_out = "upstream did not answer in time\n";

std::string get_request() {
    return format_request("GET", "/");
}

// A response head declaring 100 body bytes, then the first 10 of them.
const std::string head_and_part = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst-part";

// The proxy's totals once `n` requests are recorded (a request is recorded when its session
// resumes after the last write, which can be just after the client has read or lost it).
std::array<analysis::slot_totals, 2> totals_after(running_proxy& proxy, std::uint64_t n) {
    const auto shards = proxy.server().metrics_shards();
    std::array<analysis::slot_totals, 2> totals;
    eventually([&] {
        totals = analysis::merge(shards);
        return totals[0].requests() + totals[1].requests() >= n;
    });
    return totals;
}

std::uint64_t failures(const analysis::slot_totals& t, upstream_failure kind) {
    return t.failures[static_cast<std::size_t>(kind) - 1];
}

// True once this process holds exactly `n` sockets again (bounded wait).
::testing::AssertionResult sockets_come_back_to(std::size_t n) {
    if (eventually([n] { return open_sockets() == n; })) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "this process holds " << open_sockets() << " sockets, expected " << n;
}

// What a client received of a response cut short: the head, and the body bytes that came.
struct cut_short {
    std::string head;
    std::string body;
};

// Sends a GET, reads the head and the 10 bytes of `head_and_part` as the proxy forwards them,
// runs `then` (which lets the upstream go on), and reads until the proxy closes.
cut_short read_cut_short(std::uint16_t port, const std::function<void()>& then = {}) {
    raw_client client(port);
    client.send(get_request());
    std::string got = client.read_until("first-part");
    if (then) {
        then();
    }
    got += client.read_until_close();
    const auto body_at = got.find("\r\n\r\n");
    if (body_at == std::string::npos) {
        return {got, ""};
    }
    return {got.substr(0, body_at + 4), got.substr(body_at + 4)};
}

struct upstream_fault : ::testing::Test {
    upstream_server blue{"blue"};
    upstream_server green{"green"};

    config::config cfg() const { return two_slot_config(blue.port(), green.port()); }
};

// --- faults after the response head was forwarded: the client can only be cut off ---

TEST_F(upstream_fault, a_reset_mid_body_closes_the_client_short_of_the_declared_length) {
    // The upstream holds the connection after the first 10 bytes until the client has them, so
    // the reset comes mid-body whatever the scheduling.
    std::promise<void> client_has_part;
    const std::shared_future<void> part_seen = client_has_part.get_future().share();
    blue.set_handler([part_seen](const upstream_server::request&) {
        upstream_response r;
        r.raw = head_and_part;
        r.after_write = [part_seen] {
            part_seen.wait();
        };
        r.reset_after = true;
        return r;
    });
    running_proxy proxy(cfg());
    const std::size_t baseline = open_sockets();

    const cut_short got = read_cut_short(proxy.port(), [&] { client_has_part.set_value(); });
    EXPECT_TRUE(got.head.starts_with("HTTP/1.1 200 OK\r\n")) << got.head;
    EXPECT_NE(got.head.find("Content-Length: 100\r\n"), std::string::npos) << got.head;
    EXPECT_EQ(got.body, "first-part");  // 10 of 100 bytes, then the close

    EXPECT_TRUE(blue.wait_for_open_connections(0));
    EXPECT_TRUE(sockets_come_back_to(baseline));
    // A 200 cut short still counts against the slot, as a reset.
    const auto totals = totals_after(proxy, 1);
    EXPECT_EQ(totals[0].by_status[200 - 100], 1U);
    EXPECT_EQ(failures(totals[0], upstream_failure::reset), 1U);
    EXPECT_EQ(totals[0].errors(), 1U);
}

TEST_F(upstream_fault, a_stall_mid_body_is_cut_by_upstream_response_and_both_sides_closed) {
    // Head and 10 bytes, then nothing: the upstream keeps the connection open and waits for a
    // next request, so only the proxy can close it.
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.raw = head_and_part;
        return r;
    });
    auto c = cfg();
    c.timeouts.upstream_response = 300ms;
    running_proxy proxy(c);
    const std::size_t baseline = open_sockets();

    const cut_short got = read_cut_short(proxy.port());
    EXPECT_TRUE(got.head.starts_with("HTTP/1.1 200 OK\r\n")) << got.head;
    EXPECT_NE(got.head.find("Content-Length: 100\r\n"), std::string::npos) << got.head;
    EXPECT_EQ(got.body, "first-part");

    // The stalled upstream connection was closed by the proxy, not pooled.
    EXPECT_TRUE(blue.wait_for_open_connections(0));
    EXPECT_EQ(blue.connections_accepted(), 1U);
    EXPECT_TRUE(sockets_come_back_to(baseline));
    const auto totals = totals_after(proxy, 1);
    EXPECT_EQ(failures(totals[0], upstream_failure::timeout), 1U);
    EXPECT_EQ(totals[0].errors(), 1U);
}

TEST_F(upstream_fault, a_close_mid_body_cuts_the_client_off_at_once) {
    // Head, 10 bytes and the close, all sent at once: the close usually arrives with the bytes,
    // so the proxy must see it without another readiness edge from the socket, and long before
    // upstream_response.
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.raw = head_and_part;
        r.close_after = true;
        return r;
    });
    auto c = cfg();
    c.timeouts.upstream_response = 1h;
    running_proxy proxy(c);
    const std::size_t baseline = open_sockets();

    const cut_short got = read_cut_short(proxy.port());
    EXPECT_TRUE(got.head.starts_with("HTTP/1.1 200 OK\r\n")) << got.head;
    EXPECT_EQ(got.body, "first-part");

    EXPECT_TRUE(blue.wait_for_open_connections(0));
    EXPECT_TRUE(sockets_come_back_to(baseline));
    const auto totals = totals_after(proxy, 1);
    EXPECT_EQ(failures(totals[0], upstream_failure::reset), 1U);
    EXPECT_EQ(failures(totals[0], upstream_failure::timeout), 0U);
}

// --- faults before the response head: the proxy answers ---

TEST_F(upstream_fault, a_stall_mid_head_gets_504_and_the_connection_is_closed) {
    // Part of a head, then nothing: the upstream waits for a next request that never comes.
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.raw = "HTTP/1.1 200 OK\r\nContent-Le";
        return r;
    });
    auto c = cfg();
    c.timeouts.upstream_response = 300ms;
    running_proxy proxy(c);
    const std::size_t baseline = open_sockets();

    const response res = get(proxy.port());
    EXPECT_EQ(res.status, 504);
    EXPECT_EQ(res.body, timed_out);
    EXPECT_TRUE(blue.wait_for_open_connections(0));
    EXPECT_TRUE(sockets_come_back_to(baseline));
    const auto totals = totals_after(proxy, 1);
    EXPECT_EQ(totals[0].by_status[504 - 100], 1U);
    EXPECT_EQ(failures(totals[0], upstream_failure::timeout), 1U);
}

TEST_F(upstream_fault, a_malformed_response_head_gets_502_and_the_connection_is_closed) {
    struct bad_head {
        const char* what;
        std::string raw;
        bool close = false;  // the upstream closes after it (else it waits for a next request)
    };
    const std::vector<bad_head> heads{
        {"status code not three digits", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"},
        {"not HTTP at all", "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n"},
        {"field name with a space", "HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n"},
        {"two Content-Lengths that differ",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
        {"Content-Length not a number", "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n"},
        {"bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
        {"an Upgrade the proxy never asked for",
         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
        {"head cut short by the close", "HTTP/1.1 200 OK\r\nContent-Le", true},
    };
    running_proxy proxy(cfg());
    const std::size_t baseline = open_sockets();
    for (std::size_t i = 0; i < heads.size(); ++i) {
        const bad_head& bad = heads[i];
        blue.set_handler([&bad](const upstream_server::request&) {
            upstream_response r;
            r.raw = bad.raw;
            r.close_after = bad.close;
            return r;
        });
        const response res = get(proxy.port());
        EXPECT_EQ(res.status, 502) << bad.what;
        EXPECT_EQ(res.header("Content-Type"), "text/plain; charset=utf-8") << bad.what;
        EXPECT_EQ(res.body, invalid_response) << bad.what;
        // Never pooled: each head came on a connection of its own, closed by the proxy.
        EXPECT_EQ(blue.connections_accepted(), i + 1) << bad.what;
        EXPECT_TRUE(blue.wait_for_open_connections(0)) << bad.what;
        EXPECT_TRUE(sockets_come_back_to(baseline)) << bad.what;
    }
    const auto totals = totals_after(proxy, heads.size());
    EXPECT_EQ(totals[0].by_status[502 - 100], heads.size());
    EXPECT_EQ(failures(totals[0], upstream_failure::protocol), heads.size());
}

// --- a pooled keep-alive connection the upstream closes as it is reused ---

enum class hang_up { fin, rst };

const char* name_of(hang_up how) {
    return how == hang_up::fin ? "FIN" : "RST";
}

// Answers the first request of each connection with keep-alive, and ends the connection when
// its second request arrives, without an answer: as an upstream whose keep-alive timeout
// fired just as the proxy reused the connection.
upstream_server::handler hangs_up_on_second_request(hang_up how) {
    return [how](const upstream_server::request& r) {
        upstream_response res;
        res.body = r.index_on_connection == 1 ? "first\n" : "never sent\n";
        if (r.index_on_connection == 2) {
            res.drop_without_answer = how == hang_up::fin;
            res.reset_without_answer = how == hang_up::rst;
        }
        return res;
    };
}

TEST(upstream_reuse_fault, a_get_on_a_connection_closed_as_it_is_reused_is_retried_and_succeeds) {
    for (const hang_up how : {hang_up::fin, hang_up::rst}) {
        SCOPED_TRACE(name_of(how));
        upstream_server blue("blue", hangs_up_on_second_request(how));
        upstream_server green("green");
        running_proxy proxy(two_slot_config(blue.port(), green.port()));
        const std::size_t baseline = open_sockets();
        {
            raw_client client(proxy.port());
            client.send(get_request());
            ASSERT_EQ(client.read_response().body, "first\n");
            client.send(get_request());
            const response res = client.read_response();
            EXPECT_EQ(res.status, 200);
            EXPECT_EQ(res.body, "first\n");  // the first request of a fresh connection
        }
        // Sent twice: on the reused connection, which ended, then on a fresh one.
        const auto requests = blue.requests();
        ASSERT_EQ(requests.size(), 3U);
        EXPECT_EQ(requests[1].connection_id, 1U);
        EXPECT_EQ(requests[1].index_on_connection, 2U);
        EXPECT_EQ(requests[2].connection_id, 2U);
        EXPECT_EQ(blue.connections_accepted(), 2U);
        // The fresh connection is pooled (both its ends are in this process); nothing else is left.
        EXPECT_TRUE(blue.wait_for_open_connections(1));
        EXPECT_TRUE(sockets_come_back_to(baseline + 2));
        const auto totals = totals_after(proxy, 2);
        EXPECT_EQ(totals[0].by_status[200 - 100], 2U);
        EXPECT_EQ(totals[0].errors(), 0U);
    }
}

TEST(upstream_reuse_fault, a_post_on_a_connection_closed_as_it_is_reused_gets_502_once) {
    for (const hang_up how : {hang_up::fin, hang_up::rst}) {
        SCOPED_TRACE(name_of(how));
        upstream_server blue("blue", hangs_up_on_second_request(how));
        upstream_server green("green");
        running_proxy proxy(two_slot_config(blue.port(), green.port()));
        const std::size_t baseline = open_sockets();
        {
            raw_client client(proxy.port());
            client.send(get_request());
            ASSERT_EQ(client.read_response().body, "first\n");
            // The upstream may have acted on it: not sent again (RFC 9110 §9.2.2).
            client.send(format_request("POST", "/order", {}, "pay"));
            const response res = client.read_response();
            EXPECT_EQ(res.status, 502);
            EXPECT_EQ(res.body, connection_failed);
            EXPECT_EQ(blue.request_count(), 2U);
            EXPECT_EQ(blue.connections_accepted(), 1U);
            EXPECT_TRUE(blue.wait_for_open_connections(0));
            // The client's connection survives the 502 (its request was read whole).
            client.send(get_request());
            EXPECT_EQ(client.read_response().body, "first\n");
        }
        const auto requests = blue.requests();
        ASSERT_EQ(requests.size(), 3U);
        EXPECT_EQ(requests[1].method, "POST");
        EXPECT_EQ(requests[1].body, "pay");
        EXPECT_EQ(requests[2].method, "GET");
        EXPECT_TRUE(blue.wait_for_open_connections(1));
        EXPECT_TRUE(sockets_come_back_to(baseline + 2));
        const auto totals = totals_after(proxy, 3);
        EXPECT_EQ(totals[0].by_status[502 - 100], 1U);
        EXPECT_EQ(failures(totals[0], upstream_failure::reset), 1U);
    }
}

// The upstream closes each connection right after a keep-alive answer (no Connection: close).
// Whether the proxy sees the close while the connection is pooled or only when it reuses it
// is a race; either way each GET is answered, and reaches the upstream exactly once.
TEST_F(upstream_fault, an_upstream_that_closes_after_each_keep_alive_answer_loses_no_get) {
    blue.set_handler([](const upstream_server::request&) {
        upstream_response r;
        r.raw = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfresh\n";
        r.close_after = true;  // with `raw`: the close comes unannounced
        return r;
    });
    running_proxy proxy(cfg());
    const std::size_t baseline = open_sockets();
    constexpr std::size_t rounds = 20;
    {
        raw_client client(proxy.port());
        for (std::size_t i = 0; i < rounds; ++i) {
            client.send(get_request());
            const response res = client.read_response();
            ASSERT_EQ(res.status, 200) << "request " << i << ": " << res.body;
            EXPECT_EQ(res.body, "fresh\n");
        }
    }
    EXPECT_EQ(blue.request_count(), rounds);
    EXPECT_EQ(blue.connections_accepted(), rounds);
    EXPECT_TRUE(blue.wait_for_open_connections(0));
    // Every closed connection the proxy pooled was closed on its side too.
    EXPECT_TRUE(sockets_come_back_to(baseline));
}

// RFC 9112 §6.3: bytes an upstream sends past the end of a response must never be forwarded as
// the answer to a later request (response queue poisoning). They come in the same write as a
// response sized to end exactly where a 16 KiB read does, so they can be left waiting in the
// kernel once the proxy has read the response: the connection must not carry another request.
// (The pipelined /second is in hand as /first ends, so it would take a pooled connection before
// any watch could notice the bytes.)
TEST_F(upstream_fault, bytes_past_a_response_are_never_forwarded_as_the_next_answer) {
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: ";
    constexpr std::size_t read_size = 16 * 1024;
    const std::size_t body = read_size - (head + "00000\r\n\r\n").size();
    const std::string exact = head + std::to_string(body) + "\r\n\r\n" + std::string(body, 'x');
    ASSERT_EQ(exact.size(), read_size);
    const std::string extra = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nsmuggled\n";
    blue.set_handler([&](const upstream_server::request& r) {
        upstream_response res;
        if (r.target == "/first") {
            res.raw = exact + extra;
        } else {
            res.body = "fresh\n";
        }
        return res;
    });
    running_proxy proxy(cfg());
    constexpr int rounds = 10;
    {
        raw_client client(proxy.port());
        for (int round = 0; round < rounds; ++round) {
            // Pipelined: /second is in hand as /first ends, and goes upstream at once.
            client.send(format_request("GET", "/first") + format_request("GET", "/second"));
            ASSERT_EQ(client.read_response().body_size, body);
            ASSERT_EQ(client.read_response().body, "fresh\n") << "round " << round;
        }
    }
    // No request was sent on a connection after its /first.
    std::map<std::size_t, std::string> last_on;
    for (const auto& r : blue.requests()) {
        EXPECT_NE(last_on[r.connection_id], "/first")
            << r.target << " followed /first on connection " << r.connection_id;
        last_on[r.connection_id] = r.target;
    }
    EXPECT_EQ(blue.request_count(), 2U * rounds);
}

}  // namespace
}  // namespace switchyard::test
