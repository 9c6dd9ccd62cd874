#include "proxy/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>

namespace switchyard::proxy {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;

// TLS 1.2 suites: ECDHE key exchange and AEAD only (Mozilla's "intermediate" list without DHE,
// which would need Diffie-Hellman parameters to be any good). TLS 1.3 keeps OpenSSL's suites,
// all of which are AEAD.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// ALPN protocol list in wire form (RFC 7301 §3.1): one length-prefixed name.
constexpr unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Picks http/1.1 when the client offers it. A client that offers only h2 gets no ALPN answer
// and may go on in HTTP/1.1 or leave, as with nginx without http2.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    unsigned char* selected = nullptr;
    unsigned char length = 0;
    if (SSL_select_next_proto(&selected, &length, alpn_http11, sizeof alpn_http11, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = selected;
    *outlen = length;
    return SSL_TLSEXT_ERR_OK;
}

// What both sides share: the protocol floor, the TLS 1.2 suites, no compression (CRIME), no
// renegotiation (a client could make us do handshakes at will), and buffers freed while idle.
bool common_settings(ssl::context& ctx, config::tls_version min_version, std::string& why) {
    SSL_CTX* h = ctx.native_handle();
    const int floor = min_version == config::tls_version::v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(h, floor) != 1 ||
        SSL_CTX_set_cipher_list(h, tls12_ciphers) != 1) {
        why = "OpenSSL refused the protocol or cipher settings";
        return false;
    }
    SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(h, SSL_MODE_RELEASE_BUFFERS);
    return true;
}

}  // namespace

tls_context_ptr make_server_context(const config::tls_config& cfg, std::string& why) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    if (!common_settings(*ctx, cfg.min_version, why)) {
        return nullptr;
    }
    SSL_CTX* h = ctx->native_handle();
    SSL_CTX_set_options(h, SSL_OP_CIPHER_SERVER_PREFERENCE);
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(cfg.cert, ec);
    if (ec) {
        why = "cannot load the certificate chain from " + cfg.cert + ": " + ec.message();
        return nullptr;
    }
    ctx->use_private_key_file(cfg.key, ssl::context::pem, ec);
    if (ec) {
        why = "cannot load the private key from " + cfg.key + ": " + ec.message();
        return nullptr;
    }
    if (SSL_CTX_check_private_key(h) != 1) {
        ERR_clear_error();
        why = "the private key in " + cfg.key + " does not match the certificate in " + cfg.cert;
        return nullptr;
    }
    SSL_CTX_set_alpn_select_cb(h, select_alpn, nullptr);
    // One TLS 1.3 session ticket per handshake, not OpenSSL's two: a resumed connection gets a
    // fresh one, so a client that uses each ticket once (RFC 8446 §C.4) keeps resuming, and
    // each handshake encodes and encrypts one session less.
    SSL_CTX_set_num_tickets(h, 1);
    static constexpr unsigned char session_context[] = "switchyard";
    SSL_CTX_set_session_id_context(h, session_context, sizeof session_context - 1);
    return ctx;
}

tls_context_ptr make_client_context(const config::upstream_tls_config& cfg, std::string& why) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    if (!common_settings(*ctx, config::tls_version::v1_2, why)) {
        return nullptr;
    }
    boost::system::error_code ec;
    if (cfg.verify) {
        ctx->set_verify_mode(ssl::verify_peer, ec);
        if (cfg.ca.empty()) {
            ctx->set_default_verify_paths(ec);
        } else {
            ctx->load_verify_file(cfg.ca, ec);
        }
        if (ec) {
            why = "cannot load the CA certificates" + (cfg.ca.empty() ? "" : " from " + cfg.ca) +
                  ": " + ec.message();
            return nullptr;
        }
    } else {
        ctx->set_verify_mode(ssl::verify_none, ec);
    }
    // Only HTTP/1.1 goes upstream; an endpoint that could speak h2 must not pick it.
    if (SSL_CTX_set_alpn_protos(ctx->native_handle(), alpn_http11, sizeof alpn_http11) != 0) {
        why = "OpenSSL refused the ALPN setting";
        return nullptr;
    }
    return ctx;
}

bool prepare_client(tls_connection& c, const std::string& name, bool verify, std::string& why) {
    SSL* ssl = c.stream.native_handle();
    boost::system::error_code ec;
    net::ip::make_address(name, ec);
    const bool is_ip = !ec;
    // SSL_set_tlsext_host_name, spelled out: the macro casts in C style.
    if (!is_ip && SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                           const_cast<char*>(name.c_str())) != 1) {
        why = "OpenSSL refused the server name " + name;
        return false;
    }
    if (!verify) {
        return true;
    }
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (ok != 1) {
        why = "OpenSSL refused the name to verify, " + name;
        return false;
    }
    return true;
}

analysis::tls_failure classify_handshake_error(const boost::system::error_code& ec) {
    using analysis::tls_failure;
    if (ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::broken_pipe || ec == ssl::error::stream_truncated) {
        return tls_failure::closed;
    }
    if (ec.category() != net::error::get_ssl_category()) {
        return tls_failure::other;
    }
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
            return tls_failure::protocol_version;
        case SSL_R_NO_SHARED_CIPHER:
        case SSL_R_NO_SHARED_GROUPS:
        case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
            return tls_failure::no_shared_cipher;
        case SSL_R_HTTP_REQUEST:
        case SSL_R_HTTPS_PROXY_REQUEST:
            return tls_failure::http_request;
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
            return tls_failure::certificate;
        default:
            return tls_failure::other;
    }
}

std::string describe_handshake_error(const boost::system::error_code& ec, tls_connection& c) {
    std::string out = ec.message();
    const long verified = SSL_get_verify_result(c.stream.native_handle());
    if (verified != X509_V_OK) {
        out += " (";
        out += X509_verify_cert_error_string(verified);
        out += ")";
    }
    return out;
}

}  // namespace switchyard::proxy
