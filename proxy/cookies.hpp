#pragma once
// The Cookie request field (RFC 6265 §5.4), read without allocating: the routes' cookie matches
// and the sticky-session cookie look into it.

#include <optional>
#include <span>
#include <string_view>

#include "proxy/http1.hpp"
#include "proxy/text.hpp"

namespace switchyard::proxy {

// Calls f(name, value) for each cookie-pair of a Cookie field value, RFC 6265 §4.2.1
// `cookie-pair *( ";" SP cookie-pair )`, read leniently (any whitespace around pairs, names and
// values); a value in DQUOTEs (§4.1.1 cookie-value) is given without them. Stops when f returns
// true.
template <class F>
void for_each_cookie(std::string_view field, F&& f) {
    while (!field.empty()) {
        const std::size_t semi = field.find(';');
        const std::string_view pair = field.substr(0, semi);
        field = semi == std::string_view::npos ? std::string_view{} : field.substr(semi + 1);
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        std::string_view value = trim_whitespace(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
            value = value.substr(1, value.size() - 2);
        }
        if (f(trim_whitespace(pair.substr(0, eq)), value)) {
            return;
        }
    }
}

// The value of the first cookie named `name` in the request's Cookie fields (one or several);
// none when absent.
inline std::optional<std::string_view> find_cookie(std::span<const http1::header_field> fields,
                                                   std::string_view name) noexcept {
    std::optional<std::string_view> out;
    for (const auto& f : fields) {
        if (!http1::iequals(f.name, "cookie")) {
            continue;
        }
        for_each_cookie(f.value, [&](std::string_view n, std::string_view v) {
            if (n == name) {
                out = v;
            }
            return out.has_value();
        });
        if (out) {
            break;
        }
    }
    return out;
}

}  // namespace switchyard::proxy
