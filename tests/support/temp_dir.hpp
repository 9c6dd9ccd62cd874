#pragma once
// A directory of its own under the temporary directory for one test, removed with everything in
// it when the test ends.

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

namespace switchyard::test {

class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> next{0};
        path_ = std::filesystem::temp_directory_path() /
                ("switchyard-test-" + std::to_string(::getpid()) + "-" + std::to_string(next++));
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    // The path of `name` in the directory (which need not exist yet).
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

}  // namespace switchyard::test
