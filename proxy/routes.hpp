#pragma once
// Request routes and the preview header (README, "Routes"): what sends a request to a slot
// before the weighted split does. Built from the configuration, with every regex compiled once,
// and held in live_settings, so a reload replaces them whole; matched against a parsed request
// head without allocating (the head's fields are views into the read buffer).

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "proxy/http1.hpp"

namespace re2 {
class RE2;
}

namespace switchyard::proxy {

// The route that took a request.
struct route_pick {
    analysis::slot_index slot = 0;
    std::uint8_t index = 0;    // its position in the table (and in `routes:`)
    std::uint8_t counter = 0;  // its counter in the metrics shard (route_table::counter)
};

// `routes:` compiled: an ordered list of matches, the first that holds wins.
class route_table {
public:
    route_table();  // no routes
    // `slot_names`: the two slots in configured order. Throws std::invalid_argument when a regex
    // does not compile (the configuration's check reports it first, with its line). Each regex
    // is compiled once per worker: an RE2 object guards its matching cache with a lock, which
    // workers sharing one would all take per request.
    route_table(const std::vector<config::route_config>& routes,
                const analysis::per_slot<std::string>& slot_names, std::size_t workers = 1);
    ~route_table();
    route_table(route_table&&) noexcept;
    route_table& operator=(route_table&&) noexcept;

    bool empty() const noexcept { return routes_.empty(); }
    std::size_t size() const noexcept { return routes_.size(); }
    const std::string& name(std::size_t i) const noexcept { return routes_[i].name; }

    // The first route whose match holds, under the traffic state the request was routed with: a
    // route to `canary` holds no request while no rollout runs, and evaluation goes on. Not
    // allocating; `req`'s views must be alive. `worker`: the calling worker's index, whose own
    // copies of the regexes are used.
    std::optional<route_pick> route_for(const http1::request_head& req,
                                        const analysis::traffic_state& traffic,
                                        std::size_t worker = 0) const noexcept;

    // Counters (switchyard_route_requests_total) are kept by route name across reloads: a
    // route that stays keeps its counter and what it counted; a new one gets a counter no
    // remaining route uses, counted from what that counter holds now (`counts_now`, the shards'
    // totals by counter), so it starts at zero.
    void assign_counters(const route_table* before, std::span<const std::uint64_t> counts_now);
    std::uint8_t counter(std::size_t i) const noexcept { return routes_[i].counter; }
    // What route i has counted, from the shards' totals by counter.
    std::uint64_t count(std::size_t i, std::span<const std::uint64_t> counts_now) const noexcept;

private:
    // Header and cookie names the routes look at, gathered in one pass over a request's fields
    // (see request_facts in routes.cpp); a condition on a name past these is searched for on
    // its own.
    static constexpr std::size_t gathered_names = 32;
    static constexpr std::uint8_t not_gathered = 0xff;
    struct request_facts;

    struct condition {
        std::string name;  // header names in lower case
        config::value_match_kind kind = config::value_match_kind::exact;
        std::string value;
        std::vector<std::unique_ptr<re2::RE2>> re;  // with value_match_kind::regex: per worker
        std::uint8_t at = not_gathered;  // its name's place in header_names_ or cookie_names_
    };
    struct route {
        std::string name;
        std::vector<condition> headers;
        std::vector<condition> cookies;
        std::vector<config::query_match> query;
        std::string path_prefix;
        std::vector<std::string> methods;
        config::route_target to = config::route_target::slot;
        analysis::slot_index slot = 0;  // with route_target::slot
        std::uint8_t counter = 0;
        std::uint64_t base = 0;  // the counter's total when this route took it over
    };

    void gather(const http1::request_head& req, request_facts& facts) const noexcept;
    static bool holds(const route& r, const http1::request_head& req,
                      const request_facts& facts) noexcept;
    // A condition on a header or cookie that is there with `value`.
    static bool value_holds(const condition& c, std::string_view value,
                            std::size_t worker) noexcept;

    std::vector<route> routes_;
    std::vector<std::string> header_names_;  // lower case, distinct, at most gathered_names
    std::vector<std::string> cookie_names_;  // distinct, at most gathered_names
    // By a name's length (the last entry: that length or more), which of the names above have
    // it, as bits: a field whose length no route asks for costs one load.
    static constexpr std::size_t length_classes = 64;
    std::array<std::uint32_t, length_classes> header_lengths_{};
    std::array<std::uint32_t, length_classes> cookie_lengths_{};
};

// The preview header: a request naming a slot in it goes to that slot, when it is authorised.
class preview_rule {
public:
    preview_rule();  // the defaults, no token, no ranges
    // `admin_token`: admin.token, empty when none is set (then only `from` authorises).
    preview_rule(const config::preview_config& cfg, std::string admin_token);

    enum class outcome : std::uint8_t {
        none,          // no preview header, or not authorised: routed as usual
        slot,          // authorised, naming a slot
        unknown_slot,  // authorised, naming no slot: 400
    };
    struct result {
        outcome what = outcome::none;
        analysis::slot_index slot = 0;
    };
    // `client`: the peer of the connection. Not allocating.
    result preview_for(const http1::request_head& req, const boost::asio::ip::address& client,
                       const analysis::per_slot<std::string>& slot_names) const noexcept;

    // The preview header and the token header: never forwarded upstream, authorised or not.
    std::span<const std::string> stripped() const noexcept { return stripped_; }
    const std::string& header() const noexcept { return stripped_[0]; }

private:
    bool authorised(const http1::request_head& req,
                    const boost::asio::ip::address& client) const noexcept;

    std::array<std::string, 2> stripped_;  // header, token_header
    std::string token_;
    std::vector<config::cidr> from_;
};

// True when `address` (IPv4-mapped IPv6 for IPv4, as config::cidr stores ranges) is in `range`.
bool in_range(const std::array<std::uint8_t, 16>& address, const config::cidr& range) noexcept;

}  // namespace switchyard::proxy
