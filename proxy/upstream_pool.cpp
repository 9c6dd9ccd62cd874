#include "proxy/upstream_pool.hpp"

#include <algorithm>

namespace switchyard::proxy {

upstream_ptr endpoint_pool::take(const boost::asio::ip::tcp::endpoint& address) {
    const auto it = std::find_if(idle_.rbegin(), idle_.rend(),
                                 [&](const upstream_ptr& c) { return c->address == address; });
    if (it == idle_.rend()) {
        return nullptr;
    }
    upstream_ptr conn = std::move(*it);
    idle_.erase(std::next(it).base());
    if (conn->watched) {
        // Withdraw the watch (no system call: the reactor only dequeues it); its handler runs
        // with operation_aborted and does nothing.
        boost::system::error_code ignored;
        conn->socket.cancel(ignored);
        conn->watched = false;
    }
    conn->id = 0;
    return conn;
}

void endpoint_pool::give_back(upstream_ptr conn) {
    if (idle_.size() >= max_idle_ || !conn->socket.is_open()) {
        return;  // closed by the destructor
    }
    conn->id = next_id_++;
    conn->idle_since = std::chrono::steady_clock::now();
    idle_.push_back(std::move(conn));
}

void endpoint_pool::watch(upstream_connection& conn) {
    // An idle connection has nothing to say: once it is readable the upstream has closed it or
    // broken the protocol, and either way it must not carry another request. async_wait rather
    // than a read: Asio queues it with an epoll_ctl that re-polls the socket, so an end of stream
    // that came with the last response (whose edge is spent) is seen too. That system call is
    // why the watch waits for the tick (see the header).
    conn.watched = true;
    conn.socket.async_wait(boost::asio::ip::tcp::socket::wait_read,
                           [this, id = conn.id](const boost::system::error_code& ec) {
                               if (ec != boost::asio::error::operation_aborted) {
                                   on_idle_readable(id);
                               }
                           });
}

void endpoint_pool::on_idle_readable(std::uint64_t id) {
    const auto it = std::find_if(idle_.begin(), idle_.end(),
                                 [id](const upstream_ptr& c) { return c->id == id; });
    if (it != idle_.end()) {
        idle_.erase(it);
    }
}

void endpoint_pool::expire(std::chrono::steady_clock::time_point now) {
    // Oldest first, at the front: stop at the first one still fresh.
    const auto fresh = std::find_if(idle_.begin(), idle_.end(), [&](const upstream_ptr& c) {
        return now - c->idle_since < idle_timeout_;
    });
    idle_.erase(idle_.begin(), fresh);
    for (const upstream_ptr& c : idle_) {
        if (!c->watched) {
            watch(*c);
        }
    }
}

void endpoint_pool::clear() {
    idle_.clear();
}

}  // namespace switchyard::proxy
