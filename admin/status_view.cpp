#include "admin/status_view.hpp"

#include <cstdarg>
#include <cstdio>
#include <string_view>

#include <boost/json.hpp>

namespace switchyard::admin {
namespace {

namespace json = boost::json;

const json::value* find(const json::value& v, std::string_view key) {
    const json::object* o = v.if_object();
    return o != nullptr ? o->if_contains(key) : nullptr;
}

std::string text(const json::value& v, std::string_view key) {
    const json::value* m = find(v, key);
    if (m == nullptr || m->is_null()) {
        return "-";
    }
    if (m->is_string()) {
        return std::string(m->get_string());
    }
    return json::serialize(*m);
}

double number(const json::value& v, std::string_view key) {
    const json::value* m = find(v, key);
    boost::system::error_code ec;
    const double n = m != nullptr ? m->to_number<double>(ec) : 0;
    return ec ? 0 : n;
}

// "12.3%", "8.1ms", "1.25s": a check's value in its unit.
std::string format_value(std::string_view metric, double v) {
    char buf[32];
    if (metric.starts_with("latency")) {
        if (v < 1) {
            std::snprintf(buf, sizeof buf, "%.3gms", v * 1000);
        } else {
            std::snprintf(buf, sizeof buf, "%.3gs", v);
        }
    } else {
        std::snprintf(buf, sizeof buf, "%.3g%%", v * 100);
    }
    return buf;
}

// "14:20:23" from "2026-11-27T14:20:23.123Z".
std::string clock_time(const std::string& t) {
    return t.size() >= 19 ? t.substr(11, 8) : t;
}

void line(std::string& out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void line(std::string& out, const char* format, ...) {
    char buf[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    out += buf;
    out += '\n';
}

// The sequential tests (README, "Sequential judgement"): an e-value against its line, or the
// quantile bounds against their limit. Nothing with the threshold method.
void render_evidence(std::string& out, const json::value& rollout) {
    const json::value* evidence = find(rollout, "evidence");
    if (evidence == nullptr || !evidence->is_array() || evidence->get_array().empty()) {
        return;
    }
    out += '\n';
    line(out, "%-30s %10s %10s %9s  %s", "SEQUENTIAL TEST", "E-VALUE", "LINE", "P-VALUE", "STATE");
    for (const json::value& t : evidence->get_array()) {
        const std::string name = text(t, "check") + " " + text(t, "test");
        const char* state = text(t, "rejected") == "true" ? "worse"
                            : text(t, "within") == "true" ? "within"
                                                          : "open";
        if (text(t, "test") == "quantile") {
            line(out, "%-30s canary >= %s vs limit %s (step %s)  %s", name.c_str(),
                 format_value("latency", number(t, "canary_lower")).c_str(),
                 format_value("latency", number(t, "limit")).c_str(), text(t, "step").c_str(),
                 state);
        } else {
            line(out, "%-30s %10.4g %10.4g %9.3g  %s", name.c_str(), number(t, "e_value"),
                 number(t, "e_threshold"), number(t, "p_value"), state);
        }
    }
}

}  // namespace

std::string render_event(const json::value& event) {
    std::string out;
    char buf[512];
    std::snprintf(buf, sizeof buf, "%s  %-17s %s", clock_time(text(event, "at")).c_str(),
                  text(event, "event").c_str(), text(event, "reason").c_str());
    out = buf;
    return out;
}

std::string render_status(const json::value& status) {
    std::string out;
    const json::value empty;
    const json::value* rollout_member = find(status, "rollout");
    const json::value& rollout = rollout_member != nullptr ? *rollout_member : empty;
    const std::string from = text(rollout, "from");
    const std::string to = text(rollout, "to");
    const std::string id = text(rollout, "id");
    if (id.empty() || id == "-") {
        line(out, "Rollout     none yet");
    } else {
        line(out, "Rollout     %s  %s  %s -> %s", id.c_str(), text(rollout, "strategy").c_str(),
             from.c_str(), to.c_str());
    }
    std::string steps;
    if (const json::value* s = find(rollout, "steps"); s != nullptr && s->is_array()) {
        steps = std::to_string(s->get_array().size());
    }
    line(out, "Phase       %s  (step %s/%s, %s at %s%%)", text(rollout, "phase").c_str(),
         text(rollout, "step").c_str(), steps.empty() ? "-" : steps.c_str(), to.c_str(),
         text(rollout, "weight").c_str());
    line(out, "Reason      %s", text(rollout, "reason").c_str());
    line(out, "Active      %s", text(status, "active").c_str());
    out += '\n';

    line(out, "%-10s %-7s %6s %9s %8s %9s", "SLOT", "ROLE", "WEIGHT", "REQ/S", "ERRORS", "P95");
    if (const json::value* slots = find(status, "slots"); slots != nullptr && slots->is_object()) {
        for (const auto& [name, slot] : slots->get_object()) {
            const std::string role = std::string(name) == to     ? "canary"
                                     : std::string(name) == from ? "stable"
                                                                 : "";
            line(out, "%-10s %-7s %5s%% %9.1f %8s %9s", std::string(name).c_str(), role.c_str(),
                 text(slot, "weight").c_str(), number(slot, "requests_per_second"),
                 format_value("error_rate", number(slot, "error_rate")).c_str(),
                 format_value("latency", number(slot, "latency_p95_seconds")).c_str());
        }
    }
    if (const json::value* checks = find(rollout, "checks");
        checks != nullptr && checks->is_array() && !checks->get_array().empty()) {
        out += '\n';
        line(out, "%-22s %10s %10s  %s", "CHECK", "VALUE", "THRESHOLD", "VERDICT");
        for (const json::value& c : checks->get_array()) {
            const std::string metric = text(c, "metric");
            line(out, "%-22s %10s %10s  %s", text(c, "check").c_str(),
                 format_value(metric, number(c, "value")).c_str(),
                 format_value(metric, number(c, "threshold")).c_str(), text(c, "verdict").c_str());
        }
    }
    render_evidence(out, rollout);
    if (const json::value* events = find(status, "events");
        events != nullptr && events->is_array() && !events->get_array().empty()) {
        out += '\n';
        line(out, "EVENTS");
        const auto& all = events->get_array();
        constexpr std::size_t shown = 8;
        for (std::size_t i = all.size() > shown ? all.size() - shown : 0; i < all.size(); ++i) {
            out += render_event(all[i]);
            out += '\n';
        }
    }
    return out;
}

}  // namespace switchyard::admin
