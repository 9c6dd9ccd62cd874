#pragma once
// The subcommands of the switchyard executable.

#include <functional>
#include <string>

#include "config/config.hpp"

namespace switchyard::cli {

// Runs the proxy and the admin API until SIGINT or SIGTERM, then drains. `banner`, when set,
// is printed once both listen. Returns the process exit status.
int run_proxy(const config::config& cfg, const std::function<void()>& banner = {});

// `switchyard demo [flags]`: two built-in upstreams behind the proxy on 8080, admin on 8081.
int run_demo(int argc, char** argv);

}  // namespace switchyard::cli
