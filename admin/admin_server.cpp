#include "admin/admin_server.hpp"

#include "config/changes.hpp"

#include "admin/hold_api.hpp"
#include "admin/listen.hpp"
#include "admin/live_page.hpp"
#include "admin/prometheus.hpp"
#include "admin/rollout_json.hpp"
#include "proxy/text.hpp"

#include <optional>
#include <stdexcept>
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
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace switchyard::admin {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::uint64_t max_admin_body = 64 * 1024;
// How long the accept loop waits after a failed accept (no descriptors left, say).
constexpr std::chrono::milliseconds accept_backoff{100};

admin_response json_answer(unsigned status, const json::value& body) {
    return {status, "application/json", json_line(body), {}};
}

admin_response error(unsigned status, std::string_view message) {
    return json_answer(status, error_json(message));
}

admin_response text(std::string body) {
    return {200, "text/plain; charset=utf-8", std::move(body), {}};
}

// True when the query string holds `name`, `name=true` or `name=1` ("full=true").
bool query_flag(std::string_view query, std::string_view name) noexcept {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view item = query.substr(0, amp);
        if (item == name ||
            (item.starts_with(name) && item.size() > name.size() && item[name.size()] == '=' &&
             (item.substr(name.size() + 1) == "true" || item.substr(name.size() + 1) == "1"))) {
            return true;
        }
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    }
    return false;
}

// The value of `name=` in the query string as a whole number of at most 18 digits: 0 when
// absent, none when not a number.
std::optional<std::int64_t> query_number(std::string_view query, std::string_view name) noexcept {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view item = query.substr(0, amp);
        if (item.starts_with(name) && item.size() > name.size() && item[name.size()] == '=') {
            const std::string_view digits = item.substr(name.size() + 1);
            if (digits.empty() || digits.size() > 18) {
                return std::nullopt;
            }
            std::int64_t n = 0;
            for (const char c : digits) {
                if (c < '0' || c > '9') {
                    return std::nullopt;
                }
                n = n * 10 + (c - '0');
            }
            return n;
        }
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    }
    return 0;
}

// The HTTP response carrying `r`; `version` as Beast counts it (11: HTTP/1.1).
http::response<http::string_body> to_http(admin_response r, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    if (!r.allow.empty()) {
        res.set(http::field::allow, r.allow);
    }
    if (!r.content_security_policy.empty()) {
        res.set("Content-Security-Policy", r.content_security_policy);
        res.set("X-Content-Type-Options", "nosniff");
    }
    if (r.status == 401) {
        res.set(http::field::www_authenticate, "Bearer");
    }
    res.keep_alive(keep_alive);
    res.body() = std::move(r.body);
    res.prepare_payload();
    return res;
}

}  // namespace

// --- admin_api ---

admin_api::admin_api(const config::config& cfg, controller& control, std::function<bool()> ready,
                     std::function<std::string()> scrape, std::function<admin_response()> reload)
    : token_(cfg.admin.token),
      control_(control),
      ready_(std::move(ready)),
      scrape_(std::move(scrape)),
      reload_(std::move(reload)) {}

int admin_api::slot_by_name(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < analysis::slot_count; ++i) {
        if (control_.names()[i] == name) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

bool admin_api::authorized(std::string_view authorization) const noexcept {
    if (token_.empty()) {
        return true;
    }
    constexpr std::string_view scheme = "Bearer ";
    if (authorization.size() < scheme.size() ||
        !std::equal(scheme.begin(), scheme.end(), authorization.begin(), [](char x, char y) {
            return std::tolower(static_cast<unsigned char>(x)) ==
                   std::tolower(static_cast<unsigned char>(y));
        })) {
        return false;
    }
    return proxy::constant_time_equals(proxy::trim_whitespace(authorization.substr(scheme.size())),
                                       token_);
}

admin_response admin_api::handle(std::string_view method, std::string_view target,
                                 std::string_view authorization, std::string_view body) {
    const std::size_t question = target.find('?');
    const std::string_view path = target.substr(0, question);
    const std::string_view query =
        question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    const bool get = method == "GET" || method == "HEAD";
    const bool put = method == "PUT";
    const bool post = method == "POST";
    auto not_allowed = [](std::string allow) {
        auto r = error(405, "method not allowed; use " + allow);
        r.allow = std::move(allow);
        return r;
    };
    if ((put || post || method == "DELETE") && !authorized(authorization)) {
        return error(401, "missing or wrong bearer token");
    }
    const auto& names = control_.names();

    if (path == "/active-slot") {
        if (get) {
            return text(names[control_.split().active] + "\n");
        }
        return put ? put_active_slot(body) : not_allowed("GET, PUT");
    }
    if (path == "/inactive-slot") {
        return get ? text(names[control_.split().other()] + "\n") : not_allowed("GET");
    }
    if (path == "/weights") {
        if (get) {
            return weights();
        }
        return put ? put_weights(body) : not_allowed("GET, PUT");
    }
    if (path == "/status") {
        if (!get) {
            return not_allowed("GET");
        }
        json::value status = control_.status();
        if (hold_ != nullptr && status.is_object()) {
            add_hold_status(status.as_object(), *split_, *hold_);
        }
        return json_answer(200, status);
    }
    if ((path == "/hold" || path == "/release" || path == "/maintenance") && hold_ != nullptr) {
        return hold_call(method, path, body, *split_, *hold_);
    }
    if (path == "/rollout/history") {
        return get ? json_answer(200, control_.history()) : not_allowed("GET");
    }
    if (path == "/rollout" || path == "/rollback" || path.starts_with("/rollout/")) {
        const std::string_view action = path == "/rollout"    ? "start"
                                        : path == "/rollback" ? "rollback"
                                                              : path.substr(9);
        return post ? rollout_action(action, query, body) : not_allowed("POST");
    }
    if (path == "/reload") {
        if (!post) {
            return not_allowed("POST");
        }
        return reload_ ? reload_()
                       : error(409,
                               "no configuration file to reload: switchyard was not "
                               "started with -c FILE");
    }
    if (path == "/") {
        if (!get) {
            return not_allowed("GET");
        }
        const live_page& page = the_live_page();
        return {200,
                "text/html; charset=utf-8",
                std::string(page.html),
                {},
                page.content_security_policy};
    }
    if (path == "/series") {
        if (!get) {
            return not_allowed("GET");
        }
        const auto since = query_number(query, "since");
        if (!since) {
            return error(400, "since must be a whole number of seconds since the epoch");
        }
        return json_answer(200, control_.series(*since));
    }
    if (path == "/healthz") {
        return get ? text("ok\n") : not_allowed("GET");
    }
    if (path == "/readyz") {
        if (!get) {
            return not_allowed("GET");
        }
        if (ready_ && !ready_()) {
            return {503, "text/plain; charset=utf-8", "not ready\n", {}};
        }
        return text("ready\n");
    }
    if (path == "/metrics" && scrape_) {
        if (!get) {
            return not_allowed("GET");
        }
        return {200, "text/plain; version=0.0.4; charset=utf-8", scrape_(), {}};
    }
    return error(404, "no such endpoint: " + std::string(path));
}

admin_response admin_api::rollout_action(std::string_view action, std::string_view query,
                                         std::string_view body) {
    controller::answer a;
    if (action == "start") {
        a = control_.start_rollout(proxy::trim_whitespace(body));
    } else if (action == "promote") {
        a = control_.promote(query_flag(query, "full"));
    } else if (action == "pause") {
        a = control_.pause();
    } else if (action == "resume") {
        a = control_.resume();
    } else if (action == "approve") {
        a = control_.approve();
    } else if (action == "abort") {
        a = control_.abort();
    } else if (action == "rollback") {
        a = control_.rollback();
    } else {
        return error(404, "no such endpoint: /rollout/" + std::string(action) +
                              "; the actions are promote, pause, resume, approve and abort");
    }
    return json_answer(a.status, a.body);
}

admin_response admin_api::put_active_slot(std::string_view body) {
    // The body is the slot name, or {"slot": "green"} (README, "Admin API").
    std::string name(proxy::trim_whitespace(body));
    if (!name.empty() && name.front() == '{') {
        boost::system::error_code ec;
        const json::value v = json::parse(name, ec);
        const json::object* obj = ec ? nullptr : v.if_object();
        const json::value* slot = obj != nullptr ? obj->if_contains("slot") : nullptr;
        if (slot == nullptr || !slot->is_string() || obj->size() != 1) {
            return error(400, R"(expected a slot name or {"slot": "<name>"})");
        }
        name = std::string(slot->as_string());
    }
    const int index = slot_by_name(name);
    const auto& names = control_.names();
    if (index < 0) {
        return error(
            400, "unknown slot \"" + name + "\"; the slots are " + names[0] + " and " + names[1]);
    }
    const auto a = control_.set_split({static_cast<analysis::slot_index>(index), 0});
    if (a.status != 200) {
        return json_answer(a.status, a.body);
    }
    return text(name + "\n");
}

admin_response admin_api::put_weights(std::string_view body) {
    // {"green": 10} gives green 10% and the other slot the rest; naming both, they add to 100.
    boost::system::error_code ec;
    const json::value v = json::parse(body, ec);
    const json::object* obj = ec ? nullptr : v.if_object();
    if (obj == nullptr || obj->empty() || obj->size() > analysis::slot_count) {
        return error(400, R"(expected a JSON object of slot weights, such as {"green": 10})");
    }
    const auto& names = control_.names();
    analysis::per_slot<std::int64_t> weight{-1, -1};
    for (const auto& [key, value] : *obj) {
        const int index = slot_by_name(key);
        if (index < 0) {
            return error(400, "unknown slot \"" + std::string(key) + "\"; the slots are " +
                                  names[0] + " and " + names[1]);
        }
        const auto* n = value.if_int64();
        const auto* u = value.if_uint64();
        const std::int64_t w = n != nullptr   ? *n
                               : u != nullptr ? static_cast<std::int64_t>(*u)
                                              : -1;
        if (w < 0 || w > 100) {
            return error(400, "weight of " + std::string(key) + " must be an integer 0..100");
        }
        weight[static_cast<std::size_t>(index)] = w;
    }
    if (weight[0] < 0) {
        weight[0] = 100 - weight[1];
    } else if (weight[1] < 0) {
        weight[1] = 100 - weight[0];
    } else if (weight[0] + weight[1] != 100) {
        return error(400, "weights must add up to 100");
    }
    const auto current = control_.split();
    const auto a =
        control_.set_split({current.active, static_cast<std::uint8_t>(weight[current.other()])});
    return json_answer(a.status, a.body);
}

admin_response admin_api::weights() const {
    return json_answer(200, weights_json(control_.split(), control_.names()));
}

// --- admin_server ---

struct admin_server::impl {
    impl(const config::config& cfg, analysis::split_state& split, std::function<bool()> ready,
         analysis::metrics_source metrics, proxy::address_source addresses, reload_source reload)
        : split_state(split),
          hold_metrics(own_hold),
          counters(analysis::phase_names),
          control(cfg, split, metrics, counters, io.get_executor(), std::move(addresses)),
          collector({cfg.slots.at(0).name, cfg.slots.at(1).name}, metrics, split),
          api(
              cfg, control, std::move(ready), [this] { return serialize(metric_sources); },
              [this] { return reload_now(); }),
          acceptor(io),
          request_timeout(cfg.timeouts.request_header),
          idle_timeout(cfg.timeouts.idle),
          running(cfg),
          source(std::move(reload)) {
        metric_sources = {&collector, &counters.collectable(), &hold_metrics};
        api.use_hold(split, own_hold);
    }

    // The one reload path (README, "Reloading"), on the admin thread: re-reads the file, and
    // either puts it in force or changes nothing. Logs what it answers.
    admin_response reload_now() {
        const std::string& path = source.config_path;
        if (path.empty()) {
            spdlog::error("reload: no configuration file to reload (started without -c FILE)");
            return error(
                409, "no configuration file to reload: switchyard was not started with -c FILE");
        }
        auto refuse = [&path](std::vector<std::string> lines) {
            json::array errors;
            for (auto& line : lines) {
                spdlog::error("reload of {} refused, the running configuration stays: {}", path,
                              line);
                errors.emplace_back(std::move(line));
            }
            json::object body = error_json("invalid configuration");
            body["errors"] = std::move(errors);
            return json_answer(400, body);
        };
        const config::load_result loaded = config::load_config_file(path);
        if (!loaded.value) {
            std::vector<std::string> lines;
            for (const auto& e : loaded.errors) {
                lines.push_back(config::format_error(path, e));
            }
            return refuse(std::move(lines));
        }
        const config::config_changes changes = config::compare(running, *loaded.value);
        config::config next = config::live_part(running, *loaded.value);
        // The same refusal as at the start: a token-less admin API beyond loopback.
        if (!config::is_loopback(next.admin.listen) && next.admin.token.empty()) {
            return refuse({path + ": admin.token: admin.listen " + next.admin.listen.to_string() +
                           " is reachable beyond loopback: set admin.token or admin.token_file"});
        }
        try {
            if (source.apply_proxy) {
                source.apply_proxy(next);
            }
        } catch (const std::exception& e) {
            return refuse({path + ": " + e.what()});
        }
        control.reload(next);
        // The token authorises the calls after this one; the answer to this one goes out anyway.
        api.set_token(next.admin.token);
        request_timeout = next.timeouts.request_header;
        idle_timeout = next.timeouts.idle;
        running = std::move(next);

        json::array changed;
        json::array restart;
        std::string changed_text;
        std::string restart_text;
        for (const auto& key : changes.changed) {
            changed.emplace_back(key);
            changed_text += (changed_text.empty() ? "" : ", ") + key;
        }
        for (const auto& key : changes.restart_required) {
            restart.emplace_back(key);
            restart_text += (restart_text.empty() ? "" : ", ") + key;
        }
        spdlog::info("reloaded {}: changed: {}; restart required: {}", path,
                     changed_text.empty() ? "nothing" : changed_text,
                     restart_text.empty() ? "nothing" : restart_text + " (left as running)");
        return json_answer(200, json::object{{"reloaded", true},
                                             {"changed", std::move(changed)},
                                             {"restart_required", std::move(restart)}});
    }

    net::awaitable<void> serve(tcp::socket socket) {
        boost::beast::tcp_stream stream(std::move(socket));
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(max_admin_body);
            stream.expires_after(request_timeout);
            const auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
            if (ec) {
                if (ec != http::error::end_of_stream && ec != net::error::eof &&
                    ec != boost::beast::error::timeout && ec != net::error::operation_aborted) {
                    auto res = to_http(error(400, ec.message()), 11, false);
                    co_await http::async_write(stream, res, use_tuple);
                }
                break;
            }
            auto& req = parser.get();
            auto res = to_http(api.handle(req.method_string(), req.target(),
                                          req[http::field::authorization], req.body()),
                               req.version(), req.keep_alive());
            if (req.method() == http::verb::head) {
                res.body().clear();  // Content-Length stays that of the GET (RFC 9110 §9.3.2)
            }
            stream.expires_after(idle_timeout);
            const auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
            if (wec || !res.keep_alive()) {
                break;
            }
        }
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }

    net::awaitable<void> accept_loop() {
        net::steady_timer backoff(io);
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
            if (ec) {
                if (!acceptor.is_open()) {
                    co_return;
                }
                // Out of descriptors or memory, accept fails at once until something closes:
                // wait a little rather than spin, as the workers do.
                spdlog::warn("admin: accept failed: {}; retrying in {} ms", ec.message(),
                             accept_backoff.count());
                backoff.expires_after(accept_backoff);
                co_await backoff.async_wait(use_tuple);
                continue;
            }
            net::co_spawn(io, serve(std::move(socket)), net::detached);
        }
    }

    // Declared first, destroyed last: everything below posts to it.
    net::io_context io{1};
    analysis::split_state& split_state;
    // The admin API's own hold board, until use_hold() names the proxy's.
    analysis::hold_board own_hold;
    hold_collector hold_metrics;
    control_metrics counters;
    controller control;
    shard_collector collector;
    std::vector<const prometheus::Collectable*> metric_sources;  // fixed once started
    admin_api api;
    tcp::acceptor acceptor;
    std::chrono::milliseconds request_timeout;
    std::chrono::milliseconds idle_timeout;
    config::config running;  // what is in force: the start's, then each reload's
    reload_source source;
    std::thread thread;
    std::optional<endpoint_collector> endpoint_metrics;  // with use_endpoint_health
};

admin_server::admin_server(const config::config& cfg, analysis::split_state& split,
                           std::function<bool()> ready, analysis::metrics_source metrics,
                           proxy::address_source addresses, reload_source reload)
    : impl_(std::make_unique<impl>(cfg, split, std::move(ready), std::move(metrics),
                                   std::move(addresses), std::move(reload))) {
    impl_->control.restore();
    try {
        listen_on(impl_->acceptor, cfg.admin.listen);
        port_ = impl_->acceptor.local_endpoint().port();
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot listen for admin on " + cfg.admin.listen.to_string() +
                                 ": " + e.code().message());
    }
}

admin_server::~admin_server() {
    stop();
}

void admin_server::add_metrics(const prometheus::Collectable& c) {
    impl_->metric_sources.push_back(&c);
}

void admin_server::use_endpoint_health(proxy::health_source source) {
    impl_->control.use_endpoint_health(source);
    impl_->endpoint_metrics.emplace(impl_->control.names(), std::move(source));
    impl_->metric_sources.push_back(&*impl_->endpoint_metrics);
}

void admin_server::use_hold(analysis::hold_board& board) {
    impl_->api.use_hold(impl_->split_state, board);
    impl_->hold_metrics.use(board);
}

void admin_server::start() {
    impl_->control.start();
    net::co_spawn(impl_->io, impl_->accept_loop(), net::detached);
    impl_->thread = std::thread([this] { impl_->io.run(); });
}

void admin_server::reload() {
    net::post(impl_->io, [this] {
        // An exception here would end the admin thread: log it instead.
        try {
            impl_->reload_now();
        } catch (const std::exception& e) {
            spdlog::error("reload failed: {}", e.what());
        }
    });
}

void admin_server::stop() {
    if (!impl_->thread.joinable()) {
        return;
    }
    net::post(impl_->io, [this] {
        impl_->control.stop();
        boost::system::error_code ignored;
        impl_->acceptor.close(ignored);
        impl_->io.stop();
    });
    impl_->thread.join();
}

}  // namespace switchyard::admin
