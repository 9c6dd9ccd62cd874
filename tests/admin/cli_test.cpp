// The switchyard executable as users run it: a restart after kill -9 mid-rollout, `rollout
// --wait` as a CI gate, `status`, the refusals at start, and `demo-upstream`. Each test runs the
// real binary on loopback ports the kernel picks; the proxy's upstreams run in this process.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "tests/support/load.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/proc_stats.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

extern char** environ;

namespace switchyard::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

// A child process with stdout and stderr read into one buffer by a thread of its own.
class child {
public:
    // `env`: "NAME=value" entries that replace or add to this process's environment.
    explicit child(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe");
        }
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
        std::vector<char*> argv;
        for (const auto& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        std::vector<char*> envp;
        for (char** e = environ; *e != nullptr; ++e) {
            const std::string_view entry = *e;
            const bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& o) {
                return entry.substr(0, entry.find('=')) == o.substr(0, o.find('='));
            });
            if (!replaced) {
                envp.push_back(*e);
            }
        }
        for (const auto& e : env) {
            envp.push_back(const_cast<char*>(e.c_str()));
        }
        envp.push_back(nullptr);
        const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        if (rc != 0) {
            ::close(fds[0]);
            throw std::runtime_error("cannot start " + args[0]);
        }
        reader_ = std::thread([this, fd = fds[0]] {
            char buf[4096];
            for (;;) {
                const ssize_t n = ::read(fd, buf, sizeof buf);
                if (n <= 0) {
                    break;
                }
                const std::lock_guard lock(mutex_);
                output_.append(buf, static_cast<std::size_t>(n));
                changed_.notify_all();
            }
            ::close(fd);
            const std::lock_guard lock(mutex_);
            closed_ = true;
            changed_.notify_all();
        });
    }
    ~child() {
        if (!exited_) {
            ::kill(pid_, SIGKILL);
            wait();
        }
        reader_.join();
        // A sanitizer build's report in the child (a race while draining, say) must fail the
        // test even when the test had no reason to look at the output or the exit status.
        if (output_.find("Sanitizer:") != std::string::npos) {
            ADD_FAILURE() << "sanitizer report in the output of the child:\n" << output_;
        }
    }

    void signal(int sig) { ::kill(pid_, sig); }
    pid_t pid() const { return pid_; }
    // Waits for the exit and returns its status (128 + signal when killed).
    int wait() {
        if (!exited_) {
            int status = 0;
            ::waitpid(pid_, &status, 0);
            exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            exited_ = true;
        }
        return exit_;
    }
    std::string output() const {
        const std::lock_guard lock(mutex_);
        return output_;
    }
    // Waits until `found` holds for the output so far, or the output ends, or `limit` passes;
    // true when it held.
    bool wait_for(const std::function<bool(const std::string&)>& found,
                  std::chrono::milliseconds limit = 20s) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] { return found(output_) || closed_; }) &&
               found(output_);
    }
    // Waits for the output to end (the process closed it by exiting).
    bool wait_closed(std::chrono::milliseconds limit = 30s) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] { return closed_; });
    }

private:
    pid_t pid_ = -1;
    std::thread reader_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::string output_;
    bool closed_ = false;
    bool exited_ = false;
    int exit_ = -1;
};

// The port after `prefix` in `text` ("listening on 127.0.0.1:" then digits), or 0.
std::uint16_t port_after(const std::string& text, std::string_view prefix) {
    const auto at = text.find(prefix);
    if (at == std::string::npos) {
        return 0;
    }
    return static_cast<std::uint16_t>(std::strtoul(text.c_str() + at + prefix.size(), nullptr, 10));
}

// A running `switchyard -c FILE` and the ports it bound, from its start-up log line.
struct proxy_process {
    explicit proxy_process(const std::string& config)
        : proxy_process(std::vector<std::string>{SWITCHYARD_BINARY, "-c", config}) {}
    explicit proxy_process(const std::vector<std::string>& command) : process(command) {
        constexpr std::string_view proxy_at = "listening on 127.0.0.1:";
        constexpr std::string_view admin_at = "(admin on 127.0.0.1:";
        if (!process.wait_for([&](const std::string& out) {
                return port_after(out, proxy_at) != 0 && port_after(out, admin_at) != 0;
            })) {
            throw std::runtime_error("switchyard did not start:\n" + process.output());
        }
        const std::string out = process.output();
        port = port_after(out, proxy_at);
        admin_port = port_after(out, admin_at);
    }

    child process;
    std::uint16_t port = 0;
    std::uint16_t admin_port = 0;
};

std::string write_config(const temp_dir& dir, std::uint16_t blue, std::uint16_t green,
                         const std::string& extra) {
    const std::string path = dir.file("switchyard.yaml");
    std::ofstream(path) << "listen: 127.0.0.1:0\n"
                           "workers: 1\n"
                           "admin: { listen: 127.0.0.1:0 }\n"
                           "slots:\n"
                           "  blue:  { endpoints: [\"127.0.0.1:"
                        << blue << "\"] }\n  green: { endpoints: [\"127.0.0.1:" << green
                        << "\"] }\n"
                        << extra;
    return path;
}

json::value admin_json(std::uint16_t port, std::string_view method, std::string_view target) {
    raw_client client(port);
    client.send(format_request(method, target));
    return json::parse(client.read_response().body);
}

std::int64_t green_weight(std::uint16_t admin_port) {
    return admin_json(admin_port, "GET", "/weights").at("green").as_int64();
}

TEST(cli, kill_9_mid_rollout_and_the_restart_resumes_at_the_same_weight) {
    upstream_server blue("blue");
    upstream_server green("green");
    temp_dir dir;
    const std::string state = dir.file("state/state.json");
    const std::string config =
        write_config(dir, blue.port(), green.port(),
                     // 3 s intervals: the 100 requests counted after the restart all fall
                     // within one step.
                     "state_file: " + state +
                         "\nanalysis: { interval: 3s, min_requests: 5 }\n"
                         "rollout: { bake: 1s, health: { deadline: 5s } }\n");
    std::string id;
    std::int64_t weight = 0;
    {
        proxy_process first(config);
        auto load =
            std::make_unique<load_generator>(first.port, load_generator::limits{4, 5'000'000, 60s});
        id = std::string(admin_json(first.admin_port, "POST", "/rollout").at("id").as_string());
        ASSERT_TRUE(eventually([&] { return green_weight(first.admin_port) >= 25; }))
            << first.process.output();
        load->stop();
        first.process.signal(SIGKILL);
        EXPECT_EQ(first.process.wait(), 128 + SIGKILL);
        // What the state file holds is what was in force when the process died.
        std::ifstream in(state);
        std::stringstream text;
        text << in.rdbuf();
        const json::value saved = json::parse(text.str());
        weight = saved.at("weights").at("green").as_int64();
        EXPECT_GE(weight, 25);
        EXPECT_EQ(saved.at("rollout").at("id"), id.c_str());
        EXPECT_EQ(saved.at("rollout").at("phase"), "progressing");
    }
    proxy_process second(config);
    // Before any other traffic: the restored split, exactly (one worker, so any 100 requests in
    // a row carry the weight exactly).
    EXPECT_EQ(green_weight(second.admin_port), weight);
    std::int64_t to_green = 0;
    {
        raw_client client(second.port);
        for (int i = 0; i < 100; ++i) {
            client.send(format_request("GET", "/"));
            to_green += client.read_response().body == "green\n" ? 1 : 0;
        }
    }
    EXPECT_EQ(to_green, weight);
    const json::value rollout = admin_json(second.admin_port, "GET", "/status").at("rollout");
    EXPECT_EQ(rollout.at("id"), id.c_str());
    EXPECT_EQ(rollout.at("weight"), weight);
    // It carries on from there to the end.
    load_generator load(second.port, {4, 5'000'000, 60s});
    ASSERT_TRUE(eventually([&] {
        return admin_json(second.admin_port, "GET", "/status").at("rollout").at("phase") ==
               "succeeded";
    })) << second.process.output();
    const std::string log = second.process.output();
    EXPECT_NE(log.find("restarted (waiting)"), std::string::npos) << log;
    EXPECT_NE(log.find("resumed (progressing)"), std::string::npos) << log;
}

TEST(cli, rollout_wait_exits_0_on_success_and_3_on_rollback) {
    for (const bool healthy : {true, false}) {
        upstream_server blue("blue");
        upstream_server green("green");
        std::atomic<std::uint64_t> served{0};
        if (!healthy) {
            green.set_handler([&](const upstream_server::request& r) {
                upstream_server::response res;
                res.status = r.target != "/health" && served++ % 3 == 0 ? 500 : 200;
                return res;
            });
        }
        temp_dir dir;
        const std::string config = write_config(dir, blue.port(), green.port(),
                                                "state_file: off\n"
                                                "analysis: { interval: 300ms, min_requests: 5 }\n"
                                                "rollout: { bake: 300ms }\n");
        proxy_process proxy(config);
        load_generator load(proxy.port, {4, 5'000'000, 60s});
        child waiter({SWITCHYARD_BINARY, "rollout", "--admin",
                      "http://127.0.0.1:" + std::to_string(proxy.admin_port), "--wait"});
        ASSERT_TRUE(waiter.wait_closed()) << waiter.output();
        const std::string out = waiter.output();
        if (healthy) {
            EXPECT_EQ(waiter.wait(), 0) << out;
            EXPECT_NE(out.find("succeeded"), std::string::npos) << out;
        } else {
            EXPECT_EQ(waiter.wait(), 3) << out;
            EXPECT_NE(out.find("rolled-back: error_rate"), std::string::npos) << out;
        }
        // One line per event while following, then the result.
        EXPECT_NE(out.find("progressing"), std::string::npos) << out;
    }
}

TEST(cli, status_prints_the_rollout_as_a_table) {
    upstream_server blue("blue");
    upstream_server green("green");
    temp_dir dir;
    const std::string config = write_config(dir, blue.port(), green.port(), "state_file: off\n");
    proxy_process proxy(config);
    admin_json(proxy.admin_port, "POST", "/rollout");
    ASSERT_TRUE(eventually([&] {
        return admin_json(proxy.admin_port, "GET", "/status").at("rollout").at("phase") ==
               "progressing";
    }));
    child status(
        {SWITCHYARD_BINARY, "status", "--admin", "127.0.0.1:" + std::to_string(proxy.admin_port)});
    EXPECT_EQ(status.wait(), 0);
    ASSERT_TRUE(status.wait_closed());
    const std::string out = status.output();
    EXPECT_NE(out.find("Phase       progressing  (step 1/5, green at 10%)"), std::string::npos)
        << out;
    EXPECT_NE(out.find("blue       stable"), std::string::npos) << out;
    EXPECT_NE(out.find("green      canary"), std::string::npos) << out;
    EXPECT_NE(out.find("EVENTS"), std::string::npos) << out;
}

TEST(cli, an_unwritable_state_directory_stops_the_start_naming_the_path) {
    upstream_server blue("blue");
    upstream_server green("green");
    temp_dir dir;
    std::ofstream(dir.file("plain")) << "not a directory";
    const std::string state = dir.file("plain") + "/state.json";
    const std::string config =
        write_config(dir, blue.port(), green.port(), "state_file: " + state + "\n");
    child proxy({SWITCHYARD_BINARY, "-c", config});
    EXPECT_EQ(proxy.wait(), 1);
    ASSERT_TRUE(proxy.wait_closed());
    EXPECT_NE(proxy.output().find(state), std::string::npos) << proxy.output();
}

// A route's regex that RE2 refuses is an error of `switchyard check`, with its file, line and
// key path, and the exit status says so.
TEST(cli, check_refuses_a_bad_route_regex_with_its_line) {
    temp_dir dir;
    const std::string config = dir.file("switchyard.yaml");
    std::ofstream(config) << "slots:\n  blue:  { endpoints: [\"127.0.0.1:8000\"] }\n"
                          << "  green: { endpoints: [\"127.0.0.1:8001\"] }\n"
                          << "routes:\n"
                          << "  - name: users\n"
                          << "    match: { headers: [ { name: X-User, regex: \"([a-z\" } ] }\n"
                          << "    to: green\n";
    child check({SWITCHYARD_BINARY, "check", "-c", config});
    EXPECT_EQ(check.wait(), 1);
    ASSERT_TRUE(check.wait_closed());
    const std::string out = check.output();
    EXPECT_NE(out.find(config + ":6: routes[0].match.headers[0].regex: invalid regular expression"),
              std::string::npos)
        << out;
}

// A name in the reserved .invalid domain (RFC 6761) never resolves: whatever the system's
// resolver answers (not found, or no DNS server at all), it has no address.
constexpr std::string_view never_resolves = "app-green.invalid";

TEST(cli, check_warns_about_a_name_that_does_not_resolve_and_exits_0) {
    temp_dir dir;
    const std::string config = dir.file("switchyard.yaml");
    std::ofstream(config) << "slots:\n  blue:  { endpoints: [\"127.0.0.1:8000\"] }\n"
                          << "  green: { endpoints: [\"" << never_resolves << ":8000\"] }\n";
    child check({SWITCHYARD_BINARY, "check", "-c", config});
    EXPECT_EQ(check.wait(), 0);
    ASSERT_TRUE(check.wait_closed());
    const std::string out = check.output();
    EXPECT_NE(out.find(config + ": warning: slots.green.endpoints[0]: app-green.invalid:8000 "
                                "does not resolve ("),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(config + ": ok"), std::string::npos) << out;
}

TEST(cli, starts_with_a_name_that_does_not_resolve_and_its_slot_answers_503) {
    upstream_server blue("blue");
    temp_dir dir;
    const std::string config = dir.file("switchyard.yaml");
    std::ofstream(config) << "listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\n"
                          << "state_file: off\nactive: green\nslots:\n"
                          << "  blue:  { endpoints: [\"127.0.0.1:" << blue.port() << "\"] }\n"
                          << "  green: { endpoints: [\"" << never_resolves << ":8000\"] }\n";
    proxy_process proxy(config);
    EXPECT_NE(proxy.process.output().find("app-green.invalid:8000 does not resolve"),
              std::string::npos)
        << proxy.process.output();
    const response r = get(proxy.port);
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body.rfind("no endpoint of slot green resolves (app-green.invalid:8000: ", 0), 0U)
        << r.body;
    const json::value endpoint = admin_json(proxy.admin_port, "GET", "/status")
                                     .at("slots")
                                     .at("green")
                                     .at("endpoints")
                                     .at(0);
    EXPECT_EQ(endpoint.at("resolved"), false);
    EXPECT_FALSE(endpoint.at("resolve_error").as_string().empty());
    // Blue, whose endpoint is an address, serves as usual.
    raw_client admin(proxy.admin_port);
    admin.send(format_request("PUT", "/active-slot", {}, "blue"));
    ASSERT_EQ(admin.read_response().status, 200);
    EXPECT_EQ(get(proxy.port).body, "blue\n");
}

// The binary wires the PROXY protocol's refusals into /metrics (README, "PROXY protocol").
TEST(cli, proxy_protocol_refusals_are_scraped_by_reason) {
    upstream_server blue("blue");
    temp_dir dir;
    const std::string config = dir.file("switchyard.yaml");
    std::ofstream(config) << "listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\n"
                          << "state_file: off\nlisten_proxy_protocol: v1\nslots:\n"
                          << "  blue:  { endpoints: [\"127.0.0.1:" << blue.port() << "\"] }\n"
                          << "  green: { endpoints: [\"127.0.0.1:" << blue.port() << "\"] }\n";
    proxy_process proxy(config);
    {
        raw_client client(proxy.port);
        client.send(format_request("GET", "/"));
        EXPECT_EQ(client.read_until_close(), "");
    }
    raw_client client(proxy.port);
    client.send("PROXY TCP4 192.0.2.9 198.51.100.2 40000 80\r\n" + format_request("GET", "/"));
    EXPECT_EQ(client.read_response().status, 200);
    ASSERT_EQ(blue.request_count(), 1U);
    EXPECT_EQ(blue.requests()[0].header("X-Forwarded-For"), "192.0.2.9");
    const std::string metrics = get(proxy.admin_port, "/metrics").body;
    EXPECT_NE(metrics.find("switchyard_proxy_protocol_errors_total{reason=\"missing\"} 1"),
              std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("switchyard_proxy_protocol_errors_total{reason=\"timeout\"} 0"),
              std::string::npos)
        << metrics;
}

// The soft limit of open descriptors, from /proc/PID/limits.
std::string soft_descriptor_limit(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("Max open files", 0) == 0) {
            std::istringstream fields(line.substr(std::string_view("Max open files").size()));
            std::string soft;
            fields >> soft;
            return soft;
        }
    }
    return "";
}

TEST(cli, raises_the_descriptor_limit_as_far_as_max_connections_needs) {
    upstream_server blue("blue");
    upstream_server green("green");
    temp_dir dir;
    const std::string config = write_config(dir, blue.port(), green.port(),
                                            "state_file: off\nlimits: { max_connections: 1000 }\n");
    // prlimit(1) starts the proxy with a soft limit of 100 under a hard one of 4096.
    proxy_process proxy({"/usr/bin/prlimit", "--nofile=100:4096", SWITCHYARD_BINARY, "-c", config});
    EXPECT_EQ(soft_descriptor_limit(proxy.process.pid()), "2064");  // 2 x 1000 + 64
    EXPECT_EQ(proxy.process.output().find("open descriptors are limited"), std::string::npos);
}

TEST(cli, warns_when_the_hard_descriptor_limit_is_below_what_max_connections_needs) {
    upstream_server blue("blue");
    upstream_server green("green");
    temp_dir dir;
    const std::string config = write_config(dir, blue.port(), green.port(), "state_file: off\n");
    proxy_process proxy({"/usr/bin/prlimit", "--nofile=100:500", SWITCHYARD_BINARY, "-c", config});
    EXPECT_EQ(soft_descriptor_limit(proxy.process.pid()), "500");
    EXPECT_NE(proxy.process.output().find("open descriptors are limited to 500, below the 20064 "
                                          "that limits.max_connections 10000 needs"),
              std::string::npos)
        << proxy.process.output();
}

// How many times `needle` occurs in `text`.
std::size_t occurrences(const std::string& text, std::string_view needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

// Descriptors for `switchyard` started through starved_command: soft and hard limit alike, so
// that start-up cannot raise its own.
constexpr int starved_limit = 64;

std::vector<std::string> starved_command(const std::string& config) {
    const std::string limit = std::to_string(starved_limit);
    return {"/usr/bin/prlimit", "--nofile=" + limit + ":" + limit, SWITCHYARD_BINARY, "-c", config};
}

// Why a starved binary is not run when built with the sanitizers: UBSan checks the object of a
// virtual call by writing its vtable through a pipe (sanitizer_common's IsAccessibleMemoryRange).
// With no descriptor left that pipe() fails, the check reports "invalid vptr" for a sound object
// (a boost::system::error_category), and the report aborts: -fno-sanitize-recover leaves no way
// to suppress it.
constexpr std::string_view sanitizers_need_descriptors =
    "a sanitized binary aborts on a false UBSan vptr report once it has no descriptor left";

constexpr std::string_view accept_failed = "accept failed: Too many open files";

// Opens more connections to the proxy than it has descriptors, into `held`, and waits for its
// worker to log that accept failed: those it could not accept wait in its listen queue.
::testing::AssertionResult exhaust_descriptors(proxy_process& proxy,
                                               std::vector<bare_connection>& held) {
    for (int i = 0; i < starved_limit + 16; ++i) {
        held.emplace_back(proxy.port);
    }
    if (!proxy.process.wait_for([&](const std::string& out) {
            return out.find(std::string("worker 0: ").append(accept_failed)) != std::string::npos;
        })) {
        return ::testing::AssertionFailure() << proxy.process.output();
    }
    return ::testing::AssertionSuccess();
}

// Out of descriptors, accept fails at once for as long as the connections are held, and the
// listener stays readable: a loop that retried at once would spin. Both accept loops (a worker's
// and the admin API's) must wait between tries, then serve again once descriptors are free.
TEST(cli, out_of_descriptors_the_accept_loops_back_off_and_then_serve_again) {
#ifdef SWITCHYARD_BINARY_SANITIZED
    GTEST_SKIP() << sanitizers_need_descriptors;
#endif
    upstream_server blue("blue");
    upstream_server green("green");
    temp_dir dir;
    // The held connections send nothing: request_header must not close them during the test.
    const std::string config = write_config(dir, blue.port(), green.port(),
                                            "state_file: off\ntimeouts: { request_header: 60s }\n");
    proxy_process proxy(starved_command(config));
    ASSERT_EQ(soft_descriptor_limit(proxy.process.pid()), std::to_string(starved_limit));
    std::vector<bare_connection> held;
    ASSERT_TRUE(exhaust_descriptors(proxy, held));
    // An admin request made now waits in the admin listener's queue, and its accept fails too.
    raw_client waiting_admin(proxy.admin_port);
    waiting_admin.send(format_request("GET", "/status"));
    ASSERT_TRUE(proxy.process.wait_for([&](const std::string& out) {
        return out.find(std::string("admin: ").append(accept_failed)) != std::string::npos;
    })) << proxy.process.output();

    // A window of one second, measured rather than waited on: the CPU time the proxy used in
    // it, against the time it lasted. Retrying at once would take a whole core.
    const std::size_t failures_before = occurrences(proxy.process.output(), accept_failed);
    const auto cpu_before = cpu_time(proxy.process.pid());
    const auto window_start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(1s);
    const auto cpu_used = cpu_time(proxy.process.pid()) - cpu_before;
    const auto window = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - window_start);
    const std::size_t failures_during =
        occurrences(proxy.process.output(), accept_failed) - failures_before;
    std::printf("out of descriptors: %lld us of CPU in %lld us, %zu failed accepts logged\n",
                static_cast<long long>(cpu_used.count()), static_cast<long long>(window.count()),
                failures_during);
    EXPECT_LT(cpu_used.count(), window.count() / 5)
        << cpu_used.count() << " us of CPU in a window of " << window.count() << " us";
    // Still out of descriptors, and still trying, all through the window.
    EXPECT_GT(failures_during, 0U) << proxy.process.output();

    held.clear();
    // The request that waited is answered, and new ones on both ports are served.
    const response status = waiting_admin.read_response();
    EXPECT_EQ(status.status, 200);
    EXPECT_NO_THROW(static_cast<void>(json::parse(status.body).at("rollout"))) << status.body;
    EXPECT_TRUE(eventually([&] {
        try {
            return get(proxy.port).body == "blue\n";
        } catch (const std::exception&) {
            return false;
        }
    })) << proxy.process.output();
    EXPECT_EQ(get(proxy.port).body, "blue\n");
    raw_client admin(proxy.admin_port);
    admin.send(format_request("GET", "/active-slot"));
    EXPECT_EQ(admin.read_response().body, "blue\n");
}

// A request that finds no descriptor for its upstream connection cannot be served, but the
// upstream did nothing wrong: fail_timeout is for an address that refused or did not accept in
// time (README), and skipping a healthy upstream turns a moment without descriptors into
// fail_timeout of 503s once they are back.
TEST(cli, a_connect_without_descriptors_does_not_mark_the_upstream_down) {
#ifdef SWITCHYARD_BINARY_SANITIZED
    GTEST_SKIP() << sanitizers_need_descriptors;
#endif
    upstream_server blue("blue");
    upstream_server green("green");
    temp_dir dir;
    // A fail_timeout longer than the test: a mark, once made, is still there at the end.
    const std::string config = write_config(dir, blue.port(), green.port(),
                                            "state_file: off\ntimeouts: { request_header: 60s }\n"
                                            "upstream: { fail_timeout: 1h }\n");
    proxy_process proxy(starved_command(config));
    // First in the listen queue, so accepted while descriptors are left.
    raw_client early(proxy.port);
    std::vector<bare_connection> held;
    ASSERT_TRUE(exhaust_descriptors(proxy, held));

    early.send(format_request("GET", "/"));
    const response starved = early.read_response();
    EXPECT_EQ(starved.status, 502) << starved.body;
    EXPECT_EQ(blue.connections_accepted(), 0U);

    held.clear();
    EXPECT_TRUE(eventually([&] {
        try {
            return get(proxy.port).status == 200;
        } catch (const std::exception&) {
            return false;
        }
    })) << get(proxy.port).body;
}

TEST(cli, a_corrupt_state_file_is_kept_aside_and_the_configuration_used) {
    upstream_server blue("blue");
    upstream_server green("green");
    temp_dir dir;
    const std::string state = dir.file("state.json");
    std::ofstream(state) << "{\"version\": 1, \"slots\": [";
    const std::string config =
        write_config(dir, blue.port(), green.port(), "active: green\nstate_file: " + state + "\n");
    proxy_process proxy(config);
    EXPECT_EQ(green_weight(proxy.admin_port), 100);
    EXPECT_TRUE(fs::exists(state + ".corrupt"));
    EXPECT_NE(proxy.process.output().find("kept aside as " + state + ".corrupt"), std::string::npos)
        << proxy.process.output();
}

// A running `switchyard demo-upstream` on 127.0.0.1, port 0, and the port it logged. DEMO_*
// variables are cleared (empty is unset) unless `env` sets them, whatever the test runner has.
struct demo_upstream_process {
    explicit demo_upstream_process(const std::vector<std::string>& flags,
                                   std::vector<std::string> env = {})
        : process(demo_upstream_args(flags), with_demo_defaults(std::move(env))) {
        // The whole line, so that the port is not read while its digits are still arriving.
        const auto line_done = [](const std::string& out) {
            const auto at = out.find(listening_at);
            return at != std::string::npos && out.find('\n', at) != std::string::npos;
        };
        if (!process.wait_for(line_done)) {
            throw std::runtime_error("demo-upstream did not start:\n" + process.output());
        }
        port = port_after(process.output(), listening_at);
    }

    static std::vector<std::string> demo_upstream_args(const std::vector<std::string>& flags) {
        std::vector<std::string> args{SWITCHYARD_BINARY, "demo-upstream"};
        args.insert(args.end(), flags.begin(), flags.end());
        return args;
    }
    static std::vector<std::string> with_demo_defaults(std::vector<std::string> env) {
        for (const std::string unset : {"DEMO_ERROR_RATE=", "DEMO_LATENCY="}) {
            if (std::none_of(env.begin(), env.end(),
                             [&](const std::string& e) { return e.starts_with(unset); })) {
                env.push_back(unset);
            }
        }
        return env;
    }

    static constexpr std::string_view listening_at = "listening on 127.0.0.1:";
    child process;
    std::uint16_t port = 0;
};

// Sends `n` GET / on one connection; the statuses in order, checking each answer's slot.
std::string statuses_of(std::uint16_t port, int n, const std::string& slot) {
    raw_client client(port);
    std::string out;
    for (int i = 0; i < n; ++i) {
        client.send(format_request("GET", "/"));
        const response r = client.read_response();
        EXPECT_EQ(r.header("X-Slot"), slot);
        EXPECT_EQ(r.body, r.status == 500 ? slot + ": failing on purpose\n" : slot + "\n");
        out += std::to_string(r.status) + " ";
    }
    return out;
}

TEST(cli, demo_upstream_fails_exactly_its_error_rate_while_health_answers_200) {
    demo_upstream_process green(
        {"--name", "green", "--listen", "127.0.0.1:0", "--error-rate", "0.5"});
    EXPECT_NE(
        green.process.output().find("demo-upstream green listening on 127.0.0.1:" +
                                    std::to_string(green.port) + " (error rate 50%, latency 0ms)"),
        std::string::npos)
        << green.process.output();
    raw_client client(green.port);
    int failed = 0;
    for (int i = 0; i < 10; ++i) {
        client.send(format_request("GET", "/"));
        const response r = client.read_response();
        EXPECT_EQ(r.header("X-Slot"), "green");
        if (r.status == 500) {
            ++failed;
            EXPECT_EQ(r.body, "green: failing on purpose\n");
        } else {
            EXPECT_EQ(r.status, 200);
            EXPECT_EQ(r.body, "green\n");
        }
        // A probe between answers: always up, and not counted in the pattern above.
        client.send(format_request("GET", "/health"));
        const response health = client.read_response();
        EXPECT_EQ(health.status, 200);
        EXPECT_EQ(health.body, "ok\n");
    }
    EXPECT_EQ(failed, 5);
    client.send(format_request("HEAD", "/health"));
    const response head = client.read_response(true);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.header("Content-Length"), "3");
    EXPECT_EQ(head.body, "");
}

TEST(cli, sighup_reloads_the_file_and_keeps_it_when_it_is_invalid) {
    upstream_server blue("blue");
    upstream_server green("green");
    upstream_server moved("moved");
    temp_dir dir;
    const std::string log = dir.file("access.log");
    const std::string config = write_config(dir, blue.port(), green.port(), "state_file: off\n");
    proxy_process proxy(config);

    // A typo on line 8: logged with its line, and nothing changes.
    write_config(dir, moved.port(), green.port(), "state_file: off\ntimeouts: { idel: 5s }\n");
    proxy.process.signal(SIGHUP);
    ASSERT_TRUE(proxy.process.wait_for([&](const std::string& out) {
        return out.find(config + ":8: timeouts.idel: unknown key") != std::string::npos;
    })) << proxy.process.output();
    EXPECT_NE(proxy.process.output().find("refused, the running configuration stays"),
              std::string::npos);
    EXPECT_EQ(get(proxy.port).body, "blue\n");

    // Blue's endpoint moves and the access log starts; the listener stays where it was.
    write_config(dir, moved.port(), green.port(),
                 "state_file: off\naccess_log: { to: " + log + " }\n");
    proxy.process.signal(SIGHUP);
    ASSERT_TRUE(proxy.process.wait_for([&](const std::string& out) {
        return out.find("changed: slots.blue.endpoints, access_log;") != std::string::npos;
    })) << proxy.process.output();
    const response r = get(proxy.port, "/after-reload");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "moved\n");
    ASSERT_TRUE(eventually([&] {
        std::ifstream in(log);
        std::stringstream text;
        text << in.rdbuf();
        return text.str().find("/after-reload") != std::string::npos;
    })) << proxy.process.output();
    EXPECT_EQ(blue.request_count(), 1U);
    proxy.process.signal(SIGTERM);
    EXPECT_EQ(proxy.process.wait(), 0) << proxy.process.output();
}

TEST(cli, routes_are_counted_on_metrics_by_name_across_a_reload) {
    upstream_server blue("blue");
    upstream_server green("green");
    temp_dir dir;
    const std::string testers =
        "  - { name: testers, match: { header: { X-Canary: \"true\" } }, to: green }\n";
    const std::string config =
        write_config(dir, blue.port(), green.port(), "state_file: off\nroutes:\n" + testers);
    proxy_process proxy(config);
    EXPECT_EQ(get(proxy.port, "/", {{"X-Canary", "true"}}).body, "green\n");
    EXPECT_EQ(get(proxy.port, "/").body, "blue\n");
    const auto scrape_has = [&](const std::string& sample) {
        return eventually([&] {
            return get(proxy.admin_port, "/metrics").body.find(sample) != std::string::npos;
        });
    };
    EXPECT_TRUE(scrape_has("switchyard_route_requests_total{route=\"testers\"} 1"));

    // A route comes before it: testers keeps its count, beta starts from 0.
    write_config(dir, blue.port(), green.port(),
                 "state_file: off\nroutes:\n"
                 "  - { name: beta, match: { cookie: { beta_user: \"true\" } }, to: green }\n" +
                     testers);
    proxy.process.signal(SIGHUP);
    ASSERT_TRUE(proxy.process.wait_for([&](const std::string& out) {
        return out.find("changed: routes") != std::string::npos;
    })) << proxy.process.output();
    EXPECT_EQ(get(proxy.port, "/", {{"Cookie", "beta_user=true"}}).body, "green\n");
    EXPECT_EQ(get(proxy.port, "/", {{"X-Canary", "true"}}).body, "green\n");
    EXPECT_TRUE(scrape_has("switchyard_route_requests_total{route=\"testers\"} 2"));
    EXPECT_TRUE(scrape_has("switchyard_route_requests_total{route=\"beta\"} 1"));
    proxy.process.signal(SIGTERM);
    EXPECT_EQ(proxy.process.wait(), 0) << proxy.process.output();
}

TEST(cli, demo_upstream_takes_its_settings_from_the_environment_unless_a_flag_is_given) {
    {
        demo_upstream_process failing({"--name", "green", "--listen", "127.0.0.1:0"},
                                      {"DEMO_ERROR_RATE=1"});
        EXPECT_EQ(statuses_of(failing.port, 10, "green"),
                  "500 500 500 500 500 500 500 500 500 500 ");
        EXPECT_EQ(get(failing.port, "/health").status, 200);
    }
    {
        demo_upstream_process overridden(
            {"--name", "green", "--listen", "127.0.0.1:0", "--error-rate", "0%"},
            {"DEMO_ERROR_RATE=1"});
        EXPECT_EQ(statuses_of(overridden.port, 10, "green"),
                  "200 200 200 200 200 200 200 200 200 200 ");
    }
    {
        demo_upstream_process slow({"--name", "blue", "--listen", "127.0.0.1:0"},
                                   {"DEMO_ERROR_RATE=20%", "DEMO_LATENCY=200ms"});
        EXPECT_NE(slow.process.output().find("(error rate 20%, latency 200ms)"), std::string::npos)
            << slow.process.output();
        // A lower bound only: the wait is at least the latency, whatever the machine's load.
        const auto start = std::chrono::steady_clock::now();
        EXPECT_EQ(get(slow.port, "/").status, 200);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
    }
}

TEST(cli, demo_upstream_exits_0_on_sigterm_and_sigint) {
    for (const int sig : {SIGTERM, SIGINT}) {
        demo_upstream_process green({"--name", "green", "--listen", "127.0.0.1:0"});
        green.process.signal(sig);
        EXPECT_EQ(green.process.wait(), 0) << green.process.output();
    }
}

TEST(cli, demo_upstream_refuses_a_bad_setting_with_exit_2_naming_it) {
    struct bad_case {
        std::vector<std::string> flags;
        std::vector<std::string> env;
        std::string named;
    };
    const std::vector<bad_case> cases{
        {{"--name", "green", "--error-rate", "2"}, {}, "--error-rate"},
        {{"--name", "green", "--latency", "1.5s"}, {}, "--latency"},
        {{"--name", "green", "--listen", "nowhere"}, {}, "--listen"},
        {{"--name", "green", "--verbose"}, {}, "--verbose"},
        {{"--name"}, {}, "--name"},
        {{"--listen", "127.0.0.1:0"}, {}, "--name is required"},
        {{"--name", "green"}, {"DEMO_ERROR_RATE=150%"}, "DEMO_ERROR_RATE"},
        {{"--name", "green"}, {"DEMO_LATENCY=fast"}, "DEMO_LATENCY"},
    };
    for (const auto& c : cases) {
        child refused(demo_upstream_process::demo_upstream_args(c.flags),
                      demo_upstream_process::with_demo_defaults(c.env));
        EXPECT_EQ(refused.wait(), 2) << c.named;
        ASSERT_TRUE(refused.wait_closed());
        // One line with the reason, then the usage.
        const std::string out = refused.output();
        const std::string reason = out.substr(0, out.find('\n'));
        EXPECT_TRUE(reason.starts_with("switchyard demo-upstream: ")) << out;
        EXPECT_NE(reason.find(c.named), std::string::npos) << out;
        EXPECT_NE(out.find("usage: switchyard demo-upstream"), std::string::npos) << out;
    }
}

}  // namespace
}  // namespace switchyard::test
