#pragma once
// A read buffer that tells Asio's epoll reactor when a read has drained the socket, so that the
// next read waits for readiness instead of trying a recv that can only fail with EAGAIN.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/use_awaitable.hpp>
// After socket_base, which this detail header uses without including.
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#include <boost/version.hpp>

#include <cstddef>
#include <span>
#include <tuple>

namespace switchyard::proxy {

// Pass to async_read_some on a TCP socket in place of net::buffer(...).
//
// Asio starts every read with a speculative recv unless the previous one reported the socket
// exhausted, which its stock read does only at end of stream. So the read of a client's next
// request, and the read of a response just asked for, often try a recv that fails with EAGAIN
// before the reactor waits: 0.4 to 0.9 of them per request in bench/compare, of about five
// system calls in all. A stream read that returns fewer bytes than asked found the kernel's
// receive queue empty, so this buffer reports it exhausted: the next read goes straight to the
// reactor, and any byte that arrives later raises an edge that turns speculation back on. nginx
// decides the same way (ngx_unix_recv clears `ready` on a short read), and so does HAProxy.
class receive_buffer {
public:
    explicit receive_buffer(std::span<char> space) noexcept : buffer_(space.data(), space.size()) {}

    // A sequence of one buffer, as Asio's MutableBufferSequence requires.
    const boost::asio::mutable_buffer* begin() const noexcept { return &buffer_; }
    const boost::asio::mutable_buffer* end() const noexcept { return &buffer_ + 1; }

private:
    boost::asio::mutable_buffer buffer_;
};

// One read that continues a message: more of a head or a body, or what a client sends before it
// closes. `drained` says whether the last read of `socket` came up short, and is updated.
//
// The reactor reports readiness by edges, and an end of stream that arrived together with the
// last bytes read raises none after them: a socket reported drained would then wait for an edge
// that never comes. (nginx learns of it from EPOLLRDHUP, which Asio does not ask epoll for.) So
// after a short read this first waits with async_wait, which Asio queues with an epoll_ctl that
// re-polls the socket: one system call, where the stock read would have tried a recv. A read
// that starts a message (a request head, a response head) goes straight to the socket: a peer
// that closed after its last message is noticed when its connection is parked or reused.
template <class Socket>
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_more(
    Socket& socket, std::span<char> space, bool& drained) {
    constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    if (drained) {
        const auto [ec] = co_await socket.async_wait(Socket::wait_read, use_tuple);
        if (ec) {
            co_return std::tuple{ec, std::size_t{0}};
        }
    }
    const auto [ec, n] = co_await socket.async_read_some(receive_buffer(space), use_tuple);
    drained = n < space.size();
    co_return std::tuple{ec, n};
}

}  // namespace switchyard::proxy

// The hook: the reactor's read operation for this one buffer type. It is the stock operation of
// Boost 1.81 (Debian 12) with the exhaustion rule above; another Boost keeps the stock operation,
// which is correct and only makes the extra recv.
#if BOOST_VERSION == 108100
namespace boost::asio::detail {

template <>
class reactive_socket_recv_op_base<switchyard::proxy::receive_buffer> : public reactor_op {
public:
    reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                                 socket_ops::state_type state,
                                 const switchyard::proxy::receive_buffer& buffers,
                                 socket_base::message_flags flags, func_type complete_func)
        : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
          socket_(socket),
          state_(state),
          buffer_(*buffers.begin()),
          flags_(flags) {}

    static status do_perform(reactor_op* base) {
        auto* o = static_cast<reactive_socket_recv_op_base*>(base);
        const bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
        if (!socket_ops::non_blocking_recv1(o->socket_, o->buffer_.data(), o->buffer_.size(),
                                            o->flags_, stream, o->ec_, o->bytes_transferred_)) {
            return not_done;  // EAGAIN: wait for the reactor
        }
        // End of stream, an error, or a short read: nothing more is queued right now.
        const bool drained =
            o->bytes_transferred_ == 0 || o->bytes_transferred_ < o->buffer_.size();
        return stream && drained ? done_and_exhausted : done;
    }

private:
    socket_type socket_;
    socket_ops::state_type state_;
    mutable_buffer buffer_;
    socket_base::message_flags flags_;
};

}  // namespace boost::asio::detail
#endif
