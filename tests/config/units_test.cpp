#include "config/units.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>

namespace switchyard::config {
namespace {

using namespace std::chrono_literals;

TEST(parse_duration, accepts_every_unit) {
    EXPECT_EQ(parse_duration("250ms"), duration{250});
    EXPECT_EQ(parse_duration("2s"), duration{2000});
    EXPECT_EQ(parse_duration("5m"), duration{5 * 60 * 1000});
    EXPECT_EQ(parse_duration("1h"), duration{60 * 60 * 1000});
    EXPECT_EQ(parse_duration("0s"), duration{0});
    EXPECT_EQ(parse_duration("0ms"), duration{0});
}

TEST(parse_duration, bare_zero_is_zero_but_other_bare_numbers_are_not_durations) {
    EXPECT_EQ(parse_duration("0"), duration{0});
    EXPECT_EQ(parse_duration("30"), std::nullopt);
    EXPECT_EQ(parse_duration("1000"), std::nullopt);
}

TEST(parse_duration, rejects_fractions_signs_spaces_and_unknown_units) {
    for (const char* text : {"1.5s", "-1s", "+1s", " 1s", "1s ", "1 s", "s", "ms", "", "1d", "1S",
                             "1sec", "1msms", "0x10s", "1m30s"}) {
        EXPECT_EQ(parse_duration(text), std::nullopt) << text;
    }
}

TEST(parse_duration, rejects_overflow) {
    // 2^63 ms does not fit; the largest hour count that fits in int64 milliseconds does.
    EXPECT_EQ(parse_duration("9223372036854775808ms"), std::nullopt);
    EXPECT_EQ(parse_duration("99999999999999999999s"), std::nullopt);
    EXPECT_EQ(parse_duration("9223372036854775807ms"), duration{9223372036854775807LL});
    EXPECT_TRUE(parse_duration("2562047788015h").has_value());
    EXPECT_EQ(parse_duration("2562047788016h"), std::nullopt);
}

TEST(parse_size, accepts_bytes_and_binary_units) {
    EXPECT_EQ(parse_size("0"), 0u);
    EXPECT_EQ(parse_size("1024"), 1024u);
    EXPECT_EQ(parse_size("64KiB"), 64u * 1024);
    EXPECT_EQ(parse_size("10MiB"), 10u * 1024 * 1024);
    EXPECT_EQ(parse_size("1GiB"), 1024ULL * 1024 * 1024);
}

TEST(parse_size, rejects_decimal_units_fractions_and_garbage) {
    for (const char* text : {"64KB", "64kb", "64kib", "64K", "1.5MiB", "-1", "KiB", "", " 64KiB",
                             "64 KiB", "1TiB", "64B"}) {
        EXPECT_EQ(parse_size(text), std::nullopt) << text;
    }
}

TEST(parse_size, rejects_overflow) {
    EXPECT_EQ(parse_size("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(parse_size("18446744073709551616"), std::nullopt);
    EXPECT_EQ(parse_size("17179869184GiB"), std::nullopt);  // 2^34 GiB = 2^64 bytes
}

TEST(parse_rate, accepts_percent_and_fraction) {
    EXPECT_DOUBLE_EQ(*parse_rate("5%"), 0.05);
    EXPECT_DOUBLE_EQ(*parse_rate("0.05"), 0.05);
    EXPECT_DOUBLE_EQ(*parse_rate("2.5%"), 0.025);
    EXPECT_DOUBLE_EQ(*parse_rate("0"), 0.0);
    EXPECT_DOUBLE_EQ(*parse_rate("0%"), 0.0);
    EXPECT_DOUBLE_EQ(*parse_rate("1"), 1.0);
    EXPECT_DOUBLE_EQ(*parse_rate("100%"), 1.0);
}

TEST(parse_rate, rejects_values_outside_zero_to_one) {
    // "5" is the classic slip for 5%: it must not silently mean 500%.
    for (const char* text : {"5", "1.01", "101%", "-0.1", "-5%", "%", "", "5 %", "five", "nan",
                             "inf", "0.05%%", "+5%"}) {
        EXPECT_EQ(parse_rate(text), std::nullopt) << text;
    }
}

TEST(parse_address, accepts_names_ipv4_and_bracketed_ipv6) {
    EXPECT_EQ(parse_address("backend-blue:8000"), (address{"backend-blue", 8000}));
    EXPECT_EQ(parse_address("0.0.0.0:8080"), (address{"0.0.0.0", 8080}));
    EXPECT_EQ(parse_address("[::1]:8080"), (address{"::1", 8080}));
    EXPECT_EQ(parse_address("[2001:db8::7]:443"), (address{"2001:db8::7", 443}));
    EXPECT_EQ(parse_address("my_host.internal:65535"), (address{"my_host.internal", 65535}));
}

TEST(parse_address, port_zero_only_when_allowed) {
    EXPECT_EQ(parse_address("127.0.0.1:0"), std::nullopt);
    EXPECT_EQ(parse_address("127.0.0.1:0", true), (address{"127.0.0.1", 0}));
}

TEST(parse_address, rejects_malformed) {
    for (const char* text :
         {"backend:abc", "backend", "backend:", ":8080", "backend:65536", "backend:-1",
          "backend:+80", "backend:080800", "::1:8080", "[::1]", "[::1]8080", "[nothost]:80",
          "[::1:80", "10.0.0.300:80", "1.2.3:80", "back end:80", "-backend:80", "host/x:80", ""}) {
        EXPECT_EQ(parse_address(text), std::nullopt) << text;
    }
}

TEST(address, to_string_brackets_ipv6) {
    EXPECT_EQ((address{"backend", 8000}).to_string(), "backend:8000");
    EXPECT_EQ((address{"::1", 8080}).to_string(), "[::1]:8080");
    EXPECT_EQ(parse_address("[fe80::1]:9")->to_string(), "[fe80::1]:9");
}

TEST(is_loopback, recognises_loopback_hosts) {
    EXPECT_TRUE(is_loopback({"127.0.0.1", 8081}));
    EXPECT_TRUE(is_loopback({"127.1.2.3", 8081}));
    EXPECT_TRUE(is_loopback({"::1", 8081}));
    EXPECT_TRUE(is_loopback({"0:0:0:0:0:0:0:1", 8081}));
    EXPECT_TRUE(is_loopback({"::ffff:127.0.0.1", 8081}));
    EXPECT_TRUE(is_loopback({"localhost", 8081}));
    EXPECT_TRUE(is_loopback({"LocalHost", 8081}));
}

TEST(is_loopback, rejects_everything_else) {
    EXPECT_FALSE(is_loopback({"0.0.0.0", 8081}));
    EXPECT_FALSE(is_loopback({"::", 8081}));
    EXPECT_FALSE(is_loopback({"10.0.0.1", 8081}));
    EXPECT_FALSE(is_loopback({"128.0.0.1", 8081}));
    EXPECT_FALSE(is_loopback({"127.example.com", 8081}));
    EXPECT_FALSE(is_loopback({"localhost.example.com", 8081}));
    EXPECT_FALSE(is_loopback({"::ffff:10.0.0.1", 8081}));
    EXPECT_FALSE(is_loopback({"", 8081}));
}

}  // namespace
}  // namespace switchyard::config
