#include "proxy/sticky.hpp"

#include <cstdint>

#include "proxy/text.hpp"

namespace switchyard::proxy {

namespace {

// 64-bit FNV-1a: the cookie value is a digest of the slot's name, so that it names the slot
// without spelling it out, and stays the same across restarts and reloads.
std::uint64_t fnv1a(std::string_view text) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : text) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

std::string hex16(std::uint64_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(16, '0');
    for (std::size_t i = 16; i-- > 0; v >>= 4U) {
        out[i] = digits[v & 0xfU];
    }
    return out;
}

}  // namespace

sticky_cookies::sticky_cookies(const config::sticky_config& cfg,
                               const analysis::per_slot<std::string>& slot_names)
    : name_(cfg.cookie) {
    const auto max_age = std::chrono::duration_cast<std::chrono::seconds>(cfg.ttl).count();
    for (std::size_t s = 0; s < analysis::slot_count; ++s) {
        values_[s] = hex16(fnv1a("switchyard sticky slot " + slot_names[s]));
        for (std::size_t secure = 0; secure < 2; ++secure) {
            std::string& v = set_cookie_[secure][s];
            v.append(name_).append("=").append(values_[s]).append("; Path=/; Max-Age=");
            append_number(v, static_cast<std::uint64_t>(max_age));
            v.append("; HttpOnly; SameSite=Lax");
            if (secure != 0) {
                v.append("; Secure");
            }
        }
    }
}

std::optional<analysis::slot_index> sticky_cookies::pinned(
    std::span<const http1::header_field> fields) const noexcept {
    const auto value = find_cookie(fields, name_);
    if (!value) {
        return std::nullopt;
    }
    for (analysis::slot_index s = 0; s < analysis::slot_count; ++s) {
        if (*value == values_[s]) {
            return s;
        }
    }
    return std::nullopt;
}

bool pin_honoured(const analysis::traffic_state& t, analysis::slot_index slot) noexcept {
    if (t.split.weight(slot) > 0) {
        return true;
    }
    // Promoted and baking: the canary is active with all the traffic, and the slot it replaced
    // keeps its pinned clients until the bake ends (or a breach sends everyone back to it).
    return t.rollout && t.split.active == t.canary && slot != t.canary;
}

}  // namespace switchyard::proxy
