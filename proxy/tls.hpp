#pragma once
// TLS through OpenSSL (boost::asio::ssl): the listener's context, the contexts for slots whose
// endpoints speak TLS, and what a failed handshake is counted and logged as.
//
// A context is built once and shared, read-only, by every connection and worker that uses it
// (OpenSSL locks what it must, such as its session cache). A reload builds new ones; a
// connection keeps the context it started with for its whole life.

#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "analysis/metrics.hpp"
#include "config/config.hpp"

namespace switchyard::proxy {

using tls_context_ptr = std::shared_ptr<boost::asio::ssl::context>;

// TLS over a socket that lives beside it. The context comes first so that it outlives the stream.
struct tls_connection {
    tls_connection(tls_context_ptr ctx, boost::asio::ip::tcp::socket& socket)
        : context(std::move(ctx)), stream(socket, *context) {}

    tls_context_ptr context;
    boost::asio::ssl::stream<boost::asio::ip::tcp::socket&> stream;
};

// The listener's context: TLS 1.2 (or `min_version`) and 1.3 only, forward-secret AEAD cipher
// suites, ALPN http/1.1 (HTTP/2 is not offered), no renegotiation, no compression. Null, with
// `why` set for the operator, when the certificate chain or key cannot be loaded or do not match.
tls_context_ptr make_server_context(const config::tls_config& cfg, std::string& why);

// A context for connections to a slot's endpoints: the same protocol floor and suites, and the
// peer's certificate verified against `ca` (or the system's store) unless verify is false.
tls_context_ptr make_client_context(const config::upstream_tls_config& cfg, std::string& why);

// Sets SNI and the name the peer's certificate must hold on a client connection: `name`, which
// may be an IP address (matched against the certificate's IP addresses, and sent without SNI,
// RFC 6066 §3). False with `why` set when OpenSSL refuses it.
bool prepare_client(tls_connection& c, const std::string& name, bool verify, std::string& why);

// What a failed handshake is counted as.
analysis::tls_failure classify_handshake_error(const boost::system::error_code& ec);

// Words for a log line: OpenSSL's reason, and why a peer's certificate was refused.
std::string describe_handshake_error(const boost::system::error_code& ec, tls_connection& c);

}  // namespace switchyard::proxy
