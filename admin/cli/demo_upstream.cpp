// The demo upstream, and `switchyard demo-upstream`: the same server as a process of its own, the
// sample application of a docker-compose stack.

#include "admin/cli/demo_upstream.hpp"

#include <pthread.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>

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
#include "admin/listen.hpp"
#include "config/units.hpp"

namespace switchyard::cli {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// When accept fails for lack of descriptors or memory, wait before trying again instead of
// spinning on the same error.
constexpr std::chrono::milliseconds accept_backoff_time{100};

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

// The path the health gate (rollout.health.path) and container health checks probe.
bool is_health_probe(const request& req) {
    const std::string_view target = req.target();
    return (req.method() == http::verb::get || req.method() == http::verb::head) &&
           target.substr(0, target.find('?')) == "/health";
}

}  // namespace

struct demo_upstream::impl {
    impl(std::string slot, demo_behaviour b) : name(std::move(slot)), behaviour(b) {}

    net::awaitable<void> accept_loop();
    net::awaitable<void> serve(tcp::socket socket);
    response answer(const request& req, http::status status, std::string body) const;

    // Bresenham: of any run of answers, exactly error_rate of them fail, spread evenly.
    bool next_fails() {
        const auto k = static_cast<double>(answered++);
        return static_cast<std::uint64_t>((k + 1) * behaviour.error_rate) >
               static_cast<std::uint64_t>(k * behaviour.error_rate);
    }

    // The service time of the next answer (demo_behaviour::median).
    std::chrono::microseconds service_time() {
        if (behaviour.median.count() <= 0) {
            return std::chrono::microseconds(0);
        }
        const double drawn = service(rng) * behaviour.slowdown;
        return std::chrono::microseconds(static_cast<std::int64_t>(drawn));
    }

    std::string name;
    demo_behaviour behaviour;
    std::mt19937_64 rng{std::hash<std::string>{}(name)};  // each slot its own draws
    // p95 = median * e^(1.645 sigma) = 1.75 median.
    std::lognormal_distribution<double> service{
        std::log(static_cast<double>(std::max<std::int64_t>(behaviour.median.count(), 1))),
        std::log(1.75) / 1.645};
    std::uint64_t answered = 0;  // health probes not counted: they would shift the pattern
    // Declared first, destroyed last: everything below belongs to it.
    net::io_context io{1};
    tcp::acceptor acceptor{io};
    std::thread thread;
};

net::awaitable<void> demo_upstream::impl::accept_loop() {
    net::steady_timer backoff(io);
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (ec == net::error::operation_aborted) {
            co_return;
        }
        if (ec) {
            spdlog::warn("demo-upstream {}: accept failed: {}; retrying in {} ms", name,
                         ec.message(), accept_backoff_time.count());
            backoff.expires_after(accept_backoff_time);
            co_await backoff.async_wait(use_tuple);
            continue;
        }
        net::co_spawn(io, serve(std::move(socket)), net::detached);
    }
}

net::awaitable<void> demo_upstream::impl::serve(tcp::socket socket) {
    boost::beast::flat_buffer buffer;
    net::steady_timer timer(io);
    for (;;) {
        request req;
        const auto [ec, n] = co_await http::async_read(socket, buffer, req, use_tuple);
        if (ec) {
            co_return;
        }
        response res;
        if (is_health_probe(req)) {
            res = answer(req, http::status::ok, "ok\n");
        } else {
            const auto wait = behaviour.latency + service_time();
            if (wait.count() > 0) {
                timer.expires_after(wait);
                co_await timer.async_wait(use_tuple);
            }
            res = next_fails() ? answer(req, http::status::internal_server_error,
                                        name + ": failing on purpose\n")
                               : answer(req, http::status::ok, name + "\n");
        }
        const auto [wec, wn] = co_await http::async_write(socket, res, use_tuple);
        if (wec || !res.keep_alive()) {
            co_return;
        }
    }
}

response demo_upstream::impl::answer(const request& req, http::status status,
                                     std::string body) const {
    response res{status, req.version()};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set("X-Slot", name);
    res.body() = std::move(body);
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    if (req.method() == http::verb::head) {
        res.body().clear();  // RFC 9110 §9.3.2: GET's fields, Content-Length included, no content
    }
    return res;
}

demo_upstream::demo_upstream(std::string name, demo_behaviour behaviour,
                             const config::address& listen)
    : impl_(std::make_unique<impl>(std::move(name), behaviour)) {
    try {
        admin::listen_on(impl_->acceptor, listen);
        port_ = impl_->acceptor.local_endpoint().port();
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot listen on " + listen.to_string() + ": " +
                                 e.code().message());
    }
}

demo_upstream::~demo_upstream() {
    if (impl_->thread.joinable()) {
        impl_->io.stop();
        impl_->thread.join();
    }
}

void demo_upstream::start() {
    net::co_spawn(impl_->io, impl_->accept_loop(), net::detached);
    impl_->thread = std::thread([this] { impl_->io.run(); });
}

namespace {

constexpr std::string_view upstream_usage =
    R"(usage: switchyard demo-upstream --name NAME [options]
  --name NAME          the slot name answered in the body and in X-Slot (required)
  --listen ADDR        where to listen (default 0.0.0.0:8000)
  --error-rate R       share of answers that are 500s: 0.05 or 5%
                       (default $DEMO_ERROR_RATE, else 0)
  --latency D          added to each answer: 300ms, 1s (default $DEMO_LATENCY, else 0)
GET /health answers 200 at once, without errors or latency. SIGINT or SIGTERM stops it.
)";

// What `switchyard demo-upstream` was asked.
struct upstream_options {
    std::string name;
    config::address listen{"0.0.0.0", 8000};
    demo_behaviour behaviour;
    bool help = false;
};

// Reads a rate or a duration given by `source` (a flag or a variable) into `out`; the reason when
// `text` is not one.
std::optional<std::string> read_setting(std::string_view source, std::string_view text,
                                        double& out) {
    const auto rate = config::parse_rate(text);
    if (!rate) {
        return std::string(source) + ": expected a rate from 0 to 1 such as 0.05 or 5%, got '" +
               std::string(text) + "'";
    }
    out = *rate;
    return std::nullopt;
}

std::optional<std::string> read_setting(std::string_view source, std::string_view text,
                                        std::chrono::milliseconds& out) {
    const auto latency = config::parse_duration(text);
    if (!latency) {
        return std::string(source) + ": expected a duration such as 300ms or 1s, got '" +
               std::string(text) + "'";
    }
    out = *latency;
    return std::nullopt;
}

// `variable` into `out` when it is set and not empty; the reason when it is not a valid value.
template <class T>
std::optional<std::string> read_environment(const char* variable, T& out) {
    const char* value = std::getenv(variable);
    if (value == nullptr || *value == '\0') {
        return std::nullopt;
    }
    return read_setting(variable, value, out);
}

// The name travels as the X-Slot field value: visible ASCII only, so no answer is malformed.
bool valid_name(std::string_view name) {
    if (name.empty()) {
        return false;
    }
    for (const char c : name) {
        if (c < '!' || c > '~') {
            return false;
        }
    }
    return true;
}

// The flags, then the environment for the settings they leave out; the reason for the first
// thing that is wrong.
std::variant<upstream_options, std::string> parse_upstream_flags(int argc, char** argv) {
    upstream_options out;
    bool rate_given = false;
    bool latency_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            out.help = true;
            return out;
        }
        if (arg != "--name" && arg != "--listen" && arg != "--error-rate" && arg != "--latency") {
            return "unknown argument '" + std::string(arg) + "'";
        }
        if (i + 1 >= argc) {
            return std::string(arg) + " needs a value";
        }
        const std::string_view value = argv[++i];
        std::optional<std::string> error;
        if (arg == "--name") {
            out.name = value;
            if (!valid_name(value)) {
                error = "--name: expected visible ASCII without spaces, got '" +
                        std::string(value) + "'";
            }
        } else if (arg == "--listen") {
            const auto address = config::parse_address(value, true);
            if (address) {
                out.listen = *address;
            } else {
                error = "--listen: expected host:port, got '" + std::string(value) + "'";
            }
        } else if (arg == "--error-rate") {
            rate_given = true;
            error = read_setting(arg, value, out.behaviour.error_rate);
        } else {
            latency_given = true;
            error = read_setting(arg, value, out.behaviour.latency);
        }
        if (error) {
            return *error;
        }
    }
    if (out.name.empty()) {
        return std::string("--name is required");
    }
    if (!rate_given) {
        if (auto error = read_environment("DEMO_ERROR_RATE", out.behaviour.error_rate)) {
            return *error;
        }
    }
    if (!latency_given) {
        if (auto error = read_environment("DEMO_LATENCY", out.behaviour.latency)) {
            return *error;
        }
    }
    return out;
}

}  // namespace

int run_demo_upstream(int argc, char** argv) {
    auto parsed = parse_upstream_flags(argc, argv);
    if (const auto* reason = std::get_if<std::string>(&parsed)) {
        std::fprintf(stderr, "switchyard demo-upstream: %s\n\n%s", reason->c_str(),
                     upstream_usage.data());
        return 2;
    }
    const auto& options = std::get<upstream_options>(parsed);
    if (options.help) {
        std::fputs(upstream_usage.data(), stdout);
        return 0;
    }

    // Blocked before the server's thread starts, which inherits the mask, so that sigwait below
    // takes them. As PID 1 in a container a signal left to its default disposition is ignored.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    try {
        demo_upstream upstream(options.name, options.behaviour, options.listen);
        upstream.start();
        // The bound port, so that port 0 can be found (tests, scripts).
        spdlog::info("demo-upstream {} listening on {} (error rate {:g}%, latency {}ms)",
                     options.name,
                     config::address{options.listen.host, upstream.port()}.to_string(),
                     options.behaviour.error_rate * 100, options.behaviour.latency.count());
        int received = 0;
        sigwait(&signals, &received);
        spdlog::info("{}: stopping", strsignal(received));
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    return 0;
}

}  // namespace switchyard::cli
