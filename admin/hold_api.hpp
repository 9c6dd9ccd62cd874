#pragma once
// The admin API's hold and maintenance endpoints (README, "Hold and maintenance"): POST /hold,
// POST /release, POST /maintenance and DELETE /maintenance, and their part of /status. The
// flags go into the traffic word; the count, message and wake-up are on the hold board.

#include <string_view>

#include <boost/json/object.hpp>

#include "admin/admin_server.hpp"
#include "analysis/hold.hpp"
#include "analysis/traffic_split.hpp"

namespace switchyard::admin {

// One call to /hold, /release or /maintenance, `method` already authorised; 404 for another
// path.
admin_response hold_call(std::string_view method, std::string_view path, std::string_view body,
                         analysis::split_state& split, analysis::hold_board& board);

// {"hold": {"on": bool, "waiting": n}, "maintenance": {"on": bool, "message": "..."}} merged
// into `status`.
void add_hold_status(boost::json::object& status, const analysis::split_state& split,
                     const analysis::hold_board& board);

}  // namespace switchyard::admin
