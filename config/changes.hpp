#pragma once
// What a reload (README, "Reloading") would change: the keys of a new configuration that differ
// from the one in force, sorted into those that apply live and those that need a restart.

#include <string>
#include <vector>

#include "config/config.hpp"

namespace switchyard::config {

struct config_changes {
    // Keys that differ and apply live, in the README's order: "access_log", "timeouts",
    // "slots.green.endpoints", ...
    std::vector<std::string> changed;
    // Keys that differ and are left as they are until a restart: "listen", "workers", ...
    std::vector<std::string> restart_required;
};

// The keys of `next` that differ from `running`. A secret is named, never shown ("admin.token").
config_changes compare(const config& running, const config& next);

// What a reload puts in force: `next`, with every key that needs a restart as `running` has it.
config live_part(const config& running, const config& next);

}  // namespace switchyard::config
