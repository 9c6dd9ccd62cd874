// What the admin API makes of endpoint health (README, "Health checks and ejection"): /status,
// switchyard_endpoint_up, and a rollout refused while the new slot has no healthy endpoint.

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "tests/support/admin_stack.hpp"

namespace switchyard::test {
namespace {

using namespace std::chrono_literals;

// The first endpoint of `slot` in /status.
boost::json::object first_endpoint(admin_stack& stack, const std::string& slot) {
    return stack.status().at("slots").at(slot).at("endpoints").at(0).as_object();
}

TEST(endpoint_health, status_metric_and_rollout_follow_the_checks) {
    admin_stack stack([](config::config& cfg) {
        config::health_check_config checks;
        checks.interval = 100ms;
        checks.timeout = 100ms;
        checks.healthy = 1;
        checks.unhealthy = 1;
        cfg.slots[1].health_check = checks;
    });
    std::atomic<int> health{500};
    stack.green.set_handler([&health](const upstream_server::request& r) {
        upstream_server::response res;
        res.status = r.target == "/health" ? health.load() : 200;
        res.body = "green\n";
        return res;
    });
    ASSERT_TRUE(eventually([&] { return first_endpoint(stack, "green").at("state") == "down"; }));
    const auto green = first_endpoint(stack, "green");
    EXPECT_EQ(green.at("down_by"), "health_check");
    EXPECT_EQ(green.at("last_failure"), "status 500");
    EXPECT_TRUE(green.contains("last_failure_at"));
    const auto blue = first_endpoint(stack, "blue");
    EXPECT_EQ(blue.at("state"), "up");
    EXPECT_TRUE(blue.at("down_by").is_null());
    EXPECT_TRUE(blue.at("last_failure").is_null());

    const std::string green_at = "127.0.0.1:" + std::to_string(stack.green.port());
    const std::string blue_at = "127.0.0.1:" + std::to_string(stack.blue.port());
    const std::string metrics = get(stack.admin_port(), "/metrics").body;
    EXPECT_NE(
        metrics.find("switchyard_endpoint_up{slot=\"green\",endpoint=\"" + green_at + "\"} 0"),
        std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("switchyard_endpoint_up{slot=\"blue\",endpoint=\"" + blue_at + "\"} 1"),
              std::string::npos)
        << metrics;

    int status = 0;
    const auto refused = stack.call("POST", "/rollout", "", &status);
    EXPECT_EQ(status, 409);
    const std::string error(refused.at("error").as_string());
    EXPECT_NE(error.find("slot green has no healthy endpoint (" + green_at +
                         ": health check failing: status 500)"),
              std::string::npos)
        << error;
    EXPECT_EQ(stack.phase(), "idle");

    health = 200;
    ASSERT_TRUE(eventually([&] { return first_endpoint(stack, "green").at("state") == "up"; }));
    stack.call("POST", "/rollout", "", &status);
    EXPECT_EQ(status, 200);
}

}  // namespace
}  // namespace switchyard::test
