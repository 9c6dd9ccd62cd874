#pragma once
// The PROXY protocol header a load balancer in front of the proxy (HAProxy, AWS NLB, ...) sends
// at the start of each connection to pass on the client's address (README, "PROXY protocol";
// spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt). A pure function over the
// bytes received so far: no sockets, no allocation.

#include <cstddef>
#include <optional>
#include <span>

#include <boost/asio/ip/tcp.hpp>

#include "analysis/metrics.hpp"
#include "config/config.hpp"

namespace switchyard::proxy::proxy_protocol {

// Version 1: a text line of at most 107 bytes, CRLF included (spec §2.1).
inline constexpr std::size_t max_v1_bytes = 107;
// Version 2: 16 bytes, then an address block and TLVs of the length they give (spec §2.2). The
// spec allows 65535 bytes after the 16; the proxy takes up to one buffer block of the worker's,
// as HAProxy takes up to its buffer size.
inline constexpr std::size_t v2_fixed_bytes = 16;
inline constexpr std::size_t max_v2_bytes = 16 * 1024;

enum class parse_status { incomplete, error, done };

struct parse_result {
    parse_status status = parse_status::incomplete;
    // error: why (missing, wrong_version or malformed).
    analysis::proxy_protocol_failure failure = analysis::proxy_protocol_failure::malformed;
    // done: the header's length; the bytes after it are the connection's own.
    std::size_t consumed = 0;
    // incomplete: how many more bytes certainly belong to the header (version 2, whose length
    // is known from its first 16 bytes); 0 when that is unknown (version 1, which ends at CRLF).
    std::size_t wanted = 0;
    // done: the client's address and port. Empty when the header says to keep the connection's
    // own: v2 LOCAL (the balancer's health checks), v1 UNKNOWN, v2 UNSPEC or AF_UNIX addresses.
    std::optional<boost::asio::ip::tcp::endpoint> source;
};

// Parses the header of version `version` (v1 or v2) at the start of `bytes`. Only the bytes up
// to the header's end are looked at; an error is reported as soon as the bytes received show it.
parse_result parse(config::proxy_protocol_version version, std::span<const char> bytes) noexcept;

}  // namespace switchyard::proxy::proxy_protocol
