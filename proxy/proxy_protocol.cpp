#include "proxy/proxy_protocol.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <boost/asio/ip/address.hpp>

namespace switchyard::proxy::proxy_protocol {
namespace {

namespace ip = boost::asio::ip;
using analysis::proxy_protocol_failure;

constexpr std::string_view v1_prefix = "PROXY ";
// Spec §2.2: chosen so that it can appear in no HTTP, SSL or SMTP stream's first bytes.
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};

parse_result incomplete(std::size_t wanted = 0) noexcept {
    return {parse_status::incomplete, proxy_protocol_failure::malformed, 0, wanted, std::nullopt};
}

parse_result error(proxy_protocol_failure why) noexcept {
    return {parse_status::error, why, 0, 0, std::nullopt};
}

parse_result done(std::size_t consumed, std::optional<ip::tcp::endpoint> source) noexcept {
    return {parse_status::done, proxy_protocol_failure::malformed, consumed, 0, source};
}

// True when `bytes` and `prefix` agree as far as both go.
bool starts_like(std::string_view bytes, std::string_view prefix) noexcept {
    const std::size_t n = std::min(bytes.size(), prefix.size());
    return bytes.substr(0, n) == prefix.substr(0, n);
}

// The next space-separated field of `line`, taken off it; empty when there is none or it is
// empty (two spaces in a row).
std::string_view next_field(std::string_view& line) noexcept {
    const std::size_t end = line.find(' ');
    const std::string_view field = line.substr(0, end);
    line.remove_prefix(end == std::string_view::npos ? line.size() : end + 1);
    return field;
}

// Spec §2.1: "a decimal integer in the range [0..65535]".
std::optional<std::uint16_t> v1_port(std::string_view text) noexcept {
    if (text.empty() || text.size() > 5) {
        return std::nullopt;
    }
    std::uint32_t n = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        n = n * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (n > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(n);
}

// The address of a TCP4 or TCP6 line, by inet_pton's strict rules (dotted quad, no scope id).
std::optional<ip::address> v1_address(std::string_view text, bool v6) noexcept {
    std::array<char, 64> z{};  // NUL-terminated for inet_pton; the longest IPv6 text is 45
    if (text.empty() || text.size() >= z.size() || text.find('%') != std::string_view::npos) {
        return std::nullopt;
    }
    std::memcpy(z.data(), text.data(), text.size());
    boost::system::error_code ec;
    if (v6) {
        const auto a = ip::make_address_v6(z.data(), ec);
        return ec ? std::nullopt : std::optional<ip::address>(a);
    }
    const auto a = ip::make_address_v4(z.data(), ec);
    return ec ? std::nullopt : std::optional<ip::address>(a);
}

// Spec §2.1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF, or
// "PROXY UNKNOWN" followed by anything up to CRLF.
parse_result parse_v1(std::string_view bytes) noexcept {
    const std::size_t lf = bytes.substr(0, max_v1_bytes).find('\n');
    if (lf == std::string_view::npos) {
        return bytes.size() >= max_v1_bytes ? error(proxy_protocol_failure::malformed)
                                            : incomplete();
    }
    if (lf == 0 || bytes[lf - 1] != '\r') {
        return error(proxy_protocol_failure::malformed);  // a bare LF
    }
    std::string_view line = bytes.substr(v1_prefix.size(), lf - 1 - v1_prefix.size());
    const std::string_view protocol = next_field(line);
    if (protocol == "UNKNOWN") {
        // The receiver "must ignore anything presented before the CRLF".
        return done(lf + 1, std::nullopt);
    }
    if (protocol != "TCP4" && protocol != "TCP6") {
        return error(proxy_protocol_failure::malformed);
    }
    // Four fields, one space between each: a field left empty by a space too many fails below.
    if (std::count(line.begin(), line.end(), ' ') != 3) {
        return error(proxy_protocol_failure::malformed);
    }
    const bool v6 = protocol == "TCP6";
    const auto source = v1_address(next_field(line), v6);
    const auto destination = v1_address(next_field(line), v6);
    const auto source_port = v1_port(next_field(line));
    const auto destination_port = v1_port(next_field(line));
    if (!source || !destination || !source_port || !destination_port) {
        return error(proxy_protocol_failure::malformed);
    }
    return done(lf + 1, ip::tcp::endpoint(*source, *source_port));
}

std::uint16_t big_endian16(std::string_view at) noexcept {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(at[0]) << 8) |
                                      static_cast<unsigned char>(at[1]));
}

// Spec §2.2: the signature, a version and command byte, a family and protocol byte, the length
// of what follows (big-endian), the addresses, then TLVs, which the proxy skips.
parse_result parse_v2(std::string_view bytes) noexcept {
    if (bytes.size() < v2_fixed_bytes) {
        return incomplete(v2_fixed_bytes - bytes.size());
    }
    const auto version_command = static_cast<unsigned char>(bytes[12]);
    const auto family_protocol = static_cast<unsigned char>(bytes[13]);
    const std::size_t length = big_endian16(bytes.substr(14));
    const unsigned command = version_command & 0x0FU;
    const unsigned family = family_protocol >> 4U;
    const unsigned protocol = family_protocol & 0x0FU;
    // Version 2; commands LOCAL (0) and PROXY (1); families UNSPEC, INET, INET6, UNIX (0..3);
    // protocols UNSPEC, STREAM, DGRAM (0..2). Anything else is to be refused.
    if ((version_command >> 4U) != 2 || command > 1 || family > 3 || protocol > 2) {
        return error(proxy_protocol_failure::malformed);
    }
    const bool local = command == 0;
    // The address block each family needs: INET 12 bytes, INET6 36, UNIX 216.
    constexpr std::array<std::size_t, 4> address_bytes{0, 12, 36, 216};
    if (v2_fixed_bytes + length > max_v2_bytes || (!local && length < address_bytes[family])) {
        return error(proxy_protocol_failure::malformed);
    }
    // A datagram's address is no TCP client's.
    if (!local && protocol == 2) {
        return error(proxy_protocol_failure::malformed);
    }
    const std::size_t total = v2_fixed_bytes + length;
    if (bytes.size() < total) {
        return incomplete(total - bytes.size());
    }
    // LOCAL: the balancer's own connection (a health check); UNSPEC and UNIX: no TCP address.
    if (local || protocol == 0 || family == 0 || family == 3) {
        return done(total, std::nullopt);
    }
    const std::string_view block = bytes.substr(v2_fixed_bytes);
    if (family == 1) {
        ip::address_v4::bytes_type a{};
        std::memcpy(a.data(), block.data(), a.size());
        return done(total, ip::tcp::endpoint(ip::address_v4(a), big_endian16(block.substr(8))));
    }
    ip::address_v6::bytes_type a{};
    std::memcpy(a.data(), block.data(), a.size());
    return done(total, ip::tcp::endpoint(ip::address_v6(a), big_endian16(block.substr(32))));
}

}  // namespace

parse_result parse(config::proxy_protocol_version version, std::span<const char> input) noexcept {
    const std::string_view bytes(input.data(), input.size());
    const bool v2 = version == config::proxy_protocol_version::v2;
    if (bytes.empty()) {
        return incomplete(v2 ? v2_fixed_bytes : 0);
    }
    const std::string_view ours = v2 ? v2_signature : v1_prefix;
    const std::string_view theirs = v2 ? v1_prefix : v2_signature;
    if (!starts_like(bytes, ours)) {
        // The reason is given only once no later byte can change it: the other version's start
        // in full, or bytes that start neither.
        if (!starts_like(bytes, theirs)) {
            return error(proxy_protocol_failure::missing);
        }
        if (bytes.size() >= theirs.size()) {
            return error(proxy_protocol_failure::wrong_version);
        }
        return incomplete(v2 ? v2_fixed_bytes - bytes.size() : 0);
    }
    if (bytes.size() < ours.size()) {
        return incomplete(v2 ? v2_fixed_bytes - bytes.size() : 0);
    }
    return v2 ? parse_v2(bytes) : parse_v1(bytes);
}

}  // namespace switchyard::proxy::proxy_protocol
