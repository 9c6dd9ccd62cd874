// The live page (README, "Live page") in a real browser: headless Chromium, driven through its
// DevTools protocol, against the whole stack during a rollout. Debian's `chromium` must be
// installed (./build.sh deps): without it these tests fail, naming the package.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "tests/support/admin_stack.hpp"
#include "tests/support/cdp_client.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// The page polls once a second; a browser's first start on a loaded machine takes seconds.
constexpr std::chrono::milliseconds page_limit = 30s;

// A rollout that stays at its first step while the page is looked at: no interval ends. The
// sequential judge's tests give the evidence chart and table something to show.
void long_interval(config::config& cfg) {
    cfg.analysis.interval = std::chrono::minutes(10);
    cfg.analysis.method = config::analysis_method::sequential;
}

// Chromium with its page open at the admin listener's GET /.
class browser_page {
public:
    explicit browser_page(std::uint16_t admin_port) : page_(browser_.page_websocket_url()) {
        page_.call("Page.enable");
        page_.call("Page.navigate",
                   {{"url", "http://127.0.0.1:" + std::to_string(admin_port) + "/"}});
    }

    cdp_client& cdp() { return page_; }

    // `expression`'s value, or null while the page is not there to evaluate it (navigating).
    json::value value_of(std::string_view expression) {
        try {
            return page_.evaluate(expression);
        } catch (const std::runtime_error&) {
            return nullptr;
        }
    }
    std::string text_of(std::string_view id) {
        const json::value v =
            value_of("document.getElementById('" + std::string(id) + "').textContent");
        return v.is_string() ? std::string(v.as_string()) : std::string();
    }
    bool wait_for_text(std::string_view id, std::string_view want) {
        return eventually([&] { return text_of(id) == want; }, page_limit);
    }

    // A real click: the mouse pressed and released at the middle of the element's box, which
    // must be enabled and in view.
    void click(std::string_view selector) {
        const json::value box = page_.evaluate(
            "(() => { const e = document.querySelector('" + std::string(selector) +
            "'); const r = e.getBoundingClientRect(); "
            "return {x: r.x + r.width / 2, y: r.y + r.height / 2, disabled: !!e.disabled}; })()");
        if (box.at("disabled").as_bool()) {
            throw std::runtime_error(std::string(selector) + " is disabled");
        }
        for (const char* type : {"mousePressed", "mouseReleased"}) {
            page_.call("Input.dispatchMouseEvent", {{"type", type},
                                                    {"x", box.at("x")},
                                                    {"y", box.at("y")},
                                                    {"button", "left"},
                                                    {"clickCount", 1}});
        }
    }

private:
    headless_chromium browser_;
    cdp_client page_;
};

// The browser, or a failure that says why (chromium not installed, say): never a skip.
#define OPEN_PAGE(name, port)                             \
    std::optional<browser_page> name;                     \
    try {                                                 \
        name.emplace(port);                               \
    } catch (const std::exception& e) {                   \
        FAIL() << "cannot drive a browser: " << e.what(); \
    }

// The PNG's width and height from its IHDR chunk (RFC 2083 §11.2.2); throws when `png` is not a
// PNG.
std::pair<std::uint32_t, std::uint32_t> png_size(const std::string& png) {
    constexpr std::string_view signature = "\x89PNG\r\n\x1a\n";
    if (png.size() < 24 || std::string_view(png).substr(0, 8) != signature ||
        std::string_view(png).substr(12, 4) != "IHDR") {
        throw std::invalid_argument("not a PNG");
    }
    auto be32 = [&](std::size_t at) {
        std::uint32_t v = 0;
        for (std::size_t i = 0; i < 4; ++i) {
            v = v << 8 | static_cast<unsigned char>(png[at + i]);
        }
        return v;
    };
    return {be32(16), be32(20)};
}

TEST(live_page_browser, shows_the_rollout_takes_a_screenshot_and_aborts_on_a_click) {
    admin_stack s(long_interval);
    s.start_load(2);
    int code = 0;
    const json::value started = s.call("POST", "/rollout", "", &code);
    ASSERT_EQ(code, 200) << json::serialize(started);
    ASSERT_TRUE(s.wait_for_phase("progressing")) << json::serialize(s.status());
    ASSERT_EQ(s.green_weight(), 10);

    OPEN_PAGE(page, s.admin_port());
    ASSERT_TRUE(page->wait_for_text("phase", "progressing")) << page->text_of("conn");
    const std::string weights = page->text_of("weights");
    EXPECT_NE(weights.find("blue 90%"), std::string::npos) << weights;
    EXPECT_NE(weights.find("green 10%"), std::string::npos) << weights;
    EXPECT_EQ(page->text_of("active"), "blue");
    EXPECT_EQ(page->text_of("conn"), "live");
    // The timeline lists the rollout's events; the charts have points to draw, the latest with
    // the canary's weight and its traffic.
    ASSERT_TRUE(eventually(
        [&] {
            return page->value_of(
                       "view.points.length >= 3 && view.points.at(-1).weights.green === 10 && "
                       "view.points.at(-1).slots.green.requests_per_second > 0 && "
                       "document.querySelectorAll('#event-rows tr').length >= 1") ==
                   json::value(true);
        },
        page_limit))
        << json::serialize(page->value_of("view.points.slice(-3)"));
    EXPECT_NE(page->text_of("event-rows").find("progressing"), std::string::npos)
        << page->text_of("event-rows");
    // Each test with an e-value has a row with it and its line (1/alpha = 300 for three tests);
    // the quantile test's bounds are in /status.
    ASSERT_TRUE(eventually(
        [&] {
            return page->value_of(
                       "document.querySelectorAll('#evidence tr').length === 2 && "
                       "view.points.at(-1).evidence.length === 2") == json::value(true);
        },
        page_limit))
        << page->text_of("evidence");
    const std::string evidence = page->text_of("evidence");
    EXPECT_NE(evidence.find("error_rate_ratio"), std::string::npos) << evidence;
    EXPECT_NE(evidence.find("exceedance"), std::string::npos) << evidence;
    EXPECT_NE(evidence.find("300"), std::string::npos) << evidence;

    const json::value shot = page->cdp().call("Page.captureScreenshot", {{"format", "png"}});
    const std::string png = decode_base64(shot.at("data").as_string());
    const auto [width, height] = png_size(png);
    EXPECT_EQ(width, 1280U);
    EXPECT_GT(height, 500U);
    // A blank page of that size compresses to a few KiB; text and charts do not.
    EXPECT_GT(png.size(), 20'000U);
    const std::filesystem::path file =
        std::filesystem::path(SWITCHYARD_TEST_OUTPUT_DIR) / "live_page.png";
    std::ofstream(file, std::ios::binary) << png;
    EXPECT_EQ(std::filesystem::file_size(file), png.size());

    page->click("#abort");
    ASSERT_TRUE(eventually([&] { return s.green_weight() == 0; })) << json::serialize(s.status());
    EXPECT_EQ(s.phase(), "aborted");
    EXPECT_TRUE(page->wait_for_text("phase", "aborted"));
    // The page says what the call answered once the answer is in.
    EXPECT_TRUE(page->wait_for_text("message", "POST /rollout/abort: aborted"))
        << page->text_of("message");
}

TEST(live_page_browser, asks_for_the_token_on_401_keeps_it_and_retries) {
    constexpr std::string_view token = "s3cret-token";
    admin_stack s([&](config::config& cfg) {
        long_interval(cfg);
        cfg.admin.token = std::string(token);
    });
    {
        raw_client client(s.admin_port());
        client.send(format_request("POST", "/rollout",
                                   {{"Authorization", "Bearer " + std::string(token)}}, {}));
        ASSERT_EQ(client.read_response().status, 200);
    }
    ASSERT_TRUE(s.wait_for_phase("progressing")) << json::serialize(s.status());

    OPEN_PAGE(page, s.admin_port());
    ASSERT_TRUE(page->wait_for_text("phase", "progressing")) << page->text_of("conn");
    page->click("#pause");
    // Refused without the token: the page asks for it, and nothing changed.
    ASSERT_TRUE(eventually(
        [&] {
            return page->value_of("document.getElementById('token-form').hidden") ==
                   json::value(false);
        },
        page_limit));
    EXPECT_EQ(s.phase(), "progressing");

    page->click("#token");
    page->cdp().call("Input.insertText", {{"text", token}});
    page->click("#token-form button");
    ASSERT_TRUE(s.wait_for_phase("paused")) << json::serialize(s.status());
    EXPECT_EQ(page->value_of("sessionStorage.getItem('switchyard-token')"), json::value(token));
    EXPECT_EQ(page->value_of("document.getElementById('token-form').hidden"), json::value(true));
    EXPECT_TRUE(page->wait_for_text("phase", "paused"));
}

}  // namespace
}  // namespace switchyard::test
