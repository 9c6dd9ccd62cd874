#pragma once
// Where the upstream endpoints' names point (README, "Upstream names").
//
// Names are looked up once at start and again every `upstream.resolve_interval`, and soon after
// a connect failure, on a thread of their own: a lookup can block for seconds and never runs on
// a worker. Each round that changes something publishes a new immutable table; workers swap it
// in between requests. A name that does not resolve leaves its endpoint without addresses, so
// its slot answers 503 until it does, and never stops the start: in a compose stack the
// inactive slot's container is routinely absent.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "config/config.hpp"

namespace switchyard::proxy {

// What one lookup of a host name found.
struct lookup_result {
    std::vector<boost::asio::ip::address> addresses;
    std::string error;       // why there are none, as the resolver said it
    bool not_found = false;  // the name does not exist, as opposed to a failed lookup
};

// The name service: getaddrinfo in production, a table in tests.
class name_lookup {
public:
    virtual ~name_lookup() = default;
    // Blocking; called from one thread at a time.
    virtual lookup_result lookup(const std::string& host) = 0;
};

// getaddrinfo(3): /etc/hosts, then DNS (Docker's embedded server in a compose network).
std::shared_ptr<name_lookup> system_lookup();

// One configured endpoint's addresses now.
struct endpoint_addresses {
    std::vector<boost::asio::ip::tcp::endpoint> addresses;  // sorted, distinct; empty: unresolved
    // The last lookup's error, "" when it succeeded. A lookup that failed without saying the
    // name is gone (a DNS timeout) keeps the addresses found before, and says so here.
    std::string error;

    bool operator==(const endpoint_addresses&) const = default;
};

// Every endpoint's addresses, in the order of the configuration (the first slot's endpoints,
// then the second's). Never changed once published.
struct address_table {
    std::vector<endpoint_addresses> endpoints;
    // The endpoint list's generation (live_settings::generation) this table was looked up for:
    // a worker ignores a table of another list.
    std::uint64_t generation = 0;
};
using address_snapshot = std::shared_ptr<const address_table>;
// Where a reader on another thread (the admin API) gets the current table.
using address_source = std::function<address_snapshot()>;

class upstream_resolver {
public:
    using clock = std::chrono::steady_clock;

    // `endpoints` in the order of the configuration. IP literals are never looked up. Every table
    // published carries `generation`.
    upstream_resolver(std::vector<config::address> endpoints, clock::duration interval,
                      std::shared_ptr<name_lookup> lookup, std::uint64_t generation = 0);
    ~upstream_resolver();
    upstream_resolver(const upstream_resolver&) = delete;
    upstream_resolver& operator=(const upstream_resolver&) = delete;

    // Looks every name up once, on the calling thread, and logs a warning for each that does not
    // resolve. Call before start().
    void resolve_now();
    // Starts the thread that looks the names up again every interval, and at most one
    // `refresh_gap` after refresh(). `publish` is called on that thread with every table that
    // differs from the one before.
    void start(std::function<void(const address_snapshot&)> publish);
    // Asks the thread to stop, without waiting: it publishes nothing more.
    void request_stop();
    // Stops and joins the thread (waiting out a lookup in progress). Safe to call twice.
    void stop();

    // The current table; any thread.
    address_snapshot current() const;
    // Any thread: look again soon (a connect failed; the container may have a new address).
    void refresh();

    // Lookups asked for by refresh() are at least this far apart.
    static constexpr std::chrono::seconds refresh_gap{1};

private:
    void run();
    // One round: every name looked up against `before`; logs what changed.
    address_snapshot lookup_round(const address_table& before);

    std::vector<config::address> endpoints_;
    clock::duration interval_;
    std::shared_ptr<name_lookup> lookup_;
    std::uint64_t generation_;
    std::function<void(const address_snapshot&)> publish_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    address_snapshot current_;  // guarded by mutex_
    clock::time_point last_round_;
    std::atomic<bool> refresh_{false};
    bool stopping_ = false;
    std::thread thread_;
};

// Looks every endpoint name of `cfg` up once; one line per name that does not resolve, e.g.
// "slots.green.endpoints[0]: app-green:8000 does not resolve (Name or service not known)".
std::vector<std::string> unresolved_endpoints(const config::config& cfg, name_lookup& lookup);

}  // namespace switchyard::proxy
