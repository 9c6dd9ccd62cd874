// The table `switchyard status` prints, from a /status document.

#include "admin/status_view.hpp"

#include <gtest/gtest.h>

#include <string>

#include <boost/json.hpp>

namespace switchyard::admin {
namespace {

TEST(status_view, the_sequential_tests_are_shown_with_their_lines_and_bounds) {
    const boost::json::value status = boost::json::parse(R"({
        "active": "blue",
        "slots": {},
        "rollout": {
            "id": "r1", "strategy": "canary", "from": "blue", "to": "green", "phase": "progressing",
            "step": 2, "steps": [10, 25, 50, 75, 100], "weight": 25, "reason": "interval passed",
            "checks": [],
            "evidence": [
                {"check": "error_rate_ratio", "test": "errors", "e_value": 1.5,
                 "e_threshold": 300, "p_value": 0.66, "rejected": false, "within": false},
                {"check": "latency_p95_ratio", "test": "exceedance", "e_value": 812,
                 "e_threshold": 600, "p_value": 0.00123, "rejected": true, "within": false},
                {"check": "latency_p95_ratio", "test": "quantile", "step": 2,
                 "canary_lower": 0.0125, "limit": 0.021, "rejected": false, "within": true}
            ]
        }
    })");
    const std::string table = render_status(status);
    EXPECT_NE(table.find("SEQUENTIAL TEST"), std::string::npos) << table;
    EXPECT_NE(table.find("error_rate_ratio errors"), std::string::npos) << table;
    EXPECT_NE(table.find("812"), std::string::npos) << table;
    EXPECT_NE(table.find("worse"), std::string::npos) << table;
    EXPECT_NE(table.find("canary >= 12.5ms vs limit 21ms (step 2)  within"), std::string::npos)
        << table;
    // The threshold method has no such block.
    const boost::json::value plain = boost::json::parse(
        R"({"active": "blue", "slots": {}, "rollout": {"id": "r1", "checks": []}})");
    EXPECT_EQ(render_status(plain).find("SEQUENTIAL TEST"), std::string::npos);
}

}  // namespace
}  // namespace switchyard::admin
