#pragma once
// GET /status as a terminal table, for `switchyard status`, `switchyard rollout --wait` and the
// demo: the rollout's phase, step and weights, each slot's req/s, error rate and p95, each
// check's last verdict, and the recent events (like `kubectl argo rollouts get rollout`).

#include <string>

#include <boost/json/value.hpp>

namespace switchyard::admin {

// The whole table; every line ends in a newline. Tolerates missing members (prints "-").
std::string render_status(const boost::json::value& status);

// One event as one line: "14:20:23  step          interval passed; new slot at 25%".
std::string render_event(const boost::json::value& event);

}  // namespace switchyard::admin
