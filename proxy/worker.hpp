#pragma once
// One event-loop thread: its io_context, listener, sessions, upstream pools and per-request
// services (slot pick, endpoint pick, request ids). Nothing in here is shared with another
// worker, so nothing in here is locked.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include "analysis/metrics.hpp"
#include "analysis/traffic_split.hpp"
#include "proxy/access_log.hpp"
#include "proxy/http1.hpp"
#include "proxy/io_buffer.hpp"
#include "proxy/mirror.hpp"
#include "proxy/resolver.hpp"
#include "proxy/shared_state.hpp"
#include "proxy/upstream_pool.hpp"

namespace switchyard::proxy {

// Links a session into its worker's list, and unlinks it when the session is destroyed.
using session_hook =
    boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

// An accepted client connection, counted in shared_state::connections for as long as it is
// open. The count moves with the socket: from a session to the connection's parked form and back.
// The peer's address comes from accept, so that no session asks the kernel for it again, or from
// the connection's PROXY protocol header once it has been read (README, "PROXY protocol").
class client_connection {
public:
    client_connection(boost::asio::ip::tcp::socket s, const boost::asio::ip::tcp::endpoint& from,
                      std::atomic<std::uint32_t>& open) noexcept
        : socket(std::move(s)), peer(from), open_(&open) {}
    client_connection(client_connection&& other) noexcept
        : socket(std::move(other.socket)),
          peer(other.peer),
          proxy_header_read(other.proxy_header_read),
          open_(std::exchange(other.open_, nullptr)) {}
    client_connection& operator=(client_connection&&) = delete;
    ~client_connection() {
        if (open_ != nullptr) {
            open_->fetch_sub(1, std::memory_order_relaxed);
        }
    }

    boost::asio::ip::tcp::socket socket;
    boost::asio::ip::tcp::endpoint peer;
    // The PROXY protocol header has been read: a parked connection's next session must not read
    // another.
    bool proxy_header_read = false;

private:
    std::atomic<std::uint32_t>* open_;
};

// A socket could not be had for lack of descriptors, buffers or memory: the process's shortage,
// which a failed accept or connect must not blame on a peer.
bool is_local_shortage(const boost::system::error_code& ec) noexcept;

// What the worker needs of a session: its deadline, and a way to cut it short.
class session_base : public session_hook {
public:
    using clock = std::chrono::steady_clock;

    // The deadline of the I/O in progress; time_point::max() when none is armed.
    clock::time_point deadline() const noexcept { return deadline_; }
    // Since when the session has been waiting for the first byte of a next request;
    // time_point::max() while it serves one.
    clock::time_point idle_since() const noexcept { return idle_since_; }
    // Called once the deadline has passed: cancels the session's I/O, which then sees
    // operation_aborted with timed_out() set.
    virtual void expire() = 0;
    // Drain: close now if waiting between requests, else finish the request and close.
    virtual void drain() = 0;
    // Shutdown past the drain deadline: cancel everything.
    virtual void abort() = 0;
    // Idle for long: hand the connection to the worker to wait without a session (worker::park).
    virtual void park() = 0;

protected:
    session_base() = default;
    ~session_base() = default;
    session_base(const session_base&) = delete;
    session_base& operator=(const session_base&) = delete;

    clock::time_point deadline_ = clock::time_point::max();
    clock::time_point idle_since_ = clock::time_point::max();
};

// A request kept waiting by POST /hold, in its session's coroutine frame: it waits on `timer`
// (armed for hold.max_wait) until the worker wakes it or the timer expires. Linked into the
// worker's list in arrival order, and unlinked when destroyed.
struct held_request : session_hook {
    enum class outcome : std::uint8_t {
        timed_out,  // waited hold.max_wait: 503
        released,   // POST /release: routed as usual
        drained,    // the worker drains or stops: 503
    };
    explicit held_request(boost::asio::io_context& io) : timer(io) {}

    boost::asio::steady_timer timer;
    outcome result = outcome::timed_out;
    std::uint64_t release = 0;  // hold_board::releases() when it began to wait
};

class worker {
public:
    // The listening sockets the server opened for this worker: the plain one, the TLS one, or
    // both.
    struct listeners {
        std::optional<boost::asio::ip::tcp::acceptor> plain;
        std::optional<boost::asio::ip::tcp::acceptor> tls;
    };

    // `metrics` must outlive the worker: sessions record into it while the io_context destroys
    // them. `settings` and `addresses` are the first snapshot and its address table.
    worker(shared_state& shared, std::size_t index, listeners from,
           analysis::metrics_shard& metrics, settings_snapshot settings,
           address_snapshot addresses);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    boost::asio::io_context& context() noexcept { return io_; }
    // The thread body: accepts and serves until drained or stopped.
    void run();
    // Thread-safe: stop accepting, close idle connections, let requests finish.
    void begin_drain();
    // Thread-safe: cancel every session now and stop the loop.
    void stop();

    // --- for sessions, on this worker's thread ---
    const shared_state& shared() const noexcept { return shared_; }
    // Its place among the server's workers: 0, 1, ...
    std::size_t index() const noexcept { return index_; }
    // The settings in force on this worker. A session compares its own copy with this pointer
    // per request and copies it only when they differ, after a reload: no shared atomic per
    // request.
    const settings_snapshot& settings() const noexcept { return settings_; }
    bool draining() const noexcept { return draining_; }
    void add(session_base& s) noexcept { sessions_.push_back(s); }

    // Keep-alive connections between requests. A session waiting for the next request keeps its
    // coroutine, buffers and a read in flight: the cheapest way to serve a busy client, and the
    // dearest to hold for an idle one. So only the most recently busy (`warm`) sessions wait that
    // way; a connection past that number, or idle for long, is parked: it waits as a socket and a
    // readiness wait, and gets a new session when its next request arrives (nginx frees its
    // request state on keep-alive likewise).
    //
    // A session entering or leaving its wait between requests.
    void session_idle(bool idle) noexcept { warm_idle_ += idle ? 1 : -1; }
    // True when a session that goes idle now should park instead of waiting warm.
    bool parking_idle() const noexcept;
    // Takes over a connection that waits for its next request, idle since `since`.
    void park(client_connection conn, session_base::clock::time_point since);

    // Hold and maintenance (README, "Hold and maintenance"): a held request waits in `h` until
    // wake_held; this worker's counters.
    void hold(held_request& h) noexcept { held_.push_back(h); }
    analysis::hold_counters& hold_counters() noexcept { return hold_counters_; }
    // Thread-safe: wakes this worker's held requests when the hold flag is clear (POST /release
    // posts it; the tick also looks, so a release is never missed).
    void release_held();

    // The traffic state for the next request: one load of a word that is almost never written.
    analysis::traffic_state traffic() const noexcept { return shared_.split->load_state(); }
    // The slot for a request no route or pin took, from the split it was routed with: of every
    // 100 such requests, exactly the weight go to the other slot.
    analysis::slot_index pick_slot(analysis::traffic_split split) noexcept {
        return picker_.pick(split);
    }
    // The next endpoint of `slot` round-robin, and the next of its addresses, skipping addresses
    // that refused a connection in the last `upstream.fail_timeout` and endpoints without any;
    // false when the slot has none left (503). From the settings in force, whose generation the
    // target carries: the worker's methods below ignore a target or connection of another one.
    bool pick_target(analysis::slot_index slot, upstream_target& out) noexcept;
    // Why pick_target found nothing in `slot`, for the 503's reason.
    std::string unavailable_reason(analysis::slot_index slot) const;
    // A connection to the target failed: skip its address for a while (passive health, as
    // nginx's max_fails=1 fail_timeout does), and have the name looked up again soon.
    void target_failed(const upstream_target& t);
    void target_succeeded(const upstream_target& t) noexcept;
    // The target answered with `status`: counted towards passive ejection (5xx in a row).
    void target_answered(const upstream_target& t, unsigned status) noexcept;
    // On this worker's thread: a new health table from the monitor in force (README, "Health
    // checks and ejection"). One of another monitor, or older than the one held, is ignored. An
    // endpoint that comes back has its addresses' fail_timeout marks cleared.
    void use_health(health_snapshot table);
    // On this worker's thread: a new address table from the resolver. Idle connections to
    // addresses it no longer holds are closed; busy ones are closed when released. A table of
    // another endpoint list than the settings in force is ignored.
    void use_addresses(address_snapshot table);
    // On this worker's thread: a reload's settings and their address table, together (README,
    // "Reloading"). Sessions take the settings at their next request; a request in flight keeps
    // its own. When the endpoint list changed, an endpoint that stays (same slot and name) keeps
    // its idle connections and passive-health marks under its new index, the others' are closed,
    // and connections in flight are closed when released instead of pooled.
    void use_settings(settings_snapshot settings, address_snapshot table);

    // An idle connection to the target, or null (none, or the target is of another generation).
    upstream_ptr take_pooled(const upstream_target& t);
    // Keeps a connection for reuse unless the worker is draining or it belongs to an endpoint
    // list no longer in force.
    void release(upstream_ptr conn);

    // This worker's request metrics: written here only, read by any thread.
    analysis::metrics_shard& metrics() noexcept { return metrics_; }
    // Which of this worker's requests are mirrored, and its copies in flight.
    mirror_sender& mirror() noexcept { return mirror_; }
    // This worker's access log lines; null when access_log.to is off.
    access_log_buffer* access_log() noexcept { return access_log_; }

    std::span<http1::header_field> header_storage() noexcept { return header_storage_; }
    // I/O blocks lent to sessions while a request is in flight.
    buffer_pool& buffers() noexcept { return buffers_; }
    // A fresh 32-hex-digit request id, into `out` (replacing its content).
    void next_request_id(std::string& out);

private:
    using session_list =
        boost::intrusive::list<session_base, boost::intrusive::constant_time_size<false>>;
    struct parked_connection : session_hook {
        explicit parked_connection(client_connection c) noexcept : conn(std::move(c)) {}
        client_connection conn;
        session_base::clock::time_point since;
    };
    using parked_list =
        boost::intrusive::list<parked_connection, boost::intrusive::constant_time_size<false>>;

    // A listening socket, with the wait that follows a failed accept.
    struct listener {
        listener(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor from, bool over_tls);
        boost::asio::ip::tcp::acceptor acceptor;
        boost::asio::steady_timer backoff;
        boost::asio::ip::tcp::endpoint peer;  // of the accept in progress
        bool tls;
    };

    // The passive-health mark of the target's address; null when the address has gone or the
    // target is of another generation.
    session_base::clock::time_point* down_mark(const upstream_target& t) noexcept;
    // A new generation's endpoints: moves what stays under its new index (use_settings).
    void remap_endpoints(const live_settings& next, const address_table& table);
    // Carries an endpoint's marks from its addresses `before` to `now`; closes its idle
    // connections to addresses that have gone.
    void carry_addresses(std::size_t endpoint,
                         const std::vector<boost::asio::ip::tcp::endpoint>& before,
                         const std::vector<boost::asio::ip::tcp::endpoint>& now);
    void do_accept(listener& l);
    void on_accept(listener& l, const boost::system::error_code& ec,
                   boost::asio::ip::tcp::socket socket);
    void do_tick();
    // Wakes every held request with `why`, oldest first: their completions run in that order.
    void wake_held(held_request::outcome why) noexcept;
    // Wakes, oldest first, the held requests a release has let go (hold_board::releases).
    void wake_released() noexcept;
    // Stops taking new work: closes the listener and the idle upstream connections.
    void close_intake();
    // Closes parked connections idle since before `cutoff` (all of them with time_point::max()).
    void close_parked(session_base::clock::time_point cutoff);
    template <class F>
    void for_each_session(F f);

    // Declared first, destroyed last: every socket below belongs to it.
    boost::asio::io_context io_;
    shared_state& shared_;
    std::size_t index_;
    analysis::metrics_shard& metrics_;
    access_log_buffer* access_log_;
    analysis::hold_counters& hold_counters_;
    std::deque<listener> listeners_;  // a deque: accept handlers hold each one's address
    boost::asio::steady_timer tick_timer_;
    std::chrono::milliseconds tick_period_;
    session_list sessions_;
    parked_list parked_;  // by parking time, oldest first
    using held_list =
        boost::intrusive::list<held_request, boost::intrusive::constant_time_size<false>>;
    held_list held_;  // in arrival order
    std::int32_t warm_idle_ = 0;
    settings_snapshot settings_;
    // A deque, never shrunk while the worker runs: idle-watch handlers hold each pool's address.
    // An endpoint's pool is pools_[pool_of_[endpoint]]; a reload that removes an endpoint
    // clears its pool and keeps it in free_pools_ for the next one added.
    std::deque<endpoint_pool> pools_;
    std::vector<std::size_t> pool_of_;
    std::vector<std::size_t> free_pools_;
    address_snapshot addresses_;
    health_snapshot health_;  // of settings_->health
    // Per endpoint: when each of its addresses (in addresses_'s order) may be tried again, and
    // the next address to try.
    struct endpoint_state {
        std::vector<session_base::clock::time_point> down_until;
        std::uint32_t next = 0;
    };
    std::vector<endpoint_state> endpoint_states_;
    analysis::per_slot<std::uint32_t> next_endpoint_{};
    analysis::split_picker picker_;
    mirror_sender mirror_;
    std::vector<http1::header_field> header_storage_;
    buffer_pool buffers_;
    std::uint64_t id_seed_[2] = {};
    std::uint64_t id_counter_ = 0;
    bool draining_ = false;
};

}  // namespace switchyard::proxy
