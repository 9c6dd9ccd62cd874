// Parse + forward: the CPU side of one proxied exchange, without the I/O.
//
// BM_parse_forward_request, one iteration: http1::parse_request of a browser-like GET (11
// fields, 512 bytes) into reused field storage, then clear the reused output string and
// proxy::write_upstream_request into it, as a session does per request.
// BM_parse_forward_response, one iteration: the same for the answer, http1::parse_response of
// an nginx-like 200 (10 fields) and proxy::write_downstream_response.
// BM_chunked_pass_through, one iteration: a fresh http1::chunked_parser validates a 64 KiB
// chunked body (16 chunks of 4 KiB) in pass-through mode, fed in the 16 KiB pieces a session's
// upstream buffer reads. Bytes processed: the bytes parsed (heads, or the framed body).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bench/sample_messages.hpp"
#include "proxy/http1.hpp"
#include "proxy/rewrite.hpp"

namespace {

namespace http1 = switchyard::http1;
namespace proxy = switchyard::proxy;
namespace sample = switchyard::bench;

void BM_parse_forward_request(benchmark::State& state) {
    std::vector<http1::header_field> storage(http1::parse_limits{}.max_headers);
    const http1::parse_limits limits;
    const proxy::request_context ctx{
        sample::client_ip, sample::request_id, true, "app-green-1:8080", false, {}};
    std::string out;
    for (auto _ : state) {
        http1::request_head req;
        http1::parse_error err = http1::parse_error::none;
        const auto st = http1::parse_request(sample::small_request, storage, limits, req, err);
        if (st != http1::parse_status::complete) {
            state.SkipWithError("the sample request does not parse");
            break;
        }
        out.clear();
        proxy::write_upstream_request(req, ctx, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() *
                            static_cast<std::int64_t>(sample::small_request.size()));
}
BENCHMARK(BM_parse_forward_request);

void BM_parse_forward_response(benchmark::State& state) {
    std::vector<http1::header_field> storage(http1::parse_limits{}.max_headers);
    const http1::parse_limits limits;
    const proxy::response_context ctx{sample::request_id, false, false};
    std::string out;
    for (auto _ : state) {
        http1::response_head res;
        http1::parse_error err = http1::parse_error::none;
        const auto st =
            http1::parse_response(sample::small_response, storage, limits, false, res, err);
        if (st != http1::parse_status::complete) {
            state.SkipWithError("the sample response does not parse");
            break;
        }
        out.clear();
        proxy::write_downstream_response(res, ctx, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() *
                            static_cast<std::int64_t>(sample::small_response.size()));
}
BENCHMARK(BM_parse_forward_response);

// 16 chunks of 4 KiB, then the last chunk and an empty trailer section.
std::string chunked_body() {
    constexpr std::size_t chunk_bytes = 4 * 1024;
    std::string body;
    for (int i = 0; i < 16; ++i) {
        body += "1000\r\n";
        body.append(chunk_bytes, 'x');
        body += "\r\n";
    }
    body += "0\r\n\r\n";
    return body;
}

void BM_chunked_pass_through(benchmark::State& state) {
    constexpr std::size_t read_bytes = 16 * 1024;  // session.cpp's upstream_buffer_bytes
    std::string body = chunked_body();
    const std::span<char> all(body);
    http1::chunked_parser parser;
    for (auto _ : state) {
        parser.reset();
        for (std::size_t at = 0; at < all.size() && !parser.done(); at += read_bytes) {
            const auto r =
                parser.feed(all.subspan(at, std::min(read_bytes, all.size() - at)), false);
            benchmark::DoNotOptimize(r);
        }
        if (!parser.done()) {
            state.SkipWithError("the sample body does not parse");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_chunked_pass_through);

}  // namespace
