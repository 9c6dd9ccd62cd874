#pragma once
// The state file: the split in force (manual changes included) and the rollouts, written
// atomically on every change so that a restart, kill -9 included, finds them (README, "State
// file").

#include <optional>
#include <string>
#include <string_view>

#include "admin/rollout_json.hpp"
#include "analysis/rollout.hpp"
#include "analysis/traffic_split.hpp"

namespace switchyard::admin {

struct saved_state {
    analysis::traffic_split split;
    analysis::rollout_state rollout;
};

std::string state_to_json(const saved_state& s, const slot_names& names);
// Throws std::exception on anything it cannot read, and on a file written for other slots.
saved_state state_from_json(std::string_view text, const slot_names& names);

class state_file {
public:
    // Creates the file's directory when missing and proves it writable by creating the temporary
    // file the saves use; throws std::runtime_error naming the path when it cannot.
    state_file(std::string path, slot_names names);

    const std::string& path() const noexcept { return path_; }
    // The saved state, or nullopt: when there is no file yet, or when it cannot be read. Each
    // problem is logged with the file's name; a corrupt file is kept aside as <path>.corrupt.
    std::optional<saved_state> load();
    // A temporary file beside it, fsync, rename over it, fsync of the directory. False (logged)
    // when any step fails; the previous file then stays whole.
    bool save(const saved_state& s);

private:
    std::string path_;
    std::string temp_path_;
    std::string directory_;
    slot_names names_;
};

}  // namespace switchyard::admin
