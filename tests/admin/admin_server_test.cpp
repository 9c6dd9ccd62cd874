#include "admin/admin_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "analysis/traffic_split.hpp"
#include "config/config.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"

namespace switchyard::admin {
namespace {

namespace json = boost::json;
using analysis::traffic_split;
using test::field;

// Upstream ports do not matter here: the admin server never connects to them.
config::config admin_config(std::string token = {}) {
    auto cfg = test::two_slot_config(1, 2);
    cfg.admin.token = std::move(token);
    return cfg;
}

// An admin server on 127.0.0.1 port 0 with its own split and readiness flag.
class running_admin {
public:
    explicit running_admin(std::string token = {}, traffic_split initial = {0, 0})
        : cfg_(admin_config(std::move(token))),
          split_(initial),
          server_(cfg_, split_, [this] { return ready_.load(); }) {
        server_.start();
    }

    std::uint16_t port() const { return server_.port(); }
    analysis::split_state& split() { return split_; }
    void set_ready(bool ready) { ready_.store(ready); }
    admin_server& server() { return server_; }

    // One request on a connection of its own.
    test::response request(std::string_view method, std::string_view target,
                           const std::vector<field>& fields = {}, std::string_view body = {}) {
        test::raw_client client(port());
        client.send(test::format_request(method, target, fields, body));
        return client.read_response(method == "HEAD");
    }

private:
    config::config cfg_;
    analysis::split_state split_;
    std::atomic<bool> ready_{true};
    admin_server server_;
};

// The "error" member of a JSON error answer ("" when the body is not one).
std::string json_error_of(const test::response& r) {
    boost::system::error_code ec;
    const json::value v = json::parse(r.body, ec);
    if (ec || !v.is_object()) {
        ADD_FAILURE() << "not a JSON object: " << r.body;
        return {};
    }
    const json::value* e = v.as_object().if_contains("error");
    if (e == nullptr || !e->is_string()) {
        ADD_FAILURE() << "no \"error\" string: " << r.body;
        return {};
    }
    return std::string(e->as_string());
}

void expect_json_error(const test::response& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_FALSE(json_error_of(r).empty()) << r.body;
}

// --- slots ---

TEST(admin_server, get_active_slot_answers_name_as_text) {
    running_admin admin;
    const auto r = admin.request("GET", "/active-slot");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "blue\n");
    EXPECT_TRUE(r.header("Content-Type").starts_with("text/plain")) << r.header("Content-Type");
    EXPECT_EQ(r.header("Cache-Control"), "no-store");
}

TEST(admin_server, get_inactive_slot_answers_the_other_slot) {
    running_admin admin;
    const auto r = admin.request("GET", "/inactive-slot");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "green\n");
}

TEST(admin_server, ignores_query_string) {
    running_admin admin;
    EXPECT_EQ(admin.request("GET", "/active-slot?format=text").body, "blue\n");
}

TEST(admin_server, switches_active_slot_with_plain_body) {
    running_admin admin({}, {0, 25});
    const auto r = admin.request("PUT", "/active-slot", {}, "green");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "green\n");
    // All new requests go to green: the manual split is gone with the switch.
    EXPECT_EQ(admin.split().load(), (traffic_split{1, 0}));
    EXPECT_EQ(admin.request("GET", "/active-slot").body, "green\n");
    EXPECT_EQ(admin.request("GET", "/inactive-slot").body, "blue\n");
}

TEST(admin_server, switches_active_slot_with_body_ending_in_newline) {
    running_admin admin;
    // What `echo green | curl -T - ...` sends.
    EXPECT_EQ(admin.request("PUT", "/active-slot", {}, "green\n").status, 200);
    EXPECT_EQ(admin.split().load().active, 1);
}

TEST(admin_server, switches_active_slot_with_json_body) {
    running_admin admin;
    const auto r = admin.request("PUT", "/active-slot", {{"Content-Type", "application/json"}},
                                 R"({"slot":"green"})");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(admin.split().load().active, 1);
    EXPECT_EQ(admin.request("GET", "/active-slot").body, "green\n");
    EXPECT_EQ(admin.request("GET", "/inactive-slot").body, "blue\n");

    EXPECT_EQ(admin.request("PUT", "/active-slot", {}, R"( { "slot" : "blue" } )").status, 200);
    EXPECT_EQ(admin.split().load().active, 0);
}

TEST(admin_server, refuses_unknown_slot_and_keeps_state) {
    running_admin admin({}, {0, 25});
    for (const std::string_view body : {"purple", R"({"slot":"purple"})", "Green", ""}) {
        const auto r = admin.request("PUT", "/active-slot", {}, body);
        expect_json_error(r, 400);
        EXPECT_EQ(admin.split().load(), (traffic_split{0, 25})) << body;
    }
    EXPECT_EQ(admin.request("GET", "/active-slot").body, "blue\n");
}

TEST(admin_server, refuses_malformed_json_slot_and_keeps_state) {
    running_admin admin({}, {0, 25});
    for (const std::string_view body :
         {R"({"slot":)", R"({"slot":1})", R"({"name":"green"})", R"({"slot":"green","x":1})",
          R"({"slot":["green"]})", "{}"}) {
        const auto r = admin.request("PUT", "/active-slot", {}, body);
        expect_json_error(r, 400);
        EXPECT_EQ(admin.split().load(), (traffic_split{0, 25})) << body;
    }
}

// --- weights ---

TEST(admin_server, get_weights_answers_json) {
    running_admin admin({}, {0, 25});
    const auto r = admin.request("GET", "/weights");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_EQ(json::parse(r.body), json::parse(R"({"blue":75,"green":25})")) << r.body;
}

TEST(admin_server, sets_weight_of_one_slot) {
    running_admin admin;
    const auto r = admin.request("PUT", "/weights", {}, R"({"green":10})");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(admin.split().load(), (traffic_split{0, 10}));
    EXPECT_EQ(json::parse(r.body), json::parse(R"({"blue":90,"green":10})")) << r.body;

    const auto get = admin.request("GET", "/weights");
    EXPECT_EQ(get.body, "{\"blue\":90,\"green\":10}\n");
}

TEST(admin_server, sets_weights_of_both_slots) {
    running_admin admin;
    EXPECT_EQ(admin.request("PUT", "/weights", {}, R"({"blue":90,"green":10})").status, 200);
    EXPECT_EQ(admin.split().load(), (traffic_split{0, 10}));
    EXPECT_EQ(admin.request("PUT", "/weights", {}, R"({"blue":0,"green":100})").status, 200);
    EXPECT_EQ(admin.split().load(), (traffic_split{0, 100}));
    EXPECT_EQ(admin.request("PUT", "/weights", {}, R"({"blue":100})").status, 200);
    EXPECT_EQ(admin.split().load(), (traffic_split{0, 0}));
}

TEST(admin_server, sets_weights_relative_to_the_active_slot) {
    running_admin admin({}, {1, 0});  // green active
    EXPECT_EQ(admin.request("PUT", "/weights", {}, R"({"blue":30})").status, 200);
    EXPECT_EQ(admin.split().load(), (traffic_split{1, 30}));
    EXPECT_EQ(json::parse(admin.request("GET", "/weights").body),
              json::parse(R"({"blue":30,"green":70})"));
}

TEST(admin_server, refuses_weights_not_adding_to_100_and_keeps_state) {
    running_admin admin({}, {0, 25});
    for (const std::string_view body :
         {R"({"blue":90,"green":20})", R"({"blue":0,"green":0})", R"({"blue":50,"green":49})"}) {
        const auto r = admin.request("PUT", "/weights", {}, body);
        expect_json_error(r, 400);
        EXPECT_EQ(admin.split().load(), (traffic_split{0, 25})) << body;
    }
}

TEST(admin_server, refuses_weight_out_of_range_or_not_integer_and_keeps_state) {
    running_admin admin({}, {0, 25});
    for (const std::string_view body :
         {R"({"green":101})", R"({"green":-1})", R"({"green":"10"})", R"({"green":10.5})",
          R"({"green":true})", R"({"green":null})", R"({"green":18446744073709551615})",
          R"({"green":9223372036854775808})"}) {
        const auto r = admin.request("PUT", "/weights", {}, body);
        expect_json_error(r, 400);
        EXPECT_EQ(admin.split().load(), (traffic_split{0, 25})) << body;
    }
}

TEST(admin_server, refuses_unknown_slot_in_weights_and_keeps_state) {
    running_admin admin({}, {0, 25});
    for (const std::string_view body : {R"({"purple":10})", R"({"green":10,"purple":90})",
                                        R"({"blue":50,"green":40,"purple":10})"}) {
        const auto r = admin.request("PUT", "/weights", {}, body);
        expect_json_error(r, 400);
        EXPECT_EQ(admin.split().load(), (traffic_split{0, 25})) << body;
    }
}

TEST(admin_server, refuses_weights_that_are_not_an_object_and_keeps_state) {
    running_admin admin({}, {0, 25});
    for (const std::string_view body : {"", "10", "[10]", "{}", R"({"green":10)", "green=10"}) {
        const auto r = admin.request("PUT", "/weights", {}, body);
        expect_json_error(r, 400);
        EXPECT_EQ(admin.split().load(), (traffic_split{0, 25})) << body;
    }
}

// --- token ---

TEST(admin_server, refuses_put_without_token) {
    running_admin admin("s3cret", {0, 25});
    const auto slot = admin.request("PUT", "/active-slot", {}, "green");
    expect_json_error(slot, 401);
    EXPECT_EQ(slot.header("WWW-Authenticate"), "Bearer");
    const auto weights = admin.request("PUT", "/weights", {}, R"({"green":50})");
    expect_json_error(weights, 401);
    EXPECT_EQ(weights.header("WWW-Authenticate"), "Bearer");
    EXPECT_EQ(admin.split().load(), (traffic_split{0, 25}));
}

TEST(admin_server, refuses_put_with_wrong_token) {
    running_admin admin("s3cret", {0, 25});
    for (const std::string_view auth :
         {"Bearer wrong", "Bearer s3cre", "Bearer s3cret2", "Bearer S3CRET", "s3cret",
          "Basic s3cret", "Bearer", "Bearer "}) {
        const auto r =
            admin.request("PUT", "/active-slot", {{"Authorization", std::string(auth)}}, "green");
        expect_json_error(r, 401);
        EXPECT_EQ(admin.split().load(), (traffic_split{0, 25})) << auth;
    }
}

TEST(admin_server, accepts_put_with_bearer_token) {
    running_admin admin("s3cret");
    const auto r =
        admin.request("PUT", "/active-slot", {{"Authorization", "Bearer s3cret"}}, "green");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(admin.split().load().active, 1);

    // The scheme is case-insensitive (RFC 9110 §11.1).
    const auto w =
        admin.request("PUT", "/weights", {{"Authorization", "bearer s3cret"}}, R"({"blue":20})");
    EXPECT_EQ(w.status, 200) << w.body;
    EXPECT_EQ(admin.split().load(), (traffic_split{1, 20}));
}

TEST(admin_server, answers_get_without_token) {
    running_admin admin("s3cret");
    EXPECT_EQ(admin.request("GET", "/active-slot").status, 200);
    EXPECT_EQ(admin.request("GET", "/inactive-slot").status, 200);
    EXPECT_EQ(admin.request("GET", "/weights").status, 200);
    EXPECT_EQ(admin.request("GET", "/healthz").status, 200);
    EXPECT_EQ(admin.request("GET", "/readyz").status, 200);
}

// --- paths and methods ---

TEST(admin_server, answers_404_json_for_unknown_path) {
    running_admin admin;
    for (const std::string_view path :
         {"/index.html", "/nope", "/active-slot/extra", "/ACTIVE-SLOT"}) {
        expect_json_error(admin.request("GET", path), 404);
    }
}

TEST(admin_server, answers_405_with_allow_for_wrong_method) {
    running_admin admin;
    const auto r = admin.request("POST", "/active-slot", {}, "green");
    expect_json_error(r, 405);
    EXPECT_EQ(r.header("Allow"), "GET, PUT");
    EXPECT_EQ(admin.split().load().active, 0);

    EXPECT_EQ(admin.request("DELETE", "/weights").header("Allow"), "GET, PUT");
    EXPECT_EQ(admin.request("PUT", "/inactive-slot", {}, "blue").header("Allow"), "GET");
    EXPECT_EQ(admin.request("POST", "/healthz").header("Allow"), "GET");
    EXPECT_EQ(admin.request("POST", "/readyz").header("Allow"), "GET");
}

TEST(admin_server, answers_head_with_length_of_get_and_no_body) {
    running_admin admin;
    test::raw_client client(admin.port());
    client.send(test::format_request("HEAD", "/active-slot"));
    const auto head = client.read_response(true);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.header("Content-Length"), "5");
    EXPECT_TRUE(head.body.empty());
    // Had a body been sent, it would be read as the start of the next response.
    client.send(test::format_request("GET", "/inactive-slot"));
    const auto get = client.read_response();
    EXPECT_EQ(get.status, 200);
    EXPECT_EQ(get.body, "green\n");
}

// --- health and readiness ---

TEST(admin_server, healthz_answers_ok) {
    running_admin admin;
    const auto r = admin.request("GET", "/healthz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok\n");
}

TEST(admin_server, readyz_follows_the_readiness_function) {
    running_admin admin;
    EXPECT_EQ(admin.request("GET", "/readyz").status, 200);
    admin.set_ready(false);
    const auto not_ready = admin.request("GET", "/readyz");
    EXPECT_EQ(not_ready.status, 503);
    EXPECT_EQ(not_ready.body, "not ready\n");
    // Liveness does not depend on readiness.
    EXPECT_EQ(admin.request("GET", "/healthz").status, 200);
    admin.set_ready(true);
    EXPECT_EQ(admin.request("GET", "/readyz").status, 200);
}

TEST(admin_server, readyz_is_ready_without_a_readiness_function) {
    const auto cfg = admin_config();
    analysis::split_state split({0, 0});
    admin_server server(cfg, split, {});
    server.start();
    EXPECT_EQ(test::get(server.port(), "/readyz").status, 200);
}

// --- connections ---

TEST(admin_server, serves_several_requests_on_one_connection) {
    running_admin admin;
    test::raw_client client(admin.port());

    client.send(test::format_request("GET", "/active-slot"));
    EXPECT_EQ(client.read_response().body, "blue\n");

    client.send(test::format_request("PUT", "/active-slot", {}, "green"));
    EXPECT_EQ(client.read_response().status, 200);

    client.send(test::format_request("PUT", "/weights", {}, R"({"blue":5})"));
    EXPECT_EQ(client.read_response().status, 200);

    // Two requests in one write (pipelined) are answered in order.
    client.send(test::format_request("GET", "/active-slot") +
                test::format_request("GET", "/weights"));
    const auto slot = client.read_response();
    EXPECT_EQ(slot.body, "green\n");
    EXPECT_FALSE(slot.has("Connection"));
    EXPECT_EQ(json::parse(client.read_response().body), json::parse(R"({"blue":5,"green":95})"));

    // An error answer keeps the connection too.
    client.send(test::format_request("GET", "/nope"));
    EXPECT_EQ(client.read_response().status, 404);

    client.send(test::format_request("GET", "/healthz", {{"Connection", "close"}}));
    const auto last = client.read_response();
    EXPECT_EQ(last.status, 200);
    EXPECT_EQ(last.header("Connection"), "close");
    EXPECT_TRUE(client.wait_closed());
}

TEST(admin_server, answers_malformed_request_with_400_and_closes) {
    running_admin admin;
    test::raw_client client(admin.port());
    client.send("GET /active-slot HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n");
    const auto r = client.read_response();
    expect_json_error(r, 400);
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_TRUE(client.wait_closed());
}

TEST(admin_server, closes_connection_whose_request_does_not_complete_in_time) {
    auto cfg = admin_config();
    cfg.timeouts.request_header = std::chrono::milliseconds(100);
    analysis::split_state split({0, 0});
    admin_server server(cfg, split, {});
    server.start();
    test::raw_client stalled(server.port());
    stalled.send("GET /active-slot HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    // Closed by the server's deadline, well before the client gives up waiting.
    EXPECT_TRUE(stalled.wait_closed(std::chrono::seconds(10)));
    EXPECT_EQ(stalled.buffered(), 0U);
    // Others are still served.
    EXPECT_EQ(test::get(server.port(), "/healthz").status, 200);
}

TEST(admin_server, refuses_to_bind_an_address_in_use) {
    running_admin first;
    auto cfg = admin_config();
    cfg.admin.listen = {"127.0.0.1", first.port()};
    analysis::split_state split({0, 0});
    try {
        admin_server second(cfg, split, {});
        ADD_FAILURE() << "bound a port another admin server listens on";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(std::to_string(first.port())), std::string::npos)
            << e.what();
    }
    // The first server is unaffected.
    EXPECT_EQ(first.request("GET", "/healthz").status, 200);
}

TEST(admin_server, stops_twice_and_on_destruction) {
    running_admin admin;
    EXPECT_EQ(admin.request("GET", "/healthz").status, 200);
    admin.server().stop();
    admin.server().stop();
}

// --- admin_api without transport ---

// An admin_api over a controller whose executor never runs: every call is synchronous.
struct bare_api {
    explicit bare_api(config::config c, traffic_split initial)
        : cfg(std::move(c)), split(initial), control(cfg, split, {}, counters, io.get_executor()) {}

    config::config cfg;
    analysis::split_state split;
    boost::asio::io_context io;
    control_metrics counters{analysis::phase_names};
    controller control;
    admin_api api{cfg, control, {}, {}};
};

TEST(admin_api, answers_active_slot) {
    bare_api b(admin_config(), {1, 0});
    auto& api = b.api;
    const auto r = api.handle("GET", "/active-slot", "", "");
    EXPECT_EQ(r.status, 200U);
    EXPECT_EQ(r.body, "green\n");
    EXPECT_EQ(api.handle("HEAD", "/inactive-slot", "", "").body, "blue\n");
}

TEST(admin_api, switches_active_slot_with_plain_body) {
    bare_api b(admin_config(), {0, 40});
    auto& api = b.api;
    auto& split = b.split;
    EXPECT_EQ(api.handle("PUT", "/active-slot", "", " green\r\n").status, 200U);
    EXPECT_EQ(split.load(), (traffic_split{1, 0}));
}

TEST(admin_api, uses_the_configured_slot_names) {
    auto cfg = admin_config();
    cfg.slots[0].name = "stable";
    cfg.slots[1].name = "canary";
    cfg.active = "stable";
    bare_api b(cfg, {0, 0});
    auto& api = b.api;
    auto& split = b.split;
    EXPECT_EQ(api.handle("GET", "/active-slot", "", "").body, "stable\n");
    EXPECT_EQ(api.handle("PUT", "/active-slot", "", "green").status, 400U);
    EXPECT_EQ(api.handle("PUT", "/weights", "", R"({"canary":15})").status, 200U);
    EXPECT_EQ(split.load(), (traffic_split{0, 15}));
    EXPECT_EQ(api.handle("GET", "/weights", "", "").body, "{\"stable\":85,\"canary\":15}\n");
}

TEST(admin_api, checks_token_before_anything_else_on_put) {
    bare_api b(admin_config("s3cret"), {0, 0});
    auto& api = b.api;
    auto& split = b.split;
    // A caller without the token learns nothing about the body it sent.
    EXPECT_EQ(api.handle("PUT", "/weights", "", "not json").status, 401U);
    EXPECT_EQ(api.handle("PUT", "/weights", "Bearer s3cret", "not json").status, 400U);
    EXPECT_EQ(api.handle("PUT", "/weights", "Bearer  s3cret ", R"({"green":1})").status, 200U);
    EXPECT_EQ(split.load(), (traffic_split{0, 1}));
}

TEST(admin_api, sets_allow_on_405_only) {
    bare_api b(admin_config(), {0, 0});
    auto& api = b.api;
    auto& split = b.split;
    const auto refused = api.handle("PATCH", "/weights", "", R"({"green":1})");
    EXPECT_EQ(refused.status, 405U);
    EXPECT_EQ(refused.allow, "GET, PUT");
    EXPECT_EQ(refused.content_type, "application/json");
    EXPECT_TRUE(api.handle("GET", "/weights", "", "").allow.empty());
    EXPECT_TRUE(api.handle("GET", "/nope", "", "").allow.empty());
    EXPECT_EQ(split.load(), (traffic_split{0, 0}));
}

}  // namespace
}  // namespace switchyard::admin
