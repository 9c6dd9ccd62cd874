// endpoint_pool through its public interface, with real loopback connections: the test holds
// the upstream end of each pooled connection, so "closed" means the upstream saw the close.

#include "proxy/upstream_pool.hpp"

#include <gtest/gtest.h>

#include <poll.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "proxy/receive_buffer.hpp"
#include "tests/support/proc_stats.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using proxy::endpoint_pool;
using proxy::upstream_connection;
using proxy::upstream_ptr;
using proxy::upstream_target;

// A listening upstream address; each connect() gives the pool's end and keeps the upstream's.
class upstream_address {
public:
    explicit upstream_address(net::io_context& io) : io_(io), acceptor_(io) {
        acceptor_.open(tcp::v4());
        acceptor_.bind({net::ip::address_v4::loopback(), 0});
        acceptor_.listen();
    }

    tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }

    // A connection from the pool's side, ready to be given back; its upstream end is kept.
    upstream_ptr connect(std::size_t endpoint_index = 0) {
        auto conn = std::make_unique<upstream_connection>(
            io_.get_executor(), upstream_target{endpoint_index, endpoint()});
        conn->socket.connect(endpoint());
        upstream_ends_.push_back(acceptor_.accept());
        return conn;
    }

    // The upstream end of the n-th connection (0-based).
    tcp::socket& upstream_end(std::size_t n) { return upstream_ends_.at(n); }

private:
    net::io_context& io_;
    tcp::acceptor acceptor_;
    std::vector<tcp::socket> upstream_ends_;
};

// True once the pool's end of the connection is closed: its upstream end reads EOF, or a reset
// when the pool's end had unread bytes (bounded wait; a close on loopback arrives at once).
bool closed_by_pool(tcp::socket& upstream_end) {
    pollfd p{upstream_end.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) {
        return false;
    }
    char byte = 0;
    boost::system::error_code ec;
    upstream_end.read_some(net::buffer(&byte, 1), ec);
    return ec == net::error::eof || ec == net::error::connection_reset;
}

// True while the pool's end is open: nothing, not even EOF, is waiting at the upstream end.
bool still_open(tcp::socket& upstream_end) {
    pollfd p{upstream_end.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
}

// The upstream end receives what is written on the pool's end: the connection works.
bool carries_bytes(upstream_connection& conn, tcp::socket& upstream_end) {
    const std::string sent = "GET / HTTP/1.1\r\n\r\n";
    net::write(conn.socket, net::buffer(sent));
    std::string got(sent.size(), '\0');
    net::read(upstream_end, net::buffer(got));
    return got == sent;
}

struct upstream_pool : ::testing::Test {
    net::io_context io;  // declared first: the sockets below belong to it
    upstream_address a{io};
    upstream_address b{io};

    // Gives `conn` back, arms the idle watch as the worker's tick does, and runs the loop until
    // the pool has closed the connection (bounded wait).
    bool closed_once_idle(endpoint_pool& pool, upstream_ptr conn) {
        const std::size_t sockets = open_sockets();
        pool.give_back(std::move(conn));
        pool.expire(std::chrono::steady_clock::now());
        return eventually([&] {
            io.poll();
            return open_sockets() == sockets - 1;
        });
    }
};

TEST_F(upstream_pool, take_finds_nothing_in_an_empty_pool) {
    endpoint_pool pool(4, 30s);
    EXPECT_EQ(pool.take(a.endpoint()), nullptr);
}

TEST_F(upstream_pool, take_returns_a_connection_to_the_address_asked_for) {
    endpoint_pool pool(4, 30s);
    upstream_ptr to_a = a.connect();
    upstream_ptr to_b = b.connect();
    upstream_connection* const at_a = to_a.get();
    upstream_connection* const at_b = to_b.get();
    pool.give_back(std::move(to_a));
    pool.give_back(std::move(to_b));  // the most recent, but to the other address

    upstream_ptr taken = pool.take(a.endpoint());
    ASSERT_EQ(taken.get(), at_a);
    EXPECT_EQ(taken->address, a.endpoint());
    EXPECT_EQ(pool.take(a.endpoint()), nullptr);  // taken out, not copied
    EXPECT_EQ(pool.take(b.endpoint()).get(), at_b);
    // Taking withdraws the idle watch without closing: the connection carries a request.
    EXPECT_TRUE(carries_bytes(*taken, a.upstream_end(0)));
}

TEST_F(upstream_pool, take_returns_the_most_recently_used_first) {
    endpoint_pool pool(4, 30s);
    std::vector<upstream_connection*> given;
    for (int i = 0; i < 3; ++i) {
        upstream_ptr conn = a.connect();
        given.push_back(conn.get());
        pool.give_back(std::move(conn));
    }
    EXPECT_EQ(pool.take(a.endpoint()).get(), given[2]);
    EXPECT_EQ(pool.take(a.endpoint()).get(), given[1]);
    EXPECT_EQ(pool.take(a.endpoint()).get(), given[0]);
    EXPECT_EQ(pool.take(a.endpoint()), nullptr);
}

TEST_F(upstream_pool, keeps_at_most_max_idle_and_closes_the_rest) {
    endpoint_pool pool(2, 30s);
    std::vector<upstream_connection*> given;
    for (int i = 0; i < 3; ++i) {
        upstream_ptr conn = a.connect();
        given.push_back(conn.get());
        pool.give_back(std::move(conn));
    }
    EXPECT_TRUE(still_open(a.upstream_end(0)));
    EXPECT_TRUE(still_open(a.upstream_end(1)));
    EXPECT_TRUE(closed_by_pool(a.upstream_end(2)));  // given back to a full pool
    EXPECT_EQ(pool.take(a.endpoint()).get(), given[1]);
    EXPECT_EQ(pool.take(a.endpoint()).get(), given[0]);
    EXPECT_EQ(pool.take(a.endpoint()), nullptr);
}

TEST_F(upstream_pool, a_connection_closed_on_our_side_is_not_kept) {
    endpoint_pool pool(4, 30s);
    upstream_ptr conn = a.connect();
    conn->socket.close();
    pool.give_back(std::move(conn));
    EXPECT_EQ(pool.take(a.endpoint()), nullptr);
}

TEST_F(upstream_pool, expire_closes_connections_idle_for_idle_timeout_oldest_first) {
    constexpr auto idle_timeout = 30s;
    endpoint_pool pool(4, idle_timeout);
    pool.give_back(a.connect());
    // A clock reading strictly between the two give_backs, so that the time points below are
    // exact: the first connection is idle since at most `between`, the second since after it.
    const auto between = clock_type::now();
    while (clock_type::now() == between) {
    }
    pool.give_back(a.connect());

    pool.expire(between);  // nothing has been idle that long yet
    EXPECT_TRUE(still_open(a.upstream_end(0)));
    EXPECT_TRUE(still_open(a.upstream_end(1)));

    pool.expire(between + idle_timeout);  // the first has been idle a full timeout; not the second
    EXPECT_TRUE(closed_by_pool(a.upstream_end(0)));
    EXPECT_TRUE(still_open(a.upstream_end(1)));

    pool.expire(clock_type::now() + idle_timeout);
    EXPECT_TRUE(closed_by_pool(a.upstream_end(1)));
    EXPECT_EQ(pool.take(a.endpoint()), nullptr);
}

TEST_F(upstream_pool, a_connection_taken_and_given_back_is_idle_from_then_on) {
    constexpr auto idle_timeout = 30s;
    endpoint_pool pool(4, idle_timeout);
    pool.give_back(a.connect());
    upstream_ptr conn = pool.take(a.endpoint());
    ASSERT_NE(conn, nullptr);
    const auto before_second_give_back = clock_type::now();
    while (clock_type::now() == before_second_give_back) {
    }
    pool.give_back(std::move(conn));
    // A full timeout after its first give_back, but not after the second.
    pool.expire(before_second_give_back + idle_timeout);
    EXPECT_TRUE(still_open(a.upstream_end(0)));
    EXPECT_NE(pool.take(a.endpoint()), nullptr);
}

TEST_F(upstream_pool, clear_closes_every_idle_connection) {
    endpoint_pool pool(4, 30s);
    pool.give_back(a.connect());
    pool.give_back(a.connect());
    pool.give_back(b.connect());
    pool.clear();
    EXPECT_TRUE(closed_by_pool(a.upstream_end(0)));
    EXPECT_TRUE(closed_by_pool(a.upstream_end(1)));
    EXPECT_TRUE(closed_by_pool(b.upstream_end(0)));
    EXPECT_EQ(pool.take(a.endpoint()), nullptr);
    EXPECT_EQ(pool.take(b.endpoint()), nullptr);
}

TEST_F(upstream_pool, close_if_closes_only_the_addresses_it_names) {
    endpoint_pool pool(4, 30s);
    pool.give_back(a.connect());
    pool.give_back(b.connect());
    pool.give_back(a.connect());
    const tcp::endpoint gone = a.endpoint();
    pool.close_if([&](const tcp::endpoint& at) { return at == gone; });
    EXPECT_TRUE(closed_by_pool(a.upstream_end(0)));
    EXPECT_TRUE(closed_by_pool(a.upstream_end(1)));
    EXPECT_TRUE(still_open(b.upstream_end(0)));
    EXPECT_EQ(pool.take(a.endpoint()), nullptr);
    upstream_ptr kept = pool.take(b.endpoint());
    ASSERT_NE(kept, nullptr);
    EXPECT_TRUE(carries_bytes(*kept, b.upstream_end(0)));
}

TEST_F(upstream_pool, an_idle_connection_the_upstream_closes_is_dropped) {
    endpoint_pool pool(4, 30s);
    pool.give_back(a.connect());
    pool.give_back(b.connect());
    pool.expire(std::chrono::steady_clock::now());  // the worker's tick arms the idle watch
    const std::size_t sockets = open_sockets();
    a.upstream_end(0).close();  // the upstream's keep-alive timeout, say
    // The pool notices while the connection is idle and closes its end too: both ends of that
    // connection are gone from this process.
    ASSERT_TRUE(eventually([&] {
        io.poll();
        return open_sockets() == sockets - 2;
    }));
    EXPECT_EQ(pool.take(a.endpoint()), nullptr);
    // The other connection was left alone.
    EXPECT_TRUE(still_open(b.upstream_end(0)));
    EXPECT_NE(pool.take(b.endpoint()), nullptr);
}

// The upstream's bytes or close may arrive while the session still holds the connection (writing
// the response to its client, say), and the worker's loop may take that readiness in before
// the connection is given back. It must still be noticed once the connection is idle.
TEST_F(upstream_pool, what_the_upstream_did_before_give_back_is_noticed_once_idle) {
    for (const bool closes : {true, false}) {
        SCOPED_TRACE(closes ? "close" : "bytes");
        endpoint_pool pool(4, 30s);
        upstream_address& upstream = closes ? a : b;  // a connection of its own each time
        upstream_ptr conn = upstream.connect();
        tcp::socket& upstream_end = upstream.upstream_end(0);
        const tcp::endpoint at = conn->address;
        if (closes) {
            upstream_end.shutdown(tcp::socket::shutdown_send);
        } else {
            net::write(upstream_end, net::buffer(std::string("HTTP/1.1 200 OK\r\n\r\n")));
        }
        // One turn of the loop with nothing waiting on the connection.
        net::steady_timer turn(io, 0ms);
        bool turned = false;
        turn.async_wait([&](const boost::system::error_code&) { turned = true; });
        io.restart();
        while (!turned && io.run_one() > 0) {
        }
        io.poll();
        io.restart();

        EXPECT_TRUE(closed_once_idle(pool, std::move(conn)));
        EXPECT_EQ(pool.take(at), nullptr);
    }
}

// An upstream that answers and closes at once: the session's last read takes the answer and
// comes up short, so the reactor was told the socket is drained (proxy/receive_buffer.hpp), while
// the end of stream, which came with the answer and spent its edge, is still queued.
TEST_F(upstream_pool, an_end_of_stream_that_came_with_the_last_answer_is_noticed_once_idle) {
    endpoint_pool pool(4, 30s);
    upstream_ptr conn = a.connect();
    const tcp::endpoint at = conn->address;
    // The session's read of the answer is waiting when the answer and the close arrive together,
    // so the reactor's one edge for both completes it.
    std::array<char, 1024> space{};
    std::size_t got = 0;
    conn->socket.async_read_some(proxy::receive_buffer(space),
                                 [&](const boost::system::error_code&, std::size_t n) { got = n; });
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    net::write(a.upstream_end(0), net::buffer(answer));
    a.upstream_end(0).shutdown(tcp::socket::shutdown_send);
    pollfd p{conn->socket.native_handle(), POLLRDHUP, 0};
    ASSERT_EQ(::poll(&p, 1, 10'000), 1);  // both are in the pool's socket before the loop runs
    io.run();
    io.restart();
    ASSERT_EQ(got, answer.size());

    EXPECT_TRUE(closed_once_idle(pool, std::move(conn)));
    EXPECT_EQ(pool.take(at), nullptr);
}

TEST_F(upstream_pool, an_idle_connection_the_upstream_writes_to_is_dropped) {
    endpoint_pool pool(4, 30s);
    pool.give_back(a.connect());
    pool.expire(std::chrono::steady_clock::now());  // the worker's tick arms the idle watch
    const std::size_t sockets = open_sockets();
    // Bytes nobody asked for: the connection is out of step with HTTP and must not carry a
    // request.
    net::write(a.upstream_end(0), net::buffer(std::string("HTTP/1.1 408 Request Timeout\r\n\r\n")));
    ASSERT_TRUE(eventually([&] {
        io.poll();
        return open_sockets() == sockets - 1;
    }));
    EXPECT_EQ(pool.take(a.endpoint()), nullptr);
    EXPECT_TRUE(closed_by_pool(a.upstream_end(0)));
}

}  // namespace
}  // namespace switchyard::test
