#pragma once
// Text the request path appends to a caller-owned string: heads, log lines. std::to_chars into
// a stack buffer, so a string whose capacity was kept between requests does not allocate here
// (std::to_string would, and reads the locale).

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>

namespace switchyard::proxy {

// Appends `v` in decimal.
inline void append_number(std::string& out, std::uint64_t v) {
    std::array<char, std::numeric_limits<std::uint64_t>::digits10 + 1> digits{};
    const auto r = std::to_chars(digits.data(), digits.data() + digits.size(), v);
    out.append(digits.data(), r.ptr);
}

}  // namespace switchyard::proxy
