// `switchyard demo`: the proxy in front of two built-in upstreams, with built-in load and a live
// canary rollout of green, so a newcomer sees a promotion or a rollback with nothing else running.

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "admin/cli/commands.hpp"
#include "admin/cli/demo_upstream.hpp"
#include "admin/http_client.hpp"
#include "config/units.hpp"

namespace switchyard::cli {
namespace {

namespace net = boost::asio;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// The demo's clients: `rps` requests a second to the proxy over a few connections, each paced on
// its own, so that a slow green slows only the requests it answers.
class demo_load {
public:
    demo_load(config::address proxy, double rps) : proxy_(std::move(proxy)) {
        const double per_client = rps / clients;
        interval_ = std::chrono::microseconds(static_cast<std::int64_t>(1e6 / per_client));
        for (std::size_t i = 0; i < clients; ++i) {
            net::co_spawn(io_, client(), net::detached);
        }
        thread_ = std::thread([this] { io_.run(); });
    }
    ~demo_load() {
        io_.stop();
        thread_.join();
    }

private:
    static constexpr std::size_t clients = 8;

    net::awaitable<void> client() {
        net::steady_timer pace(io_);
        for (;;) {
            const auto next = std::chrono::steady_clock::now() + interval_;
            admin::http_request request;
            co_await admin::fetch(proxy_, request, std::chrono::seconds(5));
            pace.expires_at(next);
            co_await pace.async_wait(use_tuple);
        }
    }

    config::address proxy_;
    std::chrono::microseconds interval_{};
    net::io_context io_{1};
    std::thread thread_;
};

constexpr std::string_view demo_usage = R"(usage: switchyard demo [options]
  --green-errors R     share of green's answers that are 500s: 0.2 or 20% (default 0)
  --green-latency D    added to each of green's answers: 300ms, 1s (default 0)
  --green-slower R     both slots take lognormal service times (median 8ms, p95 about 14ms);
                       green's R longer: 0.2 or 20% (default: no service times)
  --rps N              built-in load, requests per second (default 100)
  --once               exit when the rollout ends: 0 promoted, 3 rolled back
  --listen ADDR        proxy address (default 127.0.0.1:8080)
  --admin ADDR         admin address (default 127.0.0.1:8081)
)";

// The demo's analysis: 5 s intervals, so that green reaches 100% in about 20 s and the bake of
// 10 s ends the rollout in about half a minute; everything else as the defaults.
config::config demo_config() {
    config::config cfg;
    cfg.listen = {"127.0.0.1", 8080};
    cfg.admin.listen = {"127.0.0.1", 8081};
    cfg.state_file = "off";
    cfg.timeouts.drain = std::chrono::seconds(5);
    cfg.analysis.interval = std::chrono::seconds(5);
    cfg.rollout.bake = std::chrono::seconds(10);
    cfg.rollout.health.deadline = std::chrono::seconds(5);
    return cfg;
}

// What `switchyard demo` was asked.
struct demo_options {
    demo_behaviour blue;
    demo_behaviour green;
    config::config cfg = demo_config();
    double rps = 100;
    bool once = false;
};

// The flags; nullopt with the usage printed, or exit 0 for --help.
std::optional<demo_options> parse_demo_flags(int argc, char** argv) {
    demo_options out;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--help" || arg == "-h") {
            std::fputs(demo_usage.data(), stdout);
            std::exit(0);
        }
        if (arg == "--once") {
            out.once = true;
            continue;
        }
        std::optional<double> rate;
        std::optional<config::duration> latency;
        std::optional<config::address> address;
        if (arg == "--green-errors" && has_value && (rate = config::parse_rate(argv[i + 1]))) {
            out.green.error_rate = *rate;
        } else if (arg == "--green-latency" && has_value &&
                   (latency = config::parse_duration(argv[i + 1]))) {
            out.green.latency = *latency;
        } else if (arg == "--green-slower" && has_value &&
                   (rate = config::parse_rate(argv[i + 1]))) {
            out.blue.median = std::chrono::milliseconds(8);
            out.green.median = std::chrono::milliseconds(8);
            out.green.slowdown = 1 + *rate;
        } else if (arg == "--rps" && has_value && std::atof(argv[i + 1]) >= 1) {
            out.rps = std::atof(argv[i + 1]);
        } else if (arg == "--listen" && has_value &&
                   (address = config::parse_address(argv[i + 1], true))) {
            out.cfg.listen = *address;
        } else if (arg == "--admin" && has_value &&
                   (address = config::parse_address(argv[i + 1], true))) {
            out.cfg.admin.listen = *address;
        } else {
            std::fprintf(stderr, "switchyard demo: bad argument '%s'\n\n%s", argv[i],
                         demo_usage.data());
            return std::nullopt;
        }
        ++i;
    }
    return out;
}

// The lines above the live view: where everything is, and what to expect.
std::string demo_header(const demo_options& o, const config::address& proxy,
                        const config::address& admin) {
    const bool misbehaves =
        o.green.error_rate > 0 || o.green.latency.count() > 0 || o.green.slowdown > 1;
    char header[1024];
    std::snprintf(header, sizeof header,
                  "Switchyard demo: blue (stable) and green (new) behind http://%s, admin on "
                  "http://%s\n"
                  "Built-in load: %.0f requests/s. A canary rollout of green is running; green "
                  "%s.\n"
                  "Elsewhere: curl %s/status, switchyard status --admin http://%s --watch\n\n",
                  proxy.to_string().c_str(), admin.to_string().c_str(), o.rps,
                  misbehaves ? "misbehaves on purpose, so watch it roll back"
                             : "is healthy, so watch it get promoted",
                  admin.to_string().c_str(), admin.to_string().c_str());
    return header;
}

}  // namespace

int run_demo(int argc, char** argv) {
    auto options = parse_demo_flags(argc, argv);
    if (!options) {
        return 2;
    }
    config::config& cfg = options->cfg;
    // Loopback, ports the kernel picks: the proxy in front is the only way in.
    const config::address upstream_listen{"127.0.0.1", 0};
    demo_upstream blue_upstream("blue", options->blue, upstream_listen);
    demo_upstream green_upstream("green", options->green, upstream_listen);
    blue_upstream.start();
    green_upstream.start();
    cfg.slots = {{"blue", {{"127.0.0.1", blue_upstream.port()}}, {}, {}, {}},
                 {"green", {{"127.0.0.1", green_upstream.port()}}, {}, {}, {}}};
    cfg.active = "blue";

    std::atomic<bool> stopping{false};
    std::atomic<int> outcome{0};
    std::thread follower;
    std::unique_ptr<demo_load> load;
    const bool once = options->once;
    const int status = run_proxy(cfg, [&](std::uint16_t proxy_port, std::uint16_t admin_port) {
        const config::address proxy{cfg.listen.host, proxy_port};
        const admin_target admin{{cfg.admin.listen.host, admin_port}, {}};
        const std::string header = demo_header(*options, proxy, admin.at);
        const bool tty = ::isatty(STDOUT_FILENO) == 1;
        if (!tty) {
            std::fputs(header.c_str(), stdout);
        }
        load = std::make_unique<demo_load>(proxy, options->rps);
        follower = std::thread([&, admin, tty, header] {
            const auto id = start_rollout(admin, "");
            if (!id) {
                outcome = 1;
            } else {
                follow_options follow;
                follow.redraw = tty;
                follow.header = header;
                follow.stop = &stopping;
                outcome = follow_rollout(admin, *id, follow);
            }
            load.reset();  // the load is for the rollout; the proxy is yours to try afterwards
            if (!stopping) {
                std::printf(once ? "\n"
                                 : "\nThe built-in load has stopped; the proxy keeps running. "
                                   "Ctrl-C stops it.\n");
                std::fflush(stdout);
            }
            if (once) {
                ::kill(::getpid(), SIGTERM);  // run_proxy's sigwait takes it and drains
            }
        });
    });
    stopping = true;
    if (follower.joinable()) {
        follower.join();  // it stops the load on its way out
    }
    load.reset();  // when the follower never started
    return once && status == 0 ? outcome.load() : status;
}

}  // namespace switchyard::cli
