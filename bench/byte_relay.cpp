// The floor for bench/compare: a single-threaded, HTTP-unaware TCP relay.
//
//   byte_relay LISTEN_PORT UPSTREAM_PORT
//
// Each accepted client connection gets one upstream connection to 127.0.0.1:UPSTREAM_PORT, and
// bytes are copied both ways until either side closes, then both are closed. Per keep-alive
// request that is one epoll wakeup per direction and 2 reads + 2 writes: what any proxy must at
// least pay the kernel. It parses nothing, so a proxy's cost above this row is its own.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

namespace {

// One end of a relayed pair, indexed by its descriptor. `pending` holds bytes read from this end
// that its peer has not accepted yet; while it is non-empty, this end is not read (backpressure).
struct relay_end {
    int peer = -1;
    std::string pending;
};

std::vector<relay_end> ends;  // by descriptor; peer == -1 means unused
int epoll_fd = -1;

relay_end& end_of(int fd) {
    auto index = static_cast<std::size_t>(fd);
    if (index >= ends.size())
        ends.resize(index * 2 + 64);
    return ends[index];
}

[[noreturn]] void fail(const char* what) {
    std::perror(what);
    std::exit(1);
}

sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

// Readable unless backed up; writable only while the peer has bytes waiting for this end.
void update_interest(int fd, int op) {
    epoll_event ev{};
    ev.events = (end_of(fd).pending.empty() ? EPOLLIN : 0u) |
                (end_of(end_of(fd).peer).pending.empty() ? 0u : EPOLLOUT);
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd, op, fd, &ev) != 0)
        fail("epoll_ctl");
}

void close_pair(int fd) {
    int peer = end_of(fd).peer;
    for (int end : {fd, peer}) {
        end_of(end) = relay_end{};
        close(end);  // also removes it from the epoll set
    }
}

// Writes `from`'s pending bytes to its peer; false when the pair was closed.
bool flush(int from) {
    relay_end& src = end_of(from);
    while (!src.pending.empty()) {
        ssize_t n = send(src.peer, src.pending.data(), src.pending.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            close_pair(from);
            return false;
        }
        src.pending.erase(0, static_cast<std::size_t>(n));
    }
    update_interest(from, EPOLL_CTL_MOD);
    update_interest(src.peer, EPOLL_CTL_MOD);
    return true;
}

void on_readable(int fd) {
    static std::array<char, 65536> buffer;
    ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EAGAIN)
        return;  // a stale event for a reused descriptor
    if (n <= 0)
        return close_pair(fd);
    relay_end& src = end_of(fd);
    ssize_t sent = send(src.peer, buffer.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL);
    if (sent < 0 && errno == EAGAIN)
        sent = 0;
    if (sent < 0)
        return close_pair(fd);
    if (sent < n) {  // the peer is backed up: keep the rest and wait for it to drain
        src.pending.assign(buffer.data() + sent, static_cast<std::size_t>(n - sent));
        flush(fd);
    }
}

void on_accept(int listener, int upstream_port) {
    for (;;) {
        int client = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
        if (client < 0) {
            if (errno != EAGAIN && errno != ECONNABORTED)
                std::perror("accept4");
            return;
        }
        // A blocking connect: on loopback it completes at once, and it happens once per client
        // connection, not per request, so it does not weigh on the per-request figure.
        int upstream = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr = loopback(upstream_port);
        if (upstream < 0 ||
            connect(upstream, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            std::perror("connect upstream");
            close(client);
            if (upstream >= 0)
                close(upstream);
            continue;
        }
        int one = 1;
        for (int fd : {client, upstream}) {
            // Every proxy compared sets TCP_NODELAY; without it a response can wait for an ACK.
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        if (fcntl(upstream, F_SETFL, O_NONBLOCK) != 0)
            fail("fcntl");
        end_of(client).peer = upstream;
        end_of(upstream).peer = client;
        update_interest(client, EPOLL_CTL_ADD);
        update_interest(upstream, EPOLL_CTL_ADD);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s LISTEN_PORT UPSTREAM_PORT\n", argv[0]);
        return 2;
    }
    int listen_port = std::atoi(argv[1]);
    int upstream_port = std::atoi(argv[2]);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = loopback(listen_port);
    if (bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        fail("bind");
    if (listen(listener, SOMAXCONN) != 0)
        fail("listen");

    epoll_fd = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listener;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &ev) != 0)
        fail("epoll_ctl");

    std::array<epoll_event, 256> events{};
    for (;;) {
        int ready = epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), -1);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            fail("epoll_wait");
        for (const epoll_event& event : std::span(events.data(), static_cast<std::size_t>(ready))) {
            int fd = event.data.fd;
            std::uint32_t what = event.events;
            if (fd == listener) {
                on_accept(listener, upstream_port);
                continue;
            }
            relay_end& end = end_of(fd);
            if (end.peer < 0)
                continue;  // closed earlier in this batch
            // The peer's bytes drain into this end first.
            if ((what & EPOLLOUT) != 0 && !flush(end.peer))
                continue;
            if (!end.pending.empty()) {
                // Not reading while backed up; a hang-up is reported anyway and would spin.
                if ((what & (EPOLLHUP | EPOLLERR)) != 0)
                    close_pair(fd);
                continue;
            }
            // A hang-up or error still leaves bytes to read, or reads as end of stream.
            if ((what & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0)
                on_readable(fd);
        }
    }
}
