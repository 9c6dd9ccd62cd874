#include "proxy/server.hpp"

#include <condition_variable>
#include <mutex>
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

// One listening socket per worker on the same address (SO_REUSEPORT): the kernel spreads new
// connections across them and no connection is handed between threads.
tcp::acceptor open_listener(net::io_context& io, const tcp::endpoint& at) {
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

    const unsigned count =
        cfg.workers != 0 ? cfg.workers : std::max(1U, std::thread::hardware_concurrency());
    settings_ = build_settings(cfg, nullptr, count);
    access_log_config_ = cfg.access_log;

    net::io_context setup;
    tcp::endpoint at = resolve_one(setup, cfg.listen);
    try {
        {
            // SO_REUSEPORT would let a second switchyard on the same port start silently and
            // take half the connections. A probe bound without it fails as a plain listener
            // would ("address already in use"), and gives port 0 its port for the workers.
            tcp::acceptor probe(setup, at.protocol());
            probe.set_option(tcp::acceptor::reuse_address(true));
            probe.bind(at);
            at = probe.local_endpoint();
            port_ = at.port();
        }
        for (unsigned i = 0; i < count; ++i) {
            workers_.push_back(std::make_unique<worker>(shared_, i, open_listener(setup, at),
                                                        metrics_.emplace_back(), settings_,
                                                        settings_->resolver->current()));
        }
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot listen on " + cfg.listen.to_string() + ": " +
                                 e.code().message());
    }
}

settings_snapshot server::build_settings(const config::config& cfg, const live_settings* before,
                                         std::size_t workers) const {
    auto s = std::make_shared<live_settings>();
    s->timeouts = cfg.timeouts;
    s->limits = cfg.limits;
    s->upstream = cfg.upstream;
    std::vector<config::address> names;
    for (std::size_t slot = 0; slot < cfg.slots.size(); ++slot) {
        for (const auto& a : cfg.slots[slot].endpoints) {
            s->slot_endpoints[slot].push_back(s->endpoints.size());
            s->endpoints.push_back({static_cast<analysis::slot_index>(slot), a.to_string()});
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

    // TLS: load the TLS listener's certificate contexts from `next` here and swap them in.
    // Throwing here still refuses the reload with nothing changed (what build_settings made is
    // dropped unpublished), and the swap comes before the workers are told: a handshake that
    // starts after the posts below uses the new certificates, one in progress finishes on the
    // old ones. (config::compare names the TLS keys: tls.listen needs a restart.)

    const bool new_resolver = s->resolver != before->resolver;
    if (new_resolver) {
        // Joined, so it publishes nothing more: a table it posted is queued before the settings
        // below, and one of an old endpoint list is ignored by its generation anyway.
        before->resolver->stop();
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
}

std::chrono::milliseconds server::drain_timeout() const {
    const std::lock_guard lock(mutex_);
    return settings_->timeouts.drain;
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
    upstream_resolver& resolver = *settings->resolver;
    // Publishes nothing more to the workers; a lookup in progress is waited for at the end.
    resolver.request_stop();
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
