// libFuzzer target for the PROXY protocol parser (proxy/proxy_protocol.cpp). The input is the
// first bytes of a connection, read as either version. The answers must agree with each other:
// a header that is done is done on its own bytes with the same address, and incomplete on every
// shorter prefix; an error stays the same error whatever follows; an incomplete input stays
// within the limits and, for version 2, says how much more it wants.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "proxy/proxy_protocol.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace switchyard;
namespace pp = proxy::proxy_protocol;
using config::proxy_protocol_version;

pp::parse_result parse(proxy_protocol_version version, std::string_view bytes) {
    return pp::parse(version, std::span<const char>(bytes.data(), bytes.size()));
}

void check(proxy_protocol_version version, std::string_view input) {
    const bool v2 = version == proxy_protocol_version::v2;
    const std::size_t limit = v2 ? pp::max_v2_bytes : pp::max_v1_bytes;
    const auto r = parse(version, input);
    const std::uint64_t h = fuzz::input_hash(input);
    switch (r.status) {
        case pp::parse_status::done: {
            FUZZ_CHECK(r.consumed > 0 && r.consumed <= input.size() && r.consumed <= limit);
            const auto alone = parse(version, input.substr(0, r.consumed));
            FUZZ_CHECK(alone.status == pp::parse_status::done);
            FUZZ_CHECK(alone.consumed == r.consumed);
            FUZZ_CHECK(alone.source == r.source);
            const std::size_t cut = static_cast<std::size_t>(h % r.consumed);
            FUZZ_CHECK(parse(version, input.substr(0, cut)).status == pp::parse_status::incomplete);
            if (r.consumed <= 64) {
                for (std::size_t n = 0; n < r.consumed; ++n) {
                    FUZZ_CHECK(parse(version, input.substr(0, n)).status ==
                               pp::parse_status::incomplete);
                }
            }
            break;
        }
        case pp::parse_status::error: {
            std::string longer(input);
            longer.append(static_cast<std::size_t>(h % 300), static_cast<char>(h >> 8));
            const auto more = parse(version, longer);
            FUZZ_CHECK(more.status == pp::parse_status::error);
            FUZZ_CHECK(more.failure == r.failure);
            break;
        }
        case pp::parse_status::incomplete:
            FUZZ_CHECK(input.size() < limit);
            if (v2) {
                FUZZ_CHECK(r.wanted > 0 && input.size() + r.wanted <= limit);
            } else {
                FUZZ_CHECK(r.wanted == 0);
            }
            break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = fuzz::as_view(data, size);
    check(proxy_protocol_version::v1, input);
    check(proxy_protocol_version::v2, input);
    return 0;
}
