#pragma once
// The one way tests wait: on a condition, polled and bounded.

#include <chrono>
#include <functional>
#include <thread>

namespace switchyard::test {

// Polls `done` every 5 ms until it holds or `limit` passes; true when it held.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

}  // namespace switchyard::test
