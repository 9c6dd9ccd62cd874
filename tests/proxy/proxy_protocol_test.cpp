// The PROXY protocol header on the client listeners: the parser over bytes (both versions, every
// way a header can be refused, every incomplete prefix), then a running proxy that takes the
// client's address from it into X-Forwarded-For and the access log, refuses connections without
// one with no answer and counts them, and reads a header sent before a TLS handshake.

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "analysis/metrics.hpp"
#include "proxy/proxy_protocol.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_pki.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

namespace pp = proxy::proxy_protocol;
namespace net = boost::asio;
namespace ip = net::ip;
using config::proxy_protocol_version;
using failure = analysis::proxy_protocol_failure;
using namespace std::chrono_literals;

constexpr auto v1 = proxy_protocol_version::v1;
constexpr auto v2 = proxy_protocol_version::v2;

pp::parse_result parse(proxy_protocol_version version, std::string_view bytes) {
    return pp::parse(version, std::span<const char>(bytes.data(), bytes.size()));
}

const std::string v2_signature("\r\n\r\n\0\r\nQUIT\n", 12);

// A version 2 header: signature, version 2 with `command`, `family_protocol`, the length of
// `rest`, then `rest` (addresses and TLVs).
std::string v2_header(unsigned char command, unsigned char family_protocol,
                      const std::string& rest) {
    std::string out = v2_signature;
    out += static_cast<char>(0x20 | command);
    out += static_cast<char>(family_protocol);
    out += static_cast<char>((rest.size() >> 8) & 0xFF);
    out += static_cast<char>(rest.size() & 0xFF);
    return out + rest;
}

std::string bytes_of(std::initializer_list<int> values) {
    std::string out;
    for (const int v : values) {
        out += static_cast<char>(v);
    }
    return out;
}

// PROXY, TCP over IPv4: 192.0.2.10:51000 -> 198.51.100.1:443, then a TLV of each kind the
// balancers send (ALPN, and AWS's VPC endpoint id), which the parser skips.
std::string v2_ipv4_with_tlvs() {
    std::string rest = bytes_of({192, 0, 2, 10, 198, 51, 100, 1, 0xC7, 0x38, 0x01, 0xBB});
    rest += bytes_of({0x01, 0x00, 0x02}) + "h2";                            // PP2_TYPE_ALPN
    rest += bytes_of({0xEA, 0x00, 0x09}) + std::string("\x01vpce-123", 9);  // PP2_TYPE_AWS
    return v2_header(0x1, 0x11, rest);
}

// --- v1 ---

TEST(proxy_protocol_parse, v1_tcp4_gives_the_source_and_leaves_the_request) {
    const std::string header = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    const auto r = parse(v1, header + "GET / HTTP/1.1\r\n");
    ASSERT_EQ(r.status, pp::parse_status::done);
    EXPECT_EQ(r.consumed, header.size());
    ASSERT_TRUE(r.source.has_value());
    EXPECT_EQ(r.source->address().to_string(), "192.0.2.1");
    EXPECT_EQ(r.source->port(), 56324);
}

TEST(proxy_protocol_parse, v1_tcp6) {
    const std::string header = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
    const auto r = parse(v1, header);
    ASSERT_EQ(r.status, pp::parse_status::done);
    EXPECT_EQ(r.consumed, header.size());
    ASSERT_TRUE(r.source.has_value());
    EXPECT_EQ(r.source->address().to_string(), "2001:db8::1");
    EXPECT_EQ(r.source->port(), 65535);
}

TEST(proxy_protocol_parse, v1_unknown_keeps_the_connections_address) {
    for (const std::string header :
         {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"}) {
        const auto r = parse(v1, header + "GET");
        ASSERT_EQ(r.status, pp::parse_status::done) << header;
        EXPECT_EQ(r.consumed, header.size());
        EXPECT_FALSE(r.source.has_value());
    }
}

TEST(proxy_protocol_parse, v1_of_the_longest_length_is_taken_one_byte_more_is_not) {
    std::string longest = "PROXY UNKNOWN ";
    longest.append(pp::max_v1_bytes - longest.size() - 2, 'x');
    longest += "\r\n";
    ASSERT_EQ(longest.size(), pp::max_v1_bytes);
    EXPECT_EQ(parse(v1, longest).status, pp::parse_status::done);

    std::string too_long = "PROXY UNKNOWN ";
    too_long.append(pp::max_v1_bytes - too_long.size(), 'x');  // 107 bytes and no LF yet
    const auto r = parse(v1, too_long + "\r\n");
    EXPECT_EQ(r.status, pp::parse_status::error);
    EXPECT_EQ(r.failure, failure::malformed);
    // One byte short of the limit with no LF is still waiting for it.
    EXPECT_EQ(parse(v1, too_long.substr(0, pp::max_v1_bytes - 1)).status,
              pp::parse_status::incomplete);
}

TEST(proxy_protocol_parse, every_prefix_of_a_v1_header_is_incomplete) {
    const std::string header = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    for (std::size_t n = 0; n < header.size(); ++n) {
        const auto r = parse(v1, header.substr(0, n));
        EXPECT_EQ(r.status, pp::parse_status::incomplete) << n;
        EXPECT_EQ(r.wanted, 0U) << n;  // a v1 header's length is not known before its end
    }
}

TEST(proxy_protocol_parse, malformed_v1_headers_are_refused) {
    for (const std::string header : {
             "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n",      // LF without CR
             "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\rX\n",   // CR not before the LF
             "PROXY TCP5 192.0.2.1 198.51.100.2 56324 443\r\n",    // no such protocol
             "PROXY TCP4 192.0.2 198.51.100.2 56324 443\r\n",      // three parts
             "PROXY TCP4 192.0.2.256 198.51.100.2 56324 443\r\n",  // part out of range
             "PROXY TCP4 2001:db8::1 198.51.100.2 56324 443\r\n",  // IPv6 in TCP4
             "PROXY TCP6 192.0.2.1 2001:db8::2 56324 443\r\n",     // IPv4 in TCP6
             "PROXY TCP6 fe80::1%eth0 2001:db8::2 56324 443\r\n",  // a scope id
             "PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",    // port out of range
             "PROXY TCP4 192.0.2.1 198.51.100.2 -1 443\r\n",       // signed port
             "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",        // a field missing
             "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 7\r\n",  // a field too many
             "PROXY TCP4  192.0.2.1 198.51.100.2 56324 443\r\n",   // two spaces
             "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 \r\n",   // trailing space
             "PROXY \r\n",                                         // nothing
         }) {
        const auto r = parse(v1, header);
        EXPECT_EQ(r.status, pp::parse_status::error) << header;
        EXPECT_EQ(r.failure, failure::malformed) << header;
    }
}

TEST(proxy_protocol_parse, a_request_without_a_header_is_missing_as_soon_as_it_shows) {
    for (const auto version : {v1, v2}) {
        for (const std::string bytes : {"GET / HTTP/1.1\r\n", "PUT", "G", "\x16\x03\x01"}) {
            const auto r = parse(version, bytes);
            EXPECT_EQ(r.status, pp::parse_status::error) << bytes;
            EXPECT_EQ(r.failure, failure::missing) << bytes;
        }
    }
    // A mangled v2 signature is no header either.
    std::string mangled = v2_ipv4_with_tlvs();
    mangled[9] = 'X';
    EXPECT_EQ(parse(v2, mangled).failure, failure::missing);
}

TEST(proxy_protocol_parse, the_other_version_is_named_as_such) {
    const auto v1_read_as_v2 = parse(v2, "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
    EXPECT_EQ(v1_read_as_v2.status, pp::parse_status::error);
    EXPECT_EQ(v1_read_as_v2.failure, failure::wrong_version);
    const auto v2_read_as_v1 = parse(v1, v2_ipv4_with_tlvs());
    EXPECT_EQ(v2_read_as_v1.status, pp::parse_status::error);
    EXPECT_EQ(v2_read_as_v1.failure, failure::wrong_version);
    // Named only once the other version's start is complete: until then a later byte could
    // still make it no header at all.
    EXPECT_EQ(parse(v1, v2_signature.substr(0, 11)).status, pp::parse_status::incomplete);
    const auto partial = parse(v2, "PROXY");
    EXPECT_EQ(partial.status, pp::parse_status::incomplete);
    EXPECT_EQ(partial.wanted, 11U);
    EXPECT_EQ(parse(v2, "PROXY ").failure, failure::wrong_version);
    EXPECT_EQ(parse(v2, "PROXI").failure, failure::missing);
}

// --- v2 ---

TEST(proxy_protocol_parse, v2_ipv4_with_tlvs_skips_them) {
    const std::string header = v2_ipv4_with_tlvs();
    const auto r = parse(v2, header + "GET / HTTP/1.1\r\n");
    ASSERT_EQ(r.status, pp::parse_status::done);
    EXPECT_EQ(r.consumed, header.size());
    ASSERT_TRUE(r.source.has_value());
    EXPECT_EQ(r.source->address().to_string(), "192.0.2.10");
    EXPECT_EQ(r.source->port(), 51000);
}

TEST(proxy_protocol_parse, v2_ipv6) {
    std::string rest = bytes_of({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07});
    rest += bytes_of({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});
    rest += bytes_of({0x30, 0x39, 0x00, 0x50});
    rest += bytes_of({0x04, 0x00, 0x00});  // PP2_TYPE_NOOP, empty
    const std::string header = v2_header(0x1, 0x21, rest);
    const auto r = parse(v2, header);
    ASSERT_EQ(r.status, pp::parse_status::done);
    EXPECT_EQ(r.consumed, header.size());
    ASSERT_TRUE(r.source.has_value());
    EXPECT_EQ(r.source->address().to_string(), "2001:db8::7");
    EXPECT_EQ(r.source->port(), 12345);
}

TEST(proxy_protocol_parse, v2_local_and_addressless_families_keep_the_connections_address) {
    // LOCAL: the balancer's health check, with or without an address block (ignored).
    const std::string local = v2_header(0x0, 0x00, "");
    const auto r = parse(v2, local);
    ASSERT_EQ(r.status, pp::parse_status::done);
    EXPECT_EQ(r.consumed, 16U);
    EXPECT_FALSE(r.source.has_value());
    const std::string local_with_block =
        v2_header(0x0, 0x11, bytes_of({1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2}));
    EXPECT_EQ(parse(v2, local_with_block).consumed, local_with_block.size());
    EXPECT_FALSE(parse(v2, local_with_block).source.has_value());
    // PROXY with UNSPEC, and with AF_UNIX addresses (216 bytes).
    EXPECT_FALSE(parse(v2, v2_header(0x1, 0x00, "")).source.has_value());
    EXPECT_EQ(parse(v2, v2_header(0x1, 0x00, "")).status, pp::parse_status::done);
    const auto unix_socket = parse(v2, v2_header(0x1, 0x31, std::string(216, '\0')));
    EXPECT_EQ(unix_socket.status, pp::parse_status::done);
    EXPECT_FALSE(unix_socket.source.has_value());
}

TEST(proxy_protocol_parse, every_prefix_of_a_v2_header_wants_exactly_the_rest) {
    const std::string header = v2_ipv4_with_tlvs();
    for (std::size_t n = 0; n < header.size(); ++n) {
        const auto r = parse(v2, header.substr(0, n));
        ASSERT_EQ(r.status, pp::parse_status::incomplete) << n;
        // Before the length is in, the 16 fixed bytes; after, the whole header.
        EXPECT_EQ(r.wanted, (n < 16 ? 16 : header.size()) - n) << n;
    }
}

TEST(proxy_protocol_parse, malformed_v2_headers_are_refused) {
    const std::string v4_block = bytes_of({192, 0, 2, 10, 198, 51, 100, 1, 0xC7, 0x38, 0x01, 0xBB});
    std::string bad_version = v2_header(0x1, 0x11, v4_block);
    bad_version[12] = 0x11;  // version 1 in the binary form
    std::string too_long = v2_header(0x1, 0x11, v4_block);
    too_long[14] = static_cast<char>(0xFF);  // 65280 + 12 bytes announced
    for (const std::string& header : {
             bad_version,
             v2_header(0x2, 0x11, v4_block),                // command 2
             v2_header(0x1, 0x41, v4_block),                // family 4
             v2_header(0x1, 0x13, v4_block),                // protocol 3
             v2_header(0x1, 0x12, v4_block),                // DGRAM
             v2_header(0x1, 0x11, v4_block.substr(0, 8)),   // INET in 8 bytes
             v2_header(0x1, 0x21, v4_block),                // INET6 in 12 bytes
             v2_header(0x1, 0x31, std::string(100, '\0')),  // UNIX in 100 bytes
             too_long,
         }) {
        // Refused on the fixed 16 bytes alone: no wait for a block that is not coming.
        const auto r = parse(v2, header.substr(0, 16));
        EXPECT_EQ(r.status, pp::parse_status::error);
        EXPECT_EQ(r.failure, failure::malformed);
    }
}

// --- a running proxy ---

class proxy_protocol_test : public ::testing::Test {
protected:
    config::config make_config(proxy_protocol_version version) {
        auto cfg = two_slot_config(blue_.port(), green_.port());
        cfg.listen_proxy_protocol = version;
        cfg.access_log.to = dir_.file("access.log");
        return cfg;
    }

    static std::uint64_t failures(running_proxy& p, failure reason) {
        const auto shards = p.server().metrics_shards();
        return analysis::merge_proxy_protocol_failures(shards)[static_cast<std::size_t>(reason)];
    }

    // The access log once the proxy has drained (which flushes every worker's lines).
    std::string drained_log(running_proxy& p) {
        p.server().drain(5000ms);
        std::ifstream in(dir_.file("access.log"), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    // Sends `first` (a header, or not) and a request; the connection closes with no answer.
    static void expect_closed_without_answer(running_proxy& p, const std::string& first) {
        raw_client client(p.port());
        client.send(first + format_request("GET", "/"));
        EXPECT_EQ(client.read_until_close(), "");
    }

    temp_dir dir_;
    upstream_server blue_{"blue"};
    upstream_server green_{"green"};
};

TEST_F(proxy_protocol_test, v1_address_reaches_the_upstream_and_the_access_log) {
    running_proxy proxy(make_config(v1));
    raw_client client(proxy.port());
    // The header and the request in one write: the request's bytes after it are kept.
    client.send("PROXY TCP4 203.0.113.7 198.51.100.2 40000 80\r\n" + format_request("GET", "/a"));
    EXPECT_EQ(client.read_response().status, 200);
    // The same connection's next request keeps the address.
    client.send(format_request("GET", "/b"));
    EXPECT_EQ(client.read_response().status, 200);
    ASSERT_EQ(blue_.request_count(), 2U);
    EXPECT_EQ(blue_.requests()[0].header("X-Forwarded-For"), "203.0.113.7");
    EXPECT_EQ(blue_.requests()[1].header("X-Forwarded-For"), "203.0.113.7");
    client.close();
    const std::string log = drained_log(proxy);
    EXPECT_NE(log.find("\"client\":\"203.0.113.7\""), std::string::npos) << log;
    EXPECT_EQ(log.find("\"client\":\"127.0.0.1\""), std::string::npos) << log;
}

TEST_F(proxy_protocol_test, v1_header_sent_byte_by_byte_is_read_to_its_end) {
    running_proxy proxy(make_config(v1));
    raw_client client(proxy.port());
    const std::string header = "PROXY TCP6 2001:db8::42 2001:db8::1 40000 80\r\n";
    for (const char c : header) {
        client.send(std::string_view(&c, 1));
    }
    client.send(format_request("GET", "/"));
    EXPECT_EQ(client.read_response().status, 200);
    ASSERT_EQ(blue_.request_count(), 1U);
    EXPECT_EQ(blue_.requests()[0].header("X-Forwarded-For"), "2001:db8::42");
}

TEST_F(proxy_protocol_test, v2_address_reaches_the_upstream_and_local_keeps_the_socket_peer) {
    running_proxy proxy(make_config(v2));
    {
        raw_client client(proxy.port());
        client.send(v2_ipv4_with_tlvs() + format_request("GET", "/"));
        EXPECT_EQ(client.read_response().status, 200);
    }
    {
        raw_client client(proxy.port());
        client.send(v2_header(0x0, 0x00, "") + format_request("GET", "/"));
        EXPECT_EQ(client.read_response().status, 200);
    }
    ASSERT_EQ(blue_.request_count(), 2U);
    EXPECT_EQ(blue_.requests()[0].header("X-Forwarded-For"), "192.0.2.10");
    EXPECT_EQ(blue_.requests()[1].header("X-Forwarded-For"), "127.0.0.1");
    const std::string log = drained_log(proxy);
    EXPECT_NE(log.find("\"client\":\"192.0.2.10\""), std::string::npos) << log;
}

TEST_F(proxy_protocol_test, malformed_and_missing_headers_close_without_an_answer_and_count) {
    running_proxy proxy(make_config(v1));
    expect_closed_without_answer(proxy, "PROXY TCP4 203.0.113 198.51.100.2 40000 80\r\n");
    expect_closed_without_answer(proxy, "");  // a request with no header
    expect_closed_without_answer(proxy, v2_ipv4_with_tlvs());
    EXPECT_TRUE(eventually([&] {
        return failures(proxy, failure::malformed) == 1 && failures(proxy, failure::missing) == 1 &&
               failures(proxy, failure::wrong_version) == 1;
    }));
    EXPECT_EQ(blue_.request_count(), 0U);
    // A client that leaves in the middle of its header.
    {
        raw_client client(proxy.port());
        client.send("PROXY TCP4 203.0.");
        client.close();
    }
    EXPECT_TRUE(eventually([&] { return failures(proxy, failure::closed) == 1; }));
}

TEST_F(proxy_protocol_test, a_header_not_sent_within_request_header_closes_and_counts) {
    auto cfg = make_config(v2);
    cfg.timeouts.request_header = 100ms;
    running_proxy proxy(cfg);
    raw_client client(proxy.port());
    client.send(v2_ipv4_with_tlvs().substr(0, 20));  // the rest never comes
    EXPECT_EQ(client.read_until_close(), "");
    EXPECT_TRUE(eventually([&] { return failures(proxy, failure::timeout) == 1; }));
    EXPECT_EQ(failures(proxy, failure::malformed), 0U);
}

// Past the worker's warm sessions, a connection idle between requests is parked as a bare
// socket and gets a new session for its next request: that session must neither read a header
// again nor lose the address.
TEST_F(proxy_protocol_test, a_parked_connection_keeps_its_address) {
    running_proxy proxy(make_config(v1));
    constexpr int n = 160;  // above the worker's 128 warm sessions
    std::vector<std::unique_ptr<raw_client>> clients;
    const auto address = [](int i) {
        return "10.0." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1);
    };
    for (int i = 0; i < n; ++i) {
        clients.push_back(std::make_unique<raw_client>(proxy.port()));
        clients.back()->send("PROXY TCP4 " + address(i) + " 10.1.0.1 40000 80\r\n" +
                             format_request("GET", "/" + std::to_string(i)));
        ASSERT_EQ(clients.back()->read_response().status, 200);
    }
    for (int i = 0; i < n; ++i) {
        clients[static_cast<std::size_t>(i)]->send(
            format_request("GET", "/again/" + std::to_string(i)));
        ASSERT_EQ(clients[static_cast<std::size_t>(i)]->read_response().status, 200);
    }
    const auto requests = blue_.requests();
    ASSERT_EQ(requests.size(), std::size_t{2} * n);
    for (const auto& r : requests) {
        const std::string_view target = r.target;
        const int i = std::stoi(std::string(target.substr(target.rfind('/') + 1)));
        EXPECT_EQ(r.header("X-Forwarded-For"), address(i)) << r.target;
    }
    EXPECT_EQ(failures(proxy, failure::missing), 0U);
}

// The header comes before the TLS handshake, whose bytes the proxy must leave to OpenSSL.
TEST_F(proxy_protocol_test, v2_header_before_a_tls_handshake) {
    test_pki pki;
    const auto cert = pki.issue("proxy", {"localhost", "127.0.0.1"});
    auto cfg = make_config(v2);
    cfg.tls.emplace();
    cfg.tls->listen = {"127.0.0.1", 0};
    cfg.tls->cert = cert.cert;
    cfg.tls->key = cert.key;
    running_proxy proxy(cfg);

    namespace ssl = net::ssl;
    namespace http = boost::beast::http;
    net::io_context io;
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(pki.ca());
    ctx.set_verify_mode(ssl::verify_peer);
    ssl::stream<ip::tcp::socket> stream(io, ctx);
    SSL_set1_host(stream.native_handle(), "localhost");
    stream.next_layer().connect({ip::address_v4::loopback(), proxy.server().tls_port()});
    net::write(stream.next_layer(), net::buffer(v2_ipv4_with_tlvs()));
    stream.handshake(ssl::stream_base::client);
    http::request<http::empty_body> req{http::verb::get, "/", 11};
    req.set(http::field::host, "localhost");
    http::write(stream, req);
    http::response<http::string_body> res;
    boost::beast::flat_buffer buffer;
    http::read(stream, buffer, res);
    EXPECT_EQ(res.result_int(), 200U);
    ASSERT_EQ(blue_.request_count(), 1U);
    EXPECT_EQ(blue_.requests()[0].header("X-Forwarded-For"), "192.0.2.10");
    EXPECT_EQ(blue_.requests()[0].header("X-Forwarded-Proto"), "https");

    // Without a header, the TLS listener refuses the connection before any handshake.
    raw_client plain(proxy.server().tls_port());
    plain.send(std::string("\x16\x03\x01\x00\x05hello", 10));
    EXPECT_EQ(plain.read_until_close(), "");
    EXPECT_TRUE(eventually([&] { return failures(proxy, failure::missing) == 1; }));
}

}  // namespace
}  // namespace switchyard::test
