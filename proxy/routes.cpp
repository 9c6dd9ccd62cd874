#include "proxy/routes.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <bit>
#include <stdexcept>

#include "analysis/metrics.hpp"
#include "proxy/cookies.hpp"
#include "proxy/text.hpp"

namespace switchyard::proxy {

namespace {

static_assert(config::max_routes <= analysis::route_counter_count,
              "every route has a counter in the shard");
static_assert(analysis::route_counter_count <= 256, "a counter index fits route_pick::counter");

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string s) {
    for (char& c : s) {
        c = lower(c);
    }
    return s;
}

// `name` equals `lower_name` (in lower case already) ignoring case. Inline here, with the length
// first: most fields of a request differ in length from the name looked for.
bool same_name(std::string_view name, std::string_view lower_name) noexcept {
    if (name.size() != lower_name.size()) {
        return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (lower(name[i]) != lower_name[i]) {
            return false;
        }
    }
    return true;
}

// The value of the first field named `name` (in lower case); nullopt when there is none.
std::optional<std::string_view> first_field(std::span<const http1::header_field> fields,
                                            std::string_view lower_name) noexcept {
    for (const auto& f : fields) {
        if (same_name(f.name, lower_name)) {
            return f.value;
        }
    }
    return std::nullopt;
}

int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// True when `raw`, a query component, decodes to `expected`: %XX as its byte (RFC 3986 §2.1)
// and '+' as a space (application/x-www-form-urlencoded, what browsers send from forms); a '%'
// not followed by two hex digits stands for itself. Decoded as it is compared: no copy.
bool decodes_to(std::string_view raw, std::string_view expected) noexcept {
    std::size_t j = 0;
    for (std::size_t i = 0; i < raw.size(); ++i, ++j) {
        char c = raw[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < raw.size() && hex_digit(raw[i + 1]) >= 0 &&
                   hex_digit(raw[i + 2]) >= 0) {
            c = static_cast<char>(hex_digit(raw[i + 1]) * 16 + hex_digit(raw[i + 2]));
            i += 2;
        }
        if (j >= expected.size() || expected[j] != c) {
            return false;
        }
    }
    return j == expected.size();
}

// The path and query of a target: origin-form as it is, absolute-form without its scheme and
// authority (RFC 9112 §3.2.2).
std::string_view path_and_query(std::string_view target) noexcept {
    if (target.empty() || target.front() == '/' || target == "*") {
        return target;
    }
    const std::size_t scheme = target.find("://");
    if (scheme == std::string_view::npos) {
        return target;
    }
    const std::size_t path = target.find_first_of("/?", scheme + 3);
    return path == std::string_view::npos ? std::string_view{} : target.substr(path);
}

bool query_has(std::string_view target, const config::query_match& q) noexcept {
    const std::size_t mark = target.find('?');
    if (mark == std::string_view::npos) {
        return false;
    }
    std::string_view rest = target.substr(mark + 1);
    while (!rest.empty()) {
        const std::size_t amp = rest.find('&');
        const std::string_view param = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        const std::size_t eq = param.find('=');
        const std::string_view value =
            eq == std::string_view::npos ? std::string_view{} : param.substr(eq + 1);
        if (decodes_to(param.substr(0, eq), q.name) && decodes_to(value, q.value)) {
            return true;
        }
    }
    return false;
}

std::array<std::uint8_t, 16> address_bytes(const boost::asio::ip::address& a) noexcept {
    if (a.is_v4()) {
        return boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, a.to_v4()).to_bytes();
    }
    return a.to_v6().to_bytes();
}

}  // namespace

// --- route_table ---

route_table::route_table() = default;
route_table::~route_table() = default;
route_table::route_table(route_table&&) noexcept = default;
route_table& route_table::operator=(route_table&&) noexcept = default;

route_table::route_table(const std::vector<config::route_config>& routes,
                         const analysis::per_slot<std::string>& slot_names, std::size_t workers) {
    auto compile = [workers](const std::vector<config::value_match>& in,
                             std::vector<condition>& out, std::vector<std::string>& names,
                             bool header) {
        for (const auto& m : in) {
            condition& c = out.emplace_back();
            c.name = header ? lower(m.name) : m.name;
            auto known = std::find(names.begin(), names.end(), c.name);
            if (known == names.end() && names.size() < gathered_names) {
                known = names.insert(names.end(), c.name);
            }
            if (known != names.end()) {
                c.at = static_cast<std::uint8_t>(known - names.begin());
            }
            c.kind = m.kind;
            c.value = m.value;
            if (m.kind == config::value_match_kind::regex) {
                for (std::size_t w = 0; w < std::max<std::size_t>(workers, 1); ++w) {
                    c.re.push_back(std::make_unique<re2::RE2>(m.value, re2::RE2::Quiet));
                    if (!c.re.back()->ok()) {
                        throw std::invalid_argument("invalid regular expression \"" + m.value +
                                                    "\": " + c.re.back()->error());
                    }
                }
            }
        }
    };
    routes_.reserve(routes.size());
    for (std::size_t i = 0; i < routes.size(); ++i) {
        const auto& rc = routes[i];
        route& r = routes_.emplace_back();
        r.name = rc.name;
        compile(rc.match.headers, r.headers, header_names_, true);
        compile(rc.match.cookies, r.cookies, cookie_names_, false);
        r.query = rc.match.query;
        r.path_prefix = rc.match.path_prefix;
        r.methods = rc.match.methods;
        r.to = rc.to;
        if (rc.to == config::route_target::slot) {
            const auto it = std::find(slot_names.begin(), slot_names.end(), rc.slot);
            if (it == slot_names.end()) {
                throw std::invalid_argument("route " + rc.name + ": no slot " + rc.slot);
            }
            r.slot = static_cast<analysis::slot_index>(it - slot_names.begin());
        }
        r.counter = static_cast<std::uint8_t>(i);
    }
    auto index_lengths = [](const std::vector<std::string>& names,
                            std::array<std::uint32_t, length_classes>& out) {
        for (std::size_t i = 0; i < names.size(); ++i) {
            out[std::min(names[i].size(), length_classes - 1)] |= 1U << i;
        }
    };
    index_lengths(header_names_, header_lengths_);
    index_lengths(cookie_names_, cookie_lengths_);
}

// What the routes look at in one request, gathered once: the first value of each header and
// cookie name some route names. On the stack of route_for, so nothing is allocated.
struct route_table::request_facts {
    // A view that is not initialised until set: the arrays below are written only where a
    // found bit says so, and not cleared per request.
    struct piece {
        const char* data;
        std::size_t size;
        std::string_view view() const noexcept { return {data, size}; }
    };
    std::string_view target;  // path and query
    piece headers[gathered_names];
    piece cookies[gathered_names];
    std::uint32_t headers_found = 0;  // bit i: headers[i] holds a value
    std::uint32_t cookies_found = 0;
    std::size_t worker = 0;  // whose regexes to use
    static_assert(gathered_names <= 32, "found bits fit a std::uint32_t");
};

void route_table::gather(const http1::request_head& req, request_facts& facts) const noexcept {
    facts.target = path_and_query(req.target);
    if (header_names_.empty() && cookie_names_.empty()) {
        return;
    }
    // One pass over the fields, each compared only with the wanted names of its length: a
    // route table of many header conditions costs one scan, not one per condition.
    for (const auto& f : req.fields) {
        std::uint32_t wanted =
            header_lengths_[std::min(f.name.size(), length_classes - 1)] & ~facts.headers_found;
        while (wanted != 0) {
            const auto i = static_cast<std::size_t>(std::countr_zero(wanted));
            wanted &= wanted - 1;
            if (same_name(f.name, header_names_[i])) {
                facts.headers[i] = {f.value.data(), f.value.size()};
                facts.headers_found |= 1U << i;
            }
        }
        if (!cookie_names_.empty() && same_name(f.name, "cookie")) {
            for_each_cookie(f.value, [&](std::string_view name, std::string_view value) {
                std::uint32_t same_length =
                    cookie_lengths_[std::min(name.size(), length_classes - 1)] &
                    ~facts.cookies_found;
                while (same_length != 0) {
                    const auto i = static_cast<std::size_t>(std::countr_zero(same_length));
                    same_length &= same_length - 1;
                    if (name == cookie_names_[i]) {
                        facts.cookies[i] = {value.data(), value.size()};
                        facts.cookies_found |= 1U << i;
                    }
                }
                return false;
            });
        }
    }
}

bool route_table::value_holds(const condition& c, std::string_view value,
                              std::size_t worker) noexcept {
    using kind = config::value_match_kind;
    switch (c.kind) {
        case kind::exact:
            return value == c.value;
        case kind::prefix:
            return value.substr(0, c.value.size()) == c.value;
        case kind::regex:
            return re2::RE2::FullMatch(re2::StringPiece(value.data(), value.size()),
                                       *c.re[worker < c.re.size() ? worker : 0]);
        case kind::present:
            return true;
        case kind::absent:
            break;
    }
    return false;
}

bool route_table::holds(const route& r, const http1::request_head& req,
                        const request_facts& facts) noexcept {
    // The cheapest conditions first: the method and the path are in hand, fields are searched.
    if (!r.methods.empty() &&
        std::find(r.methods.begin(), r.methods.end(), req.method) == r.methods.end()) {
        return false;
    }
    const std::string_view target = facts.target;
    if (!r.path_prefix.empty() && target.substr(0, r.path_prefix.size()) != r.path_prefix) {
        return false;
    }
    // A name that is not there decides at once (the common case): only `present: false`
    // holds then. Names past gathered_names are searched for on their own.
    for (const auto& c : r.headers) {
        if (c.at == not_gathered) {
            const auto value = first_field(req.fields, c.name);
            if (value ? !value_holds(c, *value, facts.worker)
                      : c.kind != config::value_match_kind::absent) {
                return false;
            }
        } else if ((facts.headers_found >> c.at & 1U) == 0) {
            if (c.kind != config::value_match_kind::absent) {
                return false;
            }
        } else if (!value_holds(c, facts.headers[c.at].view(), facts.worker)) {
            return false;
        }
    }
    for (const auto& c : r.cookies) {
        if (c.at == not_gathered) {
            const auto value = find_cookie(req.fields, c.name);
            if (value ? !value_holds(c, *value, facts.worker)
                      : c.kind != config::value_match_kind::absent) {
                return false;
            }
        } else if ((facts.cookies_found >> c.at & 1U) == 0) {
            if (c.kind != config::value_match_kind::absent) {
                return false;
            }
        } else if (!value_holds(c, facts.cookies[c.at].view(), facts.worker)) {
            return false;
        }
    }
    for (const auto& q : r.query) {
        if (!query_has(target, q)) {
            return false;
        }
    }
    return true;
}

std::optional<route_pick> route_table::route_for(const http1::request_head& req,
                                                 const analysis::traffic_state& traffic,
                                                 std::size_t worker) const noexcept {
    if (routes_.empty()) {
        return std::nullopt;
    }
    request_facts facts;
    facts.worker = worker;
    gather(req, facts);
    for (std::size_t i = 0; i < routes_.size(); ++i) {
        const route& r = routes_[i];
        analysis::slot_index slot = r.slot;
        if (r.to == config::route_target::canary) {
            const auto canary = traffic.canary_slot();
            if (!canary) {
                continue;  // no rollout runs: this route takes nothing
            }
            slot = *canary;
        } else if (r.to == config::route_target::stable) {
            slot = traffic.stable_slot();
        }
        if (holds(r, req, facts)) {
            return route_pick{slot, static_cast<std::uint8_t>(i), r.counter};
        }
    }
    return std::nullopt;
}

void route_table::assign_counters(const route_table* before,
                                  std::span<const std::uint64_t> counts_now) {
    std::array<bool, analysis::route_counter_count> taken{};
    std::vector<bool> kept(routes_.size(), false);
    if (before != nullptr) {
        for (std::size_t i = 0; i < routes_.size(); ++i) {
            for (const auto& old : before->routes_) {
                if (old.name == routes_[i].name) {
                    routes_[i].counter = old.counter;
                    routes_[i].base = old.base;
                    taken[old.counter] = true;
                    kept[i] = true;
                    break;
                }
            }
        }
    }
    std::size_t next = 0;
    for (std::size_t i = 0; i < routes_.size(); ++i) {
        if (kept[i]) {
            continue;
        }
        while (taken[next]) {
            ++next;  // at most max_routes routes: a free counter is always left
        }
        taken[next] = true;
        routes_[i].counter = static_cast<std::uint8_t>(next);
        routes_[i].base = next < counts_now.size() ? counts_now[next] : 0;
    }
}

std::uint64_t route_table::count(std::size_t i,
                                 std::span<const std::uint64_t> counts_now) const noexcept {
    const route& r = routes_[i];
    const std::uint64_t now = r.counter < counts_now.size() ? counts_now[r.counter] : 0;
    return now >= r.base ? now - r.base : 0;
}

// --- preview_rule ---

preview_rule::preview_rule() : preview_rule(config::preview_config{}, {}) {}

preview_rule::preview_rule(const config::preview_config& cfg, std::string admin_token)
    : stripped_{lower(cfg.header), lower(cfg.token_header)},
      token_(std::move(admin_token)),
      from_(cfg.from) {}

bool in_range(const std::array<std::uint8_t, 16>& address, const config::cidr& range) noexcept {
    const std::size_t whole = range.prefix / 8U;
    if (!std::equal(address.begin(), address.begin() + static_cast<std::ptrdiff_t>(whole),
                    range.address.begin())) {
        return false;
    }
    const unsigned bits = range.prefix % 8U;
    if (bits == 0) {
        return true;
    }
    const auto mask = static_cast<std::uint8_t>(0xffU << (8U - bits));
    return (address[whole] & mask) == (range.address[whole] & mask);
}

bool preview_rule::authorised(const http1::request_head& req,
                              const boost::asio::ip::address& client) const noexcept {
    if (!token_.empty()) {
        const auto token = first_field(req.fields, stripped_[1]);
        if (token && constant_time_equals(*token, token_)) {
            return true;
        }
    }
    if (from_.empty()) {
        return false;
    }
    const auto bytes = address_bytes(client);
    return std::any_of(from_.begin(), from_.end(),
                       [&](const config::cidr& range) { return in_range(bytes, range); });
}

preview_rule::result preview_rule::preview_for(
    const http1::request_head& req, const boost::asio::ip::address& client,
    const analysis::per_slot<std::string>& slot_names) const noexcept {
    if (token_.empty() && from_.empty()) {
        return {};  // nobody can be authorised: the header is only stripped
    }
    const auto named = first_field(req.fields, stripped_[0]);
    if (!named || !authorised(req, client)) {
        return {};
    }
    for (std::size_t s = 0; s < slot_names.size(); ++s) {
        if (*named == slot_names[s]) {
            return {outcome::slot, static_cast<analysis::slot_index>(s)};
        }
    }
    return {outcome::unknown_slot, 0};
}

}  // namespace switchyard::proxy
