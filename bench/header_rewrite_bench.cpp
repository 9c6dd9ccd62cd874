// Header rewrite: the heads the proxy sends on, from heads already parsed.
//
// BM_write_upstream_request, one iteration: clear the reused output string and append the
// upstream request head (proxy::write_upstream_request) for a browser-like GET of 11 fields and
// 512 bytes. BM_write_downstream_response, one iteration: the same with
// proxy::write_downstream_response for an nginx-like 200 of 10 fields. Parsing happens once,
// outside the loop (parse_forward_bench times it). The output string keeps its capacity, as a
// session's does, so a warm iteration does not allocate. Bytes processed: the input head's.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/sample_messages.hpp"
#include "proxy/http1.hpp"
#include "proxy/rewrite.hpp"

namespace {

namespace http1 = switchyard::http1;
namespace proxy = switchyard::proxy;
namespace sample = switchyard::bench;

void BM_write_upstream_request(benchmark::State& state) {
    std::vector<http1::header_field> storage(http1::parse_limits{}.max_headers);
    http1::request_head req;
    http1::parse_error err = http1::parse_error::none;
    if (http1::parse_request(sample::small_request, storage, {}, req, err) !=
        http1::parse_status::complete) {
        state.SkipWithError("the sample request does not parse");
        return;
    }
    const proxy::request_context ctx{
        sample::client_ip, sample::request_id, true, "app-green-1:8080", false, {}};
    std::string out;
    for (auto _ : state) {
        out.clear();
        proxy::write_upstream_request(req, ctx, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() *
                            static_cast<std::int64_t>(sample::small_request.size()));
}
BENCHMARK(BM_write_upstream_request);

void BM_write_downstream_response(benchmark::State& state) {
    std::vector<http1::header_field> storage(http1::parse_limits{}.max_headers);
    http1::response_head res;
    http1::parse_error err = http1::parse_error::none;
    if (http1::parse_response(sample::small_response, storage, {}, false, res, err) !=
        http1::parse_status::complete) {
        state.SkipWithError("the sample response does not parse");
        return;
    }
    const proxy::response_context ctx{sample::request_id, false, false};
    std::string out;
    for (auto _ : state) {
        out.clear();
        proxy::write_downstream_response(res, ctx, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() *
                            static_cast<std::int64_t>(sample::small_response.size()));
}
BENCHMARK(BM_write_downstream_response);

}  // namespace
