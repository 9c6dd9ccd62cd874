// Self-test of the /proc readings the leak and descriptor checks rely on.
#include "tests/support/proc_stats.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"

namespace switchyard::test {
namespace {

TEST(proc_stats, open_sockets_counts_both_ends_of_a_loopback_connection) {
    upstream_server upstream;
    const std::size_t before = open_sockets();
    {
        bare_connection client(upstream.port());
        ASSERT_TRUE(upstream.wait_for_open_connections(1));
        EXPECT_EQ(open_sockets(), before + 2);  // the client's end and the server's
    }
    ASSERT_TRUE(upstream.wait_for_open_connections(0));
    EXPECT_EQ(open_sockets(), before);
}

TEST(proc_stats, open_descriptors_counts_every_kind_and_sockets_only_sockets) {
    const std::size_t descriptors = open_descriptors();
    const std::size_t sockets = open_sockets();
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(open_descriptors(), descriptors + 1);
    EXPECT_EQ(open_sockets(), sockets);
    ::close(fd);
    EXPECT_EQ(open_descriptors(), descriptors);
    EXPECT_EQ(open_descriptors(::getpid()), descriptors);
}

TEST(proc_stats, cpu_time_grows_while_the_process_computes) {
    const auto start = cpu_time(::getpid());
    // Work until the kernel's accounting (clock ticks) shows it; bounded by wall time.
    volatile std::uint64_t sink = 0;
    const auto give_up_at = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (cpu_time(::getpid()) == start && std::chrono::steady_clock::now() < give_up_at) {
        for (int i = 0; i < 100'000; ++i) {
            sink = sink + static_cast<std::uint64_t>(i);
        }
    }
    EXPECT_GT(cpu_time(::getpid()), start);
}

}  // namespace
}  // namespace switchyard::test
