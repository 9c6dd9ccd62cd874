#pragma once
// Keep-alive connections from one worker to its upstream endpoints.
//
// Each worker owns one pool per endpoint, so nothing here is shared or locked. An idle connection
// is watched for readability: an upstream that closes it (keep-alive timeout, restart) is noticed
// while it sits in the pool, the way nginx watches its cached upstream connections, instead of
// being handed to the next request. The watch is armed by the worker's tick, not as the
// connection comes back: arming costs a system call, wasted on a connection reused within
// milliseconds, which under load is nearly every one.
// Idle connections are kept most-recently-used first, at most `max_idle` of them, and closed
// after `idle_timeout` unused.

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "proxy/tls.hpp"

namespace switchyard::proxy {

// Where a request goes: an endpoint, and one of its addresses for a new connection.
struct upstream_target {
    std::size_t endpoint = 0;  // index into the endpoint list of `generation`
    boost::asio::ip::tcp::endpoint address;
    std::uint64_t generation = 0;  // of the endpoint list it was picked from (live_settings)
};

struct upstream_connection {
    upstream_connection(boost::asio::any_io_executor ex, const upstream_target& target)
        : socket(std::move(ex)),
          endpoint(target.endpoint),
          address(target.address),
          generation(target.generation) {}

    boost::asio::ip::tcp::socket socket;
    std::unique_ptr<tls_connection> tls;     // over `socket`, when the endpoint's slot has tls
    std::size_t endpoint;                    // index into the endpoint list of `generation`
    boost::asio::ip::tcp::endpoint address;  // connected to
    std::uint64_t generation;                // a connection of another generation is not pooled
    std::uint64_t id = 0;                    // set by the pool while idle
    bool watched = false;                    // a wait is in flight on the idle connection
    std::chrono::steady_clock::time_point idle_since;
};

using upstream_ptr = std::unique_ptr<upstream_connection>;

class endpoint_pool {
public:
    endpoint_pool(std::uint32_t max_idle, std::chrono::milliseconds idle_timeout)
        : max_idle_(max_idle), idle_timeout_(idle_timeout) {}
    endpoint_pool(const endpoint_pool&) = delete;
    endpoint_pool& operator=(const endpoint_pool&) = delete;

    // The most recently used idle connection to `address`, or null. (An endpoint whose name has
    // several addresses pools connections to each; requests take the addresses in turn.)
    upstream_ptr take(const boost::asio::ip::tcp::endpoint& address);
    // Keeps a connection that finished an exchange cleanly, or closes it when the pool is full.
    void give_back(upstream_ptr conn);
    // Closes connections idle for longer than the idle timeout, and watches the others.
    void expire(std::chrono::steady_clock::time_point now);
    // Closes every idle connection (drain, shutdown, an endpoint removed by a reload).
    void clear();
    // A reload's upstream settings: they apply to the connections kept from now on.
    void configure(std::uint32_t max_idle, std::chrono::milliseconds idle_timeout) noexcept {
        max_idle_ = max_idle;
        idle_timeout_ = idle_timeout;
    }
    // Closes the idle connections to addresses for which `gone` is true.
    template <class Pred>
    void close_if(Pred gone) {
        std::erase_if(idle_, [&](const upstream_ptr& c) { return gone(c->address); });
    }

private:
    void watch(upstream_connection& conn);
    void on_idle_readable(std::uint64_t id);

    std::uint32_t max_idle_;
    std::chrono::milliseconds idle_timeout_;
    std::vector<upstream_ptr> idle_;  // back = most recently used
    std::uint64_t next_id_ = 1;
};

}  // namespace switchyard::proxy
