#pragma once
// What a worker shares with the server and the other workers: the configuration it reads and the
// endpoints it routes to. Its own header, so that worker.hpp need not include server.hpp.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "proxy/resolver.hpp"
#include "proxy/tls.hpp"

namespace switchyard::proxy {

// An upstream endpoint of a slot, as configured; its addresses are in the resolver's table.
struct endpoint {
    analysis::slot_index slot = 0;
    std::string name;     // "backend-blue:8000", as configured; also the Host for HTTP/1.0 requests
    tls_context_ptr tls;  // its slot's `tls` context; null for plain TCP
    std::string tls_name;  // with tls: the SNI and the name its certificate must hold
    bool tls_verify = true;
};

// What the workers read and nobody writes once they run, plus the few values shared on purpose.
struct shared_state {
    config::timeouts_config timeouts;
    config::limits_config limits;
    config::upstream_config upstream;
    config::upgrade_config upgrade;
    std::vector<endpoint> endpoints;
    analysis::per_slot<std::vector<std::size_t>> slot_endpoints;  // endpoint indexes per slot
    analysis::per_slot<std::string> slot_names;
    analysis::split_state* split = nullptr;
    upstream_resolver* resolver = nullptr;  // asked to look again after a connect failure
    // Open client connections across workers: touched once per connection, never per request.
    mutable std::atomic<std::uint32_t> connections{0};
};

}  // namespace switchyard::proxy
