// Access log: what turning it on costs a worker per request.
//
// One iteration: proxy::access_log_buffer::append_line for one typical entry (GET of a 20-byte
// path, 32-hex request id, a browser User-Agent of 70 bytes, a referer, slot and endpoint), in
// the format of the Arg (0 json, 1 combined), into the worker's buffer, including its share of
// the buffer's write(): one write of 32 KiB to /dev/null every ~100 to 150 lines. Not included:
// the session's copy of method, target, User-Agent and Referer out of the head (four
// std::string assigns into kept capacity) and one steady_clock read for the duration.
// Bytes processed: the lines'.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

#include "proxy/access_log.hpp"

namespace {

namespace proxy = switchyard::proxy;
namespace config = switchyard::config;

void BM_access_log_append_line(benchmark::State& state) {
    const auto format =
        state.range(0) == 0 ? config::log_format::json : config::log_format::combined;
    proxy::access_log_sink sink("/dev/null");
    proxy::access_log_buffer buf(sink, format);
    proxy::access_entry e;
    e.time = buf.time();
    e.request_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    e.client_ip = "192.168.10.27";
    e.method = "GET";
    e.target = "/api/v1/items?page=2";
    e.slot = "green";
    e.endpoint = "backend-green:8000";
    e.status = 200;
    e.duration = std::chrono::microseconds(1834);
    e.bytes_in = 512;
    e.bytes_out = 1045;
    e.user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
    e.referer = "https://shop.example/items";

    std::string one;
    if (format == config::log_format::json) {
        proxy::format_json(e, one);
    } else {
        proxy::format_combined(e, one);
    }
    for (auto _ : state) {
        buf.append_line(e);
        benchmark::ClobberMemory();
    }
    buf.flush();
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(one.size()));
    state.SetLabel(format == config::log_format::json ? "json" : "combined");
}
BENCHMARK(BM_access_log_append_line)->Arg(0)->Arg(1);

}  // namespace
