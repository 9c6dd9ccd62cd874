// POST /hold, /release and /maintenance through a real admin server (README, "Hold and
// maintenance").

#include <gtest/gtest.h>

#include <string>

#include "tests/support/admin_stack.hpp"

namespace switchyard::test {
namespace {

TEST(hold_api, hold_and_release_through_the_admin_api) {
    admin_stack stack;
    int status = 0;
    stack.call("POST", "/release", {}, &status);
    EXPECT_EQ(status, 409);
    auto v = stack.call("POST", "/hold", {}, &status);
    EXPECT_EQ(status, 200);
    EXPECT_TRUE(stack.status().at("hold").at("on").as_bool());
    raw_client c(stack.proxy().port());
    c.send(format_request("GET", "/"));
    ASSERT_TRUE(
        eventually([&] { return stack.status().at("hold").at("waiting").as_int64() == 1; }));
    v = stack.call("POST", "/release", {}, &status);
    EXPECT_EQ(status, 200);
    EXPECT_EQ(v.at("hold").at("released").as_int64(), 1);
    EXPECT_EQ(c.read_response().status, 200);
    EXPECT_FALSE(stack.status().at("hold").at("on").as_bool());
}

TEST(hold_api, maintenance_message_and_delete) {
    admin_stack stack;
    int status = 0;
    auto v = stack.call("POST", "/maintenance", R"({"message": "migrating"})", &status);
    EXPECT_EQ(status, 200);
    EXPECT_EQ(v.at("maintenance").at("message").as_string(), "migrating");
    response r = get(stack.proxy().port());
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "migrating\n");
    EXPECT_TRUE(r.has("Retry-After"));
    stack.call("POST", "/maintenance", R"({"message": 3})", &status);
    EXPECT_EQ(status, 400);
    EXPECT_EQ(stack.status().at("maintenance").at("message").as_string(), "migrating");
    stack.call("DELETE", "/maintenance", {}, &status);
    EXPECT_EQ(status, 200);
    EXPECT_EQ(get(stack.proxy().port()).status, 200);
    stack.call("DELETE", "/maintenance", {}, &status);
    EXPECT_EQ(status, 200);  // idempotent
}

TEST(hold_api, mutating_calls_need_the_token) {
    admin_stack stack([](config::config& cfg) { cfg.admin.token = "s3cret-s3cret-s3cret"; });
    int status = 0;
    stack.call("POST", "/hold", {}, &status);
    EXPECT_EQ(status, 401);
    stack.call("DELETE", "/maintenance", {}, &status);
    EXPECT_EQ(status, 401);
    EXPECT_FALSE(stack.proxy().split().load_state().hold);
}

}  // namespace
}  // namespace switchyard::test
