#include "analysis/traffic_split.hpp"

namespace switchyard::analysis {

slot_index split_picker::pick(traffic_split s) noexcept {
    // Request k of every hundred goes to the other slot when floor((k+1)w/100) steps past
    // floor(kw/100). Summed over any 100 consecutive k that is exactly w, since
    // floor((k+100)w/100) = floor(kw/100) + w; so the guarantee holds for every window, not just
    // for windows aligned to a multiple of 100.
    const std::uint32_t k = position_;
    position_ = position_ == 99 ? 0 : position_ + 1;
    const std::uint32_t w = s.other_weight;
    return (k + 1) * w / 100 > k * w / 100 ? s.other() : s.active;
}

}  // namespace switchyard::analysis
