// `switchyard status` and `switchyard rollout`: the admin API from a terminal or a CI pipeline.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include <boost/json.hpp>

#include "admin/cli/commands.hpp"
#include "admin/http_client.hpp"
#include "admin/status_view.hpp"

namespace switchyard::cli {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr auto call_deadline = 5s;
constexpr auto poll_every = 500ms;
// `--wait` gives up when the admin API stays unreachable this long (a restart takes seconds).
constexpr auto unreachable_limit = 60s;

// Exit statuses of `rollout --wait`, for CI pipelines.
constexpr int exit_succeeded = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
constexpr int exit_rolled_back = 3;

struct reply {
    bool reached = false;  // an HTTP answer came back
    unsigned status = 0;
    json::value body;
    std::string error;  // when not reached
};

reply call(const admin_target& admin, std::string method, std::string target,
           std::string body = {}) {
    admin::http_request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    if (!request.body.empty()) {
        request.content_type = "application/json";
    }
    if (!admin.token.empty()) {
        request.fields.emplace_back("Authorization", "Bearer " + admin.token);
    }
    const admin::http_result r = admin::fetch_blocking(admin.at, request, call_deadline);
    reply out;
    if (r.failure != admin::http_failure::none) {
        out.error = r.describe();
        return out;
    }
    out.reached = true;
    out.status = r.status;
    boost::system::error_code ec;
    out.body = json::parse(r.body, ec);
    if (ec) {
        out.body = json::string(r.body);
    }
    return out;
}

const json::value* member_of(const json::value& v, std::string_view key) {
    const json::object* o = v.if_object();
    return o != nullptr ? o->if_contains(key) : nullptr;
}

std::string field(const json::value& v, std::string_view key) {
    const json::value* m = member_of(v, key);
    return m != nullptr && m->is_string() ? std::string(m->get_string()) : std::string();
}

std::string error_of(const reply& r) {
    if (!r.reached) {
        return r.error;
    }
    const std::string e = field(r.body, "error");
    return "status " + std::to_string(r.status) + (e.empty() ? "" : ": " + e);
}

bool is_finished(std::string_view phase) {
    return phase == "succeeded" || phase == "rolled-back" || phase == "aborted";
}

// The result of rollout `id` from the history, once a newer rollout has replaced it in /status.
std::string result_in_history(const admin_target& admin, const std::string& id,
                              std::string& reason) {
    const reply r = call(admin, "GET", "/rollout/history");
    const json::value* list = member_of(r.body, "rollouts");
    if (list == nullptr || !list->is_array()) {
        return {};
    }
    for (const json::value& entry : list->get_array()) {
        if (field(entry, "id") == id) {
            reason = field(entry, "reason");
            return field(entry, "result");
        }
    }
    return {};
}

const char* usage_status = R"(usage: switchyard status [--admin URL] [--token TOKEN] [--watch]
  --admin URL     the admin API (default $SWITCHYARD_ADMIN, else http://127.0.0.1:8081)
  --token TOKEN   bearer token (default $SWITCHYARD_TOKEN)
  --watch         redraw every second until Ctrl-C
)";

const char* usage_rollout =
    R"(usage: switchyard rollout [--admin URL] [--token TOKEN] [--strategy S] [--wait]
  --strategy S    canary or blue-green (default: the configuration's rollout.strategy)
  --wait          follow the rollout; exit 0 when it succeeds, 3 when it is rolled back or
                  aborted, 1 when the admin API cannot be reached
)";

// What `status` and `rollout` were asked.
struct command_flags {
    admin_target admin;
    std::string strategy;  // rollout --strategy
    bool flag = false;     // status --watch, rollout --wait
};

// Parses the flags of `status` or `rollout` and finds the admin API; nullopt, with the reason and
// the usage printed, on anything else.
std::optional<command_flags> parse_command(int argc, char** argv, const char* usage,
                                           bool takes_strategy, std::string_view flag_name);

}  // namespace

std::optional<admin_target> find_admin(std::string_view url_flag, std::string_view token_flag,
                                       std::string& error) {
    std::string url(url_flag);
    if (url.empty()) {
        const char* env = std::getenv("SWITCHYARD_ADMIN");
        url = env != nullptr && *env != '\0' ? env : "http://127.0.0.1:8081";
    }
    if (url.find("://") == std::string::npos) {
        url = "http://" + url;  // "127.0.0.1:8081" as curl takes it
    }
    const auto parsed = config::parse_http_url(url);
    if (!parsed || parsed->target != "/") {
        error = "expected the admin URL as http://host:port, got \"" + std::string(url) + "\"";
        return std::nullopt;
    }
    admin_target out;
    out.at = parsed->at;
    out.token = std::string(token_flag);
    if (out.token.empty()) {
        const char* env = std::getenv("SWITCHYARD_TOKEN");
        out.token = env != nullptr ? env : "";
    }
    return out;
}

namespace {

std::optional<command_flags> parse_command(int argc, char** argv, const char* usage,
                                           bool takes_strategy, std::string_view flag_name) {
    std::string url;
    std::string token;
    command_flags out;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--admin" && has_value) {
            url = argv[++i];
        } else if (arg == "--token" && has_value) {
            token = argv[++i];
        } else if (arg == "--strategy" && has_value && takes_strategy) {
            out.strategy = argv[++i];
        } else if (arg == flag_name) {
            out.flag = true;
        } else if (arg == "--help" || arg == "-h") {
            std::fputs(usage, stdout);
            std::exit(0);
        } else {
            std::fprintf(stderr, "switchyard: unexpected argument '%s'\n\n%s", argv[i], usage);
            return std::nullopt;
        }
    }
    std::string error;
    auto admin = find_admin(url, token, error);
    if (!admin) {
        std::fprintf(stderr, "switchyard: %s\n", error.c_str());
        return std::nullopt;
    }
    out.admin = std::move(*admin);
    return out;
}

}  // namespace

std::optional<std::string> start_rollout(const admin_target& admin, std::string_view body) {
    const reply r = call(admin, "POST", "/rollout", std::string(body));
    if (!r.reached || r.status != 200) {
        std::fprintf(stderr, "switchyard: cannot start a rollout: %s\n", error_of(r).c_str());
        if (r.reached) {
            if (const json::value* errors = member_of(r.body, "errors");
                errors != nullptr && errors->is_array()) {
                for (const json::value& e : errors->get_array()) {
                    std::fprintf(stderr, "  %s\n", json::value_to<std::string>(e).c_str());
                }
            }
        }
        return std::nullopt;
    }
    std::printf("rollout %s started: %s, %s -> %s\n", field(r.body, "id").c_str(),
                field(r.body, "strategy").c_str(), field(r.body, "from").c_str(),
                field(r.body, "to").c_str());
    std::fflush(stdout);
    return field(r.body, "id");
}

int follow_rollout(const admin_target& admin, const std::string& id,
                   const follow_options& options) {
    std::set<std::string> printed;  // events already shown, by time and kind
    auto unreachable_since = std::chrono::steady_clock::now();
    bool reached_once = false;
    for (;;) {
        if (options.stop != nullptr && options.stop->load()) {
            return exit_failed;
        }
        const reply r = call(admin, "GET", "/status");
        if (!r.reached || r.status != 200) {
            if (reached_once) {
                unreachable_since = std::chrono::steady_clock::now();
                reached_once = false;
                std::fprintf(stderr, "switchyard: admin API unreachable (%s); retrying\n",
                             error_of(r).c_str());
            }
            if (std::chrono::steady_clock::now() - unreachable_since > unreachable_limit) {
                std::fprintf(stderr, "switchyard: gave up: %s\n", error_of(r).c_str());
                return exit_failed;
            }
            std::this_thread::sleep_for(poll_every);
            continue;
        }
        reached_once = true;
        const json::value* rollout_member = member_of(r.body, "rollout");
        if (rollout_member == nullptr) {
            std::fprintf(stderr, "switchyard: %s/status holds no rollout\n",
                         admin.at.to_string().c_str());
            return exit_failed;
        }
        const json::value& rollout = *rollout_member;
        const std::string current = field(rollout, "id");
        if (options.redraw) {
            // Home and clear, then the table: the view redraws in place.
            std::printf("\x1b[H\x1b[2J%s%s", options.header.c_str(),
                        admin::render_status(r.body).c_str());
        } else if (const json::value* events = member_of(r.body, "events");
                   events != nullptr && events->is_array()) {
            for (const json::value& e : events->get_array()) {
                const std::string key = field(e, "at") + field(e, "event");
                if (field(e, "rollout") == id && printed.insert(key).second) {
                    std::printf("%s\n", admin::render_event(e).c_str());
                }
            }
        }
        std::fflush(stdout);
        std::string result;
        std::string reason;
        if (current == id && is_finished(field(rollout, "phase"))) {
            result = field(rollout, "phase");
            reason = field(rollout, "reason");
        } else if (current != id) {
            result = result_in_history(admin, id, reason);
            if (result.empty()) {
                std::fprintf(stderr, "switchyard: rollout %s is no longer known\n", id.c_str());
                return exit_failed;
            }
        }
        if (!result.empty()) {
            std::printf("rollout %s %s: %s\n", id.c_str(), result.c_str(), reason.c_str());
            std::fflush(stdout);
            return result == "succeeded" ? exit_succeeded : exit_rolled_back;
        }
        std::this_thread::sleep_for(poll_every);
    }
}

int run_status(int argc, char** argv) {
    const auto command = parse_command(argc, argv, usage_status, false, "--watch");
    if (!command) {
        return exit_usage;
    }
    const admin_target* admin = &command->admin;
    const bool watch = command->flag;
    const bool tty = ::isatty(STDOUT_FILENO) == 1;
    std::string last;
    for (;;) {
        const reply r = call(*admin, "GET", "/status");
        if (!r.reached || r.status != 200) {
            std::fprintf(stderr, "switchyard: cannot read %s/status: %s\n",
                         admin->at.to_string().c_str(), error_of(r).c_str());
            if (!watch) {
                return exit_failed;
            }
        } else {
            const std::string table = admin::render_status(r.body);
            if (!watch) {
                std::fputs(table.c_str(), stdout);
                return exit_succeeded;
            }
            // In a terminal the table redraws in place; into a pipe it is printed when it
            // changes, so a log of it reads as a history.
            if (tty) {
                std::printf("\x1b[H\x1b[2J%s", table.c_str());
            } else if (table != last) {
                std::printf("%s\n", table.c_str());
            }
            std::fflush(stdout);
            last = table;
        }
        std::this_thread::sleep_for(1s);
    }
}

int run_rollout(int argc, char** argv) {
    const auto command = parse_command(argc, argv, usage_rollout, true, "--wait");
    if (!command) {
        return exit_usage;
    }
    const std::string& strategy = command->strategy;
    const std::string body =
        strategy.empty() ? std::string() : json::serialize(json::object{{"strategy", strategy}});
    const auto id = start_rollout(command->admin, body);
    if (!id) {
        return exit_failed;
    }
    follow_options options;
    options.redraw = ::isatty(STDOUT_FILENO) == 1;
    return command->flag ? follow_rollout(command->admin, *id, options) : exit_succeeded;
}

}  // namespace switchyard::cli
