// The controller's part of the live page (README, "Live page"): what GET /series answers, and
// the point a second it keeps for it.

#include "admin/controller.hpp"

#include <boost/json.hpp>

namespace switchyard::admin {

namespace json = boost::json;

void controller::record_series(std::int64_t second, const analysis::instant& t) {
    analysis::per_slot<series_slot> slots;
    for (analysis::slot_index s = 0; s < analysis::slot_count; ++s) {
        slots[s] = to_series_slot(window_.over(s, second - 1, second));
    }
    // The point is the second that just ended, on the wall clock the page labels its axis with.
    const std::int64_t unix_second =
        std::chrono::floor<std::chrono::seconds>(t.wall.time_since_epoch()).count() - 1;
    series_.record(unix_second, split_.load(), slots, machine_.evidence());
}

json::value controller::series(std::int64_t since) const {
    const analysis::traffic_split split = split_.load();
    json::object out = series_.to_json(names_, since);
    json::array slots;
    for (const std::string& name : names_) {
        slots.emplace_back(name);
    }
    json::array events;
    for (const analysis::rollout_event& e : machine_.state().events) {
        events.emplace_back(to_json(e, names_));
    }
    out["slots"] = std::move(slots);
    out["active"] = names_[split.active];
    out["weights"] = weights_json(split, names_);
    out["rollout"] = rollout_status();
    out["events"] = std::move(events);
    return out;
}

}  // namespace switchyard::admin
