#pragma once
// JSON of the rollout's records: what /status, the rollout endpoints, the events webhooks and
// the state file show, and the admin API's error bodies. One spelling for all of them (README,
// "Admin API").

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "analysis/judge.hpp"
#include "analysis/rollout.hpp"
#include "analysis/traffic_split.hpp"
#include "config/config.hpp"

namespace switchyard::admin {

using slot_names = analysis::per_slot<std::string>;

// `v` serialized and ended with a newline: an admin API answer or the state file, one document
// a line for curl and for text tools.
std::string json_line(const boost::json::value& v);

// {"error": "<message>"}: the body of every refused admin API call; callers may add members.
boost::json::object error_json(std::string_view message);

// "2026-11-27T13:37:42.123Z" (RFC 3339, UTC, milliseconds).
std::string format_time(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text);

// {"blue": 90, "green": 10}
boost::json::object weights_json(analysis::traffic_split split, const slot_names& names);

// {"check", "metric", "kind", "verdict", "value", "threshold", "stable", "samples"}, and
// "evidence" (the sequential tests of the check) when the sequential judge judged it.
boost::json::object to_json(const analysis::check_result& r);
// {"check", "test", "alpha", "canary_requests", "stable_requests", "rejected", "within"} and, for
// errors and exceedance, "e_value", "e_threshold", "p_value", "e_value_within", "canary_events",
// "stable_events"; for quantile, "step", "canary_lower", "canary_upper", "stable_lower",
// "stable_upper", "limit" (seconds).
boost::json::object to_json(const analysis::test_evidence& e);
// {"rollout", "event", "phase", "at", "active", "weights", "reason", "cause", "checks"}: also the
// body each events webhook receives.
boost::json::object to_json(const analysis::rollout_event& e, const slot_names& names);
// {"id", "strategy", "from", "to", "result", "reason", "started", "finished", "seconds",
// "weight"}
boost::json::object to_json(const analysis::rollout_record& r, const slot_names& names);
// The rollout: keys, as in the configuration file.
boost::json::object to_json(const config::rollout_config& c);

// The inverses, for the state file. They throw std::invalid_argument naming what they could not
// read; the state file catches it at the boundary and sets the file aside.
analysis::check_result check_from_json(const boost::json::value& v);
analysis::test_evidence evidence_from_json(const boost::json::value& v);
analysis::rollout_event event_from_json(const boost::json::value& v, const slot_names& names);
analysis::rollout_record record_from_json(const boost::json::value& v, const slot_names& names);
config::rollout_config rollout_config_from_json(const boost::json::value& v);
analysis::traffic_split split_from_json(const boost::json::value& active,
                                        const boost::json::value& weights, const slot_names& names);
analysis::slot_index slot_from_json(const boost::json::value& v, const slot_names& names);

// Typed reads of an object's members; each throws std::invalid_argument naming the member when
// it is missing or of another type.
const boost::json::value& member(const boost::json::value& v, std::string_view key);
std::string_view string_member(const boost::json::value& v, std::string_view key);
double number_member(const boost::json::value& v, std::string_view key);
std::uint64_t count_member(const boost::json::value& v, std::string_view key);
bool bool_member(const boost::json::value& v, std::string_view key);
const boost::json::array& array_member(const boost::json::value& v, std::string_view key);
analysis::phase phase_member(const boost::json::value& v, std::string_view key);
std::chrono::system_clock::time_point time_member(const boost::json::value& v,
                                                  std::string_view key);

}  // namespace switchyard::admin
