// Holds idle keep-alive connections open against a proxy, for bench/compare's memory figure.
//
//   hold_connections PORT COUNT
//
// Opens COUNT connections to 127.0.0.1:PORT; each sends one `GET /` and reads the whole answer
// (headers and a Content-Length body), then stays open and idle. At most `window` connections
// are being set up at a time, so that the proxy's listen backlog never overflows (a dropped SYN
// costs a one-second retransmit). Prints "ready" once every connection has had its answer, then
// waits for end of input on stdin (or a signal), and on the way out prints "open N": how many of
// the connections the proxy still had open, so a proxy that dropped idle connections shows.
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t window = 64;
constexpr std::string_view request = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

struct held_connection {
    int fd = -1;
    std::string response;  // cleared once complete, so idle connections cost this tool nothing
};

[[noreturn]] void fail(const char* what) {
    std::perror(what);
    std::exit(1);
}

// True once `response` holds a status line, headers and the Content-Length body they announce.
bool complete(const std::string& response) {
    std::size_t end = response.find("\r\n\r\n");
    if (end == std::string::npos)
        return false;
    std::string headers = response.substr(0, end);
    std::transform(headers.begin(), headers.end(), headers.begin(), [](char c) {
        return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    });
    std::size_t at = headers.find("\r\ncontent-length:");
    std::size_t length = 0;
    if (at != std::string::npos) {
        length = std::strtoul(headers.c_str() + at + 17, nullptr, 10);
    }
    return response.size() >= end + 4 + length;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s PORT COUNT\n", argv[0]);
        return 2;
    }
    int port = std::atoi(argv[1]);
    auto count = static_cast<std::size_t>(std::atol(argv[2]));

    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    int epoll_fd = epoll_create1(0);
    if (epoll_fd < 0)
        fail("epoll_create1");
    std::vector<held_connection> held(count);
    std::size_t opened = 0;
    std::size_t answered = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);

    // A blocking connect and write are fine here: loopback, and the window keeps the backlog
    // short. Only the read of the answer waits on the proxy, so only it goes through epoll.
    auto open_next = [&] {
        held_connection& c = held[opened];
        c.fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c.fd < 0)
            fail("socket");
        if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
            fail("connect");
        if (send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size())) {
            fail("send");
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = opened;
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c.fd, &ev) != 0)
            fail("epoll_ctl");
        ++opened;
    };

    std::array<epoll_event, 256> events{};
    std::array<char, 4096> buffer{};
    while (answered < count) {
        while (opened < count && opened - answered < window)
            open_next();
        if (std::chrono::steady_clock::now() > deadline) {
            std::fprintf(stderr, "hold_connections: only %zu of %zu answered after 60 s\n",
                         answered, count);
            return 1;
        }
        int ready = epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 1000);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            fail("epoll_wait");
        for (const epoll_event& event : std::span(events.data(), static_cast<std::size_t>(ready))) {
            held_connection& c = held[event.data.u64];
            ssize_t n = recv(c.fd, buffer.data(), buffer.size(), 0);
            if (n <= 0) {
                std::fprintf(stderr, "hold_connections: connection %zu closed before its answer\n",
                             static_cast<std::size_t>(event.data.u64));
                return 1;
            }
            c.response.append(buffer.data(), static_cast<std::size_t>(n));
            if (complete(c.response)) {
                if (c.response.compare(0, 12, "HTTP/1.1 200") != 0) {
                    std::fprintf(stderr, "hold_connections: unexpected answer: %.40s\n",
                                 c.response.c_str());
                    return 1;
                }
                c.response = std::string{};
                ++answered;
                // Idle from here on: no longer watched, so a held connection is only its socket.
                epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
            }
        }
    }
    std::puts("ready");
    std::fflush(stdout);

    // Idle until stdin reaches end of input.
    while (read(STDIN_FILENO, buffer.data(), buffer.size()) > 0) {
    }

    // A connection the proxy closed reads as end of stream (or an error); an open one would block.
    std::size_t still_open = 0;
    for (const held_connection& c : held) {
        pollfd p{c.fd, POLLIN, 0};
        if (poll(&p, 1, 0) == 0)
            ++still_open;
    }
    std::printf("open %zu\n", still_open);
    return 0;
}
