#include "admin/rollout_json.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include <boost/json.hpp>

namespace switchyard::admin {
namespace {

namespace json = boost::json;
using analysis::check_result;
using std::chrono::milliseconds;
using std::chrono::system_clock;

constexpr std::string_view kind_names[] = {"max", "min", "max_ratio_to_stable"};

std::string_view kind_name(config::check_kind k) noexcept {
    return kind_names[static_cast<std::size_t>(k)];
}

std::invalid_argument bad(std::string_view key, std::string_view what) {
    return std::invalid_argument("\"" + std::string(key) + "\": " + std::string(what));
}

template <class E, std::size_t N>
E enum_at(const json::value& v, std::string_view key, const std::string_view (&names)[N]) {
    const std::string_view text = string_member(v, key);
    for (std::size_t i = 0; i < N; ++i) {
        if (names[i] == text) {
            return static_cast<E>(i);
        }
    }
    throw bad(key, "unknown value " + std::string(text));
}

}  // namespace

analysis::phase phase_member(const json::value& v, std::string_view key) {
    const auto p = analysis::phase_named(string_member(v, key));
    if (!p) {
        throw bad(key, "unknown phase");
    }
    return *p;
}

system_clock::time_point time_member(const json::value& v, std::string_view key) {
    const auto t = parse_time(string_member(v, key));
    if (!t) {
        throw bad(key, "expected a time such as 2026-11-27T13:37:42.123Z");
    }
    return *t;
}

const json::value& member(const json::value& v, std::string_view key) {
    const json::object* o = v.if_object();
    const json::value* m = o != nullptr ? o->if_contains(key) : nullptr;
    if (m == nullptr) {
        throw bad(key, "missing");
    }
    return *m;
}

std::string_view string_member(const json::value& v, std::string_view key) {
    const json::string* s = member(v, key).if_string();
    if (s == nullptr) {
        throw bad(key, "expected a string");
    }
    return *s;
}

double number_member(const json::value& v, std::string_view key) {
    boost::system::error_code ec;
    const double n = member(v, key).to_number<double>(ec);
    if (ec) {
        throw bad(key, "expected a number");
    }
    return n;
}

std::uint64_t count_member(const json::value& v, std::string_view key) {
    boost::system::error_code ec;
    const auto n = member(v, key).to_number<std::uint64_t>(ec);
    if (ec) {
        throw bad(key, "expected a count");
    }
    return n;
}

bool bool_member(const json::value& v, std::string_view key) {
    const bool* b = member(v, key).if_bool();
    if (b == nullptr) {
        throw bad(key, "expected true or false");
    }
    return *b;
}

const json::array& array_member(const json::value& v, std::string_view key) {
    const json::array* a = member(v, key).if_array();
    if (a == nullptr) {
        throw bad(key, "expected a list");
    }
    return *a;
}

namespace {

config::check_metric metric_named(std::string_view name) {
    using config::check_metric;
    for (const check_metric m :
         {check_metric::error_rate, check_metric::success_rate, check_metric::latency_p50,
          check_metric::latency_p90, check_metric::latency_p95, check_metric::latency_p99,
          check_metric::latency_p999, check_metric::mirror_mismatch_rate}) {
        if (config::metric_name(m) == name) {
            return m;
        }
    }
    throw std::invalid_argument("unknown metric " + std::string(name));
}

json::array steps_json(const std::vector<std::uint32_t>& steps) {
    json::array out;
    for (const std::uint32_t s : steps) {
        out.emplace_back(s);
    }
    return out;
}

}  // namespace

std::string json_line(const json::value& v) {
    std::string out = json::serialize(v);
    out.push_back('\n');
    return out;
}

json::object error_json(std::string_view message) {
    return {{"error", message}};
}

std::string format_time(system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
    const auto seconds = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
    const auto millis = static_cast<int>((ms % 1000 + 1000) % 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buf[96];  // room for any int in each field, which the compiler cannot rule out
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    return buf;
}

std::optional<system_clock::time_point> parse_time(std::string_view text) {
    std::tm tm{};
    int millis = 0;
    char zone = 0;
    const std::string s(text);
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon,
                    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &zone) != 8 ||
        zone != 'Z' || s.size() != 24) {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const std::time_t seconds = timegm(&tm);
    if (seconds == -1) {
        return std::nullopt;
    }
    return system_clock::time_point(std::chrono::seconds(seconds) + milliseconds(millis));
}

json::object weights_json(analysis::traffic_split split, const slot_names& names) {
    json::object o;
    o[names[0]] = split.weight(0);
    o[names[1]] = split.weight(1);
    return o;
}

json::object to_json(const analysis::test_evidence& e) {
    json::object o{{"check", e.check},
                   {"test", analysis::test_name(e.test)},
                   {"alpha", e.alpha},
                   {"canary_requests", e.canary_requests},
                   {"stable_requests", e.stable_requests},
                   {"rejected", e.rejected},
                   {"within", e.within}};
    if (e.test == analysis::sequential_test::quantile) {
        o["step"] = e.step;
        o["canary_lower"] = e.canary_lower;
        o["canary_upper"] = e.canary_upper;
        o["stable_lower"] = e.stable_lower;
        o["stable_upper"] = e.stable_upper;
        o["limit"] = e.limit;
    } else {
        o["e_value"] = e.e_value;
        o["e_threshold"] = e.e_threshold;
        o["p_value"] = e.p_value;
        o["e_value_within"] = e.e_value_within;
        o["canary_events"] = e.canary_events;
        o["stable_events"] = e.stable_events;
    }
    return o;
}

json::object to_json(const check_result& r) {
    json::object o{{"check", r.name},           {"metric", config::metric_name(r.metric)},
                   {"kind", kind_name(r.kind)}, {"verdict", analysis::verdict_name(r.result)},
                   {"value", r.value},          {"threshold", r.threshold},
                   {"stable", r.stable},        {"samples", r.samples}};
    if (!r.evidence.empty()) {
        json::array evidence;
        for (const analysis::test_evidence& e : r.evidence) {
            evidence.emplace_back(to_json(e));
        }
        o["evidence"] = std::move(evidence);
    }
    return o;
}

json::object to_json(const analysis::rollout_event& e, const slot_names& names) {
    json::array checks;
    for (const check_result& c : e.checks) {
        checks.emplace_back(to_json(c));
    }
    return {{"rollout", e.rollout},
            {"event", e.kind},
            {"phase", analysis::name_of(e.to)},
            {"at", format_time(e.at)},
            {"active", names[e.split.active]},
            {"weights", weights_json(e.split, names)},
            {"reason", e.reason},
            {"cause", e.cause},
            {"checks", std::move(checks)}};
}

json::object to_json(const analysis::rollout_record& r, const slot_names& names) {
    const auto seconds = std::chrono::duration<double>(r.finished - r.started).count();
    return {{"id", r.id},
            {"strategy", config::strategy_name(r.strategy)},
            {"from", names[r.from]},
            {"to", names[r.to]},
            {"result", analysis::name_of(r.result)},
            {"reason", r.reason},
            {"started", format_time(r.started)},
            {"finished", format_time(r.finished)},
            {"seconds", seconds},
            {"weight", r.weight}};
}

json::object to_json(const config::rollout_config& c) {
    json::array paths;
    for (const std::string& p : c.smoke.paths) {
        paths.emplace_back(p);
    }
    return {{"strategy", config::strategy_name(c.strategy)},
            {"steps", steps_json(c.steps)},
            {"approval", c.approval},
            {"bake_seconds", static_cast<double>(c.bake.count()) / 1000.0},
            {"health",
             {{"path", c.health.path},
              {"deadline_seconds", static_cast<double>(c.health.deadline.count()) / 1000.0}}},
            {"smoke", {{"requests", c.smoke.requests}, {"paths", std::move(paths)}}}};
}

check_result check_from_json(const json::value& v) {
    check_result r;
    r.name = std::string(string_member(v, "check"));
    r.metric = metric_named(string_member(v, "metric"));
    r.kind = enum_at<config::check_kind>(v, "kind", kind_names);
    const std::string_view verdict = string_member(v, "verdict");
    r.result = verdict == "pass"   ? analysis::verdict::pass
               : verdict == "fail" ? analysis::verdict::fail
                                   : analysis::verdict::inconclusive;
    r.value = number_member(v, "value");
    r.threshold = number_member(v, "threshold");
    r.stable = number_member(v, "stable");
    r.samples = count_member(v, "samples");
    if (v.as_object().contains("evidence")) {
        for (const json::value& e : array_member(v, "evidence")) {
            r.evidence.push_back(evidence_from_json(e));
        }
    }
    return r;
}

analysis::test_evidence evidence_from_json(const json::value& v) {
    constexpr std::string_view test_names[] = {"errors", "exceedance", "quantile"};
    analysis::test_evidence e;
    e.check = std::string(string_member(v, "check"));
    e.test = enum_at<analysis::sequential_test>(v, "test", test_names);
    e.alpha = number_member(v, "alpha");
    e.canary_requests = count_member(v, "canary_requests");
    e.stable_requests = count_member(v, "stable_requests");
    e.rejected = bool_member(v, "rejected");
    e.within = bool_member(v, "within");
    if (e.test == analysis::sequential_test::quantile) {
        e.step = static_cast<std::uint32_t>(count_member(v, "step"));
        e.canary_lower = number_member(v, "canary_lower");
        e.canary_upper = number_member(v, "canary_upper");
        e.stable_lower = number_member(v, "stable_lower");
        e.stable_upper = number_member(v, "stable_upper");
        e.limit = number_member(v, "limit");
    } else {
        e.e_value = number_member(v, "e_value");
        e.e_threshold = number_member(v, "e_threshold");
        e.p_value = number_member(v, "p_value");
        e.e_value_within = number_member(v, "e_value_within");
        e.canary_events = count_member(v, "canary_events");
        e.stable_events = count_member(v, "stable_events");
    }
    return e;
}

analysis::slot_index slot_from_json(const json::value& v, const slot_names& names) {
    const json::string* s = v.if_string();
    if (s == nullptr) {
        throw std::invalid_argument("expected a slot name");
    }
    const std::string_view name = *s;
    for (analysis::slot_index i = 0; i < analysis::slot_count; ++i) {
        if (names[i] == name) {
            return i;
        }
    }
    throw std::invalid_argument("unknown slot " + std::string(name));
}

analysis::traffic_split split_from_json(const json::value& active, const json::value& weights,
                                        const slot_names& names) {
    analysis::traffic_split split{slot_from_json(active, names), 0};
    const auto other = count_member(weights, names[split.other()]);
    const auto mine = count_member(weights, names[split.active]);
    if (other > 100 || mine + other != 100) {
        throw std::invalid_argument("weights do not add up to 100");
    }
    split.other_weight = static_cast<std::uint8_t>(other);
    return split;
}

analysis::rollout_event event_from_json(const json::value& v, const slot_names& names) {
    analysis::rollout_event e;
    e.rollout = std::string(string_member(v, "rollout"));
    e.kind = std::string(string_member(v, "event"));
    e.to = phase_member(v, "phase");
    e.at = time_member(v, "at");
    e.split = split_from_json(member(v, "active"), member(v, "weights"), names);
    e.reason = std::string(string_member(v, "reason"));
    e.cause = std::string(string_member(v, "cause"));
    for (const json::value& c : array_member(v, "checks")) {
        e.checks.push_back(check_from_json(c));
    }
    return e;
}

analysis::rollout_record record_from_json(const json::value& v, const slot_names& names) {
    analysis::rollout_record r;
    r.id = std::string(string_member(v, "id"));
    r.strategy = string_member(v, "strategy") == "blue-green" ? config::rollout_strategy::blue_green
                                                              : config::rollout_strategy::canary;
    r.from = slot_from_json(member(v, "from"), names);
    r.to = slot_from_json(member(v, "to"), names);
    r.result = phase_member(v, "result");
    r.reason = std::string(string_member(v, "reason"));
    r.started = time_member(v, "started");
    r.finished = time_member(v, "finished");
    r.weight = static_cast<std::uint32_t>(std::min<std::uint64_t>(count_member(v, "weight"), 100));
    return r;
}

config::rollout_config rollout_config_from_json(const json::value& v) {
    config::rollout_config c;
    c.strategy = string_member(v, "strategy") == "blue-green" ? config::rollout_strategy::blue_green
                                                              : config::rollout_strategy::canary;
    c.steps.clear();
    for (const json::value& s : array_member(v, "steps")) {
        boost::system::error_code ec;
        const auto w = s.to_number<std::uint32_t>(ec);
        if (ec || w == 0 || w > 100 || (!c.steps.empty() && w <= c.steps.back())) {
            throw bad("steps", "expected increasing weights from 1 to 100");
        }
        c.steps.push_back(w);
    }
    if (c.steps.empty() || c.steps.back() != 100) {
        throw bad("steps", "expected the last step to be 100");
    }
    c.approval = bool_member(v, "approval");
    c.bake = milliseconds(std::llround(number_member(v, "bake_seconds") * 1000));
    const json::value& health = member(v, "health");
    c.health.path = std::string(string_member(health, "path"));
    c.health.deadline =
        milliseconds(std::llround(number_member(health, "deadline_seconds") * 1000));
    const json::value& smoke = member(v, "smoke");
    c.smoke.requests = static_cast<std::uint32_t>(count_member(smoke, "requests"));
    c.smoke.paths.clear();
    for (const json::value& p : array_member(smoke, "paths")) {
        const json::string* path = p.if_string();
        if (path == nullptr || path->empty() || path->front() != '/') {
            throw bad("paths", "expected paths starting with /");
        }
        c.smoke.paths.emplace_back(*path);
    }
    return c;
}

}  // namespace switchyard::admin
