// Clients that hold the proxy's connections without ever finishing a request (slowloris): a
// thousand connections trickle a request head one byte at a time, each is answered 408 once
// request_header has passed since it was accepted, and requests on other connections are
// answered all along.

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"

namespace switchyard::test {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t slow_clients = 1000;
// Each slow client has two descriptors in this process (its own and the proxy's end); the rest
// is for the upstreams, the proxy's threads and the normal requests.
constexpr rlim_t descriptors_needed = 2 * slow_clients + 200;

// Raises this process's soft limit on descriptors to `n` if it is lower; false when the hard
// limit does not allow it.
bool allow_descriptors(rlim_t n) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return false;
    }
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < n) {
        if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < n) {
            return false;
        }
        limit.rlim_cur = n;
        return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
    }
    return true;
}

rlim_t hard_descriptor_limit() {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    return limit.rlim_max;
}

// One slowloris connection: a request head that never ends, one byte per round.
struct slow_client {
    bare_connection connection;
    std::string received;  // what the proxy sent, up to its close
    bool closed = false;   // the proxy closed it (EOF or reset)
    std::size_t trickled = 0;
};

// Reads whatever `c` has received without waiting; records the close.
void take_input(slow_client& c) {
    char buf[1024];
    for (;;) {
        const ssize_t n = ::recv(c.connection.fd(), buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            c.received.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            c.closed = true;
            c.connection.close();
        }
        return;
    }
}

struct slow_count {
    std::size_t open = 0;        // not yet closed by the proxy
    std::size_t unanswered = 0;  // no byte received from the proxy yet
};

// Takes what every open slow client has received, without waiting; counts what is left.
slow_count poll_slow_clients(std::vector<slow_client>& clients) {
    std::vector<pollfd> fds;
    std::vector<slow_client*> open;
    for (auto& c : clients) {
        if (!c.closed) {
            fds.push_back({c.connection.fd(), POLLIN, 0});
            open.push_back(&c);
        }
    }
    if (::poll(fds.data(), fds.size(), 0) > 0) {
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].revents != 0) {
                take_input(*open[i]);
            }
        }
    }
    slow_count n;
    for (const auto& c : clients) {
        if (!c.closed) {
            ++n.open;
            n.unanswered += c.received.empty() ? 1U : 0U;
        }
    }
    return n;
}

TEST(slow_clients, a_thousand_slowloris_connections_get_408_while_others_are_served) {
    if (!allow_descriptors(descriptors_needed)) {
        GTEST_SKIP() << "needs " << descriptors_needed << " open descriptors; the hard limit is "
                     << hard_descriptor_limit();
    }
    upstream_server blue("blue");
    upstream_server green("green");
    auto cfg = two_slot_config(blue.port(), green.port());
    cfg.timeouts.request_header = 400ms;
    running_proxy proxy(cfg);

    // A head that never ends: each round adds a byte to a field value.
    const std::string opening = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    std::vector<slow_client> clients;
    clients.reserve(slow_clients);
    for (std::size_t i = 0; i < slow_clients; ++i) {
        clients.push_back(slow_client{bare_connection(proxy.port()), {}, false, 0});
        ASSERT_EQ(
            ::send(clients.back().connection.fd(), opening.data(), opening.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(opening.size()));
    }

    // Rounds: a normal request on a connection of its own, answered before the round goes on
    // (that answer spaces the rounds), then one more byte on every slow connection not yet
    // answered. Bounded by the slow connections' answers, and by time should they never come.
    std::size_t rounds = 0;
    std::size_t served = 0;
    std::size_t served_while_slow_pending = 0;
    const auto give_up_at = std::chrono::steady_clock::now() + 30s;
    for (slow_count left{slow_clients, slow_clients};
         left.open > 0 && std::chrono::steady_clock::now() < give_up_at;) {
        ++rounds;
        const response res = get(proxy.port());
        ASSERT_EQ(res.status, 200) << "round " << rounds << ": " << res.body;
        ++served;
        for (auto& c : clients) {
            if (!c.closed && c.received.empty() &&
                ::send(c.connection.fd(), "a", 1, MSG_NOSIGNAL) == 1) {
                ++c.trickled;
            }
        }
        // A slow client still unanswered now was waiting all through this round's request.
        left = poll_slow_clients(clients);
        served_while_slow_pending += left.unanswered > 0 ? 1U : 0U;
    }

    // Each slow connection: a 408 with the reason, then the close.
    std::size_t answered_408 = 0;
    std::size_t trickled = 0;
    std::string other_answer;  // the first that is not
    for (const auto& c : clients) {
        trickled += c.trickled;
        const bool is_408 = c.closed &&
                            c.received.starts_with("HTTP/1.1 408 Request Timeout\r\n") &&
                            c.received.find("\r\nConnection: close\r\n") != std::string::npos &&
                            c.received.ends_with("\r\n\r\nrequest header not received in time\n");
        if (is_408) {
            ++answered_408;
        } else if (other_answer.empty()) {
            other_answer = c.closed ? c.received : c.received + " (still open)";
        }
    }
    std::printf(
        "%zu rounds, %zu bytes trickled, %zu normal requests served (%zu while slow "
        "connections waited)\n",
        rounds, trickled, served, served_while_slow_pending);
    EXPECT_EQ(answered_408, slow_clients) << "for example: " << other_answer;
    EXPECT_GT(trickled, 0U);
    EXPECT_GT(served_while_slow_pending, 0U);
    // No slow connection reached the upstream.
    EXPECT_EQ(blue.request_count(), served);
    EXPECT_EQ(green.request_count(), 0U);
}

}  // namespace
}  // namespace switchyard::test
