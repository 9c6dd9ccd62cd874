#include "tests/support/cdp_client.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace json = boost::json;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

// The browser's first start (a fresh profile) on a loaded machine takes seconds; this bounds it.
constexpr std::chrono::seconds browser_start_limit{60};
constexpr std::chrono::seconds browser_stop_limit{10};

// The executable `name` in one of PATH's directories; empty when none holds it.
std::string find_in_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        const std::filesystem::path candidate = std::filesystem::path(dir) / name;
        if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) {
            return candidate.string();
        }
    }
    return {};
}

std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace

// --- cdp_client ---

struct cdp_client::impl {
    net::io_context io;
    websocket::stream<beast::tcp_stream> ws{io};
    std::int64_t next_id = 1;
};

cdp_client::cdp_client(const std::string& url) : impl_(std::make_unique<impl>()) {
    // ws://HOST:PORT/PATH
    constexpr std::string_view scheme = "ws://";
    const std::size_t slash = url.find('/', scheme.size());
    const std::size_t colon = url.rfind(':', slash);
    if (!url.starts_with(scheme) || slash == std::string::npos || colon < scheme.size()) {
        throw std::runtime_error("not a ws:// URL: " + url);
    }
    const std::string host = url.substr(scheme.size(), colon - scheme.size());
    const std::string port = url.substr(colon + 1, slash - colon - 1);
    tcp::resolver resolver(impl_->io);
    beast::get_lowest_layer(impl_->ws).connect(resolver.resolve(host, port));
    impl_->ws.read_message_max(64 * 1024 * 1024);  // a screenshot's base64
    impl_->ws.handshake(host + ":" + port, url.substr(slash));
}

cdp_client::~cdp_client() {
    boost::system::error_code ignored;
    impl_->ws.close(websocket::close_code::normal, ignored);
}

json::value cdp_client::call(std::string_view method, json::object params,
                             std::chrono::milliseconds timeout) {
    const std::int64_t id = impl_->next_id++;
    const std::string request = json::serialize(
        json::object{{"id", id}, {"method", method}, {"params", std::move(params)}});
    impl_->ws.text(true);
    impl_->ws.write(net::buffer(request));
    // One deadline for the reply, the events before it included: a stream's deadline bounds its
    // asynchronous operations only, hence async_read run to completion here.
    beast::get_lowest_layer(impl_->ws).expires_after(timeout);
    for (;;) {
        beast::flat_buffer buffer;
        boost::system::error_code ec;
        impl_->ws.async_read(buffer, [&ec](boost::system::error_code e, std::size_t) { ec = e; });
        impl_->io.restart();
        impl_->io.run();
        if (ec) {
            throw std::runtime_error("DevTools " + std::string(method) + ": " + ec.message());
        }
        const json::value message = json::parse(beast::buffers_to_string(buffer.data()));
        const json::value* reply_id = message.as_object().if_contains("id");
        if (reply_id == nullptr || reply_id->to_number<std::int64_t>() != id) {
            continue;  // an event, or the reply to nothing we wait for
        }
        beast::get_lowest_layer(impl_->ws).expires_never();
        if (const json::value* error = message.as_object().if_contains("error")) {
            throw std::runtime_error("DevTools " + std::string(method) + ": " +
                                     json::serialize(*error));
        }
        return message.at("result");
    }
}

json::value cdp_client::evaluate(std::string_view expression) {
    const json::value result =
        call("Runtime.evaluate",
             {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
    if (const json::value* thrown = result.as_object().if_contains("exceptionDetails")) {
        throw std::runtime_error("the page threw evaluating " + std::string(expression) + ": " +
                                 json::serialize(*thrown));
    }
    const json::value& value = result.at("result");
    const json::value* v = value.as_object().if_contains("value");
    return v != nullptr ? *v : json::value(nullptr);  // undefined
}

// --- headless_chromium ---

headless_chromium::headless_chromium() {
    const std::string binary = find_in_path("chromium");
    if (binary.empty()) {
        throw std::runtime_error(
            "chromium is not installed: the browser tests drive Debian's `chromium` package "
            "(apt-get install chromium; ./build.sh deps installs it)");
    }
    static std::atomic<int> next{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("switchyard-chromium-" + std::to_string(::getpid()) + "-" + std::to_string(next++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);

    // Everything the child needs is built before fork(): between fork and exec only
    // async-signal-safe calls, the test process having threads.
    std::vector<std::string> args = {binary,
                                     "--headless=new",
                                     "--no-sandbox",  // root in CI containers
                                     "--disable-gpu",
                                     "--disable-dev-shm-usage",
                                     "--no-first-run",
                                     "--no-default-browser-check",
                                     "--disable-extensions",
                                     "--window-size=1280,1000",
                                     "--remote-debugging-address=127.0.0.1",
                                     "--remote-debugging-port=0",
                                     "--user-data-dir=" + (dir_ / "profile").string(),
                                     "about:blank"};
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const std::string log = (dir_ / "chromium.log").string();

    pid_ = ::fork();
    if (pid_ < 0) {
        throw std::system_error(errno, std::generic_category(), "fork");
    }
    if (pid_ == 0) {
        ::setpgid(0, 0);  // a group of its own: the destructor ends the renderers with it
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::setpgid(pid_, pid_);  // also here, so that the group exists before the child runs

    // The browser writes its port and the browser target's path into DevToolsActivePort.
    const auto port_file = dir_ / "profile" / "DevToolsActivePort";
    bool exited = false;
    const bool ready = eventually(
        [&] {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                exited = true;
                pid_ = -1;
                return true;
            }
            // Complete once it holds both lines: the port, then the browser target's path.
            std::istringstream in(read_text(port_file));
            int port = 0;
            std::string path;
            if (in >> port >> path && port > 0) {
                port_ = static_cast<std::uint16_t>(port);
                return true;
            }
            return false;
        },
        browser_start_limit);
    if (exited || !ready) {
        const std::string why = exited ? "exited" : "opened no debugging port in time";
        const std::string output = read_text(dir_ / "chromium.log");
        throw std::runtime_error("chromium " + why + "; its output:\n" + output);
    }
}

headless_chromium::~headless_chromium() {
    if (pid_ > 0) {
        ::kill(-pid_, SIGTERM);
        const bool reaped = eventually(
            [this] {
                int status = 0;
                return ::waitpid(pid_, &status, WNOHANG) == pid_;
            },
            browser_stop_limit);
        ::kill(-pid_, SIGKILL);  // what is left of the group (ESRCH when nothing)
        if (!reaped) {
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string headless_chromium::page_websocket_url() const {
    const response r = get(port_, "/json/list");
    if (r.status != 200) {
        throw std::runtime_error("GET /json/list on the DevTools port answered " +
                                 std::to_string(r.status) + ": " + r.body);
    }
    const json::value targets = json::parse(r.body);
    for (const json::value& t : targets.as_array()) {
        if (t.at("type") == "page") {
            return std::string(t.at("webSocketDebuggerUrl").as_string());
        }
    }
    throw std::runtime_error("chromium has no page target: " + r.body);
}

std::string decode_base64(std::string_view text) {
    std::array<int, 256> value{};
    value.fill(-1);
    constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t i = 0; i < alphabet.size(); ++i) {
        value[static_cast<unsigned char>(alphabet[i])] = static_cast<int>(i);
    }
    if (text.size() % 4 != 0) {
        throw std::invalid_argument("base64 length not a multiple of 4");
    }
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        unsigned bits = 0;
        int pads = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            const char c = text[i + j];
            int v = value[static_cast<unsigned char>(c)];
            if (c == '=' && i + 4 == text.size() && j >= 2) {
                ++pads;
                v = 0;
            } else if (v < 0 || pads > 0) {
                throw std::invalid_argument("not base64");
            }
            bits = bits << 6 | static_cast<unsigned>(v);
        }
        out.push_back(static_cast<char>(bits >> 16 & 0xff));
        if (pads < 2) {
            out.push_back(static_cast<char>(bits >> 8 & 0xff));
        }
        if (pads < 1) {
            out.push_back(static_cast<char>(bits & 0xff));
        }
    }
    return out;
}

}  // namespace switchyard::test
