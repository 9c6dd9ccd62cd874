#include "tests/support/load.hpp"

#include <exception>
#include <memory>

#include "tests/support/loopback.hpp"

namespace switchyard::test {

load_generator::load_generator(std::uint16_t port, limits l)
    : limits_(l), started_(std::chrono::steady_clock::now()) {
    for (std::size_t i = 0; i < limits_.clients; ++i) {
        threads_.emplace_back([this, port] { run(port); });
    }
}

load_generator::~load_generator() {
    stop();
}

void load_generator::stop() {
    stopping_ = true;
    for (auto& t : threads_) {
        if (t.joinable()) {
            t.join();
        }
    }
}

std::uint64_t load_generator::with_body(const std::string& body) const {
    const std::lock_guard lock(mutex_);
    const auto it = bodies_.find(body);
    return it == bodies_.end() ? 0 : it->second;
}

std::uint64_t load_generator::with_status(int status) const {
    const std::lock_guard lock(mutex_);
    const auto it = statuses_.find(status);
    return it == statuses_.end() ? 0 : it->second;
}

void load_generator::run(std::uint16_t port) {
    std::unique_ptr<raw_client> client;
    const std::string request = format_request("GET", "/");
    while (!stopping_ && sent_.fetch_add(1) < limits_.max_requests &&
           std::chrono::steady_clock::now() - started_ < limits_.max_time) {
        try {
            if (!client) {
                client = std::make_unique<raw_client>(port);
            }
            client->send(request);
            const response r = client->read_response();
            {
                const std::lock_guard lock(mutex_);
                ++bodies_[r.body];
                ++statuses_[r.status];
            }
            ++answered_;
            if (r.header("Connection") == "close") {
                client.reset();
            }
        } catch (const std::exception&) {
            // A connection the proxy closed (drain, restart): open another.
            client.reset();
            ++reconnects_;
            if (stopping_) {
                break;
            }
        }
    }
}

}  // namespace switchyard::test
