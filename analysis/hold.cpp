#include "analysis/hold.hpp"

#include <utility>

namespace switchyard::analysis {

hold_board::hold_board() : message_(std::make_shared<const std::string>(default_message)) {}

void hold_board::set_release(std::function<void()> nudge) {
    const std::lock_guard lock(nudge_mutex_);
    nudge_ = std::move(nudge);
}

void hold_board::release() {
    releases_.fetch_add(1, std::memory_order_acq_rel);
    const std::lock_guard lock(nudge_mutex_);
    if (nudge_) {
        nudge_();
    }
}

void hold_board::set_message(std::string text) {
    message_.store(std::make_shared<const std::string>(std::move(text)), std::memory_order_release);
}

hold_totals hold_board::totals() const noexcept {
    hold_totals t;
    for (const auto& c : counters_) {
        t.timeouts += c.timeouts.load();
        t.overflows += c.overflows.load();
        t.maintenance_answers += c.maintenance_answers.load();
    }
    return t;
}

}  // namespace switchyard::analysis
