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
               std::shared_ptr<name_lookup> lookup) {
    if (cfg.slots.size() != analysis::slot_count) {
        throw std::runtime_error("exactly two slots are needed");
    }
    shared_.timeouts = cfg.timeouts;
    shared_.limits = cfg.limits;
    shared_.upstream = cfg.upstream;
    shared_.upgrade = cfg.upgrade;
    std::vector<config::address> names;
    for (std::size_t s = 0; s < cfg.slots.size(); ++s) {
        const auto& slot = cfg.slots[s];
        tls_context_ptr upstream_tls;
        if (slot.tls) {
            std::string why;
            upstream_tls = make_client_context(*slot.tls, why);
            if (!upstream_tls) {
                throw std::runtime_error("slots." + slot.name + ".tls: " + why);
            }
        }
        for (const auto& a : slot.endpoints) {
            shared_.slot_endpoints[s].push_back(shared_.endpoints.size());
            endpoint& ep = shared_.endpoints.emplace_back();
            ep.slot = static_cast<analysis::slot_index>(s);
            ep.name = a.to_string();
            if (upstream_tls) {
                ep.tls = upstream_tls;
                ep.tls_name = slot.tls->sni.empty() ? a.host : slot.tls->sni;
                ep.tls_verify = slot.tls->verify;
            }
            names.push_back(a);
        }
    }
    tls_context_ptr certificates;
    if (cfg.tls) {
        std::string why;
        certificates = make_server_context(*cfg.tls, why);
        if (!certificates) {
            throw std::runtime_error("tls: " + why);
        }
    }
    resolver_ = std::make_unique<upstream_resolver>(std::move(names), cfg.upstream.resolve_interval,
                                                    lookup ? std::move(lookup) : system_lookup());
    resolver_->resolve_now();
    shared_.resolver = resolver_.get();
    shared_.slot_names = {cfg.slots[0].name, cfg.slots[1].name};
    shared_.split = &split;

    const unsigned count =
        cfg.workers != 0 ? cfg.workers : std::max(1U, std::thread::hardware_concurrency());
    if (cfg.access_log.to != "off") {
        access_log_ = std::make_unique<access_log_sink>(cfg.access_log.to);
    }

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
        access_log_buffer* log = nullptr;
        if (access_log_) {
            log = &access_log_buffers_.emplace_back(*access_log_, cfg.access_log.format);
        }
        worker::listeners from;
        if (plain_at) {
            from.plain = open_listener(setup, *plain_at, cfg.listen);
        }
        if (tls_at) {
            from.tls = open_listener(setup, *tls_at, cfg.tls->listen);
        }
        workers_.push_back(std::make_unique<worker>(shared_, i, std::move(from),
                                                    metrics_.emplace_back(), log,
                                                    resolver_->current(), certificates));
    }
}

std::optional<std::string> server::reload_certificates(const config::tls_config& cfg) {
    std::string why;
    auto certificates = make_server_context(cfg, why);
    if (!certificates) {
        return why;
    }
    for (auto& w : workers_) {
        net::post(w->context(), [w = w.get(), certificates] { w->use_certificates(certificates); });
    }
    return std::nullopt;
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
    return access_log_ ? access_log_->reopen() : true;
}

void server::start() {
    for (auto& w : workers_) {
        threads_.emplace_back([&w] { w->run(); });
    }
    // Each worker swaps a new table in on its own thread, between requests.
    resolver_->start([this](const address_snapshot& table) {
        for (auto& w : workers_) {
            net::post(w->context(), [w = w.get(), table] { w->use_addresses(table); });
        }
    });
}

void server::drain(std::chrono::milliseconds deadline) {
    if (stopped_) {
        return;
    }
    stopped_ = true;
    // Publishes nothing more to the workers; a lookup in progress is waited for at the end.
    resolver_->request_stop();
    if (threads_.empty()) {
        resolver_->stop();
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
    resolver_->stop();
}

}  // namespace switchyard::proxy
