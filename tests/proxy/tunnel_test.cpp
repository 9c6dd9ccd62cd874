// Upgrade and tunnels (RFC 9110 §7.8, RFC 6455 §4): a real proxy::server between raw-socket
// clients and a raw loopback upstream that answers 101 and echoes lines, tagged with its name.
// Every wait is on a condition or a read with a timeout.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/test_pki.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

using namespace std::chrono_literals;

// A WebSocket-ish upstream on 127.0.0.1 port 0, one thread per connection. To a request with
// an Upgrade field (or to any request when `always_101`) it answers 101 and, in the same write,
// "<name> hello\n"; then, for each line it reads, "<name> <line>". The line "shut" is answered
// with "<name> shut\n" and a half-close: what comes after is kept in after_shut() until EOF. On
// EOF from the proxy it writes "<name> bye\n" (unless it has half-closed) and closes. A request
// without Upgrade gets a 200 "<name> plain\n" and the connection closes.
class tunnel_upstream {
public:
    explicit tunnel_upstream(std::string name, bool always_101 = false)
        : name_(std::move(name)), always_101_(always_101) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listen_fd_, 16) != 0) {
            throw std::runtime_error("tunnel_upstream: cannot listen");
        }
        socklen_t len = sizeof addr;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }

    ~tunnel_upstream() {
        stopping_ = true;
        ::shutdown(listen_fd_, SHUT_RDWR);
        acceptor_.join();
        ::close(listen_fd_);
        {
            const std::lock_guard lock(mutex_);
            for (const int fd : open_fds_) {
                ::shutdown(fd, SHUT_RDWR);
            }
        }
        for (auto& t : connections_) {
            t.join();
        }
    }

    tunnel_upstream(const tunnel_upstream&) = delete;
    tunnel_upstream& operator=(const tunnel_upstream&) = delete;

    std::uint16_t port() const { return port_; }
    std::vector<std::string> heads() const {
        const std::lock_guard lock(mutex_);
        return heads_;
    }
    std::string after_shut() const {
        const std::lock_guard lock(mutex_);
        return after_shut_;
    }
    std::size_t eofs() const { return eofs_.load(); }
    std::size_t connections_open() const {
        const std::lock_guard lock(mutex_);
        return open_fds_.size();
    }

private:
    void accept_loop() {
        for (;;) {
            const int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd < 0) {
                return;  // shut down by the destructor
            }
            const std::lock_guard lock(mutex_);
            if (stopping_) {
                ::close(fd);
                return;
            }
            open_fds_.push_back(fd);
            connections_.emplace_back([this, fd] {
                serve(fd);
                const std::lock_guard inner(mutex_);
                open_fds_.erase(std::find(open_fds_.begin(), open_fds_.end(), fd));
                ::close(fd);
            });
        }
    }

    static bool write_all(int fd, std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    void serve(int fd) {
        std::string in;
        char chunk[4096];
        std::size_t head_end = std::string::npos;
        while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n <= 0) {
                return;
            }
            in.append(chunk, static_cast<std::size_t>(n));
        }
        std::string head = in.substr(0, head_end + 4);
        in.erase(0, head_end + 4);
        std::string lower = head;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        {
            const std::lock_guard lock(mutex_);
            heads_.push_back(head);
        }
        if (!always_101_ && lower.find("\r\nupgrade:") == std::string::npos) {
            const std::string body = name_ + " plain\n";
            write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                              "\r\nConnection: close\r\n\r\n" + body);
            return;
        }
        if (!write_all(
                fd,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                "\r\n" +
                    name_ + " hello\n")) {
            return;
        }
        bool shut = false;
        for (;;) {
            std::size_t eol = 0;
            while (!shut && (eol = in.find('\n')) != std::string::npos) {
                const std::string line = in.substr(0, eol);
                in.erase(0, eol + 1);
                if (!write_all(fd, name_ + " " + line + "\n")) {
                    return;
                }
                if (line == "shut") {
                    ::shutdown(fd, SHUT_WR);
                    shut = true;
                }
            }
            if (shut && !in.empty()) {
                const std::lock_guard lock(mutex_);
                after_shut_ += in;
                in.clear();
            }
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n <= 0) {
                if (n == 0) {
                    ++eofs_;
                    if (!shut) {
                        write_all(fd, name_ + " bye\n");
                    }
                }
                return;
            }
            in.append(chunk, static_cast<std::size_t>(n));
        }
    }

    std::string name_;
    bool always_101_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> eofs_{0};
    mutable std::mutex mutex_;
    std::vector<int> open_fds_;
    std::vector<std::string> heads_;
    std::string after_shut_;
    std::vector<std::thread> connections_;
    std::thread acceptor_;  // last: started once everything above exists
};

constexpr std::string_view upgrade_head =
    "GET /chat HTTP/1.1\r\nHost: chat.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

struct tunnel_test : ::testing::Test {
    tunnel_upstream blue{"blue"};
    tunnel_upstream green{"green"};

    config::config cfg() const { return two_slot_config(blue.port(), green.port()); }
};

// The head of what the proxy sent the client, lower-cased for field checks.
std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

analysis::per_slot<analysis::slot_totals> totals(running_proxy& proxy) {
    const auto shards = proxy.server().metrics_shards();
    return analysis::merge(shards);
}

// Sends the upgrade request, then reads the 101 head and the upstream's greeting.
void open_tunnel(raw_client& client, std::string_view name, std::string_view after_head = {}) {
    client.send(std::string(upgrade_head) + std::string(after_head));
    const std::string head = lower(client.read_until("\r\n\r\n"));
    ASSERT_EQ(head.rfind("http/1.1 101 switching protocols\r\n", 0), 0U) << head;
    ASSERT_EQ(client.read_until("\n"), std::string(name) + " hello\n");
}

TEST_F(tunnel_test, relays_bytes_both_ways_in_order) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    // The request head and the first bytes of the new protocol in one write: the proxy reads
    // them together and must send those bytes on after the head, once the switch is made.
    client.send(std::string(upgrade_head) + "early\n");
    const std::string head = client.read_until("\r\n\r\n");
    const std::string fields = lower(head);
    EXPECT_EQ(fields.rfind("http/1.1 101 switching protocols\r\n", 0), 0U) << head;
    EXPECT_NE(fields.find("\r\nupgrade: websocket\r\n"), std::string::npos) << head;
    EXPECT_NE(fields.find("\r\nconnection: upgrade\r\n"), std::string::npos) << head;
    EXPECT_NE(fields.find("\r\nsec-websocket-accept: "), std::string::npos) << head;
    EXPECT_EQ(fields.find("content-length"), std::string::npos) << head;
    // The greeting came in the same upstream write as the 101 head: it comes first, then the
    // echo of the early bytes.
    EXPECT_EQ(client.read_until("blue early\n"), "blue hello\nblue early\n");
    for (const std::string line : {"one", "two", "three"}) {
        client.send(line + "\n");
        EXPECT_EQ(client.read_until("\n"), "blue " + line + "\n");
    }
    client.send(std::string(3 * 16 * 1024, 'x') + "\n");  // more than one buffer each way
    EXPECT_EQ(client.read_until("\n"), "blue " + std::string(3 * 16 * 1024, 'x') + "\n");

    ASSERT_EQ(blue.heads().size(), 1U);
    const std::string sent = lower(blue.heads()[0]);
    EXPECT_NE(sent.find("\r\nupgrade: websocket\r\n"), std::string::npos) << sent;
    EXPECT_NE(sent.find("\r\nconnection: upgrade\r\n"), std::string::npos) << sent;
    EXPECT_NE(sent.find("\r\nsec-websocket-key: "), std::string::npos) << sent;
    EXPECT_TRUE(green.heads().empty());
}

TEST_F(tunnel_test, client_half_close_is_passed_on_and_the_other_way_keeps_going) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    open_tunnel(client, "blue");
    client.shutdown_send();
    // The upstream writes "bye" only once it has read the client's EOF, through the proxy.
    EXPECT_EQ(client.read_until_close(), "blue bye\n");
    EXPECT_EQ(blue.eofs(), 1U);
    EXPECT_TRUE(eventually([&] { return blue.connections_open() == 0; }));
    EXPECT_TRUE(eventually([&] { return totals(proxy)[0].tunnels_open == 0; }));
}

TEST_F(tunnel_test, upstream_half_close_is_passed_on_and_the_client_may_still_send) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    open_tunnel(client, "blue");
    client.send("shut\n");
    EXPECT_EQ(client.read_until_close(), "blue shut\n");  // the upstream's EOF reached us
    client.send("still here\n");
    EXPECT_TRUE(eventually([&] { return blue.after_shut() == "still here\n"; }))
        << blue.after_shut();
    client.close();
    EXPECT_TRUE(eventually([&] { return blue.connections_open() == 0; }));
    EXPECT_TRUE(eventually([&] { return totals(proxy)[0].tunnels_open == 0; }));
}

TEST_F(tunnel_test, tunnel_idle_closes_an_idle_tunnel) {
    auto c = cfg();
    c.timeouts.tunnel_idle = 200ms;
    running_proxy proxy(c);
    raw_client client(proxy.port());
    open_tunnel(client, "blue");
    EXPECT_TRUE(client.wait_closed(10s));
    EXPECT_TRUE(eventually([&] { return blue.connections_open() == 0; }));
    EXPECT_TRUE(eventually([&] { return totals(proxy)[0].tunnels_open == 0; }));
}

TEST_F(tunnel_test, metrics_count_the_101_once_and_the_tunnel_open_then_closed) {
    running_proxy proxy(cfg());
    {
        raw_client client(proxy.port());
        open_tunnel(client, "blue");
        ASSERT_TRUE(eventually([&] { return totals(proxy)[0].tunnels_open == 1; }));
        const auto t = totals(proxy);
        EXPECT_EQ(t[0].tunnels_total, 1U);
        EXPECT_EQ(t[0].by_status[101 - 100], 1U);
        EXPECT_EQ(t[0].requests(), 1U);
        EXPECT_EQ(t[0].in_flight, 0U);         // the request ended with the 101
        EXPECT_EQ(t[0].upstream.count(), 1U);  // its upstream time, up to the 101 head
        EXPECT_EQ(t[1].tunnels_open, 0U);
        client.send("ping\n");
        EXPECT_EQ(client.read_until("\n"), "blue ping\n");
    }
    EXPECT_TRUE(eventually([&] { return totals(proxy)[0].tunnels_open == 0; }));
    raw_client again(proxy.port());
    open_tunnel(again, "blue");
    EXPECT_TRUE(eventually([&] { return totals(proxy)[0].tunnels_open == 1; }));
    const auto t = totals(proxy);
    EXPECT_EQ(t[0].tunnels_total, 2U);
    EXPECT_EQ(t[0].requests(), 2U);  // the tunnel's bytes are no requests
    EXPECT_EQ(t[0].errors(), 0U);
}

TEST_F(tunnel_test, a_101_to_a_request_that_asked_for_no_upgrade_is_a_502) {
    tunnel_upstream rogue("rogue", true);
    running_proxy proxy(two_slot_config(rogue.port(), green.port()));
    raw_client client(proxy.port());
    client.send(format_request("GET", "/"));
    EXPECT_EQ(client.read_response().status, 502);

    // An Upgrade the proxy does not allow is stripped, so a 101 to it is no answer either.
    raw_client other(proxy.port());
    other.send(format_request("GET", "/", {{"Connection", "upgrade"}, {"Upgrade", "foo"}}));
    EXPECT_EQ(other.read_response().status, 502);
    EXPECT_EQ(totals(proxy)[0].tunnels_total, 0U);
}

TEST_F(tunnel_test, an_upgrade_not_allowed_is_stripped) {
    auto c = cfg();
    c.upgrade.allow.clear();  // no upgrade at all
    running_proxy proxy(c);
    raw_client client(proxy.port());
    client.send(std::string(upgrade_head));
    const response res = client.read_response();
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "blue plain\n");
    ASSERT_EQ(blue.heads().size(), 1U);
    const std::string sent = lower(blue.heads()[0]);
    EXPECT_EQ(sent.find("upgrade"), std::string::npos) << sent;  // neither field nor token
}

TEST_F(tunnel_test, h2c_is_refused_even_when_listed) {
    auto c = cfg();
    c.upgrade.allow = {"websocket", "h2c"};  // the configuration file refuses this; here it is set
    running_proxy proxy(c);
    raw_client client(proxy.port());
    client.send(format_request("GET", "/",
                               {{"Connection", "Upgrade, HTTP2-Settings"},
                                {"Upgrade", "h2c"},
                                {"HTTP2-Settings", "AAMAAABkAAQAAP__"}}));
    const response res = client.read_response();
    EXPECT_EQ(res.status, 200);
    ASSERT_EQ(blue.heads().size(), 1U);
    std::string sent = lower(blue.heads()[0]);
    EXPECT_EQ(sent.find("upgrade"), std::string::npos) << sent;
    EXPECT_EQ(sent.find("http2-settings"), std::string::npos) << sent;

    // Offered together with an allowed protocol, only that one goes on.
    raw_client both(proxy.port());
    both.send(
        format_request("GET", "/", {{"Connection", "Upgrade"}, {"Upgrade", "h2c, websocket"}}));
    const std::string head = lower(both.read_until("\r\n\r\n"));
    EXPECT_EQ(head.rfind("http/1.1 101 ", 0), 0U) << head;
    ASSERT_EQ(blue.heads().size(), 2U);
    sent = lower(blue.heads()[1]);
    EXPECT_NE(sent.find("\r\nupgrade: websocket\r\n"), std::string::npos) << sent;
    EXPECT_EQ(sent.find("h2c"), std::string::npos) << sent;
}

TEST_F(tunnel_test, an_http10_request_is_never_upgraded) {
    running_proxy proxy(cfg());
    raw_client client(proxy.port());
    client.send("GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    const response res = client.read_response();
    EXPECT_EQ(res.status, 200);
    ASSERT_EQ(blue.heads().size(), 1U);
    EXPECT_EQ(lower(blue.heads()[0]).find("upgrade"), std::string::npos) << blue.heads()[0];
}

TEST_F(tunnel_test, a_switch_leaves_an_open_tunnel_on_its_slot) {
    running_proxy proxy(cfg());
    raw_client to_blue(proxy.port());
    open_tunnel(to_blue, "blue");
    proxy.split().store({1, 0});  // everything to green from now on
    to_blue.send("after the switch\n");
    EXPECT_EQ(to_blue.read_until("\n"), "blue after the switch\n");

    raw_client to_green(proxy.port());
    open_tunnel(to_green, "green");
    to_green.send("new\n");
    EXPECT_EQ(to_green.read_until("\n"), "green new\n");
    ASSERT_TRUE(eventually([&] {
        const auto t = totals(proxy);
        return t[0].tunnels_open == 1 && t[1].tunnels_open == 1;
    }));
    to_blue.send("still blue\n");
    EXPECT_EQ(to_blue.read_until("\n"), "blue still blue\n");
}

TEST_F(tunnel_test, drain_leaves_a_tunnel_open_until_its_deadline_then_closes_it) {
    running_proxy proxy(cfg());
    raw_client tunnel(proxy.port());
    open_tunnel(tunnel, "blue");
    raw_client idle(proxy.port());
    idle.send(format_request("GET", "/"));
    ASSERT_EQ(idle.read_response().status, 200);

    auto drained = std::async(std::launch::async, [&] { proxy.server().drain(3s); });
    EXPECT_TRUE(idle.wait_closed());  // the drain has begun: idle connections close at once
    tunnel.send("during the drain\n");
    EXPECT_EQ(tunnel.read_until("\n"), "blue during the drain\n");
    // Past the deadline the tunnel is cut: both of its connections close.
    EXPECT_TRUE(tunnel.wait_closed(20s));
    drained.get();
    EXPECT_TRUE(eventually([&] { return blue.connections_open() == 0; }));
}

// A tunnel from the TLS listener (wss://): the same relay, with the client's bytes decrypted
// on the way in and encrypted on the way out, and the first bytes after the head kept.
TEST_F(tunnel_test, a_tunnel_from_the_tls_listener_relays_through_tls) {
    namespace net = boost::asio;
    namespace ssl = net::ssl;
    test_pki pki;
    const auto cert = pki.issue("proxy", {"localhost"});
    auto c = cfg();
    c.tls.emplace();
    c.tls->listen = {"127.0.0.1", 0};
    c.tls->cert = cert.cert;
    c.tls->key = cert.key;
    running_proxy proxy(c);

    net::io_context io;
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(pki.ca());
    ctx.set_verify_mode(ssl::verify_peer);
    ssl::stream<net::ip::tcp::socket> stream(io, ctx);
    SSL_set1_host(stream.native_handle(), "localhost");
    stream.next_layer().connect({net::ip::address_v4::loopback(), proxy.server().tls_port()});
    stream.handshake(ssl::stream_base::client);
    std::string received;
    const auto read_until = [&](std::string_view marker) {
        while (received.find(marker) == std::string::npos) {
            std::array<char, 4096> chunk{};
            received.append(chunk.data(), stream.read_some(net::buffer(chunk)));
        }
        const std::size_t end = received.find(marker) + marker.size();
        std::string out = received.substr(0, end);
        received.erase(0, end);
        return out;
    };
    net::write(stream, net::buffer(std::string(upgrade_head) + "early\n"));
    EXPECT_EQ(lower(read_until("\r\n\r\n")).rfind("http/1.1 101 switching protocols\r\n", 0), 0U);
    EXPECT_EQ(read_until("blue early\n"), "blue hello\nblue early\n");
    const std::string big(40 * 1024, 'x');  // more than one TLS record each way
    net::write(stream, net::buffer(big + "\n"));
    EXPECT_EQ(read_until("\n"), "blue " + big + "\n");
    EXPECT_EQ(blue.heads().size(), 1U);
    EXPECT_EQ(totals(proxy)[0].by_status[101 - 100], 1U);
    // The client's close ends the tunnel both ways: the upstream sees its EOF.
    boost::system::error_code ignored;
    stream.next_layer().close(ignored);
    EXPECT_TRUE(eventually([&] { return blue.connections_open() == 0; }));
}

}  // namespace
}  // namespace switchyard::test
