// switchyard: flags, configuration, start, wait for a signal. Everything else is in the
// libraries, where the tests reach it.

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "admin/admin_server.hpp"
#include "admin/cli/commands.hpp"
#include "admin/prometheus.hpp"
#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "proxy/server.hpp"

namespace switchyard::cli {
namespace {

constexpr std::string_view usage = R"(usage:
  switchyard -c FILE                    run the proxy (logs to stderr); SIGHUP re-reads FILE
  switchyard check -c FILE              validate FILE: exit 0, or print every error and exit 1
  switchyard demo [--green-errors R] [--green-latency D]
                                        a live canary rollout of green in front of two built-in
                                        upstreams, proxy on 127.0.0.1:8080, admin on :8081
  switchyard demo-upstream --name NAME [--listen ADDR] [--error-rate R] [--latency D]
                                        a sample upstream answering NAME, failing a share R
                                        with 500 (else $DEMO_ERROR_RATE) and waiting D per answer
                                        (else $DEMO_LATENCY); on 0.0.0.0:8000 by default
  switchyard status [--admin URL] [--watch]
                                        the rollout as a table, from the admin API
  switchyard rollout [--admin URL] [--strategy S] [--wait]
                                        start a rollout; --wait follows it and exits 0 when it
                                        succeeds, 3 when it is rolled back or aborted
  switchyard --help | --version

options:
  -c, --config FILE                     the YAML configuration
  --log-level LEVEL                     trace, debug, info (default), warn, error
)";

int print_errors(const std::string& source, const config::load_result& r) {
    for (const auto& e : r.errors) {
        std::fprintf(stderr, "%s\n", config::format_error(source, e).c_str());
    }
    return 1;
}

// Raises the soft limit on open descriptors toward the hard one, as far as `max_connections`
// needs: two per connection (client and upstream) and a few for listeners, logs and the admin
// API (HAProxy sizes its own limit the same way). Warns when the hard limit is short.
void raise_descriptor_limit(std::uint32_t max_connections) {
    const rlim_t needed = 2 * rlim_t{max_connections} + 64;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= needed) {
        return;
    }
    const rlim_t want = limit.rlim_max == RLIM_INFINITY ? needed : std::min(needed, limit.rlim_max);
    if (want > limit.rlim_cur) {
        const rlimit raised{want, limit.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            limit.rlim_cur = want;
        }
    }
    if (limit.rlim_cur < needed) {
        spdlog::warn(
            "open descriptors are limited to {}, below the {} that limits.max_connections "
            "{} needs (two per connection); raise the hard limit (ulimit -Hn, "
            "LimitNOFILE=, docker --ulimit nofile=)",
            limit.rlim_cur, needed, max_connections);
    }
}

}  // namespace

int run_proxy(const config::config& cfg,
              const std::function<void(std::uint16_t, std::uint16_t)>& banner,
              const std::string& config_path) {
    if (!config::is_loopback(cfg.admin.listen) && cfg.admin.token.empty()) {
        spdlog::error(
            "admin.listen {} is reachable beyond loopback: set admin.token or admin.token_file",
            cfg.admin.listen.to_string());
        return 1;
    }
    raise_descriptor_limit(cfg.limits.max_connections);
    std::size_t active = 0;
    for (std::size_t i = 0; i < cfg.slots.size(); ++i) {
        if (cfg.slots[i].name == cfg.active) {
            active = i;
        }
    }
    analysis::split_state split({static_cast<analysis::slot_index>(active), 0});

    // Every thread started from here inherits the mask, so the signals reach sigwait below.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGUSR1);  // reopen the access log (logrotate's postrotate)
    sigaddset(&signals, SIGHUP);   // reload the configuration file
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    std::atomic<bool> draining{false};
    try {
        proxy::server proxy(cfg, split);
        const auto shards = proxy.metrics_shards();
        // Before the admin server, which scrapes it until it stops.
        const admin::tls_collector tls_metrics(
            [shards] { return analysis::merge_tls_failures(shards); });
        const admin::proxy_protocol_collector proxy_protocol_metrics(
            [shards] { return analysis::merge_proxy_protocol_failures(shards); });
        admin::admin_server admin(
            cfg, split, [&] { return !draining.load(); }, [&] { return analysis::merge(shards); },
            [&proxy] { return proxy.addresses(); },
            {config_path, [&proxy](const config::config& next) {
                 proxy.reload(next);
             }});
        if (cfg.tls) {
            admin.add_metrics(tls_metrics);
        }
        admin.use_endpoint_health([&proxy] { return proxy.endpoint_health(); });
        admin.use_hold(proxy.hold());
        if (cfg.listen_proxy_protocol != config::proxy_protocol_version::off) {
            admin.add_metrics(proxy_protocol_metrics);
        }
        proxy.start();
        admin.start();
        // The bound ports, so that port 0 in the configuration can be found (tests, scripts).
        std::string listening;
        if (cfg.plain_listener) {
            listening = config::address{cfg.listen.host, proxy.port()}.to_string();
        }
        if (cfg.tls) {
            listening += (listening.empty() ? "TLS " : " and TLS ") +
                         config::address{cfg.tls->listen.host, proxy.tls_port()}.to_string();
        }
        spdlog::info("switchyard {} listening on {} (admin on {}), {} active", SWITCHYARD_VERSION,
                     listening, config::address{cfg.admin.listen.host, admin.port()}.to_string(),
                     cfg.slots[split.load().active].name);
        if (banner) {
            banner(proxy.port(), admin.port());
        }
        int received = 0;
        while (sigwait(&signals, &received) == 0) {
            if (received == SIGUSR1) {
                proxy.reopen_access_log();
            } else if (received == SIGHUP) {
                // On the admin thread, the one that answers POST /reload: one reload path.
                admin.reload();
            } else {
                break;
            }
        }
        const auto drain = proxy.drain_timeout();  // as the last reload left it
        spdlog::info("{}: draining for up to {} ms", strsignal(received), drain.count());
        draining = true;
        proxy.drain(drain);
        admin.stop();
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    spdlog::info("stopped");
    return 0;
}

}  // namespace switchyard::cli

int main(int argc, char** argv) {
    using namespace switchyard;
    spdlog::set_default_logger(spdlog::stderr_color_mt("switchyard"));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");

    std::string_view command;
    std::string config_path;
    int first_flag = 1;
    if (argc > 1 && argv[1][0] != '-') {
        command = argv[1];
        first_flag = 2;
    }
    if (command == "demo") {
        return cli::run_demo(argc - 1, argv + 1);
    }
    if (command == "demo-upstream") {
        return cli::run_demo_upstream(argc - 1, argv + 1);
    }
    if (command == "status") {
        return cli::run_status(argc - 1, argv + 1);
    }
    if (command == "rollout") {
        return cli::run_rollout(argc - 1, argv + 1);
    }
    for (int i = first_flag; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::fputs(cli::usage.data(), stdout);
            return 0;
        }
        if (arg == "--version") {
            std::printf("switchyard %s\n", SWITCHYARD_VERSION);
            return 0;
        }
        if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (arg == "--log-level" && i + 1 < argc) {
            spdlog::set_level(spdlog::level::from_str(argv[++i]));
        } else {
            std::fprintf(stderr, "switchyard: unexpected argument '%s'\n\n%s", argv[i],
                         cli::usage.data());
            return 2;
        }
    }
    if (command != "" && command != "check") {
        std::fprintf(stderr, "switchyard: unknown command '%.*s'\n\n%s",
                     static_cast<int>(command.size()), command.data(), cli::usage.data());
        return 2;
    }
    if (config_path.empty()) {
        std::fprintf(stderr, "switchyard: -c FILE is required\n\n%s", cli::usage.data());
        return 2;
    }
    const auto loaded = config::load_config_file(config_path);
    if (!loaded.errors.empty()) {
        return cli::print_errors(config_path, loaded);
    }
    if (command == "check") {
        // A name that does not resolve now may well later (a container not started yet): the
        // proxy starts regardless, so this is a warning, not an error.
        for (const auto& line :
             proxy::unresolved_endpoints(*loaded.value, *proxy::system_lookup())) {
            std::fprintf(stderr,
                         "%s: warning: %s; its slot gets no traffic through it until it "
                         "does\n",
                         config_path.c_str(), line.c_str());
        }
        std::printf("%s: ok\n", config_path.c_str());
        return 0;
    }
    return cli::run_proxy(*loaded.value, {}, config_path);
}
