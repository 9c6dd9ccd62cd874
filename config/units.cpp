#include "config/units.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <string>

namespace switchyard::config {

namespace {

// Digits only: no sign, no spaces, no base prefix. from_chars alone would accept a leading '-'
// for signed types and stops at the first non-digit, so the whole text is checked here.
std::optional<std::uint64_t> parse_digits(std::string_view text) {
    if (text.empty()) {
        return std::nullopt;
    }
    for (char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
    }
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        return std::nullopt;  // out of range
    }
    return value;
}

// A plain decimal number ("0.05", "2", "1e-2"); rejects signs other than from_chars' '-',
// infinities and NaN.
std::optional<double> parse_number(std::string_view text) {
    if (text.empty() || text.front() == '-' || text.front() == '+') {
        return std::nullopt;
    }
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
        return std::nullopt;
    }
    return value;
}

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

bool is_ipv4(const std::string& host) {
    in_addr out{};
    return inet_pton(AF_INET, host.c_str(), &out) == 1;
}

bool is_ipv6(const std::string& host) {
    in6_addr out{};
    return inet_pton(AF_INET6, host.c_str(), &out) == 1;
}

// A DNS name or an IPv4 address. Text made only of digits and dots must be a valid IPv4 address:
// "10.0.0.300" is a typo, not a host name to look up.
bool valid_host_name(std::string_view host) {
    // RFC 1035 §2.3.4: a name is at most 253 characters in text form.
    if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') {
        return false;
    }
    bool numeric = true;
    for (char c : host) {
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool digit = c >= '0' && c <= '9';
        if (!alpha && !digit && c != '-' && c != '.' && c != '_') {
            return false;
        }
        numeric = numeric && (digit || c == '.');
    }
    return !numeric || is_ipv4(std::string(host));
}

}  // namespace

std::optional<duration> parse_duration(std::string_view text) {
    if (text == "0") {
        return duration{0};
    }
    // "ms" is tested before "s" and "m", which are its suffix and prefix.
    struct unit {
        std::string_view suffix;
        std::int64_t millis;
    };
    static constexpr unit units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};
    for (const unit& u : units) {
        if (!ends_with(text, u.suffix)) {
            continue;
        }
        auto amount = parse_digits(text.substr(0, text.size() - u.suffix.size()));
        if (!amount) {
            return std::nullopt;
        }
        const auto limit =
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / u.millis);
        if (*amount > limit) {
            return std::nullopt;
        }
        return duration{static_cast<std::int64_t>(*amount) * u.millis};
    }
    return std::nullopt;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    struct unit {
        std::string_view suffix;
        std::uint64_t bytes;
    };
    // Binary units only: "KB" would leave the reader guessing between 1000 and 1024.
    static constexpr unit units[] = {
        {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30}, {"", 1}};
    for (const unit& u : units) {
        if (!ends_with(text, u.suffix)) {
            continue;
        }
        auto amount = parse_digits(text.substr(0, text.size() - u.suffix.size()));
        if (!amount || *amount > std::numeric_limits<std::uint64_t>::max() / u.bytes) {
            return std::nullopt;
        }
        return *amount * u.bytes;
    }
    return std::nullopt;
}

std::optional<double> parse_rate(std::string_view text) {
    std::optional<double> value;
    if (ends_with(text, "%")) {
        value = parse_number(text.substr(0, text.size() - 1));
        if (value) {
            *value /= 100.0;
        }
    } else {
        value = parse_number(text);
    }
    if (!value || *value < 0.0 || *value > 1.0) {
        return std::nullopt;
    }
    return value;
}

std::optional<address> parse_address(std::string_view text, bool allow_port_zero) {
    std::string host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return std::nullopt;
        }
        host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
        if (!is_ipv6(host)) {
            return std::nullopt;
        }
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return std::nullopt;
        }
        // An IPv6 address without brackets is ambiguous ("::1:8080"); RFC 3986 §3.2.2 brackets.
        host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        if (!valid_host_name(host)) {
            return std::nullopt;
        }
    }
    if (port_text.size() > 5) {
        return std::nullopt;
    }
    auto port = parse_digits(port_text);
    if (!port || *port > 65535 || (*port == 0 && !allow_port_zero)) {
        return std::nullopt;
    }
    return address{std::move(host), static_cast<std::uint16_t>(*port)};
}

}  // namespace switchyard::config
