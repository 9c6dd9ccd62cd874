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
        for (const auto& a : cfg.slots[s].endpoints) {
            shared_.slot_endpoints[s].push_back(shared_.endpoints.size());
            shared_.endpoints.push_back({static_cast<analysis::slot_index>(s), a.to_string()});
            names.push_back(a);
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
            access_log_buffer* log = nullptr;
            if (access_log_) {
                log = &access_log_buffers_.emplace_back(*access_log_, cfg.access_log.format);
            }
            workers_.push_back(std::make_unique<worker>(shared_, i, open_listener(setup, at),
                                                        metrics_.emplace_back(), log,
                                                        resolver_->current()));
        }
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot listen on " + cfg.listen.to_string() + ": " +
                                 e.code().message());
    }
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
