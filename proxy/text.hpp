#pragma once
// Small text helpers of the request path and the admin API. Numbers are appended with
// std::to_chars into a stack buffer, so a string whose capacity was kept between requests does
// not allocate here (std::to_string would, and reads the locale).

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace switchyard::proxy {

// Appends `v` in decimal.
inline void append_number(std::string& out, std::uint64_t v) {
    std::array<char, std::numeric_limits<std::uint64_t>::digits10 + 1> digits{};
    const auto r = std::to_chars(digits.data(), digits.data() + digits.size(), v);
    out.append(digits.data(), r.ptr);
}

// `s` without the spaces, tabs, CRs and LFs at either end. Plain loops: it runs on every
// cookie-pair of a request's Cookie field, which has a space or none at each end.
constexpr bool is_whitespace(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
constexpr std::string_view trim_whitespace(std::string_view s) noexcept {
    while (!s.empty() && is_whitespace(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_whitespace(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

// Compares every byte whatever the first difference, so that the time taken does not tell how
// much of a guessed secret (a token) was right.
inline bool constant_time_equals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = static_cast<unsigned char>(
            diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
    }
    return diff == 0;
}

}  // namespace switchyard::proxy
