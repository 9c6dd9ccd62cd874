#pragma once
// Sticky sessions (README, "Sticky sessions"): a cookie that keeps a client on the slot its first
// request was sent to, for as long as that slot stays in rotation.
//
// New clients follow the split exactly: only requests that no route and no honoured pin took
// are counted by the worker's split picker, so the realised split of new sessions is the weight
// whatever the pinned clients do. A pin is honoured only while its slot takes traffic, so a
// rollback (the canary's weight drops to 0) moves every pinned client off at once, and after a
// promotion the old slot's clients stay there through the bake and move when it ends.

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "proxy/cookies.hpp"
#include "proxy/http1.hpp"

namespace switchyard::proxy {

// The sticky cookie of a configuration, with everything a request needs made once.
class sticky_cookies {
public:
    sticky_cookies(const config::sticky_config& cfg,
                   const analysis::per_slot<std::string>& slot_names);

    // The slot the request's cookie names, if it names one of ours.
    std::optional<analysis::slot_index> pinned(
        std::span<const http1::header_field> fields) const noexcept;
    // The Set-Cookie value pinning a client to `slot`; `secure` over TLS.
    std::string_view set_cookie(analysis::slot_index slot, bool secure) const noexcept {
        return set_cookie_[secure ? 1 : 0][slot];
    }
    // The opaque value that names `slot`.
    std::string_view value(analysis::slot_index slot) const noexcept { return values_[slot]; }

    friend bool operator==(const sticky_cookies&, const sticky_cookies&) = default;

private:
    std::string name_;
    analysis::per_slot<std::string> values_;
    std::array<analysis::per_slot<std::string>, 2> set_cookie_;  // [secure][slot]
};

// True while a client pinned to `slot` stays there: the slot takes a share of the split, or it
// is the slot a rollout promoted away from and the rollout is still baking.
bool pin_honoured(const analysis::traffic_state& t, analysis::slot_index slot) noexcept;

}  // namespace switchyard::proxy
