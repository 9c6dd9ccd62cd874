#pragma once
// The sample application of the demos: the built-in upstreams of `switchyard demo`, and
// `switchyard demo-upstream` for docker-compose stacks.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.hpp"

namespace switchyard::cli {

// How a demo upstream misbehaves: a share of answers are 500s (spread evenly, not at random, so
// a demo shows the same thing every time) and every answer waits `latency`. With a `median`,
// each answer also takes a service time drawn from a lognormal distribution (that median, a p95
// about 1.75 times it, as a small web service; seeded, so each run draws the same times),
// multiplied by `slowdown`.
struct demo_behaviour {
    double error_rate = 0;  // 0..1
    std::chrono::milliseconds latency{0};
    std::chrono::microseconds median{0};  // 0: no service time
    double slowdown = 1;
};

// A small HTTP/1.1 server answering every request with its slot name, on a thread of its own.
// `GET /health` always answers 200 at once, so that health gates and container health checks
// see it up however it misbehaves.
class demo_upstream {
public:
    // Binds `listen` (port 0: one the kernel picks). Throws std::runtime_error naming the
    // address when it cannot.
    demo_upstream(std::string name, demo_behaviour behaviour, const config::address& listen);
    ~demo_upstream();  // stops serving and joins the thread
    demo_upstream(const demo_upstream&) = delete;
    demo_upstream& operator=(const demo_upstream&) = delete;

    void start();
    std::uint16_t port() const noexcept { return port_; }

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::uint16_t port_ = 0;
};

}  // namespace switchyard::cli
