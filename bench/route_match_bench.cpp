// Route match: what a worker does per request before the weighted split (README, "Routes").
//
// One iteration: route_table::route_for() over ten routes of mixed kinds (header exact, prefix,
// regex and present, cookie exact and present, query, path prefix, method) against the parsed
// browser-like GET of sample_messages.hpp. The Arg is the route that matches: -1 for none (the
// worst case: all ten evaluated, a regex run on Accept-Language), 0 for the first, 9 for the last.
// BM_preview_check is the preview header's cost on a request without it. Allocation is counted
// by a replaced global operator new: an iteration that allocates fails the benchmark.

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "bench/sample_messages.hpp"
#include "config/config.hpp"
#include "proxy/http1.hpp"
#include "proxy/routes.hpp"

namespace {

std::atomic<std::uint64_t> allocations{0};

}  // namespace

void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) {
        return p;
    }
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

using namespace switchyard;

// Ten routes, none of which takes sample_messages' request; route `matching` is made to take it.
std::string routes_yaml(int matching) {
    std::vector<std::string> match = {
        "{ header: { X-Canary: \"true\" } }",
        "{ cookie: { beta_user: \"true\" } }",
        "{ headers: [ { name: X-Tenant, prefix: acme } ] }",
        "{ headers: [ { name: Accept-Language, regex: \"(de|fr)(-[A-Z]{2})?(,.*)?\" } ] }",
        "{ query: { v: \"43\" } }",
        "{ path_prefix: /beta }",
        "{ method: [POST, PUT] }",
        "{ cookies: [ { name: sy_preview, present: true } ] }",
        "{ headers: [ { name: X-Debug, present: true } ] }",
        "{ cookie: { theme: light } }",
    };
    if (matching == 0) {
        match[0] = "{ header: { Accept: \"*/*\" } }";
    } else if (matching == 9) {
        match[9] = "{ cookie: { theme: dark } }";
    }
    std::string out =
        "slots:\n  blue: { endpoints: [\"127.0.0.1:1\"] }\n  green: { endpoints: "
        "[\"127.0.0.1:2\"] }\nroutes:\n";
    for (std::size_t i = 0; i < match.size(); ++i) {
        out += "  - { name: r" + std::to_string(i) + ", match: " + match[i] + ", to: canary }\n";
    }
    return out;
}

struct parsed_request {
    std::vector<http1::header_field> storage = std::vector<http1::header_field>(100);
    http1::request_head head;

    parsed_request() {
        http1::parse_error e = http1::parse_error::none;
        if (http1::parse_request(bench::small_request, storage, {}, head, e) !=
            http1::parse_status::complete) {
            std::abort();
        }
    }
};

void BM_route_match(benchmark::State& state) {
    const int matching = static_cast<int>(state.range(0));
    const auto cfg = config::parse_config(routes_yaml(matching));
    if (!cfg.value) {
        state.SkipWithError("bad routes");
        return;
    }
    const proxy::route_table table(cfg.value->routes, {"blue", "green"});
    const parsed_request req;
    const analysis::traffic_state traffic{{0, 10}, true, 1, false, false};
    // Once first: RE2 builds its matcher state lazily.
    const auto first = table.route_for(req.head, traffic);
    if ((first ? first->index : -1) != matching) {
        state.SkipWithError("the wrong route matched");
        return;
    }
    const std::uint64_t before = allocations.load(std::memory_order_relaxed);
    for (auto _ : state) {
        auto pick = table.route_for(req.head, traffic);
        benchmark::DoNotOptimize(pick);
    }
    const std::uint64_t allocated = allocations.load(std::memory_order_relaxed) - before;
    state.counters["allocs"] = static_cast<double>(allocated);
    if (allocated != 0) {
        state.SkipWithError("route_for allocated");
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_route_match)->Arg(-1)->Arg(0)->Arg(9);

void BM_preview_check(benchmark::State& state) {
    const proxy::preview_rule rule(config::preview_config{}, "s3cret-s3cret-s3cret");
    const parsed_request req;
    const auto client = boost::asio::ip::make_address("203.0.113.7");
    const analysis::per_slot<std::string> names{"blue", "green"};
    const std::uint64_t before = allocations.load(std::memory_order_relaxed);
    for (auto _ : state) {
        auto r = rule.preview_for(req.head, client, names);
        benchmark::DoNotOptimize(r);
    }
    if (allocations.load(std::memory_order_relaxed) != before) {
        state.SkipWithError("preview_for allocated");
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_preview_check);

}  // namespace
