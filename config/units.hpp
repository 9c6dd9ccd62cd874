#pragma once
// Parsing of the unit-bearing scalars of the configuration: durations, sizes, rates, addresses.
// Each returns nullopt on anything it does not accept exactly; the caller words the error.

#include <cstdint>
#include <optional>
#include <string_view>

#include "config/config.hpp"

namespace switchyard::config {

// "250ms", "2s", "5m", "1h"; a bare "0" is zero. Fractions are not accepted ("1.5s" -> nullopt).
std::optional<duration> parse_duration(std::string_view text);

// "64KiB", "10MiB", "1GiB", or a plain byte count "1024".
std::optional<std::uint64_t> parse_size(std::string_view text);

// "5%" -> 0.05, "0.05" -> 0.05; must lie in [0, 1].
std::optional<double> parse_rate(std::string_view text);

// "host:port", "[::1]:8080"; the port must be 1..65535 (0 is allowed when allow_port_zero).
std::optional<address> parse_address(std::string_view text, bool allow_port_zero = false);

}  // namespace switchyard::config
