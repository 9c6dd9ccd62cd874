#include "proxy/resolver.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>

namespace switchyard::proxy {
namespace {

namespace ip = boost::asio::ip;
using tcp = ip::tcp;

class getaddrinfo_lookup final : public name_lookup {
public:
    lookup_result lookup(const std::string& host) override {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_ADDRCONFIG;  // no IPv6 answers on a host without IPv6
        addrinfo* found = nullptr;
        const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
        lookup_result out;
        if (rc != 0) {
            out.error = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
            out.not_found = rc == EAI_NONAME || rc == EAI_NODATA;
            return out;
        }
        for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
            if (a->ai_family == AF_INET) {
                const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
                out.addresses.emplace_back(ip::address_v4(ntohl(in->sin_addr.s_addr)));
            } else if (a->ai_family == AF_INET6) {
                const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
                ip::address_v6::bytes_type bytes;
                std::copy_n(in6->sin6_addr.s6_addr, bytes.size(), bytes.begin());
                out.addresses.emplace_back(ip::address_v6(bytes, in6->sin6_scope_id));
            }
        }
        ::freeaddrinfo(found);
        if (out.addresses.empty()) {
            out.error = "no IPv4 or IPv6 address";
            out.not_found = true;
        }
        return out;
    }
};

// The address of an IP literal ("10.0.0.5", "::1"), or nullopt for a name.
std::optional<ip::address> literal(const std::string& host) {
    boost::system::error_code ec;
    const auto a = ip::make_address(host, ec);
    return ec ? std::nullopt : std::optional(a);
}

std::string join(const std::vector<tcp::endpoint>& addresses) {
    std::string out;
    for (const auto& a : addresses) {
        out += out.empty() ? "" : ", ";
        out += a.address().to_string();
    }
    return out;
}

// `found` as the endpoint's new addresses, given what it had `before`.
endpoint_addresses settle(const config::address& at, const lookup_result& found,
                          const endpoint_addresses& before) {
    endpoint_addresses out;
    if (!found.addresses.empty()) {
        for (const auto& a : found.addresses) {
            out.addresses.emplace_back(a, at.port);
        }
        std::sort(out.addresses.begin(), out.addresses.end());
        out.addresses.erase(std::unique(out.addresses.begin(), out.addresses.end()),
                            out.addresses.end());
        return out;
    }
    // A name that is gone takes its addresses with it (a removed container); a lookup that merely
    // failed keeps them (HAProxy's `hold valid`).
    if (!found.not_found && !before.addresses.empty()) {
        out.addresses = before.addresses;
        out.error = found.error + "; kept the last addresses";
    } else {
        out.error = found.error;
    }
    return out;
}

void log_change(const config::address& at, const endpoint_addresses& before,
                const endpoint_addresses& now) {
    if (now.addresses.empty()) {
        spdlog::warn("{} does not resolve ({}); its slot gets no traffic through it until it does",
                     at.to_string(), now.error);
    } else if (now.addresses != before.addresses) {
        spdlog::info("{} resolves to {}", at.to_string(), join(now.addresses));
    } else if (!now.error.empty() && now.error != before.error) {
        spdlog::warn("{}: lookup failed: {}", at.to_string(), now.error);
    }
}

}  // namespace

std::shared_ptr<name_lookup> system_lookup() {
    return std::make_shared<getaddrinfo_lookup>();
}

upstream_resolver::upstream_resolver(std::vector<config::address> endpoints,
                                     clock::duration interval, std::shared_ptr<name_lookup> lookup,
                                     std::uint64_t generation)
    : endpoints_(std::move(endpoints)),
      // Bounded so that last_round_ + interval cannot overflow into the past.
      interval_(std::min<clock::duration>(interval, std::chrono::hours(24))),
      lookup_(std::move(lookup)),
      generation_(generation),
      current_(std::make_shared<address_table>(
          address_table{std::vector<endpoint_addresses>(endpoints_.size()), generation})) {}

upstream_resolver::~upstream_resolver() {
    stop();
}

address_snapshot upstream_resolver::lookup_round(const address_table& before) {
    auto next = std::make_shared<address_table>();
    next->generation = generation_;
    next->endpoints.reserve(endpoints_.size());
    std::map<std::string, lookup_result> found;  // a host named by several endpoints: one lookup
    const bool first = last_round_ == clock::time_point{};
    for (std::size_t i = 0; i < endpoints_.size(); ++i) {
        const config::address& at = endpoints_[i];
        auto it = found.find(at.host);
        if (it == found.end()) {
            lookup_result r;
            if (const auto a = literal(at.host)) {
                r.addresses.push_back(*a);
            } else {
                r = lookup_->lookup(at.host);
            }
            it = found.emplace(at.host, std::move(r)).first;
        }
        next->endpoints.push_back(settle(at, it->second, before.endpoints[i]));
        if (first ? !literal(at.host) : next->endpoints[i] != before.endpoints[i]) {
            log_change(at, before.endpoints[i], next->endpoints[i]);
        }
    }
    return next;
}

void upstream_resolver::resolve_now() {
    const address_snapshot before = current();
    address_snapshot next = lookup_round(*before);
    const std::lock_guard lock(mutex_);
    current_ = std::move(next);
    last_round_ = clock::now();
}

void upstream_resolver::start(std::function<void(const address_snapshot&)> publish) {
    publish_ = std::move(publish);
    thread_ = std::thread([this] { run(); });
}

void upstream_resolver::request_stop() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
}

void upstream_resolver::stop() {
    request_stop();
    if (thread_.joinable()) {
        thread_.join();
    }
}

address_snapshot upstream_resolver::current() const {
    const std::lock_guard lock(mutex_);
    return current_;
}

void upstream_resolver::refresh() {
    // Every worker that sees a connect failure asks; only the first ask of a round locks.
    if (refresh_.exchange(true)) {
        return;
    }
    { const std::lock_guard lock(mutex_); }  // the thread is waiting, or will see the flag
    wake_.notify_all();
}

void upstream_resolver::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        // Re-read on every wake: refresh() brings the next round forward.
        const auto due = [this] {
            return last_round_ +
                   (refresh_ ? std::min<clock::duration>(refresh_gap, interval_) : interval_);
        };
        while (!stopping_ && clock::now() < due()) {
            wake_.wait_until(lock, due());
        }
        if (stopping_) {
            return;
        }
        refresh_ = false;
        const address_snapshot before = current_;
        lock.unlock();
        address_snapshot next;
        try {
            next = lookup_round(*before);
        } catch (const std::exception& e) {  // a lookup that throws (out of memory): next time
            spdlog::error("looking up the upstream names failed: {}", e.what());
        }
        lock.lock();
        last_round_ = clock::now();
        if (next && next->endpoints != before->endpoints && !stopping_) {
            current_ = next;
            lock.unlock();
            if (publish_) {
                publish_(next);
            }
            lock.lock();
        }
    }
}

std::vector<std::string> unresolved_endpoints(const config::config& cfg, name_lookup& lookup) {
    std::vector<std::string> out;
    for (const auto& slot : cfg.slots) {
        for (std::size_t i = 0; i < slot.endpoints.size(); ++i) {
            const config::address& at = slot.endpoints[i];
            if (literal(at.host)) {
                continue;
            }
            const lookup_result r = lookup.lookup(at.host);
            if (r.addresses.empty()) {
                out.push_back("slots." + slot.name + ".endpoints[" + std::to_string(i) +
                              "]: " + at.to_string() + " does not resolve (" + r.error + ")");
            }
        }
    }
    return out;
}

}  // namespace switchyard::proxy
