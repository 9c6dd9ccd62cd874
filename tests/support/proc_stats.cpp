#include "tests/support/proc_stats.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace switchyard::test {
namespace {

namespace fs = std::filesystem;

std::string proc_dir(pid_t pid) {
    return pid == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(pid);
}

// Counts the descriptors whose link target starts with `prefix` ("" for all). Descriptors that
// close while the directory is read are skipped, not an error.
std::size_t count_descriptors(pid_t pid, std::string_view prefix) {
    std::error_code ec;
    fs::directory_iterator it(proc_dir(pid) + "/fd", ec);
    if (ec) {
        throw std::runtime_error("cannot list the descriptors of " + proc_dir(pid) + ": " +
                                 ec.message());
    }
    std::size_t n = 0;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        const fs::path target = fs::read_symlink(it->path(), ec);
        if (!ec && target.native().starts_with(prefix)) {
            ++n;
        }
    }
    return n;
}

}  // namespace

std::size_t open_sockets(pid_t pid) {
    return count_descriptors(pid, "socket:");
}

std::size_t open_descriptors(pid_t pid) {
    // Less the one this listing holds open on the directory itself.
    const std::size_t n = count_descriptors(pid, "");
    return pid == 0 || pid == ::getpid() ? n - 1 : n;
}

std::chrono::microseconds cpu_time(pid_t pid) {
    std::ifstream in(proc_dir(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    // proc(5): the command name is in parentheses and may hold spaces; utime and stime are the
    // 14th and 15th fields, in clock ticks. After the ')', the state is the 3rd field.
    const auto close = stat.rfind(')');
    if (close == std::string::npos) {
        throw std::runtime_error("cannot read " + proc_dir(pid) + "/stat");
    }
    std::istringstream fields(stat.substr(close + 1));
    std::string skip;
    for (int field = 3; field < 14; ++field) {
        fields >> skip;
    }
    long long utime = 0;
    long long stime = 0;
    fields >> utime >> stime;
    const long long ticks_per_second = ::sysconf(_SC_CLK_TCK);
    return std::chrono::microseconds((utime + stime) * 1'000'000 / ticks_per_second);
}

}  // namespace switchyard::test
