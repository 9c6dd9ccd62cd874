#include "proxy/worker.hpp"

#include <algorithm>
#include <random>

#include <spdlog/spdlog.h>

#include "proxy/session.hpp"

namespace switchyard::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

// How often deadlines are checked: a quarter of the shortest timeout, between 5 ms and 250 ms.
// One sweep over the worker's sessions replaces a timer per I/O (which costs a timer-queue
// insert and cancel per read or write); deadlines fire up to one period late.
milliseconds tick_period(const config::timeouts_config& t) {
    const auto shortest = std::min({t.connect, t.request_header, t.upstream_response, t.idle,
                                    t.drain, t.tls_handshake, t.tunnel_idle});
    return std::clamp(shortest / 4, milliseconds(5), milliseconds(250));
}

// When accept fails for lack of descriptors or memory, wait before trying again instead of
// spinning on the same error.
constexpr milliseconds accept_backoff_time{100};

// Keep-alive connections between requests (see worker::park): at most this many sessions of a
// worker wait warm, and one that has waited this long is parked even so. The number covers a
// benchmark's or a busy front end's connection count per worker, at a few KiB each.
constexpr std::int32_t max_warm_idle = 128;
constexpr milliseconds park_after{1000};

using address_list = std::vector<tcp::endpoint>;
constexpr std::size_t not_found = static_cast<std::size_t>(-1);

// Where `at` stands in `list`, or not_found.
std::size_t index_of(const address_list& list, const tcp::endpoint& at) noexcept {
    const auto it = std::find(list.begin(), list.end(), at);
    return it == list.end() ? not_found : static_cast<std::size_t>(it - list.begin());
}

std::uint64_t splitmix64(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31U);
}

}  // namespace

worker::listener::listener(net::io_context& io, tcp::acceptor from, bool over_tls)
    : acceptor(io), backoff(io), tls(over_tls) {
    // Opened and bound by the server; adopted in this worker's context.
    const auto protocol = from.local_endpoint().protocol();  // before release(), not after
    acceptor.assign(protocol, from.release());
}

worker::worker(shared_state& shared, std::size_t index, listeners from,
               analysis::metrics_shard& metrics, settings_snapshot settings,
               address_snapshot addresses)
    // Only this thread touches the worker's sockets (other threads post to it), so the reactor's
    // per-descriptor lock is left out; posting still locks.
    : io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO),
      shared_(shared),
      index_(index),
      metrics_(metrics),
      access_log_(settings->access_log ? &settings->access_log->buffers[index] : nullptr),
      hold_counters_(shared.hold.add_worker()),
      tick_timer_(io_),
      tick_period_(tick_period(settings->timeouts)),
      settings_(std::move(settings)),
      addresses_(std::move(addresses)),
      health_(settings_->health->current()),
      endpoint_states_(settings_->endpoints.size()),
      header_storage_(settings_->limits.max_headers) {
    if (from.plain) {
        listeners_.emplace_back(io_, std::move(*from.plain), false);
    }
    if (from.tls) {
        listeners_.emplace_back(io_, std::move(*from.tls), true);
    }
    for (std::size_t i = 0; i < settings_->endpoints.size(); ++i) {
        pools_.emplace_back(settings_->upstream.max_idle, settings_->upstream.idle_timeout);
        pool_of_.push_back(i);
        endpoint_states_[i].down_until.resize(addresses_->endpoints[i].addresses.size());
    }
    std::random_device rd;
    id_seed_[0] = (std::uint64_t{rd()} << 32U) ^ rd();
    id_seed_[1] = (std::uint64_t{rd()} << 32U) ^ rd();
}

worker::~worker() {
    // Sessions and parked connections still linked belong to coroutines and handlers the
    // io_context destroys; unlink them first so the lists do not outlive them in a half state.
    sessions_.clear();
    parked_.clear();
    held_.clear();
}

void worker::run() {
    for (auto& l : listeners_) {
        do_accept(l);
    }
    do_tick();
    io_.run();
    // Drained or stopped: the lines of the last requests go out before the thread ends.
    if (access_log_ != nullptr) {
        access_log_->flush();
    }
}

void worker::begin_drain() {
    net::post(io_, [this] {
        close_intake();
        close_parked(session_base::clock::time_point::max());
        for_each_session([](session_base& s) { s.drain(); });
        wake_held(held_request::outcome::drained);
    });
}

void worker::stop() {
    net::post(io_, [this] {
        close_intake();
        close_parked(session_base::clock::time_point::max());
        for_each_session([](session_base& s) { s.abort(); });
        wake_held(held_request::outcome::drained);
        io_.stop();
    });
}

void worker::release_held() {
    net::post(io_, [this] { wake_released(); });
}

void worker::wake_released() noexcept {
    // Those held before the last release go, even when a new POST /hold has set the flag again
    // since; with the flag clear, all go.
    const bool open = !traffic().hold;
    const std::uint64_t releases = shared_.hold.releases();
    while (!held_.empty() && (open || held_.front().release < releases)) {
        held_request& h = held_.front();
        held_.pop_front();
        h.result = held_request::outcome::released;
        h.timer.cancel();
    }
}

void worker::wake_held(held_request::outcome why) noexcept {
    // Cancelling queues each timer's completion in this order, so the sessions resume, route
    // and connect in the order their requests arrived.
    while (!held_.empty()) {
        held_request& h = held_.front();
        held_.pop_front();
        h.result = why;
        h.timer.cancel();
    }
}

void worker::close_intake() {
    draining_ = true;
    for (auto& l : listeners_) {
        boost::system::error_code ignored;
        l.acceptor.close(ignored);
        l.backoff.cancel();
    }
    for (auto& pool : pools_) {
        pool.clear();
    }
}

bool worker::parking_idle() const noexcept {
    return warm_idle_ >= max_warm_idle;
}

void worker::park(client_connection conn, session_base::clock::time_point since) {
    auto parked = std::make_unique<parked_connection>(std::move(conn));
    parked->since = since;
    parked_.push_back(*parked);
    // A wait, not a read: it needs no buffer. (Asio queues it with an epoll_ctl, once per park.)
    // The handler owns the parked connection; closing its socket ends the wait and frees it.
    tcp::socket& socket = parked->conn.socket;
    socket.async_wait(tcp::socket::wait_read,
                      [this, p = std::move(parked)](const boost::system::error_code& ec) mutable {
                          if (!ec && !draining_) {
                              spawn_session(*this, std::move(p->conn));
                          }
                      });
}

void worker::close_parked(session_base::clock::time_point cutoff) {
    // Oldest first. A connection parked after its session waited `park_after` may be out of
    // order by that much, and close that much late.
    while (!parked_.empty() && parked_.front().since < cutoff) {
        parked_connection& p = parked_.front();
        p.unlink();
        boost::system::error_code ignored;
        p.conn.socket.close(ignored);  // its wait ends with operation_aborted, freeing it
    }
}

bool is_local_shortage(const boost::system::error_code& ec) noexcept {
    return ec == net::error::no_descriptors || ec == net::error::no_buffer_space ||
           ec == net::error::no_memory || ec == boost::system::errc::too_many_files_open_in_system;
}

template <class F>
void worker::for_each_session(F f) {
    // f may end a session, which unlinks it: step past it before the call.
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        f(*it++);
    }
}

void worker::do_accept(listener& l) {
    l.acceptor.async_accept(io_, l.peer,
                            [this, &l](const boost::system::error_code& ec, tcp::socket socket) {
                                on_accept(l, ec, std::move(socket));
                            });
}

void worker::on_accept(listener& l, const boost::system::error_code& ec, tcp::socket socket) {
    if (ec) {
        if (ec == net::error::operation_aborted || !l.acceptor.is_open()) {
            return;  // closed by drain or stop
        }
        if (is_local_shortage(ec)) {
            spdlog::error("worker {}: accept failed: {}; retrying in {} ms", index_, ec.message(),
                          accept_backoff_time.count());
            l.backoff.expires_after(accept_backoff_time);
            l.backoff.async_wait([this, &l](const boost::system::error_code& wec) {
                if (!wec && l.acceptor.is_open()) {
                    do_accept(l);
                }
            });
            return;
        }
        spdlog::debug("worker {}: accept failed: {}", index_, ec.message());  // e.g. aborted
        do_accept(l);
        return;
    }
    if (draining_) {
        return;  // accepted just before the listener closed: the socket closes here
    }
    const auto open = shared_.connections.fetch_add(1, std::memory_order_relaxed) + 1;
    if (open > settings_->limits.max_connections) {
        shared_.connections.fetch_sub(1, std::memory_order_relaxed);
        spdlog::debug("worker {}: max_connections ({}) reached, closing a new connection", index_,
                      settings_->limits.max_connections);
    } else {
        spawn_session(*this, client_connection(std::move(socket), l.peer, shared_.connections),
                      l.tls);
    }
    do_accept(l);
}

void worker::do_tick() {
    tick_timer_.expires_after(tick_period_);
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        const auto now = session_base::clock::now();
        for_each_session([now](session_base& s) {
            if (s.deadline() <= now) {
                s.expire();
            } else if (s.idle_since() <= now - park_after) {
                s.park();
            }
        });
        wake_released();  // a release whose nudge has not come
        close_parked(now - settings_->timeouts.idle);
        for (auto& pool : pools_) {
            pool.expire(now);
        }
        if (access_log_ != nullptr) {
            access_log_->refresh_time(std::chrono::system_clock::now());
            access_log_->flush_if_due(now);
        }
        // While draining, the loop ends on its own once the last session has gone.
        if (!draining_ || !sessions_.empty()) {
            do_tick();
        }
    });
}

bool worker::pick_target(analysis::slot_index slot, upstream_target& out) noexcept {
    const auto& indexes = settings_->slot_endpoints[slot];
    const auto count = static_cast<std::uint32_t>(indexes.size());
    session_base::clock::time_point now{};
    for (std::uint32_t tried = 0; tried < count; ++tried) {
        const std::size_t i = indexes[next_endpoint_[slot]++ % count];
        if (health_->up[i] == 0) {
            continue;  // failing its active checks, or ejected
        }
        const auto& addresses = addresses_->endpoints[i].addresses;
        endpoint_state& state = endpoint_states_[i];
        const auto n = static_cast<std::uint32_t>(addresses.size());
        for (std::uint32_t a = 0; a < n; ++a) {
            const std::uint32_t k = state.next++ % n;
            if (state.down_until[k] != session_base::clock::time_point{}) {
                if (now == session_base::clock::time_point{}) {
                    now = session_base::clock::now();
                }
                if (state.down_until[k] > now) {
                    continue;
                }
            }
            out.endpoint = i;
            out.address = addresses[k];
            out.generation = settings_->generation;
            return true;
        }
    }
    return false;
}

std::string worker::unavailable_reason(analysis::slot_index slot) const {
    const std::string& name = shared_.slot_names[slot];
    for (const std::size_t i : settings_->slot_endpoints[slot]) {
        if (health_->up[i] == 0) {
            return "slot " + name + " has no healthy endpoint (" +
                   health_->endpoints[i].down_reason() + ")";
        }
    }
    for (const std::size_t i : settings_->slot_endpoints[slot]) {
        if (!addresses_->endpoints[i].addresses.empty()) {
            return "no healthy endpoint in slot " + name;
        }
    }
    const std::size_t first = settings_->slot_endpoints[slot].front();
    return "no endpoint of slot " + name + " resolves (" + settings_->endpoints[first].name + ": " +
           addresses_->endpoints[first].error + ")";
}

session_base::clock::time_point* worker::down_mark(const upstream_target& t) noexcept {
    // A reload may have replaced the endpoint list since the target was picked: its index means
    // nothing now.
    if (t.generation != settings_->generation) {
        return nullptr;
    }
    // The table may have changed since the target was picked: its address may be gone.
    const std::size_t k = index_of(addresses_->endpoints[t.endpoint].addresses, t.address);
    return k == not_found ? nullptr : &endpoint_states_[t.endpoint].down_until[k];
}

void worker::target_failed(const upstream_target& t) {
    if (t.generation != settings_->generation) {
        return;  // an endpoint list a reload has replaced: its resolver has stopped
    }
    if (auto* mark = down_mark(t)) {
        *mark = session_base::clock::now() + settings_->upstream.fail_timeout;
    }
    settings_->health->connect_failed(t.endpoint);
    settings_->resolver->refresh();
}

void worker::target_succeeded(const upstream_target& t) noexcept {
    if (auto* mark = down_mark(t)) {
        *mark = {};
    }
    if (t.generation == settings_->generation) {
        settings_->health->connected(t.endpoint);
    }
}

void worker::target_answered(const upstream_target& t, unsigned status) noexcept {
    if (t.generation == settings_->generation) {
        settings_->health->answered(t.endpoint, status);
    }
}

void worker::use_health(health_snapshot table) {
    if (table->from != settings_->health.get() || table->version <= health_->version) {
        return;  // of a monitor a reload has replaced, or overtaken by a newer one
    }
    // An endpoint back after a failure is tried at once: its checks (or the end of its
    // ejection) say more than a refused connect of up to fail_timeout ago.
    for (std::size_t i = 0; i < table->up.size() && i < endpoint_states_.size(); ++i) {
        if (table->up[i] != 0 && health_->up[i] == 0) {
            std::fill(endpoint_states_[i].down_until.begin(), endpoint_states_[i].down_until.end(),
                      session_base::clock::time_point{});
        }
    }
    health_ = std::move(table);
}

void worker::carry_addresses(std::size_t endpoint, const address_list& before,
                             const address_list& now) {
    // An address kept keeps its mark; a new one is tried at once.
    endpoint_state& state = endpoint_states_[endpoint];
    std::vector<session_base::clock::time_point> down(now.size());
    for (std::size_t k = 0; k < now.size(); ++k) {
        if (const std::size_t was = index_of(before, now[k]); was != not_found) {
            down[k] = state.down_until[was];
        }
    }
    state.down_until = std::move(down);
    pools_[pool_of_[endpoint]].close_if(
        [&now](const tcp::endpoint& at) { return index_of(now, at) == not_found; });
}

void worker::use_addresses(address_snapshot table) {
    if (table->generation != settings_->generation) {
        return;  // looked up for an endpoint list a reload has replaced
    }
    for (std::size_t i = 0; i < table->endpoints.size(); ++i) {
        const auto& before = addresses_->endpoints[i].addresses;
        const auto& now = table->endpoints[i].addresses;
        if (now != before) {
            carry_addresses(i, before, now);
        }
    }
    addresses_ = std::move(table);
}

void worker::remap_endpoints(const live_settings& next, const address_table& table) {
    const live_settings& before = *settings_;
    std::vector<std::size_t> pool_of(next.endpoints.size(), not_found);
    std::vector<endpoint_state> states(next.endpoints.size());
    std::vector<bool> kept(before.endpoints.size(), false);
    for (std::size_t i = 0; i < next.endpoints.size(); ++i) {
        const auto it =
            std::find(before.endpoints.begin(), before.endpoints.end(), next.endpoints[i]);
        const auto was = static_cast<std::size_t>(it - before.endpoints.begin());
        if (it == before.endpoints.end() || kept[was]) {
            continue;
        }
        kept[was] = true;
        pool_of[i] = pool_of_[was];
        states[i] = std::move(endpoint_states_[was]);
    }
    for (std::size_t was = 0; was < kept.size(); ++was) {
        if (!kept[was]) {
            pools_[pool_of_[was]].clear();
            free_pools_.push_back(pool_of_[was]);
        }
    }
    for (std::size_t i = 0; i < pool_of.size(); ++i) {
        if (pool_of[i] != not_found) {
            continue;
        }
        if (free_pools_.empty()) {
            pool_of[i] = pools_.size();
            pools_.emplace_back(next.upstream.max_idle, next.upstream.idle_timeout);
        } else {
            pool_of[i] = free_pools_.back();
            free_pools_.pop_back();
        }
        states[i].down_until.assign(table.endpoints[i].addresses.size(), {});
    }
    pool_of_ = std::move(pool_of);
    endpoint_states_ = std::move(states);
    // The marks of a kept endpoint follow its addresses into the new table.
    for (std::size_t i = 0; i < next.endpoints.size(); ++i) {
        const auto it =
            std::find(before.endpoints.begin(), before.endpoints.end(), next.endpoints[i]);
        if (it != before.endpoints.end()) {
            const auto was = static_cast<std::size_t>(it - before.endpoints.begin());
            const auto& old_addresses = addresses_->endpoints[was].addresses;
            if (endpoint_states_[i].down_until.size() == old_addresses.size()) {
                carry_addresses(i, old_addresses, table.endpoints[i].addresses);
            } else {
                endpoint_states_[i].down_until.assign(table.endpoints[i].addresses.size(), {});
            }
        }
    }
}

void worker::use_settings(settings_snapshot next, address_snapshot table) {
    if (next->generation != settings_->generation) {
        remap_endpoints(*next, *table);
        addresses_ = std::move(table);
    } else {
        use_addresses(std::move(table));  // a resolver started again, for the same endpoints
    }
    for (auto& pool : pools_) {
        pool.configure(next->upstream.max_idle, next->upstream.idle_timeout);
    }
    if (next->access_log != settings_->access_log) {
        // The lines so far go to the old destination, the next ones to the new.
        if (access_log_ != nullptr) {
            access_log_->flush();
        }
        access_log_ = next->access_log ? &next->access_log->buffers[index_] : nullptr;
    }
    // Never shrunk: a session still on the old settings may parse with the old limit.
    if (next->limits.max_headers > header_storage_.size()) {
        header_storage_.resize(next->limits.max_headers);
    }
    // The tick in flight keeps its period; the next one takes the new one.
    tick_period_ = tick_period(next->timeouts);
    if (next->health != settings_->health) {
        // The new monitor's tables follow this post; its current one may be newer than the
        // first of them, which use_health then ignores by its version.
        health_ = next->health->current();
    }
    settings_ = std::move(next);
}

upstream_ptr worker::take_pooled(const upstream_target& t) {
    if (t.generation != settings_->generation) {
        return nullptr;
    }
    upstream_ptr conn = pools_[pool_of_[t.endpoint]].take(t.address);
    if (conn) {
        // Kept across a reload that moved its endpoint: it now serves this generation's index.
        conn->endpoint = t.endpoint;
        conn->generation = t.generation;
    }
    return conn;
}

void worker::release(upstream_ptr conn) {
    if (!draining_ && conn->generation == settings_->generation &&
        index_of(addresses_->endpoints[conn->endpoint].addresses, conn->address) != not_found) {
        pools_[pool_of_[conn->endpoint]].give_back(std::move(conn));
    }
}

void worker::next_request_id(std::string& out) {
    static constexpr char hex[] = "0123456789abcdef";
    const std::uint64_t n = id_counter_++;
    const std::uint64_t halves[2] = {splitmix64(id_seed_[0] + n), splitmix64(id_seed_[1] ^ n)};
    out.resize(32);
    for (std::size_t h = 0; h < 2; ++h) {
        for (std::size_t i = 0; i < 16; ++i) {
            out[h * 16 + i] = hex[(halves[h] >> (60U - 4U * i)) & 0xfU];
        }
    }
}

}  // namespace switchyard::proxy
