#pragma once
// The subcommands of the switchyard executable.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace switchyard::cli {

// Runs the proxy and the admin API until SIGINT or SIGTERM, then drains. `banner`, when set,
// is called once both listen, with their bound ports. SIGHUP and POST /reload re-read
// `config_path`, the file `cfg` came from (none for the demo). Returns the process exit status.
int run_proxy(
    const config::config& cfg,
    const std::function<void(std::uint16_t proxy_port, std::uint16_t admin_port)>& banner = {},
    const std::string& config_path = {});

// `switchyard demo [flags]`: two built-in upstreams behind the proxy, built-in load, and a live
// canary rollout of green.
int run_demo(int argc, char** argv);

// `switchyard demo-upstream --name NAME [flags]`: the demo's upstream on its own, a sample
// application for docker-compose stacks. Runs until SIGINT or SIGTERM.
int run_demo_upstream(int argc, char** argv);

// The admin API as the command-line tools reach it.
struct admin_target {
    config::address at{"127.0.0.1", 8081};
    std::string token;  // sent as a bearer token when set
};

// --admin URL (or SWITCHYARD_ADMIN, else http://127.0.0.1:8081) and --token (or
// SWITCHYARD_TOKEN); nullopt, with `error` set, for a URL that is not http://host:port.
std::optional<admin_target> find_admin(std::string_view url_flag, std::string_view token_flag,
                                       std::string& error);

// How follow_rollout shows progress.
struct follow_options {
    bool redraw = false;  // the whole table in place (a terminal), else one line per event
    std::string header;   // printed above the table on each redraw
    const std::atomic<bool>* stop = nullptr;  // set: return 1 at the next poll
};

// Follows rollout `id` until it ends. 0 when it succeeded, 3 when it was rolled back or aborted,
// 1 when the admin API could not be reached for a minute (or `stop` was set).
int follow_rollout(const admin_target& admin, const std::string& id, const follow_options& options);

// Starts a rollout; its id, or nullopt with the reason printed to stderr.
std::optional<std::string> start_rollout(const admin_target& admin, std::string_view body);

// `switchyard status [--admin URL] [--token T] [--watch]`
int run_status(int argc, char** argv);
// `switchyard rollout [--admin URL] [--token T] [--strategy S] [--wait]`
int run_rollout(int argc, char** argv);

}  // namespace switchyard::cli
