#include "admin/state_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

namespace switchyard::admin {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using analysis::rollout_state;

constexpr int format_version = 1;

json::object rollout_json(const rollout_state& r, const slot_names& names) {
    json::array history;
    for (const auto& h : r.history) {
        history.emplace_back(to_json(h, names));
    }
    json::array events;
    for (const auto& e : r.events) {
        events.emplace_back(to_json(e, names));
    }
    return {{"id", r.id},
            {"config", to_json(r.config)},
            {"phase", analysis::name_of(r.current)},
            {"resume_to", analysis::name_of(r.resume_to)},
            {"stable", names[r.stable]},
            {"canary", names[r.canary]},
            {"step", r.step},
            {"weight", r.weight},
            {"max_weight", r.max_weight},
            {"started", format_time(r.started)},
            {"last_transition", format_time(r.last_transition)},
            {"bake_started", format_time(r.bake_started)},
            {"reason", r.reason},
            {"history", std::move(history)},
            {"events", std::move(events)}};
}

rollout_state rollout_from_json(const json::value& o, const slot_names& names) {
    rollout_state r;
    r.id = std::string(string_member(o, "id"));
    r.config = rollout_config_from_json(member(o, "config"));
    r.current = phase_member(o, "phase");
    r.resume_to = phase_member(o, "resume_to");
    r.stable = slot_from_json(member(o, "stable"), names);
    r.canary = slot_from_json(member(o, "canary"), names);
    if (r.stable == r.canary) {
        throw std::invalid_argument("stable and canary are the same slot");
    }
    r.step = count_member(o, "step");
    r.weight = static_cast<std::uint32_t>(count_member(o, "weight"));
    r.max_weight = static_cast<std::uint32_t>(count_member(o, "max_weight"));
    if (r.step >= r.config.steps.size() || r.weight > 100 || r.max_weight > 100) {
        throw std::invalid_argument("step or weight out of range");
    }
    r.started = time_member(o, "started");
    r.last_transition = time_member(o, "last_transition");
    r.bake_started = time_member(o, "bake_started");
    r.reason = std::string(string_member(o, "reason"));
    for (const json::value& h : array_member(o, "history")) {
        r.history.push_back(record_from_json(h, names));
    }
    for (const json::value& e : array_member(o, "events")) {
        r.events.push_back(event_from_json(e, names));
    }
    return r;
}

std::string errno_text() {
    return std::strerror(errno);
}

// Writes all of `text` to `fd`.
bool write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

}  // namespace

std::string state_to_json(const saved_state& s, const slot_names& names) {
    const json::value v = json::object{{"version", format_version},
                                       {"slots", json::array{names[0], names[1]}},
                                       {"active", names[s.split.active]},
                                       {"weights", weights_json(s.split, names)},
                                       {"rollout", rollout_json(s.rollout, names)}};
    return json_line(v);
}

saved_state state_from_json(std::string_view text, const slot_names& names) {
    boost::system::error_code ec;
    const json::value v = json::parse(text, ec);
    if (ec) {
        throw std::invalid_argument("not JSON: " + ec.message());
    }
    if (count_member(v, "version") != format_version) {
        throw std::invalid_argument("written by another version of the format");
    }
    const json::array& slots = array_member(v, "slots");
    const auto is = [](const json::value& x, const std::string& name) {
        return x.is_string() && x.get_string() == name;
    };
    if (slots.size() != analysis::slot_count || !is(slots[0], names[0]) ||
        !is(slots[1], names[1])) {
        throw std::invalid_argument("written for other slots than " + names[0] + " and " +
                                    names[1]);
    }
    saved_state s;
    s.split = split_from_json(member(v, "active"), member(v, "weights"), names);
    s.rollout = rollout_from_json(member(v, "rollout"), names);
    return s;
}

state_file::state_file(std::string path, slot_names names)
    : path_(std::move(path)), temp_path_(path_ + ".tmp"), names_(std::move(names)) {
    const fs::path p(path_);
    directory_ = p.has_parent_path() ? p.parent_path().string() : ".";
    std::error_code ec;
    fs::create_directories(directory_, ec);
    if (ec) {
        throw std::runtime_error("state_file " + path_ + ": cannot create directory " + directory_ +
                                 ": " + ec.message());
    }
    const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw std::runtime_error("state_file " + path_ + ": directory " + directory_ +
                                 " is not writable: " + errno_text());
    }
    ::close(fd);
    ::unlink(temp_path_.c_str());
}

std::optional<saved_state> state_file::load() {
    std::error_code ec;
    if (!fs::exists(path_, ec)) {
        if (ec) {
            spdlog::error("state file {}: cannot look it up: {}; starting from the configuration",
                          path_, ec.message());
        } else {
            spdlog::info("state file {}: none yet; starting from the configuration", path_);
        }
        return std::nullopt;
    }
    std::string why;
    const auto text = config::read_whole_file(path_, why);
    if (!text) {
        spdlog::error("state file {}: cannot read it: {}; starting from the configuration", path_,
                      why);
        return std::nullopt;
    }
    std::string problem;
    try {
        return state_from_json(*text, names_);
    } catch (const std::exception& e) {
        problem = e.what();
    }
    const std::string aside = path_ + ".corrupt";
    if (::rename(path_.c_str(), aside.c_str()) == 0) {
        spdlog::error(
            "state file {}: unreadable ({}); kept aside as {}; starting from the configuration",
            path_, problem, aside);
    } else {
        spdlog::error("state file {}: unreadable ({}); starting from the configuration", path_,
                      problem);
    }
    return std::nullopt;
}

bool state_file::save(const saved_state& s) {
    const std::string text = state_to_json(s, names_);
    const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        spdlog::error("state file {}: cannot write {}: {}", path_, temp_path_, errno_text());
        return false;
    }
    const bool written = write_all(fd, text) && ::fsync(fd) == 0;
    const std::string why = written ? std::string() : errno_text();
    ::close(fd);
    if (!written) {
        spdlog::error("state file {}: cannot write {}: {}", path_, temp_path_, why);
        ::unlink(temp_path_.c_str());
        return false;
    }
    // rename(2) replaces the file in one step; the directory's fsync makes the rename itself
    // survive a crash (ext4 and XFS need both, see fsync(2)).
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        spdlog::error("state file {}: cannot rename {} over it: {}", path_, temp_path_,
                      errno_text());
        ::unlink(temp_path_.c_str());
        return false;
    }
    const int dir = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    return true;
}

}  // namespace switchyard::admin
