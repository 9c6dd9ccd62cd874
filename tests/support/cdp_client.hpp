#pragma once
// A headless Chromium for browser tests, and a client of its DevTools protocol (CDP) over a
// WebSocket: launch the browser, open its page target, send commands, wait for their replies.
// Synchronous: a test drives one page, one command at a time.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace switchyard::test {

// One command connection to a DevTools target (a page's webSocketDebuggerUrl).
class cdp_client {
public:
    // `url`: ws://127.0.0.1:PORT/devtools/page/ID. Throws std::runtime_error when it cannot
    // connect.
    explicit cdp_client(const std::string& url);
    ~cdp_client();
    cdp_client(const cdp_client&) = delete;
    cdp_client& operator=(const cdp_client&) = delete;

    // Sends `method` with `params` and returns the reply's "result", skipping the events that
    // come before it. Throws std::runtime_error with the protocol's error message, or when no
    // reply comes within `timeout`.
    boost::json::value call(std::string_view method, boost::json::object params = {},
                            std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // Runtime.evaluate of `expression` in the page, promises awaited: the value it returned
    // (JSON-serializable values only). Throws std::runtime_error naming the exception it threw.
    boost::json::value evaluate(std::string_view expression);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// `chromium --headless=new` in a user data directory of its own, debugging port chosen by the
// browser. The destructor kills the browser's process group, reaps it, removes the directory.
class headless_chromium {
public:
    // Throws std::runtime_error when Debian's `chromium` is not installed (naming the package)
    // or when the browser does not open its debugging port in time.
    headless_chromium();
    ~headless_chromium();
    headless_chromium(const headless_chromium&) = delete;
    headless_chromium& operator=(const headless_chromium&) = delete;

    std::uint16_t debugging_port() const noexcept { return port_; }
    // The webSocketDebuggerUrl of the browser's first page target (the about:blank it opened).
    std::string page_websocket_url() const;

private:
    std::filesystem::path dir_;
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
};

// The bytes of base64 `text` (RFC 4648 §4, padded). Throws std::invalid_argument when malformed.
std::string decode_base64(std::string_view text);

}  // namespace switchyard::test
