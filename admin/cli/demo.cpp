// `switchyard demo`: the proxy in front of two built-in upstreams, so a newcomer sees traffic
// move between blue and green with nothing else running.

#include <atomic>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "admin/cli/commands.hpp"
#include "config/units.hpp"

namespace switchyard::cli {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// How a demo upstream misbehaves: a share of answers are 500s (spread evenly, not at random, so
// the demo shows the same thing every time) and every answer waits `latency`.
struct behaviour {
    double error_rate = 0;
    std::chrono::milliseconds latency{0};
};

// A small HTTP/1.1 server on 127.0.0.1 answering every request with its slot name.
class demo_upstream {
public:
    demo_upstream(std::string name, behaviour b)
        : name_(std::move(name)),
          behaviour_(b),
          acceptor_(io_, {net::ip::address_v4::loopback(), 0}) {}

    ~demo_upstream() {
        net::post(io_, [this] { io_.stop(); });
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

    void start() {
        net::co_spawn(io_, accept_loop(), net::detached);
        thread_ = std::thread([this] { io_.run(); });
    }

private:
    net::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
            if (!ec) {
                net::co_spawn(io_, serve(std::move(socket)), net::detached);
            }
        }
    }

    net::awaitable<void> serve(tcp::socket socket) {
        boost::beast::flat_buffer buffer;
        net::steady_timer timer(io_);
        for (;;) {
            http::request<http::string_body> req;
            const auto [ec, n] = co_await http::async_read(socket, buffer, req, use_tuple);
            if (ec) {
                co_return;
            }
            if (behaviour_.latency.count() > 0) {
                timer.expires_after(behaviour_.latency);
                co_await timer.async_wait(use_tuple);
            }
            // Bresenham again: exactly error_rate of any run of answers fail.
            const auto k = served_++;
            const bool fail =
                static_cast<std::uint64_t>(static_cast<double>(k + 1) * behaviour_.error_rate) >
                static_cast<std::uint64_t>(static_cast<double>(k) * behaviour_.error_rate);
            http::response<http::string_body> res{
                fail ? http::status::internal_server_error : http::status::ok, req.version()};
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            res.set("X-Slot", name_);
            res.body() = fail ? name_ + ": failing on purpose\n" : name_ + "\n";
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            const auto [wec, wn] = co_await http::async_write(socket, res, use_tuple);
            if (wec || !res.keep_alive()) {
                co_return;
            }
        }
    }

    std::string name_;
    behaviour behaviour_;
    std::uint64_t served_ = 0;
    net::io_context io_{1};
    tcp::acceptor acceptor_;
    std::thread thread_;
};

constexpr std::string_view demo_usage = R"(usage: switchyard demo [options]
  --green-errors R     share of green's answers that are 500s: 0.2 or 20% (default 0)
  --green-latency D    added to each of green's answers: 300ms, 1s (default 0)
  --listen ADDR        proxy address (default 127.0.0.1:8080)
  --admin ADDR         admin address (default 127.0.0.1:8081)
)";

}  // namespace

int run_demo(int argc, char** argv) {
    behaviour green;
    config::config cfg;
    cfg.listen = {"127.0.0.1", 8080};
    cfg.admin.listen = {"127.0.0.1", 8081};
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--help" || arg == "-h") {
            std::fputs(demo_usage.data(), stdout);
            return 0;
        }
        std::optional<double> rate;
        std::optional<config::duration> latency;
        std::optional<config::address> address;
        if (arg == "--green-errors" && has_value && (rate = config::parse_rate(argv[i + 1]))) {
            green.error_rate = *rate;
        } else if (arg == "--green-latency" && has_value &&
                   (latency = config::parse_duration(argv[i + 1]))) {
            green.latency = *latency;
        } else if (arg == "--listen" && has_value &&
                   (address = config::parse_address(argv[i + 1]))) {
            cfg.listen = *address;
        } else if (arg == "--admin" && has_value &&
                   (address = config::parse_address(argv[i + 1]))) {
            cfg.admin.listen = *address;
        } else {
            std::fprintf(stderr, "switchyard demo: bad argument '%s'\n\n%s", argv[i],
                         demo_usage.data());
            return 2;
        }
        ++i;
    }

    demo_upstream blue_upstream("blue", {});
    demo_upstream green_upstream("green", green);
    blue_upstream.start();
    green_upstream.start();
    cfg.slots = {{"blue", {{"127.0.0.1", blue_upstream.port()}}},
                 {"green", {{"127.0.0.1", green_upstream.port()}}}};
    cfg.active = "blue";
    cfg.timeouts.drain = std::chrono::seconds(5);

    const std::string proxy = cfg.listen.to_string();
    const std::string admin = cfg.admin.listen.to_string();
    return run_proxy(cfg, [&] {
        std::printf(
            "\nSwitchyard demo: blue (stable) and green (new) behind http://%s, admin on "
            "http://%s\n"
            "\n"
            "  curl %s/                                            # answers blue\n"
            "  curl -X PUT %s/active-slot -d green                 # all new requests to green\n"
            "  curl -X PUT %s/weights -d '{\"green\":10}'            # 10%% to green\n"
            "  curl %s/weights\n"
            "  for i in $(seq 20); do curl -s %s/; done | sort | uniq -c\n"
            "\n"
            "The live canary rollout of green comes with the rollout engine. Ctrl-C stops.\n\n",
            proxy.c_str(), admin.c_str(), proxy.c_str(), admin.c_str(), admin.c_str(),
            admin.c_str(), proxy.c_str());
        std::fflush(stdout);
    });
}

}  // namespace switchyard::cli
