// TLS at both ends: the proxy's TLS listener (termination, its refusals and their counts, the
// certificate reload) and TLS to a slot's endpoints (verification and its failures). Real TLS
// over loopback sockets: the clients and the TLS upstream use OpenSSL through Asio, with
// certificates from a CA the test makes.

#include <gtest/gtest.h>

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "analysis/metrics.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/test_pki.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// What a TLS client saw.
struct tls_answer {
    int status = 0;
    std::string body;
    std::string alpn;     // negotiated, "" when none
    std::string version;  // "TLSv1.3", ...
    long serial = 0;      // of the server's certificate
};

// A blocking TLS client on one connection, trusting `ca` and checking that the certificate is
// for `name`.
class tls_client {
public:
    tls_client(std::uint16_t port, const std::string& ca, const std::string& name = "localhost",
               bool offer_h2 = false)
        : ctx_(ssl::context::tls_client), stream_(io_, ctx_) {
        ctx_.load_verify_file(ca);
        ctx_.set_verify_mode(ssl::verify_peer);
        SSL_set1_host(stream_.native_handle(), name.c_str());
        static constexpr unsigned char h2_and_h1[] = {2,   'h', '2', 8,   'h', 't',
                                                      't', 'p', '/', '1', '.', '1'};
        static constexpr unsigned char h1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        if (offer_h2) {
            SSL_set_alpn_protos(stream_.native_handle(), h2_and_h1, sizeof h2_and_h1);
        } else {
            SSL_set_alpn_protos(stream_.native_handle(), h1, sizeof h1);
        }
        stream_.next_layer().connect({net::ip::address_v4::loopback(), port});
        stream_.handshake(ssl::stream_base::client);
    }

    tls_answer get(const std::string& target = "/") {
        http::request<http::empty_body> req{http::verb::get, target, 11};
        req.set(http::field::host, "localhost");
        http::write(stream_, req);
        http::response<http::string_body> res;
        http::read(stream_, buffer_, res);
        tls_answer out;
        out.status = static_cast<int>(res.result_int());
        out.body = res.body();
        const unsigned char* alpn = nullptr;
        unsigned int length = 0;
        SSL_get0_alpn_selected(stream_.native_handle(), &alpn, &length);
        out.alpn.assign(reinterpret_cast<const char*>(alpn), length);
        out.version = SSL_get_version(stream_.native_handle());
        X509* cert = SSL_get1_peer_certificate(stream_.native_handle());
        out.serial = ASN1_INTEGER_get(X509_get0_serialNumber(cert));
        X509_free(cert);
        return out;
    }

private:
    net::io_context io_;
    ssl::context ctx_;
    ssl::stream<tcp::socket> stream_;
    boost::beast::flat_buffer buffer_;
};

// An HTTPS origin on 127.0.0.1 (port 0): answers every request 200 with its name, and records
// the server name each client asked for (SNI). A thread per connection.
class tls_upstream {
public:
    tls_upstream(std::string name, const test_pki::issued& cert)
        : name_(std::move(name)), ctx_(ssl::context::tls_server), acceptor_(io_) {
        ctx_.use_certificate_chain_file(cert.cert);
        ctx_.use_private_key_file(cert.key, ssl::context::pem);
        acceptor_.open(tcp::v4());
        acceptor_.bind({net::ip::address_v4::loopback(), 0});
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        accepting_ = std::thread([this] { accept_loop(); });
    }

    ~tls_upstream() {
        {
            const std::lock_guard lock(m_);
            stopping_ = true;
            for (int fd : open_) {
                ::shutdown(fd, SHUT_RDWR);
            }
        }
        ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
        accepting_.join();
        for (auto& t : serving_) {
            t.join();
        }
    }

    std::uint16_t port() const { return port_; }
    std::vector<std::string> server_names() const {
        const std::lock_guard lock(m_);
        return server_names_;
    }

private:
    void accept_loop() {
        for (;;) {
            boost::system::error_code ec;
            tcp::socket socket(io_);
            acceptor_.accept(socket, ec);
            const std::lock_guard lock(m_);
            if (ec || stopping_) {
                return;
            }
            open_.push_back(socket.native_handle());
            serving_.emplace_back([this, s = std::move(socket)]() mutable { serve(std::move(s)); });
        }
    }

    void serve(tcp::socket socket) {
        ssl::stream<tcp::socket> stream(std::move(socket), ctx_);
        boost::system::error_code ec;
        stream.handshake(ssl::stream_base::server, ec);
        if (ec) {
            return;
        }
        if (const char* sni =
                SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name)) {
            const std::lock_guard lock(m_);
            server_names_.emplace_back(sni);
        }
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            http::read(stream, buffer, req, ec);
            if (ec) {
                return;
            }
            http::response<http::string_body> res{http::status::ok, 11};
            res.set("X-Upstream", name_);
            res.set("X-Seen-Proto", req["X-Forwarded-Proto"]);
            res.body() = name_ + "\n";
            res.prepare_payload();
            http::write(stream, res, ec);
            if (ec) {
                return;
            }
        }
    }

    std::string name_;
    net::io_context io_;
    ssl::context ctx_;
    tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    mutable std::mutex m_;
    bool stopping_ = false;
    std::vector<int> open_;
    std::vector<std::string> server_names_;
    std::thread accepting_;
    std::vector<std::thread> serving_;
};

// Collects what is logged while it lives (the workers log from their own threads).
class log_capture {
public:
    log_capture() : sink_(std::make_shared<sink>()) {
        spdlog::default_logger()->sinks().push_back(sink_);
    }
    ~log_capture() { std::erase(spdlog::default_logger()->sinks(), sink_); }
    log_capture(const log_capture&) = delete;
    log_capture& operator=(const log_capture&) = delete;

    bool contains(const std::string& text) { return sink_->contains(text); }

private:
    class sink final : public spdlog::sinks::base_sink<std::mutex> {
    public:
        bool contains(const std::string& text) {
            const std::lock_guard lock(mutex_);
            return text_.find(text) != std::string::npos;
        }

    protected:
        void sink_it_(const spdlog::details::log_msg& msg) override {
            text_.append(msg.payload.data(), msg.payload.size()).push_back('\n');
        }
        void flush_() override {}

    private:
        std::string text_;
    };
    std::shared_ptr<sink> sink_;
};

class tls_test : public ::testing::Test {
protected:
    tls_test() : cert_(pki_.issue("proxy", {"localhost", "127.0.0.1"})) {}

    // Blue and green behind a proxy with a TLS listener beside its plain one.
    config::config tls_config() {
        auto cfg = two_slot_config(blue_.port(), green_.port());
        cfg.tls.emplace();
        cfg.tls->listen = {"127.0.0.1", 0};
        cfg.tls->cert = cert_.cert;
        cfg.tls->key = cert_.key;
        return cfg;
    }

    std::uint64_t handshake_failures(running_proxy& p, analysis::tls_failure reason) {
        const auto shards = p.server().metrics_shards();
        return analysis::merge_tls_failures(shards)[static_cast<std::size_t>(reason)];
    }

    test_pki pki_;
    test_pki::issued cert_;
    upstream_server blue_{"blue"};
    upstream_server green_{"green"};
};

TEST_F(tls_test, terminates_tls_and_tells_the_upstream_the_request_came_over_https) {
    running_proxy proxy(tls_config());
    ASSERT_NE(proxy.server().tls_port(), 0);
    tls_client client(proxy.server().tls_port(), pki_.ca());
    for (int i = 0; i < 3; ++i) {  // keep-alive: three requests on one TLS connection
        const auto a = client.get("/n" + std::to_string(i));
        EXPECT_EQ(a.status, 200);
        EXPECT_EQ(a.body, "blue\n");
        EXPECT_EQ(a.alpn, "http/1.1");
    }
    ASSERT_EQ(blue_.request_count(), 3U);
    EXPECT_EQ(blue_.requests()[0].header("X-Forwarded-Proto"), "https");
    EXPECT_EQ(blue_.requests()[2].connection_id, 1U);
    // The plain listener beside it still says http.
    EXPECT_EQ(get(proxy.port()).status, 200);
    EXPECT_EQ(blue_.requests().back().header("X-Forwarded-Proto"), "http");
}

// A plain connection idle between requests may be parked as a bare socket; one over TLS must
// not be, whatever the number of idle connections: its state is in its TLS stream.
TEST_F(tls_test, many_idle_tls_connections_all_keep_their_sessions) {
    running_proxy proxy(tls_config());
    std::vector<std::unique_ptr<tls_client>> clients;
    for (int i = 0; i < 200; ++i) {  // past the worker's 128 warm sessions
        clients.push_back(std::make_unique<tls_client>(proxy.server().tls_port(), pki_.ca()));
        ASSERT_EQ(clients.back()->get().status, 200);
    }
    for (auto& c : clients) {
        EXPECT_EQ(c->get().status, 200);
    }
}

TEST_F(tls_test, a_client_offering_h2_gets_http_1_1) {
    running_proxy proxy(tls_config());
    tls_client client(proxy.server().tls_port(), pki_.ca(), "localhost", true);
    const auto a = client.get();
    EXPECT_EQ(a.status, 200);
    EXPECT_EQ(a.alpn, "http/1.1");
}

TEST_F(tls_test, curl_reaches_both_slots_through_tls) {
    running_proxy proxy(tls_config());
    const auto port = std::to_string(proxy.server().tls_port());
    const auto curl = [&] {
        const std::string command = "curl -sS --max-time 10 --cacert " + pki_.ca() +
                                    " --resolve localhost:" + port +
                                    ":127.0.0.1 https://localhost:" + port + "/ 2>&1";
        std::string out;
        FILE* p = ::popen(command.c_str(), "r");
        std::array<char, 256> chunk{};
        while (p != nullptr && std::fgets(chunk.data(), chunk.size(), p) != nullptr) {
            out += chunk.data();
        }
        if (p != nullptr) {
            ::pclose(p);
        }
        return out;
    };
    EXPECT_EQ(curl(), "blue\n");
    proxy.split().store({1, 0});  // green active
    EXPECT_EQ(curl(), "green\n");
}

TEST_F(tls_test, tls_alone_when_the_plain_listener_is_off) {
    auto cfg = tls_config();
    cfg.plain_listener = false;
    running_proxy proxy(cfg);
    EXPECT_EQ(proxy.port(), 0);
    tls_client client(proxy.server().tls_port(), pki_.ca());
    EXPECT_EQ(client.get().body, "blue\n");
}

TEST_F(tls_test, refuses_a_client_that_offers_only_tls_1_1_and_counts_it) {
    running_proxy proxy(tls_config());
    net::io_context io;
    ssl::context ctx(ssl::context::tls_client);
    // Security level 0, or this OpenSSL would not even offer TLS 1.1.
    SSL_CTX_set_security_level(ctx.native_handle(), 0);
    SSL_CTX_set_cipher_list(ctx.native_handle(), "DEFAULT@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx.native_handle(), TLS1_1_VERSION);
    ssl::stream<tcp::socket> stream(io, ctx);
    stream.next_layer().connect({net::ip::address_v4::loopback(), proxy.server().tls_port()});
    boost::system::error_code ec;
    stream.handshake(ssl::stream_base::client, ec);
    EXPECT_TRUE(ec);
    EXPECT_TRUE(eventually(
        [&] { return handshake_failures(proxy, analysis::tls_failure::protocol_version) == 1; }));
    EXPECT_EQ(blue_.request_count(), 0U);
}

TEST_F(tls_test, plain_http_to_the_tls_port_is_closed_and_counted) {
    running_proxy proxy(tls_config());
    raw_client client(proxy.server().tls_port());
    client.send(format_request("GET", "/"));
    EXPECT_TRUE(client.wait_closed());
    EXPECT_TRUE(eventually(
        [&] { return handshake_failures(proxy, analysis::tls_failure::http_request) == 1; }));
}

TEST_F(tls_test, a_handshake_that_never_comes_times_out_and_is_counted) {
    auto cfg = tls_config();
    cfg.timeouts.tls_handshake = 200ms;
    running_proxy proxy(cfg);
    raw_client client(proxy.server().tls_port());
    EXPECT_TRUE(client.wait_closed());
    EXPECT_TRUE(
        eventually([&] { return handshake_failures(proxy, analysis::tls_failure::timeout) == 1; }));
}

TEST_F(tls_test, reloaded_certificates_serve_new_connections_and_spare_open_ones) {
    auto cfg = tls_config();
    running_proxy proxy(cfg);
    tls_client before(proxy.server().tls_port(), pki_.ca());
    const long first_serial = before.get().serial;

    // A renewal written over the same files, then a reload: the paths are the same, the files
    // are read again.
    const auto renewed = pki_.issue("renewed", {"localhost"});
    std::filesystem::copy_file(renewed.cert, cfg.tls->cert,
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(renewed.key, cfg.tls->key,
                               std::filesystem::copy_options::overwrite_existing);
    proxy.server().reload(cfg);
    ASSERT_TRUE(eventually([&] {
        return tls_client(proxy.server().tls_port(), pki_.ca()).get().serial != first_serial;
    }));
    const long renewed_serial = tls_client(proxy.server().tls_port(), pki_.ca()).get().serial;
    EXPECT_EQ(before.get().status, 200);  // the open connection goes on

    // A key that does not match refuses the reload with the reason, and what runs stays.
    auto mismatched = cfg;
    mismatched.tls->key = pki_.issue("stranger", {"localhost"}).key;
    try {
        proxy.server().reload(mismatched);
        ADD_FAILURE() << "a mismatched key was taken";
    } catch (const std::runtime_error& e) {
        const std::string why = e.what();
        EXPECT_NE(why.find(mismatched.tls->key), std::string::npos) << why;
        EXPECT_NE(why.find("mismatch"), std::string::npos) << why;
    }
    tls_client after(proxy.server().tls_port(), pki_.ca());
    EXPECT_EQ(after.get().serial, renewed_serial);
}

// --- TLS to the endpoints of a slot

class upstream_tls_test : public tls_test {
protected:
    // Blue's one endpoint is `up`, over TLS with `settings`.
    config::config with_tls_blue(const tls_upstream& up, config::upstream_tls_config settings) {
        auto cfg = two_slot_config(up.port(), green_.port());
        cfg.slots[0].tls = std::move(settings);
        return cfg;
    }
};

TEST_F(upstream_tls_test, verifies_the_endpoint_and_sends_its_name) {
    tls_upstream up("secure-blue", pki_.issue("app", {"app.internal"}));
    running_proxy proxy(with_tls_blue(up, {true, pki_.ca(), "app.internal"}));
    for (int i = 0; i < 2; ++i) {
        const auto res = get(proxy.port());
        EXPECT_EQ(res.status, 200);
        EXPECT_EQ(res.body, "secure-blue\n");
        EXPECT_EQ(res.header("X-Seen-Proto"), "http");
    }
    // The second request reused the pooled TLS connection.
    EXPECT_EQ(up.server_names(), std::vector<std::string>{"app.internal"});
}

TEST_F(upstream_tls_test, a_certificate_for_another_name_is_a_502_and_the_log_says_why) {
    log_capture log;
    tls_upstream up("secure-blue", pki_.issue("other", {"other.internal"}));
    running_proxy proxy(with_tls_blue(up, {true, pki_.ca(), "app.internal"}));
    const auto res = get(proxy.port());
    EXPECT_EQ(res.status, 502);
    EXPECT_TRUE(log.contains("hostname mismatch"));
}

TEST_F(upstream_tls_test, an_expired_certificate_is_a_502_and_the_log_says_why) {
    log_capture log;
    tls_upstream up("secure-blue", pki_.issue("expired", {"app.internal"}, -48h, -24h));
    running_proxy proxy(with_tls_blue(up, {true, pki_.ca(), "app.internal"}));
    const auto res = get(proxy.port());
    EXPECT_EQ(res.status, 502);
    EXPECT_TRUE(log.contains("certificate has expired"));
    // Not marked down: the next request tries again, and fails the same way.
    EXPECT_EQ(get(proxy.port()).status, 502);
}

TEST_F(upstream_tls_test, an_untrusted_certificate_is_a_502) {
    test_pki elsewhere;
    tls_upstream up("secure-blue", elsewhere.issue("app", {"app.internal"}));
    running_proxy proxy(with_tls_blue(up, {true, pki_.ca(), "app.internal"}));
    EXPECT_EQ(get(proxy.port()).status, 502);
}

TEST_F(upstream_tls_test, verify_false_takes_any_certificate) {
    tls_upstream up("secure-blue", pki_.issue("expired", {"other.internal"}, -48h, -24h));
    running_proxy proxy(with_tls_blue(up, {false, "", ""}));
    const auto res = get(proxy.port());
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "secure-blue\n");
}

}  // namespace
}  // namespace switchyard::test

namespace switchyard::test {
namespace {

// The health of blue's one endpoint, when the table has it.
std::optional<proxy::endpoint_health_state> blue_health(running_proxy& proxy) {
    const auto table = proxy.server().endpoint_health();
    if (table->endpoints.empty()) {
        return std::nullopt;
    }
    return table->endpoints.front();
}

config::health_check_config fast_tls_checks() {
    config::health_check_config c;
    c.interval = 100ms;
    c.timeout = 100ms;
    c.healthy = 1;
    c.unhealthy = 1;
    return c;
}

TEST_F(upstream_tls_test, health_checks_speak_tls_to_a_tls_slot) {
    tls_upstream up("secure-blue", pki_.issue("app", {"app.internal"}));
    auto cfg = with_tls_blue(up, {true, pki_.ca(), "app.internal"});
    cfg.slots[0].health_check = fast_tls_checks();
    running_proxy proxy(cfg);
    // Two checks, no request: each check was a verified handshake with the name.
    ASSERT_TRUE(eventually([&] { return up.server_names().size() >= 2; }));
    EXPECT_EQ(up.server_names().front(), "app.internal");
    const auto h = blue_health(proxy);
    ASSERT_TRUE(h.has_value());
    EXPECT_TRUE(h->up());
    EXPECT_EQ(h->last_failure, "");
}

TEST_F(upstream_tls_test, a_check_whose_certificate_does_not_verify_fails) {
    tls_upstream up("secure-blue", pki_.issue("other", {"other.internal"}));
    auto cfg = with_tls_blue(up, {true, pki_.ca(), "app.internal"});
    cfg.slots[0].health_check = fast_tls_checks();
    running_proxy proxy(cfg);
    ASSERT_TRUE(eventually([&] {
        const auto h = blue_health(proxy);
        return h && !h->up();
    }));
    EXPECT_EQ(blue_health(proxy)->last_failure.rfind("TLS handshake failed: ", 0), 0U)
        << blue_health(proxy)->last_failure;
    const auto res = get(proxy.port());
    EXPECT_EQ(res.status, 503);
}

}  // namespace
}  // namespace switchyard::test
