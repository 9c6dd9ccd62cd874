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
    // Withdraw the idle watch; its handler runs with operation_aborted, finds no idle connection
    // with this id and does nothing.
    boost::system::error_code ignored;
    conn->socket.cancel(ignored);
    conn->id = 0;
    return conn;
}

void endpoint_pool::give_back(upstream_ptr conn) {
    if (idle_.size() >= max_idle_ || !conn->socket.is_open()) {
        return;  // closed by the destructor
    }
    const std::uint64_t id = next_id_++;
    conn->id = id;
    conn->idle_since = std::chrono::steady_clock::now();
    // An idle connection has nothing to say: readability means the upstream closed it or broke
    // the protocol. Either way it must not carry another request. (Asio 1.81 queues a wait
    // without a speculative check, so a close that epoll reported before this wait was queued
    // goes unseen here; the request that takes the connection then meets it closed, and the
    // one retry on a fresh connection covers that.)
    conn->socket.async_wait(boost::asio::ip::tcp::socket::wait_read,
                            [this, id](const boost::system::error_code& ec) {
                                if (ec != boost::asio::error::operation_aborted) {
                                    on_idle_readable(id);
                                }
                            });
    idle_.push_back(std::move(conn));
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
}

void endpoint_pool::clear() {
    idle_.clear();
}

}  // namespace switchyard::proxy
