// Hot reload (README, "Reloading") through the admin API, in one process: the proxy and the
// admin server started from a YAML file that each test rewrites, upstreams on loopback, and real
// traffic across the reload.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "admin/admin_server.hpp"
#include "config/config.hpp"
#include "tests/support/load.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proxy_fixture.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// Short intervals, one error-rate check: a rollout moves in seconds under the tests' load.
const std::string fast_analysis =
    "analysis:\n"
    "  interval: 400ms\n"
    "  min_requests: 5\n"
    "  checks:\n"
    "    - { metric: error_rate, max: 5% }\n"
    "rollout:\n"
    "  bake: 400ms\n"
    "  health: { deadline: 2s }\n";

// The file's text: two workers, blue on `blue`, green on `green`, then `extra`.
std::string yaml(std::uint16_t blue, std::uint16_t green, const std::string& extra = {},
                 const std::string& listen = "127.0.0.1:0") {
    return "listen: " + listen +
           "\n"
           "workers: 2\n"
           "state_file: off\n"
           "admin: { listen: 127.0.0.1:0 }\n"
           "slots:\n"
           "  blue:  { endpoints: [\"127.0.0.1:" +
           std::to_string(blue) +
           "\"] }\n"
           "  green: { endpoints: [\"127.0.0.1:" +
           std::to_string(green) + "\"] }\n" + extra;
}

// The proxy and the admin server as `switchyard -c FILE` wires them, on a file of the test's.
class reload_stack {
public:
    reload_stack(const std::string& text, analysis::traffic_split initial)
        : path_(dir_.file("switchyard.yaml")) {
        write(text);
        const auto loaded = config::load_config_file(path_);
        if (!loaded.value) {
            throw std::runtime_error("bad test configuration");
        }
        cfg_ = *loaded.value;
        proxy_ = std::make_unique<running_proxy>(cfg_, initial);
        proxy::server& server = proxy_->server();
        const auto shards = server.metrics_shards();
        admin_ = std::make_unique<admin::admin_server>(
            cfg_, proxy_->split(), [] { return true; },
            [shards] { return analysis::merge(shards); }, [&server] { return server.addresses(); },
            admin::reload_source{path_, [&server](const config::config& next) {
                                     server.reload(next);
                                 }});
        admin_->start();
    }
    ~reload_stack() {
        load_.reset();
        admin_->stop();
    }

    const std::string& path() const { return path_; }
    void write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }
    std::uint16_t port() const { return proxy_->port(); }
    running_proxy& proxy() { return *proxy_; }

    json::value call(std::string_view method, std::string_view target, int* status = nullptr,
                     std::vector<field> fields = {}) {
        raw_client client(admin_->port());
        client.send(format_request(method, target, fields));
        const response r = client.read_response();
        if (status != nullptr) {
            *status = r.status;
        }
        boost::system::error_code ec;
        json::value v = json::parse(r.body, ec);
        return ec ? json::value(r.body) : v;
    }
    json::value reload(int* status, std::vector<field> fields = {}) {
        return call("POST", "/reload", status, std::move(fields));
    }
    json::value rollout() { return call("GET", "/status").at("rollout"); }

    void start_load(std::size_t clients = 8) {
        load_ = std::make_unique<load_generator>(
            port(), load_generator::limits{clients, 500'000, std::chrono::seconds(120)});
    }
    load_generator& load() { return *load_; }

private:
    temp_dir dir_;
    std::string path_;
    config::config cfg_;
    std::unique_ptr<running_proxy> proxy_;
    std::unique_ptr<admin::admin_server> admin_;
    std::unique_ptr<load_generator> load_;
};

std::uint32_t green_weight(reload_stack& stack) {
    return stack.proxy().split().load().weight(1);
}

std::vector<std::string> strings(const json::value& v) {
    std::vector<std::string> out;
    for (const auto& s : v.as_array()) {
        out.emplace_back(s.as_string());
    }
    return out;
}

// A handler that holds every answer until the test releases it.
class held_answers {
public:
    upstream_server::handler handler(std::string body) {
        return [this, body](const upstream_server::request&) {
            // Bounded, so that a failed test cannot hang the upstream's destructor.
            released_.wait_for(std::chrono::seconds(20));
            upstream_server::response r;
            r.body = body;
            return r;
        };
    }
    void release() { promise_.set_value(); }

private:
    std::promise<void> promise_;
    std::shared_future<void> released_ = promise_.get_future().share();
};

TEST(reload, new_endpoints_under_load_lose_no_request) {
    upstream_server blue("blue");
    upstream_server a("A");
    upstream_server b("B");
    reload_stack stack(yaml(blue.port(), a.port()), {1, 0});  // green active
    stack.start_load();
    ASSERT_TRUE(a.wait_for_requests(200));

    stack.write(yaml(blue.port(), b.port()));
    int status = 0;
    const json::value answer = stack.reload(&status);
    ASSERT_EQ(status, 200) << json::serialize(answer);
    EXPECT_EQ(answer.at("reloaded"), true);
    EXPECT_EQ(strings(answer.at("changed")), (std::vector<std::string>{"slots.green.endpoints"}));
    EXPECT_TRUE(answer.at("restart_required").as_array().empty());

    // New requests reach B; once B has served plenty, A serves none any more.
    ASSERT_TRUE(eventually([&] { return b.request_count() >= 200; }));
    const std::size_t a_after = a.request_count();
    ASSERT_TRUE(eventually([&] { return b.request_count() >= 400; }));
    EXPECT_EQ(a.request_count(), a_after);
    // A's connections, pooled or in flight at the reload, are closed, not kept for B's traffic.
    EXPECT_TRUE(a.wait_for_open_connections(0));

    stack.load().stop();
    EXPECT_GT(stack.load().answered(), 0U);
    EXPECT_EQ(stack.load().with_status(200), stack.load().answered());
    EXPECT_EQ(stack.load().with_body("blue\n"), 0U);
    EXPECT_EQ(stack.load().reconnects(), 0U);  // no client connection was dropped
}

TEST(reload, an_invalid_file_changes_nothing_and_names_the_line) {
    upstream_server blue("blue");
    upstream_server a("A");
    upstream_server b("B");
    reload_stack stack(yaml(blue.port(), a.port()), {1, 0});

    // Line 8 holds the typo; the new endpoint on line 7 must not apply either.
    stack.write(yaml(blue.port(), b.port(), "timeouts: { idle: 5 parsecs }\n"));
    int status = 0;
    const json::value answer = stack.reload(&status);
    ASSERT_EQ(status, 400) << json::serialize(answer);
    EXPECT_EQ(answer.at("error"), "invalid configuration");
    const auto errors = strings(answer.at("errors"));
    ASSERT_EQ(errors.size(), 1U);
    EXPECT_EQ(errors[0].rfind(stack.path() + ":8: timeouts.idle: ", 0), 0U) << errors[0];

    const response r = get(stack.port());
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "A\n");
    EXPECT_EQ(b.request_count(), 0U);
}

TEST(reload, a_new_listen_needs_a_restart_and_the_proxy_stays_where_it_listens) {
    upstream_server blue("blue");
    upstream_server green("green");
    reload_stack stack(yaml(blue.port(), green.port()), {0, 0});
    const std::uint16_t port = stack.port();

    stack.write(yaml(blue.port(), green.port(), "timeouts: { idle: 30s }\n", "127.0.0.1:1"));
    int status = 0;
    const json::value answer = stack.reload(&status);
    ASSERT_EQ(status, 200) << json::serialize(answer);
    EXPECT_EQ(strings(answer.at("restart_required")), (std::vector<std::string>{"listen"}));
    EXPECT_EQ(strings(answer.at("changed")), (std::vector<std::string>{"timeouts"}));

    EXPECT_EQ(stack.port(), port);
    const response r = get(port);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "blue\n");
}

TEST(reload, needs_the_bearer_token_and_a_new_token_applies_to_the_next_call) {
    upstream_server blue("blue");
    upstream_server green("green");
    const std::string old_token = "admin: { listen: 127.0.0.1:0, token: old-token-0123456789 }\n";
    const std::string new_token = "admin: { listen: 127.0.0.1:0, token: new-token-0123456789 }\n";
    std::string text = yaml(blue.port(), green.port());
    const std::string plain_admin = "admin: { listen: 127.0.0.1:0 }\n";
    auto with_admin = [&](const std::string& admin) {
        std::string t = text;
        t.replace(t.find(plain_admin), plain_admin.size(), admin);
        return t;
    };
    reload_stack stack(with_admin(old_token), {0, 0});

    int status = 0;
    stack.reload(&status);
    EXPECT_EQ(status, 401);
    stack.write(with_admin(new_token));
    const json::value answer =
        stack.reload(&status, {{"Authorization", "Bearer old-token-0123456789"}});
    ASSERT_EQ(status, 200) << json::serialize(answer);
    EXPECT_EQ(strings(answer.at("changed")), (std::vector<std::string>{"admin.token"}));

    stack.reload(&status, {{"Authorization", "Bearer old-token-0123456789"}});
    EXPECT_EQ(status, 401);
    stack.reload(&status, {{"Authorization", "Bearer new-token-0123456789"}});
    EXPECT_EQ(status, 200);
}

TEST(reload, during_a_rollout_keeps_phase_step_and_weights) {
    upstream_server blue("blue");
    upstream_server green("green");
    const std::string steps = "  steps: [10, 25, 50, 75, 100]\n";
    reload_stack stack(yaml(blue.port(), green.port(), fast_analysis + steps), {0, 0});
    stack.start_load();
    int status = 0;
    stack.call("POST", "/rollout", &status);
    ASSERT_EQ(status, 200);
    ASSERT_TRUE(eventually([&] { return green_weight(stack) == 10; }));
    const json::value paused = stack.call("POST", "/rollout/pause", &status);
    ASSERT_EQ(status, 200) << json::serialize(paused);
    ASSERT_EQ(paused.at("phase"), "paused");
    const json::value step = paused.at("step");
    const json::value weight = paused.at("weight");
    const auto w = static_cast<std::uint32_t>(weight.to_number<double>());
    // The weight in force stays a step; the new list goes on above it.
    std::string steps_after = "[";
    std::uint32_t next_weight = 0;
    for (const std::uint32_t s : {30U, 60U, 100U}) {
        if (s > w && next_weight == 0) {
            steps_after += std::to_string(w) + ",";
            next_weight = s;
        }
        if (s != w) {
            steps_after += std::to_string(s) + (s == 100 ? "]" : ",");
        }
    }

    stack.write(yaml(blue.port(), green.port(),
                     fast_analysis + "  steps: [30, 60, 100]\n" + "  approval: false\n"));
    const json::value answer = stack.reload(&status);
    ASSERT_EQ(status, 200) << json::serialize(answer);
    EXPECT_EQ(strings(answer.at("changed")), (std::vector<std::string>{"rollout"}));

    const json::value after = stack.rollout();
    EXPECT_EQ(after.at("phase"), "paused");
    EXPECT_EQ(after.at("step"), step);
    EXPECT_EQ(after.at("weight"), weight);
    EXPECT_EQ(after.at("resume_to"), "progressing");
    EXPECT_EQ(green_weight(stack), w);
    EXPECT_EQ(json::serialize(after.at("steps")), steps_after);

    stack.call("POST", "/rollout/resume", &status);
    ASSERT_EQ(status, 200);
    ASSERT_TRUE(eventually([&] { return green_weight(stack) != w; }));
    EXPECT_EQ(green_weight(stack), next_weight);
}

TEST(reload, a_request_in_flight_finishes_on_the_settings_it_began_with) {
    upstream_server blue("blue");
    held_answers held;
    upstream_server a("A", held.handler("A\n"));
    upstream_server b("B");
    reload_stack stack(yaml(blue.port(), a.port()), {1, 0});

    raw_client client(stack.port());
    client.send(format_request("GET", "/slow"));
    ASSERT_TRUE(a.wait_for_requests(1));

    stack.write(
        yaml(blue.port(), b.port(), "timeouts: { upstream_response: 30s, request_header: 5s }\n"));
    int status = 0;
    const json::value answer = stack.reload(&status);
    ASSERT_EQ(status, 200) << json::serialize(answer);
    EXPECT_EQ(strings(answer.at("changed")),
              (std::vector<std::string>{"slots.green.endpoints", "timeouts"}));

    held.release();
    const response slow = client.read_response();
    EXPECT_EQ(slow.status, 200);
    EXPECT_EQ(slow.body, "A\n");
    // The next request on the same connection takes the new endpoints; the connection to A,
    // of an endpoint that is gone, is closed rather than pooled.
    client.send(format_request("GET", "/next"));
    const response next = client.read_response();
    EXPECT_EQ(next.status, 200);
    EXPECT_EQ(next.body, "B\n");
    EXPECT_TRUE(a.wait_for_open_connections(0));
}

}  // namespace
}  // namespace switchyard::test
