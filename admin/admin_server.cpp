#include "admin/admin_server.hpp"

#include "admin/prometheus.hpp"

#include <stdexcept>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
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

std::string json_error(std::string_view message) {
    return json::serialize(json::object{{"error", message}}) + "\n";
}

admin_response error(unsigned status, std::string_view message) {
    return {status, "application/json", json_error(message), {}};
}

admin_response text(std::string body) {
    return {200, "text/plain; charset=utf-8", std::move(body), {}};
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() &&
           (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
        s.remove_prefix(1);
    }
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return s;
}

// Compares in time independent of where the first difference is.
bool constant_time_equals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = static_cast<unsigned char>(
            diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
    }
    return diff == 0;
}

}  // namespace

// --- admin_api ---

admin_api::admin_api(const config::config& cfg, analysis::split_state& split,
                     std::function<bool()> ready, metrics_source metrics)
    : slot_names_{cfg.slots.at(0).name, cfg.slots.at(1).name},
      token_(cfg.admin.token),
      split_(split),
      ready_(std::move(ready)),
      metrics_(std::move(metrics)) {}

int admin_api::slot_by_name(std::string_view name) const noexcept {
    for (int i = 0; i < 2; ++i) {
        if (slot_names_[static_cast<std::size_t>(i)] == name) {
            return i;
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
    return constant_time_equals(trim(authorization.substr(scheme.size())), token_);
}

admin_response admin_api::handle(std::string_view method, std::string_view target,
                                 std::string_view authorization, std::string_view body) {
    const std::string_view path = target.substr(0, target.find('?'));
    const bool get = method == "GET" || method == "HEAD";
    const bool put = method == "PUT";
    auto not_allowed = [](std::string allow) {
        auto r = error(405, "method not allowed; use " + allow);
        r.allow = std::move(allow);
        return r;
    };
    if (put && !authorized(authorization)) {
        return error(401, "missing or wrong bearer token");
    }

    if (path == "/active-slot") {
        if (get) {
            return text(slot_names_[split_.load().active] + "\n");
        }
        return put ? put_active_slot(body) : not_allowed("GET, PUT");
    }
    if (path == "/inactive-slot") {
        return get ? text(slot_names_[split_.load().other()] + "\n") : not_allowed("GET");
    }
    if (path == "/weights") {
        if (get) {
            return weights();
        }
        return put ? put_weights(body) : not_allowed("GET, PUT");
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
    if (path == "/metrics" && metrics_) {
        if (!get) {
            return not_allowed("GET");
        }
        const shard_collector collector({slot_names_[0], slot_names_[1]}, metrics_, split_);
        const prometheus::Collectable* sources[] = {&collector};
        return {200, "text/plain; version=0.0.4; charset=utf-8", serialize(sources), {}};
    }
    return error(404, "no such endpoint: " + std::string(path));
}

admin_response admin_api::put_active_slot(std::string_view body) {
    // The body is the slot name, or {"slot": "green"} (PRODUCT.md).
    std::string name(trim(body));
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
    if (index < 0) {
        return error(400, "unknown slot \"" + name + "\"; the slots are " + slot_names_[0] +
                              " and " + slot_names_[1]);
    }
    split_.store({static_cast<analysis::slot_index>(index), 0});
    spdlog::info("admin: active slot is now {}", name);
    return text(name + "\n");
}

admin_response admin_api::put_weights(std::string_view body) {
    // {"green": 10} gives green 10% and the other slot the rest; naming both, they add to 100.
    boost::system::error_code ec;
    const json::value v = json::parse(body, ec);
    const json::object* obj = ec ? nullptr : v.if_object();
    if (obj == nullptr || obj->empty() || obj->size() > 2) {
        return error(400, R"(expected a JSON object of slot weights, such as {"green": 10})");
    }
    std::array<std::int64_t, 2> weight{-1, -1};
    for (const auto& [key, value] : *obj) {
        const int index = slot_by_name(key);
        if (index < 0) {
            return error(400, "unknown slot \"" + std::string(key) + "\"; the slots are " +
                                  slot_names_[0] + " and " + slot_names_[1]);
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
    const auto current = split_.load();
    split_.store({current.active, static_cast<std::uint8_t>(weight[current.other()])});
    spdlog::info("admin: weights are now {} {}, {} {}", slot_names_[0], weight[0], slot_names_[1],
                 weight[1]);
    return weights();
}

admin_response admin_api::weights() const {
    const auto s = split_.load();
    json::object o;
    o[slot_names_[0]] = s.weight(0);
    o[slot_names_[1]] = s.weight(1);
    return {200, "application/json", json::serialize(o) + "\n", {}};
}

// --- admin_server ---

struct admin_server::impl {
    impl(const config::config& cfg, analysis::split_state& split, std::function<bool()> ready,
         metrics_source metrics)
        : api(cfg, split, std::move(ready), std::move(metrics)),
          acceptor(io),
          request_timeout(cfg.timeouts.request_header),
          idle_timeout(cfg.timeouts.idle) {}

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
                    admin_response r = error(400, ec.message());
                    http::response<http::string_body> res{http::status::bad_request, 11};
                    res.set(http::field::content_type, r.content_type);
                    res.set(http::field::connection, "close");
                    res.body() = std::move(r.body);
                    res.prepare_payload();
                    co_await http::async_write(stream, res, use_tuple);
                }
                break;
            }
            auto& req = parser.get();
            admin_response r = api.handle(req.method_string(), req.target(),
                                          req[http::field::authorization], req.body());
            http::response<http::string_body> res{static_cast<http::status>(r.status),
                                                  req.version()};
            res.set(http::field::content_type, r.content_type);
            res.set(http::field::cache_control, "no-store");
            if (!r.allow.empty()) {
                res.set(http::field::allow, r.allow);
            }
            if (r.status == 401) {
                res.set(http::field::www_authenticate, "Bearer");
            }
            res.keep_alive(req.keep_alive());
            res.body() = std::move(r.body);
            res.prepare_payload();
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
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
            if (ec) {
                if (!acceptor.is_open()) {
                    co_return;
                }
                spdlog::debug("admin: accept failed: {}", ec.message());
                continue;
            }
            net::co_spawn(io, serve(std::move(socket)), net::detached);
        }
    }

    net::io_context io{1};
    admin_api api;
    tcp::acceptor acceptor;
    std::chrono::milliseconds request_timeout;
    std::chrono::milliseconds idle_timeout;
    std::thread thread;
};

admin_server::admin_server(const config::config& cfg, analysis::split_state& split,
                           std::function<bool()> ready, metrics_source metrics)
    : impl_(std::make_unique<impl>(cfg, split, std::move(ready), std::move(metrics))) {
    try {
        tcp::resolver resolver(impl_->io);
        const auto at =
            resolver.resolve(cfg.admin.listen.host, std::to_string(cfg.admin.listen.port))
                .begin()
                ->endpoint();
        impl_->acceptor.open(at.protocol());
        impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
        impl_->acceptor.bind(at);
        impl_->acceptor.listen();
        port_ = impl_->acceptor.local_endpoint().port();
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot listen for admin on " + cfg.admin.listen.to_string() +
                                 ": " + e.code().message());
    }
}

admin_server::~admin_server() {
    stop();
}

void admin_server::start() {
    net::co_spawn(impl_->io, impl_->accept_loop(), net::detached);
    impl_->thread = std::thread([this] { impl_->io.run(); });
}

void admin_server::stop() {
    if (!impl_->thread.joinable()) {
        return;
    }
    net::post(impl_->io, [this] {
        boost::system::error_code ignored;
        impl_->acceptor.close(ignored);
        impl_->io.stop();
    });
    impl_->thread.join();
}

}  // namespace switchyard::admin
