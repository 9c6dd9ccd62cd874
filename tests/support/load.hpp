#pragma once
// Steady traffic for the end-to-end tests: client threads on keep-alive connections sending
// GET / to a proxy on loopback, counting the answers by body and status. Bounded in requests and
// time, so a broken proxy cannot keep a test running.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace switchyard::test {

class load_generator {
public:
    struct limits {
        std::size_t clients = 8;
        std::uint64_t max_requests = 500'000;
        std::chrono::seconds max_time{120};
    };

    load_generator(std::uint16_t port, limits l);
    explicit load_generator(std::uint16_t port) : load_generator(port, limits{}) {}
    ~load_generator();  // stops and joins
    load_generator(const load_generator&) = delete;
    load_generator& operator=(const load_generator&) = delete;

    void stop();
    std::uint64_t answered() const noexcept { return answered_.load(); }
    // Answers whose body was exactly `body` ("green\n").
    std::uint64_t with_body(const std::string& body) const;
    // Answers with `status`.
    std::uint64_t with_status(int status) const;
    // Connections that failed (reset, closed early) and were opened again.
    std::uint64_t reconnects() const noexcept { return reconnects_.load(); }

private:
    void run(std::uint16_t port);

    limits limits_;
    std::chrono::steady_clock::time_point started_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> sent_{0};
    std::atomic<std::uint64_t> answered_{0};
    std::atomic<std::uint64_t> reconnects_{0};
    mutable std::mutex mutex_;
    std::map<std::string, std::uint64_t> bodies_;
    std::map<int, std::uint64_t> statuses_;
    std::vector<std::thread> threads_;
};

}  // namespace switchyard::test
