#include "proxy/server.hpp"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/access_log.hpp"
#include "proxy/worker.hpp"

namespace switchyard::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

tcp::endpoint resolve_one(net::io_context& io, const config::address& a) {
    tcp::resolver resolver(io);
    boost::system::error_code ec;
    const auto results = resolver.resolve(a.host, std::to_string(a.port), ec);
    if (ec || results.empty()) {
        throw std::runtime_error("cannot resolve " + a.to_string() + ": " +
                                 (ec ? ec.message() : "no address"));
    }
    return results.begin()->endpoint();
}

// SO_REUSEPORT would let a second switchyard on the same port start silently and take half the
// connections. A probe bound without it fails as a plain listener would ("address already in
// use"), and gives port 0 its port for the workers.
tcp::endpoint bind_probe(net::io_context& io, const config::address& a) {
    tcp::endpoint at = resolve_one(io, a);
    try {
        tcp::acceptor probe(io, at.protocol());
        probe.set_option(tcp::acceptor::reuse_address(true));
        probe.bind(at);
        return probe.local_endpoint();
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot listen on " + a.to_string() + ": " + e.code().message());
    }
}

// One listening socket per worker on the same address (SO_REUSEPORT): the kernel spreads new
// connections across them and no connection is handed between threads.
tcp::acceptor open_listener(net::io_context& io, const tcp::endpoint& at,
                            const config::address& configured) {
    try {
        tcp::acceptor acceptor(io);
        acceptor.open(at.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        const int on = 1;
        if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
            throw std::runtime_error("cannot set SO_REUSEPORT on the listener");
        }
        acceptor.bind(at);
        acceptor.listen(tcp::socket::max_listen_connections);
        return acceptor;
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot listen on " + configured.to_string() + ": " +
                                 e.code().message());
    }
}

}  // namespace

server::server(const config::config& cfg, analysis::split_state& split,
               std::shared_ptr<name_lookup> lookup)
    : lookup_(lookup ? std::move(lookup) : system_lookup()) {
    if (cfg.slots.size() != analysis::slot_count) {
        throw std::runtime_error("exactly two slots are needed");
    }
    shared_.slot_names = {cfg.slots[0].name, cfg.slots[1].name};
    shared_.split = &split;
    shared_.proxy_protocol = cfg.listen_proxy_protocol;

    const unsigned count =
        cfg.workers != 0 ? cfg.workers : std::max(1U, std::thread::hardware_concurrency());
    settings_ = build_settings(cfg, nullptr, count);
    access_log_config_ = cfg.access_log;

    net::io_context setup;
    std::optional<tcp::endpoint> plain_at;
    std::optional<tcp::endpoint> tls_at;
    if (cfg.plain_listener) {
        plain_at = bind_probe(setup, cfg.listen);
        port_ = plain_at->port();
    }
    if (cfg.tls) {
        tls_at = bind_probe(setup, cfg.tls->listen);
        tls_port_ = tls_at->port();
    }
    for (unsigned i = 0; i < count; ++i) {
        worker::listeners from;
        if (plain_at) {
            from.plain = open_listener(setup, *plain_at, cfg.listen);
        }
        if (tls_at) {
            from.tls = open_listener(setup, *tls_at, cfg.tls->listen);
        }
        workers_.push_back(std::make_unique<worker>(shared_, i, std::move(from),
                                                    metrics_.emplace_back(), settings_,
                                                    settings_->resolver->current()));
    }
}

settings_snapshot server::build_settings(const config::config& cfg, const live_settings* before,
                                         std::size_t workers) const {
    auto s = std::make_shared<live_settings>();
    s->timeouts = cfg.timeouts;
    s->limits = cfg.limits;
    s->upstream = cfg.upstream;
    s->upgrade = cfg.upgrade;
    try {
        s->routes = route_table(cfg.routes, shared_.slot_names, workers);
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(std::string("routes: ") + e.what());
    }
    s->routes.assign_counters(before != nullptr ? &before->routes : nullptr,
                              analysis::merge_routes(metrics_shards()));
    s->preview = preview_rule(cfg.preview, cfg.admin.token);
    if (cfg.mirror && cfg.mirror->percent > 0) {
        s->mirror = cfg.mirror;
        const auto n = static_cast<std::uint32_t>(std::max<std::size_t>(workers, 1));
        s->mirror_queue = (cfg.mirror->queue + n - 1) / n;
    }
    if (cfg.sticky) {
        s->sticky.emplace(*cfg.sticky, shared_.slot_names);
    }
    s->hold = cfg.hold;
    if (cfg.tls) {
        std::string why;
        s->certificates = make_server_context(*cfg.tls, why);
        if (!s->certificates) {
            throw std::runtime_error("tls: " + why);
        }
    }
    std::vector<config::address> names;
    for (std::size_t slot = 0; slot < cfg.slots.size(); ++slot) {
        const auto& sc = cfg.slots[slot];
        s->slot_tls[slot] = sc.tls;
        s->slot_health_check[slot] = sc.health_check;
        s->slot_passive[slot] = sc.passive;
        if (before != nullptr && before->slot_tls[slot] == sc.tls) {
            s->slot_tls_context[slot] = before->slot_tls_context[slot];
        } else if (sc.tls) {
            std::string why;
            s->slot_tls_context[slot] = make_client_context(*sc.tls, why);
            if (!s->slot_tls_context[slot]) {
                throw std::runtime_error("slots." + sc.name + ".tls: " + why);
            }
        }
        for (const auto& a : sc.endpoints) {
            s->slot_endpoints[slot].push_back(s->endpoints.size());
            endpoint& ep = s->endpoints.emplace_back();
            ep.slot = static_cast<analysis::slot_index>(slot);
            ep.name = a.to_string();
            if (sc.tls) {
                ep.tls = s->slot_tls_context[slot];
                ep.tls_name = sc.tls->sni.empty() ? a.host : sc.tls->sni;
                ep.tls_verify = sc.tls->verify;
            }
            names.push_back(a);
        }
    }
    const bool same_endpoints = before != nullptr && s->endpoints == before->endpoints;
    s->generation = before == nullptr ? 0 : before->generation + (same_endpoints ? 0 : 1);
    // The access log first: it is what can fail, and nothing has been looked up yet.
    if (before != nullptr && cfg.access_log == access_log_config_) {
        s->access_log = before->access_log;
    } else if (cfg.access_log.to != "off") {
        s->access_log = std::make_shared<access_log_outputs>(cfg.access_log, workers);
    }
    if (same_endpoints && cfg.upstream.resolve_interval == before->upstream.resolve_interval) {
        s->resolver = before->resolver;
    } else {
        // A name that does not resolve is logged, not fatal, at a reload as at the start.
        s->resolver = std::make_shared<upstream_resolver>(
            std::move(names), cfg.upstream.resolve_interval, lookup_, s->generation);
        s->resolver->resolve_now();
    }
    if (before != nullptr && s->resolver == before->resolver &&
        s->slot_health_check == before->slot_health_check &&
        s->slot_passive == before->slot_passive && s->slot_tls == before->slot_tls) {
        s->health = before->health;
    } else {
        std::vector<health_monitor::endpoint_spec> specs;
        for (const endpoint& ep : s->endpoints) {
            health_monitor::endpoint_spec& spec = specs.emplace_back();
            spec.slot = ep.slot;
            spec.slot_name = cfg.slots[ep.slot].name;
            spec.name = ep.name;
            spec.tls = ep.tls;
            spec.tls_name = ep.tls_name;
            spec.tls_verify = ep.tls_verify;
            spec.check = s->slot_health_check[ep.slot];
            spec.passive = s->slot_passive[ep.slot];
        }
        const health_snapshot was = before != nullptr ? before->health->current() : nullptr;
        s->health = std::make_shared<health_monitor>(std::move(specs), s->resolver, was.get());
    }
    return s;
}

void server::start_resolver(upstream_resolver& resolver) {
    // Each worker swaps a new table in on its own thread, between requests.
    resolver.start([this](const address_snapshot& table) {
        for (auto& w : workers_) {
            net::post(w->context(), [w = w.get(), table] { w->use_addresses(table); });
        }
    });
}

void server::start_health(health_monitor& monitor) {
    // Each worker swaps a new table in on its own thread, between requests.
    monitor.start([this](const health_snapshot& table) {
        for (auto& w : workers_) {
            net::post(w->context(), [w = w.get(), table] { w->use_health(table); });
        }
    });
}

void server::reload(const config::config& next) {
    if (next.slots.size() != analysis::slot_count) {
        throw std::runtime_error("exactly two slots are needed");
    }
    const std::lock_guard lock(mutex_);
    if (stopped_) {
        return;  // draining: nothing is published any more
    }
    const settings_snapshot before = settings_;
    settings_snapshot s = build_settings(next, before.get(), workers_.size());

    // build_settings read the certificates again (a failure threw, changing nothing): a
    // handshake that starts after the posts below uses the new ones, one in progress finishes
    // on the old ones.

    const bool new_resolver = s->resolver != before->resolver;
    if (new_resolver) {
        // Joined, so it publishes nothing more: a table it posted is queued before the settings
        // below, and one of an old endpoint list is ignored by its generation anyway.
        before->resolver->stop();
    }
    const bool new_monitor = s->health != before->health;
    if (new_monitor) {
        before->health->stop();  // joined: it posts nothing more
    }
    const address_snapshot table = s->resolver->current();
    settings_ = s;
    access_log_config_ = next.access_log;
    // The settings and their table go together, in one post per worker: a worker never holds an
    // endpoint list and a table of different lengths.
    for (auto& w : workers_) {
        net::post(w->context(), [w = w.get(), s, table] { w->use_settings(s, table); });
    }
    if (new_resolver && !threads_.empty()) {
        start_resolver(*s->resolver);  // after the posts: its tables follow the settings
    }
    if (new_monitor && !threads_.empty()) {
        start_health(*s->health);
    }
}

std::chrono::milliseconds server::drain_timeout() const {
    const std::lock_guard lock(mutex_);
    return settings_->timeouts.drain;
}

std::vector<std::pair<std::string, std::uint64_t>> server::route_counts() const {
    const auto totals = analysis::merge_routes(metrics_shards());
    std::vector<std::pair<std::string, std::uint64_t>> out;
    const std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < settings_->routes.size(); ++i) {
        out.emplace_back(settings_->routes.name(i), settings_->routes.count(i, totals));
    }
    return out;
}

health_snapshot server::endpoint_health() const {
    settings_snapshot s;
    {
        const std::lock_guard lock(mutex_);
        s = settings_;
    }
    return s->health->current();
}

address_snapshot server::addresses() const {
    settings_snapshot s;
    {
        const std::lock_guard lock(mutex_);
        s = settings_;
    }
    return s->resolver->current();
}

server::~server() {
    drain(std::chrono::milliseconds(0));
}

std::vector<const analysis::metrics_shard*> server::metrics_shards() const {
    std::vector<const analysis::metrics_shard*> out;
    for (const auto& shard : metrics_) {
        out.push_back(&shard);
    }
    return out;
}

bool server::reopen_access_log() {
    const std::lock_guard lock(mutex_);
    return settings_->access_log ? settings_->access_log->sink.reopen() : true;
}

void server::start() {
    const std::lock_guard lock(mutex_);
    for (auto& w : workers_) {
        threads_.emplace_back([&w] { w->run(); });
    }
    start_resolver(*settings_->resolver);
    start_health(*settings_->health);
    // POST /release wakes the held requests at once rather than at the workers' next tick.
    shared_.hold.set_release([this] {
        for (auto& w : workers_) {
            w->release_held();
        }
    });
}

void server::drain(std::chrono::milliseconds deadline) {
    settings_snapshot settings;
    {
        // A reload after this point publishes nothing; one in progress has finished.
        const std::lock_guard lock(mutex_);
        if (stopped_) {
            return;
        }
        stopped_ = true;
        settings = settings_;
    }
    shared_.hold.set_release({});  // the workers go; a late POST /release finds none
    upstream_resolver& resolver = *settings->resolver;
    // Publishes nothing more to the workers; a lookup in progress is waited for at the end.
    resolver.request_stop();
    settings->health->stop();
    if (threads_.empty()) {
        resolver.stop();
        return;
    }
    for (auto& w : workers_) {
        w->begin_drain();
    }
    // Each worker's loop returns once its last session has finished; wait for that, up to the
    // deadline, then cut what is left short.
    std::mutex m;
    std::condition_variable cv;
    std::size_t finished = 0;
    std::vector<std::thread> waiters;
    for (auto& t : threads_) {
        waiters.emplace_back([&] {
            t.join();
            const std::lock_guard lock(m);
            ++finished;
            cv.notify_all();
        });
    }
    {
        std::unique_lock lock(m);
        if (!cv.wait_for(lock, deadline, [&] { return finished == threads_.size(); })) {
            if (deadline.count() > 0) {
                spdlog::warn("drain deadline passed with requests in flight; closing them");
            }
            lock.unlock();
            for (auto& w : workers_) {
                w->stop();
            }
        }
    }
    for (auto& t : waiters) {
        t.join();
    }
    threads_.clear();
    resolver.stop();
}

}  // namespace switchyard::proxy
