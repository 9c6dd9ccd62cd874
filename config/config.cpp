#include "config/config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <utility>

#include <re2/re2.h>

#include "config/units.hpp"

namespace switchyard::config {

namespace {

// Where a value sits in the file: its key path and 1-based line (0 = nowhere in particular).
struct place {
    std::string path;
    int line = 0;

    place key(const std::string& name, int at_line) const {
        return {path.empty() ? name : path + "." + name, at_line};
    }
    place index(std::size_t i, int at_line) const {
        return {path + "[" + std::to_string(i) + "]", at_line};
    }
};

int line_of(const YAML::Node& node) {
    // Mark() throws on an invalid (zombie) node; IsDefined() is false for those.
    if (!node.IsDefined()) {
        return 0;
    }
    const YAML::Mark mark = node.Mark();
    return mark.is_null() || mark.line < 0 ? 0 : mark.line + 1;
}

// Quotes a user's text for a message; control characters are escaped so that a message stays on
// one line, and a pasted blob is cut short.
std::string quote(std::string_view text) {
    constexpr std::size_t max_shown = 80;
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size() && i < max_shown; ++i) {
        const char c = text[i];
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x",
                          static_cast<unsigned>(static_cast<unsigned char>(c)));
            out += buf;
        } else {
            out += c;
        }
    }
    if (text.size() > max_shown) {
        out += "...";
    }
    out += '"';
    return out;
}

// What a node holds, for the "got ..." half of a message.
std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Scalar:
            return quote(node.Scalar());
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            break;
    }
    return "nothing";
}

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of adjacent
// characters cost 1 each, so "lsiten" is as close to "listen" as "lisen" is.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) {
        d[i][0] = i;
    }
    for (std::size_t j = 0; j <= b.size(); ++j) {
        d[0][j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

// "; did you mean \"listen\"?" when a candidate is within two edits, else empty. Short
// candidates allow fewer edits: "x" is not a typo of "to".
std::string did_you_mean(std::string_view word,
                         std::initializer_list<std::string_view> candidates) {
    std::string_view best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (std::string_view candidate : candidates) {
        const std::size_t allowed =
            std::min<std::size_t>(2, std::max<std::size_t>(1, candidate.size() / 2));
        const std::size_t distance = edit_distance(word, candidate);
        if (distance <= allowed && distance < best_distance) {
            best = candidate;
            best_distance = distance;
        }
    }
    if (best.empty()) {
        return {};
    }
    return "; did you mean " + quote(best) + "?";
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

bool has_control_character(std::string_view text) {
    return std::any_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_protocol_name(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), is_tchar);
}

std::string ascii_lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return text;
}

template <class T>
void assign(T& out, std::optional<T> value) {
    if (value) {
        out = std::move(*value);
    }
}

// A ratio check compares the canary against max(stable, floor): a stable slot with no errors,
// or a stable answering in microseconds, must not turn every canary error or every millisecond
// into a failure (README, "Judgement").
constexpr double default_error_floor = 0.01;
constexpr double default_latency_floor = 0.005;  // seconds

constexpr std::pair<std::string_view, check_metric> metric_names[] = {
    {"error_rate", check_metric::error_rate},
    {"success_rate", check_metric::success_rate},
    {"latency_p50", check_metric::latency_p50},
    {"latency_p90", check_metric::latency_p90},
    {"latency_p95", check_metric::latency_p95},
    {"latency_p99", check_metric::latency_p99},
    {"latency_p999", check_metric::latency_p999},
    {"mirror_mismatch_rate", check_metric::mirror_mismatch_rate},
};

// "error_rate, success_rate, latency_p50, ...": what a check's metric may be, for messages.
std::string metric_list() {
    std::string out;
    for (const auto& [name, metric] : metric_names) {
        out += (out.empty() ? "" : ", ") + std::string(name);
    }
    return out;
}

std::string default_check_name(check_metric metric, check_kind kind) {
    std::string name(metric_name(metric));
    if (kind == check_kind::max_ratio_to_stable) {
        name += "_ratio";
    }
    return name;
}

check_config make_check(check_metric metric, check_kind kind, double limit) {
    check_config c;
    c.name = default_check_name(metric, kind);
    c.metric = metric;
    c.kind = kind;
    c.limit = limit;
    if (kind == check_kind::max_ratio_to_stable) {
        c.floor = is_latency(metric) ? default_latency_floor : default_error_floor;
    }
    return c;
}

}  // namespace

std::vector<check_config> default_checks() {
    return {
        make_check(check_metric::error_rate, check_kind::max, 0.05),
        make_check(check_metric::latency_p95, check_kind::max, 2.0),
        make_check(check_metric::error_rate, check_kind::max_ratio_to_stable, 2.0),
        make_check(check_metric::latency_p95, check_kind::max_ratio_to_stable, 1.5),
    };
}

namespace {

// Path of a request the proxy makes itself (health probe, smoke run): origin-form, printable.
bool is_request_path(std::string_view text) {
    return !text.empty() && text.front() == '/' && !has_control_character(text) &&
           text.find(' ') == std::string_view::npos;
}

// Walks the YAML tree once, filling a config and collecting every error instead of stopping at
// the first: `switchyard check` prints them all.
class parser {
public:
    std::vector<config_error> errors_;

    void parse_root(const YAML::Node& root, config& out);

private:
    std::optional<place> admin_listen_at_;  // for the clash check with `listen`
    std::optional<place> tls_listen_at_;    // for the clash checks of `tls.listen`

    void fail(const place& at, std::string message) {
        errors_.push_back({at.path, at.line, std::move(message)});
    }

    // Calls fn(key, value, place of value, line of key) for each entry of a map, after reporting
    // non-scalar and duplicate keys (yaml-cpp keeps both copies of a duplicate; the first would win
    // silently). A null node is an empty map: `webhooks:` with everything commented out.
    template <class F>
    bool each_entry(const YAML::Node& node, const place& at, F&& fn) {
        if (node.IsNull()) {
            return true;
        }
        if (!node.IsMap()) {
            fail(at, "expected a map, got " + describe(node));
            return false;
        }
        std::map<std::string, int, std::less<>> seen;
        for (const auto& entry : node) {
            const YAML::Node& key = entry.first;
            const YAML::Node& value = entry.second;
            const int key_line = line_of(key);
            if (!key.IsScalar()) {
                fail({at.path, key_line}, "expected a key name, got " + describe(key));
                continue;
            }
            const std::string& name = key.Scalar();
            // Errors about a scalar point at the scalar; about a map, list or nothing at the
            // key, since a block map starts on the line after its key.
            const place value_at = at.key(name, value.IsScalar() ? line_of(value) : key_line);
            auto [it, inserted] = seen.emplace(name, key_line);
            if (!inserted) {
                fail(at.key(name, key_line), "duplicate key " + quote(name) + " (first on line " +
                                                 std::to_string(it->second) + ")");
                continue;
            }
            fn(name, value, value_at, key_line);
        }
        return true;
    }

    // each_entry, with keys outside `known` reported as unknown (they are typos).
    template <class F>
    bool each_key(const YAML::Node& node, const place& at,
                  std::initializer_list<std::string_view> known, F&& fn) {
        return each_entry(node, at,
                          [&](const std::string& name, const YAML::Node& value,
                              const place& value_at, int key_line) {
                              if (std::find(known.begin(), known.end(), name) == known.end()) {
                                  // The key's own line: value_at may point at its value.
                                  fail({value_at.path, key_line},
                                       "unknown key " + quote(name) + did_you_mean(name, known));
                                  return;
                              }
                              fn(name, value, value_at);
                          });
    }

    // Each element of a list with its place; a null element points at the list.
    template <class F>
    bool each_item(const YAML::Node& node, const place& at, std::string_view expected, F&& fn) {
        if (!node.IsSequence()) {
            fail(at, "expected " + std::string(expected) + ", got " + describe(node));
            return false;
        }
        std::size_t i = 0;
        for (const auto& item : node) {
            const int line = item.IsNull() ? at.line : line_of(item);
            fn(item, at.index(i, line == 0 ? at.line : line));
            ++i;
        }
        return true;
    }

    std::optional<std::string> scalar(const YAML::Node& v, const place& at,
                                      std::string_view expected) {
        if (!v.IsScalar()) {
            fail(at, "expected " + std::string(expected) + ", got " + describe(v));
            return std::nullopt;
        }
        return v.Scalar();
    }

    std::optional<std::string> non_empty_string(const YAML::Node& v, const place& at,
                                                std::string_view expected) {
        auto text = scalar(v, at, expected);
        if (text && text->empty()) {
            fail(at, "expected " + std::string(expected) + ", got \"\"");
            return std::nullopt;
        }
        return text;
    }

    std::optional<duration> duration_value(const YAML::Node& v, const place& at, bool positive) {
        constexpr std::string_view expected = "a duration such as 250ms, 2s, 5m or 1h";
        auto text = scalar(v, at, expected);
        if (!text) {
            return std::nullopt;
        }
        auto d = parse_duration(*text);
        if (!d) {
            fail(at, "expected " + std::string(expected) + ", got " + quote(*text));
            return std::nullopt;
        }
        if (positive && d->count() <= 0) {
            fail(at, "expected a duration above zero, got " + quote(*text));
            return std::nullopt;
        }
        return d;
    }

    std::optional<std::uint64_t> size_value(const YAML::Node& v, const place& at, std::uint64_t min,
                                            std::string_view min_text) {
        constexpr std::string_view expected = "a size such as 64KiB, 10MiB, 1GiB or 1024 (bytes)";
        auto text = scalar(v, at, expected);
        if (!text) {
            return std::nullopt;
        }
        auto size = parse_size(*text);
        if (!size) {
            fail(at, "expected " + std::string(expected) + ", got " + quote(*text));
            return std::nullopt;
        }
        if (*size < min) {
            fail(at,
                 "expected a size of at least " + std::string(min_text) + ", got " + quote(*text));
            return std::nullopt;
        }
        return size;
    }

    // An integer from `min` to `max` (no limit when `max` is the type's largest value); the
    // error says "expected an integer from 1 to 100, got ...".
    std::optional<std::uint32_t> count_value(
        const YAML::Node& v, const place& at, std::uint32_t min,
        std::uint32_t max = std::numeric_limits<std::uint32_t>::max()) {
        constexpr std::string_view what = "an integer";
        auto text = scalar(v, at, std::string(what) + count_range(min, max));
        if (!text) {
            return std::nullopt;
        }
        return count_text(*text, at, min, max, what);
    }

    // " from 1 to 100", or " >= 1" when `max` is no limit.
    static std::string count_range(std::uint32_t min, std::uint32_t max) {
        return max == std::numeric_limits<std::uint32_t>::max()
                   ? " >= " + std::to_string(min)
                   : " from " + std::to_string(min) + " to " + std::to_string(max);
    }

    // `text` as a count from `min` to `max`: decimal digits only, no sign. When it is not one,
    // reports "expected <what><range>, got <text>".
    std::optional<std::uint32_t> count_text(const std::string& text, const place& at,
                                            std::uint32_t min, std::uint32_t max,
                                            std::string_view what) {
        std::uint32_t n = 0;
        const char* end = text.data() + text.size();
        auto [ptr, ec] = std::from_chars(text.data(), end, n);
        if (text.empty() || text.front() == '-' || ec != std::errc{} || ptr != end || n < min ||
            n > max) {
            fail(at,
                 "expected " + std::string(what) + count_range(min, max) + ", got " + quote(text));
            return std::nullopt;
        }
        return n;
    }

    std::optional<double> rate_value(const YAML::Node& v, const place& at) {
        constexpr std::string_view expected = "a rate from 0 to 1 such as 5% or 0.05";
        auto text = scalar(v, at, expected);
        if (!text) {
            return std::nullopt;
        }
        auto rate = parse_rate(*text);
        if (!rate) {
            fail(at, "expected " + std::string(expected) + ", got " + quote(*text));
        }
        return rate;
    }

    std::optional<double> positive_number(const YAML::Node& v, const place& at) {
        constexpr std::string_view expected = "a number above zero such as 1.5";
        auto text = scalar(v, at, expected);
        if (!text) {
            return std::nullopt;
        }
        double n = 0;
        const char* end = text->data() + text->size();
        auto [ptr, ec] = std::from_chars(text->data(), end, n);
        if (ec != std::errc{} || ptr != end || !std::isfinite(n) || n <= 0) {
            fail(at, "expected " + std::string(expected) + ", got " + quote(*text));
            return std::nullopt;
        }
        return n;
    }

    // YAML 1.1 spellings as yaml-cpp's own bool conversion accepts them.
    std::optional<bool> bool_value(const YAML::Node& v, const place& at) {
        auto text = scalar(v, at, "true or false");
        if (!text) {
            return std::nullopt;
        }
        std::string lower = *text;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
            return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        });
        if (lower == "true" || lower == "yes" || lower == "on") {
            return true;
        }
        if (lower == "false" || lower == "no" || lower == "off") {
            return false;
        }
        fail(at, "expected true or false, got " + quote(*text));
        return std::nullopt;
    }

    std::optional<address> address_value(const YAML::Node& v, const place& at,
                                         bool allow_port_zero) {
        auto text = scalar(v, at, "host:port");
        if (!text) {
            return std::nullopt;
        }
        auto a = parse_address(*text, allow_port_zero);
        if (!a) {
            fail(at, "expected host:port, got " + quote(*text));
        }
        return a;
    }

    template <class E>
    std::optional<E> enum_value(const YAML::Node& v, const place& at,
                                std::initializer_list<std::pair<std::string_view, E>> choices,
                                std::initializer_list<std::string_view> names) {
        std::string expected;
        std::size_t i = 0;
        for (std::string_view name : names) {
            if (i > 0) {
                expected += i + 1 == names.size() ? " or " : ", ";
            }
            expected += name;
            ++i;
        }
        auto text = scalar(v, at, expected);
        if (!text) {
            return std::nullopt;
        }
        for (const auto& [name, value] : choices) {
            if (*text == name) {
                return value;
            }
        }
        fail(at, "expected " + expected + ", got " + quote(*text) + did_you_mean(*text, names));
        return std::nullopt;
    }

    void parse_workers(const YAML::Node& v, const place& at, std::uint32_t& out);
    void parse_admin(const YAML::Node& v, const place& at, admin_config& out);
    void parse_slots(const YAML::Node& v, const place& at, std::vector<slot_config>& out);
    void parse_active(const YAML::Node& v, const place& at, config& out);
    void parse_access_log(const YAML::Node& v, const place& at, access_log_config& out);
    void parse_timeouts(const YAML::Node& v, const place& at, timeouts_config& out);
    void parse_tls(const YAML::Node& v, const place& at, tls_config& out);
    void parse_upstream_tls(const YAML::Node& v, const place& at, upstream_tls_config& out);
    void parse_health_check(const YAML::Node& v, const place& at, health_check_config& out);
    void parse_passive(const YAML::Node& v, const place& at, passive_config& out);
    // A path that must name a readable file now (a certificate, a key, a CA bundle).
    std::optional<std::string> readable_file(const YAML::Node& v, const place& at);
    void parse_limits(const YAML::Node& v, const place& at, limits_config& out);
    void parse_upstream(const YAML::Node& v, const place& at, upstream_config& out);
    void parse_upgrade(const YAML::Node& v, const place& at, upgrade_config& out);
    void parse_sticky(const YAML::Node& v, const place& at, sticky_config& out);
    void parse_hold(const YAML::Node& v, const place& at, hold_config& out);
    void parse_analysis(const YAML::Node& v, const place& at, analysis_config& out);
    void parse_checks(const YAML::Node& v, const place& at, std::vector<check_config>& out);
    std::optional<check_config> parse_check(const YAML::Node& v, const place& at);
    std::optional<check_metric> metric_value(const YAML::Node& v, const place& at);
    std::optional<std::string> check_name_value(const YAML::Node& v, const place& at);
    // The check's limit and floor, in its metric's unit; false (reported) when either is wrong.
    bool read_limits(check_config& check, const std::pair<YAML::Node, place>& limit,
                     const std::optional<std::pair<YAML::Node, place>>& floor);
    std::optional<double> check_value(const YAML::Node& v, const place& at, check_metric metric);
    void parse_fast_rollback(const YAML::Node& v, const place& at, fast_rollback_config& out);
    void parse_smoke(const YAML::Node& v, const place& at, smoke_config& out);
    void parse_mirror(const YAML::Node& v, const place& at, mirror_config& out);
    void parse_path(const YAML::Node& v, const place& at, std::string& out);

public:
    void parse_rollout(const YAML::Node& v, const place& at, rollout_config& out);

private:
    void parse_steps(const YAML::Node& v, const place& at, std::vector<std::uint32_t>& out);
    void parse_health(const YAML::Node& v, const place& at, health_config& out);
    void parse_webhooks(const YAML::Node& v, const place& at, webhooks_config& out);
    void parse_webhook_list(const YAML::Node& v, const place& at, std::vector<webhook_config>& out);
    std::optional<http_url> url_value(const YAML::Node& v, const place& at);
    std::optional<std::string> token_value(std::string token, const place& at,
                                           std::string_view origin);

public:
    void parse_routes(const YAML::Node& v, const place& at, std::vector<route_config>& out);
    void parse_preview(const YAML::Node& v, const place& at, preview_config& out);
    // After the whole file is read: every route's `to` names a slot that exists.
    void check_route_slots(const config& cfg);

private:
    std::optional<route_config> parse_route(const YAML::Node& v, const place& at);
    void parse_route_match(const YAML::Node& v, const place& at, route_match& out);
    // `header: { Name: value }` and `cookie: { name: value }`: exact values by name.
    void parse_exact_map(const YAML::Node& v, const place& at, std::string_view what,
                         std::vector<value_match>& out);
    // `headers: [ { name: X, prefix: "tr" } ]` and `cookies: [...]`.
    void parse_match_list(const YAML::Node& v, const place& at, std::string_view what,
                          std::vector<value_match>& out);
    std::optional<std::string> field_name_value(const YAML::Node& v, const place& at,
                                                std::string_view what);
    std::optional<std::string> match_text(const YAML::Node& v, const place& at);
    void parse_methods(const YAML::Node& v, const place& at, std::vector<std::string>& out);
    std::optional<cidr> cidr_value(const YAML::Node& v, const place& at);

    // Route names seen so far, with their lines; `to` slot names to check once slots are known.
    std::map<std::string, int, std::less<>> route_names_;
    std::vector<std::pair<std::string, place>> route_slots_;
};

void parser::parse_root(const YAML::Node& root, config& out) {
    const place top{"", line_of(root)};
    if (!root.IsNull() && !root.IsMap()) {
        fail(top, "expected a map of settings at the top level, got " + describe(root));
        return;
    }
    bool have_slots = false;
    std::optional<std::pair<YAML::Node, place>> active;
    std::optional<place> listen_at;
    std::optional<place> mirror_at;
    const std::initializer_list<std::string_view> top_level_keys = {
        "listen",     "workers", "admin",
        "slots",      "active",  "state_file",
        "access_log", "tls",     "listen_proxy_protocol",
        "timeouts",   "limits",  "upstream",
        "upgrade",    "sticky",  "hold",
        "analysis",   "rollout", "webhooks",
        "routes",     "preview", "mirror"};
    each_key(root, top, top_level_keys,
             [&](const std::string& key, const YAML::Node& v, const place& at) {
                 if (key == "listen") {
                     listen_at = at;
                     if (v.IsScalar() && v.Scalar() == "off") {
                         out.plain_listener = false;
                     } else {
                         // Port 0 lets tests and the demo bind an ephemeral port.
                         assign(out.listen, address_value(v, at, true));
                     }
                 } else if (key == "tls") {
                     parse_tls(v, at, out.tls.emplace());
                 } else if (key == "listen_proxy_protocol") {
                     assign(out.listen_proxy_protocol, enum_value<proxy_protocol_version>(
                                                           v, at,
                                                           {{"v1", proxy_protocol_version::v1},
                                                            {"v2", proxy_protocol_version::v2},
                                                            {"off", proxy_protocol_version::off}},
                                                           {"v1", "v2", "off"}));
                 } else if (key == "workers") {
                     parse_workers(v, at, out.workers);
                 } else if (key == "admin") {
                     parse_admin(v, at, out.admin);
                 } else if (key == "slots") {
                     have_slots = true;
                     parse_slots(v, at, out.slots);
                 } else if (key == "active") {
                     // Checked after the loop: `active` may come before `slots` in the file.
                     active.emplace(v, at);
                 } else if (key == "state_file") {
                     assign(out.state_file, non_empty_string(v, at, "a file path or off"));
                 } else if (key == "access_log") {
                     parse_access_log(v, at, out.access_log);
                 } else if (key == "timeouts") {
                     parse_timeouts(v, at, out.timeouts);
                 } else if (key == "limits") {
                     parse_limits(v, at, out.limits);
                 } else if (key == "upstream") {
                     parse_upstream(v, at, out.upstream);
                 } else if (key == "upgrade") {
                     parse_upgrade(v, at, out.upgrade);
                 } else if (key == "sticky") {
                     parse_sticky(v, at, out.sticky.emplace());
                 } else if (key == "hold") {
                     parse_hold(v, at, out.hold);
                 } else if (key == "analysis") {
                     parse_analysis(v, at, out.analysis);
                 } else if (key == "rollout") {
                     parse_rollout(v, at, out.rollout);
                 } else if (key == "webhooks") {
                     parse_webhooks(v, at, out.webhooks);
                 } else if (key == "routes") {
                     parse_routes(v, at, out.routes);
                 } else if (key == "preview") {
                     parse_preview(v, at, out.preview);
                 } else if (key == "mirror") {
                     mirror_at = at;
                     parse_mirror(v, at, out.mirror.emplace());
                 }
             });
    check_route_slots(out);
    if (!have_slots) {
        fail({"slots", 0},
             "missing key \"slots\": two slots, each { endpoints: [\"host:port\", ...] }");
    }
    if (active) {
        parse_active(active->first, active->second, out);
    } else if (!out.slots.empty()) {
        out.active = out.slots.front().name;
    }
    // Without shadow traffic there is nothing to judge it on: the check could never conclude.
    const bool mirroring = out.mirror && out.mirror->percent > 0;
    for (std::size_t i = 0; i < out.analysis.checks.size() && !mirroring; ++i) {
        if (out.analysis.checks[i].metric == check_metric::mirror_mismatch_rate) {
            fail(mirror_at.value_or(place{"analysis.checks[" + std::to_string(i) + "]", 0}),
                 "check " + quote(out.analysis.checks[i].name) +
                     " judges mirror_mismatch_rate: it needs mirror with a percent above 0");
        }
    }
    if (out.plain_listener && out.admin.listen == out.listen && out.listen.port != 0) {
        fail(admin_listen_at_.value_or(place{"admin.listen", 0}),
             "expected an address other than listen's, got " + quote(out.admin.listen.to_string()));
    }
    if (!out.plain_listener && !out.tls) {
        fail(listen_at.value_or(place{"listen", 0}),
             "listen is off and there is no tls listener: nothing would accept requests");
    }
    if (out.tls && out.tls->listen.port != 0 &&
        ((out.plain_listener && out.tls->listen == out.listen) ||
         out.tls->listen == out.admin.listen)) {
        fail(tls_listen_at_.value_or(place{"tls.listen", 0}),
             "expected an address other than listen's and admin.listen's, got " +
                 quote(out.tls->listen.to_string()));
    }
}

std::optional<std::string> parser::readable_file(const YAML::Node& v, const place& at) {
    auto path = non_empty_string(v, at, "a file path");
    if (!path) {
        return std::nullopt;
    }
    std::string why;
    if (!read_whole_file(*path, why)) {
        fail(at, "cannot read " + quote(*path) + ": " + why);
        return std::nullopt;
    }
    return path;
}

void parser::parse_tls(const YAML::Node& v, const place& at, tls_config& out) {
    bool have_cert = false;
    bool have_key = false;
    const bool is_map = each_key(
        v, at, {"listen", "cert", "key", "min_version"},
        [&](const std::string& key, const YAML::Node& value, const place& key_at) {
            if (key == "listen") {
                tls_listen_at_ = key_at;
                assign(out.listen, address_value(value, key_at, true));
            } else if (key == "cert") {
                have_cert = true;
                assign(out.cert, readable_file(value, key_at));
            } else if (key == "key") {
                have_key = true;
                assign(out.key, readable_file(value, key_at));
            } else if (key == "min_version") {
                // TLS 1.0 and 1.1 are deprecated (RFC 8996): not offered at all.
                assign(out.min_version,
                       enum_value<tls_version>(
                           value, key_at, {{"1.2", tls_version::v1_2}, {"1.3", tls_version::v1_3}},
                           {"\"1.2\"", "\"1.3\""}));
            }
        });
    if (is_map && !have_cert) {
        fail(at.key("cert", at.line), "missing key \"cert\": the certificate chain, a PEM file");
    }
    if (is_map && !have_key) {
        fail(at.key("key", at.line), "missing key \"key\": the private key, a PEM file");
    }
}

void parser::parse_upstream_tls(const YAML::Node& v, const place& at, upstream_tls_config& out) {
    each_key(v, at, {"verify", "ca", "sni"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "verify") {
                     assign(out.verify, bool_value(value, key_at));
                 } else if (key == "ca") {
                     assign(out.ca, readable_file(value, key_at));
                 } else if (key == "sni") {
                     assign(out.sni, non_empty_string(value, key_at, "a host name"));
                 }
             });
}

void parser::parse_health_check(const YAML::Node& v, const place& at, health_check_config& out) {
    std::optional<place> timeout_at;
    each_key(v, at, {"path", "interval", "timeout", "healthy", "unhealthy"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "path") {
                     auto text = non_empty_string(value, key_at, "a path such as /health");
                     // The path goes into a request line: origin-form only (RFC 9112 §3.2.1).
                     if (text && !is_request_path(*text)) {
                         fail(key_at, "expected a path starting with /, without spaces, got " +
                                          quote(*text));
                     } else {
                         assign(out.path, text);
                     }
                 } else if (key == "interval") {
                     assign(out.interval, duration_value(value, key_at, true));
                 } else if (key == "timeout") {
                     timeout_at = key_at;
                     assign(out.timeout, duration_value(value, key_at, true));
                 } else if (key == "healthy") {
                     assign(out.healthy, count_value(value, key_at, 1, 100));
                 } else if (key == "unhealthy") {
                     assign(out.unhealthy, count_value(value, key_at, 1, 100));
                 }
             });
    // A check still running when the next is due would pile checks up on a slow endpoint.
    if (timeout_at && out.timeout > out.interval) {
        fail(*timeout_at, "expected a timeout no longer than the interval (" +
                              std::to_string(out.interval.count()) + "ms), got " +
                              std::to_string(out.timeout.count()) + "ms");
    }
}

void parser::parse_passive(const YAML::Node& v, const place& at, passive_config& out) {
    each_key(v, at, {"consecutive_5xx", "consecutive_connect_failures", "eject"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "consecutive_5xx") {
                     assign(out.consecutive_5xx, count_value(value, key_at, 0, 1000));
                 } else if (key == "consecutive_connect_failures") {
                     assign(out.consecutive_connect_failures, count_value(value, key_at, 0, 1000));
                 } else if (key == "eject") {
                     assign(out.eject, duration_value(value, key_at, true));
                 }
             });
}

void parser::parse_workers(const YAML::Node& v, const place& at, std::uint32_t& out) {
    constexpr std::string_view what = "auto or a number of threads";
    constexpr std::uint32_t max_workers = 1024;
    auto text = scalar(v, at, what);
    if (!text) {
        return;
    }
    if (*text == "auto") {
        out = 0;
        return;
    }
    assign(out, count_text(*text, at, 1, max_workers, what));
}

std::optional<std::string> parser::token_value(std::string token, const place& at,
                                               std::string_view origin) {
    if (token.empty()) {
        // An empty token would turn authentication off without anyone asking for it.
        fail(at, std::string(origin) + " is empty; expected a token");
        return std::nullopt;
    }
    // The token is compared with an Authorization header, which cannot hold line breaks.
    if (has_control_character(token)) {
        fail(at, std::string(origin) + " holds a line break or control character");
        return std::nullopt;
    }
    return token;
}

void parser::parse_admin(const YAML::Node& v, const place& at, admin_config& out) {
    std::optional<place> token_at;
    std::optional<place> file_at;
    each_key(v, at, {"listen", "token", "token_file"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "listen") {
                     admin_listen_at_ = key_at;
                     assign(out.listen, address_value(value, key_at, true));
                 } else if (key == "token") {
                     token_at = key_at;
                     if (auto text = scalar(value, key_at, "a token")) {
                         assign(out.token, token_value(*text, key_at, "the token"));
                     }
                 } else if (key == "token_file") {
                     file_at = key_at;
                     assign(out.token_file, non_empty_string(value, key_at, "a file path"));
                 }
             });
    if (token_at && file_at) {
        fail(*file_at, "expected either token or token_file, not both");
        return;
    }
    if (!file_at || out.token_file.empty()) {
        return;
    }
    std::string why;
    auto contents = read_whole_file(out.token_file, why);
    if (!contents) {
        fail(*file_at, "cannot read token file " + quote(out.token_file) + ": " + why);
        return;
    }
    // Files written by `echo` or editors end in a newline that is not part of the token.
    const auto last = contents->find_last_not_of(" \t\r\n");
    contents->erase(last == std::string::npos ? 0 : last + 1);
    assign(out.token,
           token_value(std::move(*contents), *file_at, "token file " + quote(out.token_file)));
}

void parser::parse_slots(const YAML::Node& v, const place& at, std::vector<slot_config>& out) {
    if (!v.IsMap()) {
        fail(at,
             "expected a map of two slots such as { blue: { endpoints: [...] }, green: ... }, "
             "got " +
                 describe(v));
        return;
    }
    std::size_t count = 0;
    each_entry(
        v, at,
        [&](const std::string& name, const YAML::Node& slot, const place& slot_at, int key_line) {
            ++count;
            const bool name_ok =
                !name.empty() && name.size() <= 32 &&
                std::all_of(name.begin(), name.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
                });
            if (!name_ok) {
                // Slot names appear in URLs, metric labels and `GET /active-slot` output.
                fail({slot_at.path, key_line},
                     "expected a slot name of 1 to 32 characters from a-z, 0-9, _ and -, got " +
                         quote(name));
            }
            slot_config cfg;
            cfg.name = name;
            bool have_endpoints = false;
            const bool is_map =
                each_key(slot, slot_at, {"endpoints", "tls", "health_check", "passive"},
                         [&](const std::string& key, const YAML::Node& list, const place& list_at) {
                             if (key == "tls") {
                                 parse_upstream_tls(list, list_at, cfg.tls.emplace());
                                 return;
                             }
                             if (key == "health_check") {
                                 parse_health_check(list, list_at, cfg.health_check.emplace());
                                 return;
                             }
                             if (key == "passive") {
                                 parse_passive(list, list_at, cfg.passive.emplace());
                                 return;
                             }
                             have_endpoints = true;
                             const bool is_list =
                                 each_item(list, list_at, "a list of host:port",
                                           [&](const YAML::Node& item, const place& item_at) {
                                               if (auto a = address_value(item, item_at, false)) {
                                                   cfg.endpoints.push_back(std::move(*a));
                                               }
                                           });
                             if (is_list && list.size() == 0) {
                                 fail(list_at, "expected at least one endpoint (host:port)");
                             }
                         });
            if (is_map && !have_endpoints) {
                fail(slot_at.key("endpoints", slot_at.line),
                     "missing key \"endpoints\": a list of host:port");
            }
            if (name_ok) {
                out.push_back(std::move(cfg));
            }
        });
    if (count != 2) {
        fail(at, "expected exactly two slots, got " + std::to_string(count));
    }
}

void parser::parse_active(const YAML::Node& v, const place& at, config& out) {
    auto name = scalar(v, at, "a slot name");
    if (!name) {
        return;
    }
    // Without valid slots there is nothing to compare with; their own errors say why.
    if (out.slots.empty()) {
        return;
    }
    for (const slot_config& slot : out.slots) {
        if (slot.name == *name) {
            out.active = *name;
            return;
        }
    }
    std::string expected;
    std::string suggestion;
    for (std::size_t i = 0; i < out.slots.size(); ++i) {
        expected += (i == 0                      ? ""
                     : i + 1 == out.slots.size() ? " or "
                                                 : ", ") +
                    quote(out.slots[i].name);
        if (suggestion.empty()) {
            suggestion = did_you_mean(*name, {out.slots[i].name});
        }
    }
    fail(at, "expected the name of a slot (" + expected + "), got " + quote(*name) + suggestion);
}

void parser::parse_access_log(const YAML::Node& v, const place& at, access_log_config& out) {
    each_key(v, at, {"to", "format"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "to") {
                     assign(out.to,
                            non_empty_string(value, key_at, "off, stdout, stderr or a file path"));
                 } else if (key == "format") {
                     assign(out.format, enum_value<log_format>(value, key_at,
                                                               {{"json", log_format::json},
                                                                {"combined", log_format::combined}},
                                                               {"json", "combined"}));
                 }
             });
}

void parser::parse_timeouts(const YAML::Node& v, const place& at, timeouts_config& out) {
    each_key(v, at,
             {"connect", "request_header", "upstream_response", "idle", "drain", "tls_handshake",
              "tunnel_idle"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 // A zero timeout would expire every connection at once.
                 auto d = duration_value(value, key_at, true);
                 if (key == "connect") {
                     assign(out.connect, d);
                 } else if (key == "request_header") {
                     assign(out.request_header, d);
                 } else if (key == "upstream_response") {
                     assign(out.upstream_response, d);
                 } else if (key == "idle") {
                     assign(out.idle, d);
                 } else if (key == "drain") {
                     assign(out.drain, d);
                 } else if (key == "tls_handshake") {
                     assign(out.tls_handshake, d);
                 } else if (key == "tunnel_idle") {
                     assign(out.tunnel_idle, d);
                 }
             });
}

void parser::parse_limits(const YAML::Node& v, const place& at, limits_config& out) {
    each_key(v, at, {"max_header_bytes", "max_headers", "max_body_bytes", "max_connections"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "max_header_bytes") {
                     // Below 1KiB ordinary browser requests (cookies, user agent) get 431.
                     assign(out.max_header_bytes, size_value(value, key_at, 1024, "1KiB"));
                 } else if (key == "max_headers") {
                     assign(out.max_headers, count_value(value, key_at, 1));
                 } else if (key == "max_body_bytes") {
                     assign(out.max_body_bytes, size_value(value, key_at, 0, "0"));
                 } else if (key == "max_connections") {
                     assign(out.max_connections, count_value(value, key_at, 1));
                 }
             });
}

void parser::parse_upstream(const YAML::Node& v, const place& at, upstream_config& out) {
    each_key(v, at, {"max_idle", "idle_timeout", "fail_timeout", "resolve_interval"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "max_idle") {
                     // 0 turns keep-alive to upstreams off.
                     assign(out.max_idle, count_value(value, key_at, 0));
                 } else if (key == "idle_timeout") {
                     assign(out.idle_timeout, duration_value(value, key_at, true));
                 } else if (key == "fail_timeout") {
                     assign(out.fail_timeout, duration_value(value, key_at, true));
                 } else if (key == "resolve_interval") {
                     const auto d = duration_value(value, key_at, true);
                     if (d && *d < std::chrono::milliseconds(100)) {
                         // A lookup per name every few milliseconds would flood the DNS server.
                         fail(key_at, "expected at least 100ms, got " + quote(value.Scalar()));
                     } else {
                         assign(out.resolve_interval, d);
                     }
                 }
             });
}

void parser::parse_hold(const YAML::Node& v, const place& at, hold_config& out) {
    each_key(v, at, {"max_requests", "max_wait"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "max_requests") {
                     // 0 holds nothing: every request that comes during a hold is answered 503.
                     assign(out.max_requests, count_value(value, key_at, 0));
                 } else if (key == "max_wait") {
                     assign(out.max_wait, duration_value(value, key_at, true));
                 }
             });
}

void parser::parse_upgrade(const YAML::Node& v, const place& at, upgrade_config& out) {
    each_key(
        v, at, {"allow"}, [&](const std::string&, const YAML::Node& value, const place& key_at) {
            std::vector<std::string> allow;
            bool ok = true;
            const bool is_list = each_item(
                value, key_at, "a list of protocol names such as [websocket]",
                [&](const YAML::Node& item, const place& item_at) {
                    auto name = non_empty_string(item, item_at, "a protocol name");
                    if (!name) {
                        ok = false;
                        return;
                    }
                    // Matched against the protocol-name of an Upgrade token, without its
                    // version (RFC 9110 §7.8): a token, no "/".
                    if (!is_protocol_name(*name)) {
                        fail(item_at,
                             "expected a protocol name such as websocket, got " + quote(*name));
                        ok = false;
                        return;
                    }
                    std::string lower = ascii_lower(*name);
                    if (lower == "h2c") {
                        fail(item_at,
                             "h2c cannot be allowed: HTTP/2 is not offered, so an upgrade "
                             "to it is always refused");
                        ok = false;
                        return;
                    }
                    if (std::find(allow.begin(), allow.end(), lower) == allow.end()) {
                        allow.push_back(std::move(lower));
                    }
                });
            if (is_list && ok) {
                out.allow = std::move(allow);
            }
        });
}

void parser::parse_sticky(const YAML::Node& v, const place& at, sticky_config& out) {
    each_key(v, at, {"cookie", "ttl"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "cookie") {
                     auto name = non_empty_string(value, key_at, "a cookie name");
                     // RFC 6265 §4.1.1: cookie-name is a token.
                     if (name && !is_protocol_name(*name)) {
                         fail(key_at,
                              "expected a cookie name (letters, digits and "
                              "!#$%&'*+-.^_`|~), got " +
                                  quote(*name));
                     } else {
                         assign(out.cookie, std::move(name));
                     }
                 } else if (key == "ttl") {
                     assign(out.ttl, duration_value(value, key_at, true));
                 }
             });
}

void parser::parse_analysis(const YAML::Node& v, const place& at, analysis_config& out) {
    std::optional<place> evidence_at;  // promote: evidence, which needs method: sequential
    each_key(
        v, at,
        {"method", "alpha", "promote", "max_step_duration", "interval", "threshold", "min_requests",
         "inconclusive_limit", "fast_rollback", "checks"},
        [&](const std::string& key, const YAML::Node& value, const place& key_at) {
            if (key == "method") {
                assign(out.method,
                       enum_value<analysis_method>(value, key_at,
                                                   {{"threshold", analysis_method::threshold},
                                                    {"sequential", analysis_method::sequential}},
                                                   {"threshold", "sequential"}));
            } else if (key == "alpha") {
                auto alpha = rate_value(value, key_at);
                if (alpha && (*alpha <= 0 || *alpha >= 1)) {
                    fail(key_at, "expected a rate above 0 and below 1 such as 1%");
                } else {
                    assign(out.alpha, alpha);
                }
            } else if (key == "promote") {
                const auto rule = enum_value<promote_rule>(
                    value, key_at,
                    {{"interval", promote_rule::interval}, {"evidence", promote_rule::evidence}},
                    {"interval", "evidence"});
                if (rule == promote_rule::evidence) {
                    evidence_at = key_at;
                }
                assign(out.promote, rule);
            } else if (key == "max_step_duration") {
                assign(out.max_step_duration, duration_value(value, key_at, true));
            } else if (key == "interval") {
                assign(out.interval, duration_value(value, key_at, true));
            } else if (key == "threshold") {
                assign(out.threshold, count_value(value, key_at, 1));
            } else if (key == "min_requests") {
                // 0 would let an empty window pass judgement.
                assign(out.min_requests, count_value(value, key_at, 1));
            } else if (key == "inconclusive_limit") {
                assign(out.inconclusive_limit, count_value(value, key_at, 1));
            } else if (key == "fast_rollback") {
                parse_fast_rollback(value, key_at, out.fast_rollback);
            } else if (key == "checks") {
                parse_checks(value, key_at, out.checks);
            }
        });
    // Evidence of non-inferiority comes from the sequential tests; the threshold judge has none.
    if (evidence_at && out.method != analysis_method::sequential) {
        fail(*evidence_at, "promote: evidence needs method: sequential");
    }
}

void parser::parse_checks(const YAML::Node& v, const place& at, std::vector<check_config>& out) {
    out.clear();                                    // the defaults go when checks are given
    std::map<std::string, int, std::less<>> names;  // name -> line, to refuse duplicates
    const bool is_list = each_item(
        v, at, "a list of checks such as { metric: error_rate, max: 5% }",
        [&](const YAML::Node& item, const place& item_at) {
            auto check = parse_check(item, item_at);
            if (!check) {
                return;
            }
            // The name labels switchyard_analysis_checks_total and names rollback reasons.
            auto [it, inserted] = names.emplace(check->name, item_at.line);
            if (!inserted) {
                fail(item_at, "duplicate check name " + quote(check->name) + " (first on line " +
                                  std::to_string(it->second) + "); set name: to tell them apart");
                return;
            }
            out.push_back(std::move(*check));
        });
    // An empty list would promote every canary unjudged; leaving `checks` out gives the defaults.
    if (is_list && v.size() == 0) {
        fail(at, "expected at least one check (leave checks out for the defaults)");
    }
}

std::optional<check_config> parser::parse_check(const YAML::Node& v, const place& at) {
    std::optional<check_metric> metric;
    bool have_metric = false;
    std::optional<std::string> name;
    bool name_ok = true;
    // Limits are read after the loop: their unit depends on `metric`, which may come later.
    std::vector<std::pair<check_kind, std::pair<YAML::Node, place>>> limits;
    std::optional<std::pair<YAML::Node, place>> floor;
    const bool is_map =
        each_key(v, at, {"name", "metric", "max", "min", "max_ratio_to_stable", "floor"},
                 [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                     if (key == "name") {
                         name = check_name_value(value, key_at);
                         name_ok = name.has_value();
                     } else if (key == "metric") {
                         have_metric = true;
                         metric = metric_value(value, key_at);
                     } else if (key == "floor") {
                         floor.emplace(value, key_at);
                     } else {
                         const check_kind kind = key == "max"   ? check_kind::max
                                                 : key == "min" ? check_kind::min
                                                                : check_kind::max_ratio_to_stable;
                         limits.emplace_back(kind, std::make_pair(value, key_at));
                     }
                 });
    if (!is_map) {
        return std::nullopt;
    }
    if (!have_metric) {
        fail(at.key("metric", at.line), "missing key \"metric\": " + metric_list());
    }
    if (limits.size() != 1) {
        fail(at, std::string("expected one of max, min and max_ratio_to_stable, got ") +
                     (limits.empty() ? "none" : "more than one"));
        return std::nullopt;
    }
    if (!metric || !name_ok) {
        return std::nullopt;
    }
    check_config check;
    check.metric = *metric;
    check.kind = limits.front().first;
    check.name = name.value_or(default_check_name(check.metric, check.kind));
    if (!read_limits(check, limits.front().second, floor)) {
        return std::nullopt;
    }
    return check;
}

std::optional<check_metric> parser::metric_value(const YAML::Node& v, const place& at) {
    const std::string expected = metric_list();
    auto text = scalar(v, at, expected);
    if (!text) {
        return std::nullopt;
    }
    for (const auto& [name, metric] : metric_names) {
        if (*text == name) {
            return metric;
        }
    }
    fail(at, "expected " + expected + ", got " + quote(*text) +
                 did_you_mean(*text, {"error_rate", "success_rate", "latency_p50", "latency_p90",
                                      "latency_p95", "latency_p99", "latency_p999",
                                      "mirror_mismatch_rate"}));
    return std::nullopt;
}

std::optional<std::string> parser::check_name_value(const YAML::Node& v, const place& at) {
    auto text = non_empty_string(v, at, "a check name");
    if (text && !std::all_of(text->begin(), text->end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        })) {
        // The name is a metric label value and a rollback reason.
        fail(at, "expected a check name of a-z, 0-9 and _, got " + quote(*text));
        return std::nullopt;
    }
    return text;
}

bool parser::read_limits(check_config& check, const std::pair<YAML::Node, place>& limit,
                         const std::optional<std::pair<YAML::Node, place>>& floor) {
    const auto& [node, limit_at] = limit;
    const bool ratio = check.kind == check_kind::max_ratio_to_stable;
    if (ratio && check.metric == check_metric::success_rate) {
        // A ratio to stable bounds what grows when the canary is worse.
        fail(limit_at,
             "max_ratio_to_stable applies to error_rate and latency checks; for success_rate use "
             "min");
        return false;
    }
    if (check.metric == check_metric::mirror_mismatch_rate && check.kind != check_kind::max) {
        // The stable slot's answers are what the mirror is compared with: it has no rate of its
        // own to take a ratio to, and a floor on agreement is a max on mismatches.
        fail(limit_at, "mirror_mismatch_rate takes max only");
        return false;
    }
    const auto value =
        ratio ? positive_number(node, limit_at) : check_value(node, limit_at, check.metric);
    if (!value) {
        return false;
    }
    check.limit = *value;
    if (ratio) {
        check.floor = is_latency(check.metric) ? default_latency_floor : default_error_floor;
    }
    if (!floor) {
        return true;
    }
    const auto& [floor_node, floor_at] = *floor;
    if (!ratio) {
        fail(floor_at, "floor applies to max_ratio_to_stable checks only");
        return false;
    }
    const auto floor_value = check_value(floor_node, floor_at, check.metric);
    check.floor = floor_value.value_or(0);
    return floor_value.has_value();
}

// A bound in the metric's unit: a rate for error_rate and success_rate, a duration (seconds)
// for latencies.
std::optional<double> parser::check_value(const YAML::Node& v, const place& at,
                                          check_metric metric) {
    if (!is_latency(metric)) {
        return rate_value(v, at);
    }
    auto d = duration_value(v, at, true);
    if (!d) {
        return std::nullopt;
    }
    return static_cast<double>(d->count()) / 1000.0;
}

void parser::parse_fast_rollback(const YAML::Node& v, const place& at, fast_rollback_config& out) {
    if (v.IsScalar()) {
        if (v.Scalar() == "off") {
            out.enabled = false;
        } else {
            fail(at,
                 "expected off or a map such as { error_rate: 50%, min_requests: 10, "
                 "window: 1s }, got " +
                     quote(v.Scalar()));
        }
        return;
    }
    each_key(v, at, {"error_rate", "min_requests", "window"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "error_rate") {
                     auto rate = rate_value(value, key_at);
                     if (rate && *rate <= 0) {
                         fail(key_at, "expected a rate above 0, got " + quote(value.Scalar()));
                     } else {
                         assign(out.error_rate, rate);
                     }
                 } else if (key == "min_requests") {
                     assign(out.min_requests, count_value(value, key_at, 1));
                 } else if (key == "window") {
                     assign(out.window, duration_value(value, key_at, true));
                 }
             });
}

void parser::parse_rollout(const YAML::Node& v, const place& at, rollout_config& out) {
    each_key(v, at, {"strategy", "steps", "approval", "bake", "health", "smoke"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "strategy") {
                     assign(out.strategy, enum_value<rollout_strategy>(
                                              value, key_at,
                                              {{"canary", rollout_strategy::canary},
                                               {"blue-green", rollout_strategy::blue_green}},
                                              {"canary", "blue-green"}));
                 } else if (key == "steps") {
                     parse_steps(value, key_at, out.steps);
                 } else if (key == "approval") {
                     assign(out.approval, bool_value(value, key_at));
                 } else if (key == "bake") {
                     // 0 = no bake: promotion ends the rollout.
                     assign(out.bake, duration_value(value, key_at, false));
                 } else if (key == "health") {
                     parse_health(value, key_at, out.health);
                 } else if (key == "smoke") {
                     parse_smoke(value, key_at, out.smoke);
                 }
             });
}

void parser::parse_smoke(const YAML::Node& v, const place& at, smoke_config& out) {
    each_key(v, at, {"requests", "paths"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "requests") {
                     // Bounded: the smoke run holds each answer's numbers until it is judged.
                     assign(out.requests, count_value(value, key_at, 1, 100000));
                 } else if (key == "paths") {
                     std::vector<std::string> paths;
                     const bool is_list =
                         each_item(value, key_at, "a list of paths such as [\"/\"]",
                                   [&](const YAML::Node& item, const place& item_at) {
                                       std::string path;
                                       parse_path(item, item_at, path);
                                       if (!path.empty()) {
                                           paths.push_back(std::move(path));
                                       }
                                   });
                     if (is_list && value.size() == 0) {
                         fail(key_at, "expected at least one path");
                     } else if (is_list && paths.size() == value.size()) {
                         out.paths = std::move(paths);
                     }
                 }
             });
}

void parser::parse_mirror(const YAML::Node& v, const place& at, mirror_config& out) {
    each_key(
        v, at, {"percent", "methods", "max_body", "queue"},
        [&](const std::string& key, const YAML::Node& value, const place& key_at) {
            if (key == "percent") {
                assign(out.percent, count_value(value, key_at, 0, 100));
            } else if (key == "max_body") {
                assign(out.max_body, size_value(value, key_at, 0, "0"));
            } else if (key == "queue") {
                // Bounded: every copy in flight holds its request's bytes.
                assign(out.queue, count_value(value, key_at, 1, 1000000));
            } else if (key == "methods") {
                std::vector<std::string> methods;
                bool ok = true;
                const bool is_list = each_item(
                    value, key_at, "a list of methods such as [GET, HEAD]",
                    [&](const YAML::Node& item, const place& item_at) {
                        auto name = non_empty_string(item, item_at, "a method such as GET");
                        // RFC 9110 §9.1: a method is a token, and case-sensitive.
                        if (!name || !is_protocol_name(*name)) {
                            if (name) {
                                fail(item_at, "expected a method such as GET, got " + quote(*name));
                            }
                            ok = false;
                            return;
                        }
                        if (*name == "CONNECT") {
                            fail(item_at, "CONNECT is refused by the proxy: never mirrored");
                            ok = false;
                            return;
                        }
                        if (std::find(methods.begin(), methods.end(), *name) == methods.end()) {
                            methods.push_back(std::move(*name));
                        }
                    });
                if (is_list && value.size() == 0) {
                    fail(key_at, "expected at least one method (percent: 0 turns mirror off)");
                } else if (is_list && ok) {
                    out.methods = std::move(methods);
                }
            }
        });
}

void parser::parse_path(const YAML::Node& v, const place& at, std::string& out) {
    auto text = scalar(v, at, "a path starting with /");
    if (text && !is_request_path(*text)) {
        fail(at, "expected a path starting with /, got " + quote(*text));
    } else if (text) {
        out = *text;
    }
}

void parser::parse_steps(const YAML::Node& v, const place& at, std::vector<std::uint32_t>& out) {
    std::vector<std::uint32_t> steps;
    bool ok = true;
    place last_at = at;
    const bool is_list = each_item(
        v, at, "a list of weights such as [10, 25, 50, 100]",
        [&](const YAML::Node& item, const place& item_at) {
            auto n = count_value(item, item_at, 1, 100);
            if (!n) {
                ok = false;
                return;
            }
            if (!steps.empty() && *n <= steps.back()) {
                fail(item_at, "expected a weight above the step before (" +
                                  std::to_string(steps.back()) + "), got " + std::to_string(*n));
                ok = false;
                return;
            }
            steps.push_back(*n);
            last_at = item_at;
        });
    if (!is_list) {
        return;
    }
    if (v.size() == 0) {
        fail(at, "expected at least one step");
        return;
    }
    if (ok && steps.back() != 100) {
        // A rollout that never reaches 100 would leave traffic split for good.
        fail(last_at, "expected the last step to be 100, got " + std::to_string(steps.back()));
        return;
    }
    if (ok) {
        out = std::move(steps);
    }
}

void parser::parse_health(const YAML::Node& v, const place& at, health_config& out) {
    each_key(v, at, {"path", "deadline"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "path") {
                     parse_path(value, key_at, out.path);
                 } else if (key == "deadline") {
                     assign(out.deadline, duration_value(value, key_at, true));
                 }
             });
}

void parser::parse_webhooks(const YAML::Node& v, const place& at, webhooks_config& out) {
    each_key(v, at, {"pre_rollout", "events"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 parse_webhook_list(value, key_at, key == "events" ? out.events : out.pre_rollout);
             });
}

void parser::parse_webhook_list(const YAML::Node& v, const place& at,
                                std::vector<webhook_config>& out) {
    each_item(v, at, "a list of webhooks such as { url: \"http://host/path\" }",
              [&](const YAML::Node& item, const place& item_at) {
                  webhook_config hook;
                  bool have_url = false;
                  bool ok = true;
                  const bool is_map = each_key(
                      item, item_at, {"url", "timeout"},
                      [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                          if (key == "url") {
                              have_url = true;
                              auto url = url_value(value, key_at);
                              ok = ok && url.has_value();
                              assign(hook.url, std::move(url));
                          } else if (key == "timeout") {
                              auto d = duration_value(value, key_at, true);
                              ok = ok && d.has_value();
                              assign(hook.timeout, d);
                          }
                      });
                  if (!is_map) {
                      return;
                  }
                  if (!have_url) {
                      fail(item_at.key("url", item_at.line), "missing key \"url\": an http:// URL");
                      return;
                  }
                  if (ok) {
                      out.push_back(std::move(hook));
                  }
              });
}

std::optional<http_url> parser::url_value(const YAML::Node& v, const place& at) {
    auto text = scalar(v, at, "an http:// URL");
    if (!text) {
        return std::nullopt;
    }
    if (starts_with(*text, "https://")) {
        fail(at, "https is not supported yet; expected an http:// URL, got " + quote(*text));
        return std::nullopt;
    }
    auto url = parse_http_url(*text);
    if (!url) {
        fail(at, "expected an http:// URL such as http://host:8080/path, got " + quote(*text));
    }
    return url;
}

// --- routes and preview (README, "Routes") ---

void parser::parse_routes(const YAML::Node& v, const place& at, std::vector<route_config>& out) {
    std::vector<route_config> routes;
    bool ok = true;
    const bool is_list = each_item(
        v, at,
        "a list of routes such as { name: testers, match: { header: { X-Canary: \"true\" } }, "
        "to: canary }",
        [&](const YAML::Node& item, const place& item_at) {
            auto route = parse_route(item, item_at);
            ok = ok && route.has_value();
            if (route) {
                routes.push_back(std::move(*route));
            }
        });
    if (!is_list) {
        return;
    }
    if (v.size() > max_routes) {
        fail(at, "expected at most " + std::to_string(max_routes) + " routes, got " +
                     std::to_string(v.size()));
        return;
    }
    if (ok) {
        out = std::move(routes);
    }
}

std::optional<route_config> parser::parse_route(const YAML::Node& v, const place& at) {
    route_config route;
    bool have_name = false;
    bool have_match = false;
    bool have_to = false;
    const std::size_t errors_before = errors_.size();
    const bool is_map = each_key(
        v, at, {"name", "match", "to"},
        [&](const std::string& key, const YAML::Node& value, const place& key_at) {
            if (key == "name") {
                have_name = true;
                auto name = non_empty_string(value, key_at, "a route name");
                if (name && has_control_character(*name)) {
                    fail(key_at,
                         "expected a route name without control characters, got " + quote(*name));
                } else if (name) {
                    auto [it, inserted] = route_names_.emplace(*name, key_at.line);
                    if (!inserted) {
                        fail(key_at, "duplicate route name " + quote(*name) + " (first on line " +
                                         std::to_string(it->second) + ")");
                    }
                    route.name = std::move(*name);
                }
            } else if (key == "match") {
                have_match = true;
                parse_route_match(value, key_at, route.match);
            } else if (key == "to") {
                have_to = true;
                auto to = non_empty_string(value, key_at, "canary, stable or a slot name");
                if (to == "canary") {
                    route.to = route_target::canary;
                } else if (to == "stable") {
                    route.to = route_target::stable;
                } else if (to) {
                    route.to = route_target::slot;
                    route.slot = *to;
                    route_slots_.emplace_back(*to, key_at);
                }
            }
        });
    if (!is_map) {
        return std::nullopt;
    }
    if (!have_name) {
        fail(at.key("name", at.line), "missing key \"name\": the route's name, unique");
    }
    if (!have_match) {
        fail(at.key("match", at.line),
             "missing key \"match\": a map such as { header: { X-Canary: \"true\" } }");
    }
    if (!have_to) {
        fail(at.key("to", at.line), "missing key \"to\": canary, stable or a slot name");
    }
    if (errors_.size() != errors_before) {
        return std::nullopt;
    }
    return route;
}

void parser::parse_route_match(const YAML::Node& v, const place& at, route_match& out) {
    if (v.IsNull()) {
        fail(at, "expected a map such as { header: { X-Canary: \"true\" } }, got nothing");
        return;
    }
    each_key(v, at, {"header", "headers", "cookie", "cookies", "query", "path_prefix", "method"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "header") {
                     parse_exact_map(value, key_at, "a header name", out.headers);
                 } else if (key == "headers") {
                     parse_match_list(value, key_at, "a header name", out.headers);
                 } else if (key == "cookie") {
                     parse_exact_map(value, key_at, "a cookie name", out.cookies);
                 } else if (key == "cookies") {
                     parse_match_list(value, key_at, "a cookie name", out.cookies);
                 } else if (key == "query") {
                     each_entry(value, key_at,
                                [&](const std::string& name, const YAML::Node& param,
                                    const place& param_at, int) {
                                    auto text = match_text(param, param_at);
                                    if (name.empty() || has_control_character(name)) {
                                        fail(param_at,
                                             "expected a query parameter name, got " + quote(name));
                                    } else if (text) {
                                        out.query.push_back({name, std::move(*text)});
                                    }
                                });
                 } else if (key == "path_prefix") {
                     parse_path(value, key_at, out.path_prefix);
                 } else if (key == "method") {
                     parse_methods(value, key_at, out.methods);
                 }
             });
}

std::optional<std::string> parser::field_name_value(const YAML::Node& v, const place& at,
                                                    std::string_view what) {
    auto text = scalar(v, at, what);
    if (text && !is_protocol_name(*text)) {
        // Header names are tokens (RFC 9110 §5.1), and so are cookie names (RFC 6265 §4.1.1).
        fail(at, "expected " + std::string(what) + " (a token), got " + quote(*text));
        return std::nullopt;
    }
    return text;
}

std::optional<std::string> parser::match_text(const YAML::Node& v, const place& at) {
    auto text = scalar(v, at, "a value");
    if (text && has_control_character(*text)) {
        // A field value never holds one that the parser lets through (RFC 9110 §5.5).
        fail(at, "expected a value without control characters, got " + quote(*text));
        return std::nullopt;
    }
    return text;
}

void parser::parse_exact_map(const YAML::Node& v, const place& at, std::string_view what,
                             std::vector<value_match>& out) {
    each_entry(
        v, at,
        [&](const std::string& name, const YAML::Node& value, const place& value_at, int key_line) {
            if (!is_protocol_name(name)) {
                fail({value_at.path, key_line},
                     "expected " + std::string(what) + " (a token), got " + quote(name));
                return;
            }
            auto text = match_text(value, value_at);
            if (text) {
                out.push_back({name, value_match_kind::exact, std::move(*text)});
            }
        });
}

void parser::parse_match_list(const YAML::Node& v, const place& at, std::string_view what,
                              std::vector<value_match>& out) {
    each_item(v, at, "a list such as [ { name: X-Canary, prefix: \"tr\" } ]",
              [&](const YAML::Node& item, const place& item_at) {
                  value_match m;
                  bool have_name = false;
                  int conditions = 0;
                  bool ok = true;
                  const bool is_map = each_key(
                      item, item_at, {"name", "exact", "prefix", "regex", "present"},
                      [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                          if (key == "name") {
                              have_name = true;
                              auto name = field_name_value(value, key_at, what);
                              ok = ok && name.has_value();
                              assign(m.name, std::move(name));
                              return;
                          }
                          ++conditions;
                          if (key == "present") {
                              auto present = bool_value(value, key_at);
                              ok = ok && present.has_value();
                              m.kind = present.value_or(true) ? value_match_kind::present
                                                              : value_match_kind::absent;
                              return;
                          }
                          auto text = match_text(value, key_at);
                          ok = ok && text.has_value();
                          if (!text) {
                              return;
                          }
                          m.value = std::move(*text);
                          if (key == "exact") {
                              m.kind = value_match_kind::exact;
                          } else if (key == "prefix") {
                              m.kind = value_match_kind::prefix;
                          } else {
                              m.kind = value_match_kind::regex;
                              // Compiled here only to report a bad pattern with its line; the proxy
                              // compiles it again into its route table.
                              const RE2 re(m.value, RE2::Quiet);
                              if (!re.ok()) {
                                  fail(key_at, "invalid regular expression " + quote(m.value) +
                                                   ": " + re.error());
                                  ok = false;
                              }
                          }
                      });
                  if (!is_map) {
                      return;
                  }
                  if (!have_name) {
                      fail(item_at.key("name", item_at.line),
                           "missing key \"name\": " + std::string(what));
                      ok = false;
                  }
                  if (conditions != 1) {
                      fail(item_at, "expected one of exact, prefix, regex or present, got " +
                                        std::to_string(conditions));
                      ok = false;
                  }
                  if (ok) {
                      out.push_back(std::move(m));
                  }
              });
}

void parser::parse_methods(const YAML::Node& v, const place& at, std::vector<std::string>& out) {
    auto one = [&](const YAML::Node& item, const place& item_at) {
        auto method = scalar(item, item_at, "a method such as GET");
        if (method && !is_protocol_name(*method)) {
            fail(item_at, "expected a method such as GET (a token), got " + quote(*method));
        } else if (method) {
            out.push_back(std::move(*method));
        }
    };
    if (v.IsScalar()) {
        one(v, at);
        return;
    }
    const bool is_list =
        each_item(v, at, "a method such as GET, or a list of methods such as [GET, HEAD]", one);
    if (is_list && v.size() == 0) {
        fail(at, "expected at least one method");
    }
}

void parser::parse_preview(const YAML::Node& v, const place& at, preview_config& out) {
    each_key(v, at, {"header", "token_header", "from"},
             [&](const std::string& key, const YAML::Node& value, const place& key_at) {
                 if (key == "header") {
                     assign(out.header, field_name_value(value, key_at, "a header name"));
                 } else if (key == "token_header") {
                     assign(out.token_header, field_name_value(value, key_at, "a header name"));
                 } else if (key == "from") {
                     std::vector<cidr> from;
                     const bool is_list =
                         each_item(value, key_at, "a list of address ranges such as [10.0.0.0/8]",
                                   [&](const YAML::Node& item, const place& item_at) {
                                       if (auto c = cidr_value(item, item_at)) {
                                           from.push_back(std::move(*c));
                                       }
                                   });
                     if (is_list && from.size() == value.size()) {
                         out.from = std::move(from);
                     }
                 }
             });
    if (ascii_lower(out.header) == ascii_lower(out.token_header)) {
        fail(at.key("token_header", at.line),
             "expected a header other than preview.header, got " + quote(out.token_header));
    }
}

std::optional<cidr> parser::cidr_value(const YAML::Node& v, const place& at) {
    constexpr std::string_view expected =
        "an address or range such as 10.0.0.0/8, 192.168.1.7 or fd00::/8";
    auto text = scalar(v, at, expected);
    if (!text) {
        return std::nullopt;
    }
    cidr out;
    out.text = *text;
    const std::size_t slash = text->find('/');
    const std::string host = text->substr(0, slash);
    in_addr v4{};
    in6_addr v6{};
    unsigned max_prefix = 0;
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        out.address[10] = 0xff;
        out.address[11] = 0xff;
        std::memcpy(out.address.data() + 12, &v4, 4);
        max_prefix = 32;
    } else if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        std::memcpy(out.address.data(), &v6, 16);
        max_prefix = 128;
    } else {
        fail(at, "expected " + std::string(expected) + ", got " + quote(*text));
        return std::nullopt;
    }
    std::uint32_t prefix = max_prefix;
    if (slash != std::string::npos) {
        const std::string bits = text->substr(slash + 1);
        const char* end = bits.data() + bits.size();
        auto [ptr, ec] = std::from_chars(bits.data(), end, prefix);
        if (bits.empty() || ec != std::errc{} || ptr != end || prefix > max_prefix) {
            fail(at, "expected a prefix length from 0 to " + std::to_string(max_prefix) +
                         " after /, got " + quote(*text));
            return std::nullopt;
        }
    }
    out.prefix = static_cast<std::uint8_t>(prefix + (max_prefix == 32 ? 96 : 0));
    return out;
}

void parser::check_route_slots(const config& cfg) {
    if (cfg.slots.empty()) {
        return;  // reported as missing already
    }
    std::string names;
    for (const auto& s : cfg.slots) {
        names += (names.empty() ? "" : ", ") + s.name;
    }
    for (const auto& [slot, at] : route_slots_) {
        const bool known = std::any_of(cfg.slots.begin(), cfg.slots.end(),
                                       [&](const slot_config& s) { return s.name == slot; });
        if (!known) {
            fail(at, "expected canary, stable or a slot name (" + names + "), got " + quote(slot));
        }
    }
}

}  // namespace

std::string_view metric_name(check_metric m) noexcept {
    for (const auto& [name, metric] : metric_names) {
        if (metric == m) {
            return name;
        }
    }
    return "unknown";
}

bool is_latency(check_metric m) noexcept {
    return m != check_metric::error_rate && m != check_metric::success_rate &&
           m != check_metric::mirror_mismatch_rate;
}

double quantile_of(check_metric m) noexcept {
    switch (m) {
        case check_metric::latency_p50:
            return 0.50;
        case check_metric::latency_p90:
            return 0.90;
        case check_metric::latency_p95:
            return 0.95;
        case check_metric::latency_p99:
            return 0.99;
        case check_metric::latency_p999:
            return 0.999;
        case check_metric::error_rate:
        case check_metric::success_rate:
        case check_metric::mirror_mismatch_rate:
            break;
    }
    return 0;
}

std::string_view strategy_name(rollout_strategy s) noexcept {
    return s == rollout_strategy::canary ? "canary" : "blue-green";
}

std::optional<http_url> parse_http_url(std::string_view text) {
    constexpr std::string_view scheme = "http://";
    if (!starts_with(text, scheme) || has_control_character(text) ||
        text.find(' ') != std::string_view::npos) {
        return std::nullopt;
    }
    // RFC 3986 §3.2: the authority ends at the first '/', '?' or '#'.
    const std::string_view rest = text.substr(scheme.size());
    const std::size_t authority_end = rest.find_first_of("/?#");
    std::string authority(rest.substr(0, authority_end));
    if (authority.empty() || authority.find('@') != std::string::npos) {
        return std::nullopt;  // no host, or credentials in the URL
    }
    const bool has_port = authority.back() != ']' && authority.find(':') != std::string::npos &&
                          (authority.front() != '[' || authority.find("]:") != std::string::npos);
    auto at = parse_address(has_port ? authority : authority + ":80");
    if (!at) {
        return std::nullopt;
    }
    // The fragment stays with the client (RFC 9110 §7.1); an empty path is "/".
    std::string target(authority_end == std::string_view::npos ? std::string_view{}
                                                               : rest.substr(authority_end));
    target.erase(std::min(target.find('#'), target.size()));
    if (target.empty() || target.front() != '/') {
        target.insert(0, "/");
    }
    return http_url{std::string(text), std::move(*at), std::move(target)};
}

// C stdio because it reports a directory (EISDIR) as a read error, where std::ifstream opens it
// and then throws from underflow.
std::optional<std::string> read_whole_file(const std::string& path, std::string& why) {
    errno = 0;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                         &std::fclose);
    if (!file) {
        why = errno != 0 ? std::strerror(errno) : "cannot open";
        return std::nullopt;
    }
    std::string contents;
    char buf[8192];
    for (;;) {
        const std::size_t n = std::fread(buf, 1, sizeof buf, file.get());
        contents.append(buf, n);
        if (n < sizeof buf) {
            break;
        }
    }
    if (std::ferror(file.get()) != 0) {
        why = errno != 0 ? std::strerror(errno) : "read error";
        return std::nullopt;
    }
    return contents;
}

std::string address::to_string() const {
    const std::string port_text = std::to_string(port);
    if (host.find(':') != std::string::npos) {
        return "[" + host + "]:" + port_text;
    }
    return host + ":" + port_text;
}

load_result parse_config(const std::string& text) {
    load_result result;
    try {
        const std::vector<YAML::Node> documents = YAML::LoadAll(text);
        if (documents.size() > 1) {
            result.errors.push_back(
                {"", line_of(documents[1]),
                 "expected one YAML document, got " + std::to_string(documents.size())});
            return result;
        }
        config cfg;
        parser p;
        p.parse_root(documents.empty() ? YAML::Node() : documents.front(), cfg);
        result.errors = std::move(p.errors_);
        if (result.errors.empty()) {
            result.value = std::move(cfg);
        }
    } catch (const YAML::Exception& e) {
        result.errors.clear();
        result.errors.push_back({"", e.mark.is_null() || e.mark.line < 0 ? 0 : e.mark.line + 1,
                                 "invalid YAML: " + e.msg});
    } catch (const std::exception& e) {
        // Out of memory, or a yaml-cpp failure without a mark: still an error value.
        result.errors.clear();
        result.errors.push_back({"", 0, std::string("cannot parse: ") + e.what()});
    }
    // File order reads best in `switchyard check`; errors with no line come first.
    std::stable_sort(result.errors.begin(), result.errors.end(),
                     [](const config_error& a, const config_error& b) { return a.line < b.line; });
    return result;
}

rollout_overrides_result parse_rollout_overrides(const std::string& text,
                                                 const rollout_config& base) {
    rollout_overrides_result result;
    try {
        const YAML::Node root = YAML::Load(text);
        rollout_config out = base;
        parser p;
        // An empty body overrides nothing.
        if (!root.IsNull()) {
            p.parse_rollout(root, {"rollout", line_of(root)}, out);
        }
        result.errors = std::move(p.errors_);
        if (result.errors.empty()) {
            result.value = std::move(out);
        }
    } catch (const YAML::Exception& e) {
        result.errors.push_back({"", e.mark.is_null() || e.mark.line < 0 ? 0 : e.mark.line + 1,
                                 "invalid JSON: " + e.msg});
    } catch (const std::exception& e) {
        result.errors.push_back({"", 0, std::string("cannot parse: ") + e.what()});
    }
    return result;
}

load_result load_config_file(const std::string& path) {
    std::string why;
    std::optional<std::string> text;
    try {
        text = read_whole_file(path, why);
    } catch (const std::exception& e) {
        why = e.what();
    }
    if (!text) {
        load_result result;
        result.errors.push_back({"", 0, "cannot read file: " + why});
        return result;
    }
    return parse_config(*text);
}

std::string format_error(const std::string& source, const config_error& error) {
    std::string out = source;
    if (error.line > 0) {
        out += ":" + std::to_string(error.line);
    }
    out += ": ";
    if (!error.path.empty()) {
        out += error.path + ": ";
    }
    out += error.message;
    return out;
}

bool is_loopback(const address& a) {
    std::string host = a.host;
    std::transform(host.begin(), host.end(), host.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    // RFC 6761 §6.3: "localhost" names the loopback interface.
    if (host == "localhost" || host == "localhost.") {
        return true;
    }
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        // RFC 1122 §3.2.1.3: all of 127.0.0.0/8 is loopback.
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&v6)) {
            return true;
        }
        // ::ffff:127.0.0.1 is the IPv4 loopback seen through a dual-stack socket.
        return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
    }
    return false;
}

}  // namespace switchyard::config
