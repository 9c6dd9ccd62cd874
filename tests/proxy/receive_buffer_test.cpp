// receive_buffer and read_more on real loopback connections: a short read reports the socket
// drained to Asio's reactor, a full one does not, and neither bytes nor an end of stream that
// arrive around a short read are missed.

#include "proxy/receive_buffer.hpp"

#include <gtest/gtest.h>

#include <poll.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

namespace switchyard::test {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;
using proxy::receive_buffer;

// Both ends of one loopback connection: `ours` is read by the code under test, `peer` writes.
struct connection : ::testing::Test {
    net::io_context io;
    tcp::socket ours{io};
    tcp::socket peer{io};

    void SetUp() override {
        tcp::acceptor acceptor(io, {net::ip::address_v4::loopback(), 0});
        ours.connect(acceptor.local_endpoint());
        peer = acceptor.accept();
    }

    // Blocks until `events` are pending on our end (bounded: loopback delivers at once).
    void await_ours(short events) {
        pollfd p{ours.native_handle(), events, 0};
        ASSERT_EQ(::poll(&p, 1, 10'000), 1);
    }

    // One async_read_some into a buffer of `size` bytes, run to completion.
    std::string read(std::size_t size) {
        std::string space(size, '\0');
        std::size_t got = 0;
        ours.async_read_some(receive_buffer(space),
                             [&](const error_code&, std::size_t n) { got = n; });
        io.restart();
        io.run();
        space.resize(got);
        return space;
    }

    // A read_more under way: start() runs the loop until it waits on the socket (or is done),
    // finish() until it completes, for at most 10 s (then it reports timed_out).
    struct pending_read {
        std::string space;
        std::optional<std::tuple<error_code, std::size_t>> got;
    };

    void start(pending_read& r, bool& drained) {
        net::co_spawn(
            io,
            [&]() -> net::awaitable<void> {
                r.got = co_await proxy::read_more(ours, r.space, drained);
            },
            net::detached);
        io.restart();
        io.poll();
    }

    std::tuple<error_code, std::string> finish(pending_read& r) {
        io.restart();
        io.run_for(std::chrono::seconds(10));
        if (!r.got) {
            return {net::error::timed_out, ""};
        }
        const auto [ec, n] = *r.got;
        return {ec, r.space.substr(0, n)};
    }

    std::tuple<error_code, std::string> read_more(std::size_t size, bool& drained) {
        pending_read r{std::string(size, '\0'), {}};
        start(r, drained);
        return finish(r);
    }
};

#if BOOST_VERSION == 108100
// The reactor's verdict on one read, as Asio's epoll reactor sees it.
net::detail::reactor_op::status perform_read(tcp::socket& s, std::span<char> space,
                                             std::size_t& got) {
    using op_type = net::detail::reactive_socket_recv_op_base<receive_buffer>;
    op_type op(error_code(), s.native_handle(), net::detail::socket_ops::stream_oriented,
               receive_buffer(space), 0, nullptr);
    const auto status = op.perform();
    got = op.bytes_transferred_;
    return status;
}

TEST_F(connection, a_short_read_reports_the_socket_drained_and_a_full_one_does_not) {
    using status = net::detail::reactor_op::status;
    ours.non_blocking(true);
    std::array<char, 16> space{};
    std::size_t got = 0;

    net::write(peer, net::buffer(std::string(10, 'a')));
    await_ours(POLLIN);
    EXPECT_EQ(perform_read(ours, space, got), status::done_and_exhausted);
    EXPECT_EQ(got, 10U);

    net::write(peer, net::buffer(std::string(16, 'b')));
    await_ours(POLLIN);
    EXPECT_EQ(perform_read(ours, space, got), status::done);  // more may be waiting
    EXPECT_EQ(got, 16U);

    EXPECT_EQ(perform_read(ours, space, got), status::not_done);  // nothing: wait for the reactor

    peer.shutdown(tcp::socket::shutdown_send);
    await_ours(POLLRDHUP);
    EXPECT_EQ(perform_read(ours, space, got), status::done_and_exhausted);
    EXPECT_EQ(got, 0U);
}
#endif

TEST_F(connection, bytes_that_come_after_a_short_read_are_read) {
    net::write(peer, net::buffer(std::string("first")));
    await_ours(POLLIN);
    EXPECT_EQ(read(64), "first");
    // The next read waits for the reactor; the bytes raise an edge that completes it.
    std::string second;
    ours.async_read_some(net::buffer(second.assign(64, '\0')),
                         [&](const error_code&, std::size_t n) { second.resize(n); });
    net::write(peer, net::buffer(std::string("second")));
    io.restart();
    io.run();
    EXPECT_EQ(second, "second");
}

TEST_F(connection, read_more_sees_an_end_of_stream_that_came_with_the_last_bytes) {
    // The read waits before anything comes, so the one edge for the bytes and the end of stream
    // is spent on it, and its short read tells the reactor the socket is drained.
    bool drained = false;
    pending_read first{std::string(64, '\0'), {}};
    start(first, drained);
    net::write(peer, net::buffer(std::string("last")));
    peer.shutdown(tcp::socket::shutdown_send);
    await_ours(POLLRDHUP);
    const auto [ec, got] = finish(first);
    EXPECT_FALSE(ec);
    EXPECT_EQ(got, "last");
    EXPECT_TRUE(drained);

    // No edge will come for the end of stream: read_more must find it all the same.
    const auto [end, nothing] = read_more(64, drained);
    EXPECT_EQ(end, net::error::eof) << end.message();
    EXPECT_EQ(nothing, "");
}

TEST_F(connection, read_more_after_a_full_read_reads_what_is_left) {
    net::write(peer, net::buffer(std::string("0123456789")));
    await_ours(POLLIN);
    bool drained = false;
    EXPECT_EQ(std::get<1>(read_more(4, drained)), "0123");
    EXPECT_FALSE(drained);
    EXPECT_EQ(std::get<1>(read_more(4, drained)), "4567");
    EXPECT_EQ(std::get<1>(read_more(4, drained)), "89");
    EXPECT_TRUE(drained);
}

}  // namespace
}  // namespace switchyard::test
