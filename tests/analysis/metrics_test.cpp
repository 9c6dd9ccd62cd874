#include "analysis/metrics.hpp"

#include <gtest/gtest.h>

#include "tests/analysis/allocations.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <thread>
#include <utility>
#include <vector>

// Counts this thread's allocations while a test asks, to prove the hot path and push() allocate
// nothing (tests/analysis/allocations.hpp, which sequential_test.cpp shares). Replacing the
// global operator new is the only way to see std::vector's allocations; it forwards to malloc,
// which the sanitizer build still checks.
using switchyard::test::allocations;
using switchyard::test::counting_allocations;

void* operator new(std::size_t n) {
    if (counting_allocations) {
        ++allocations;
    }
    if (void* p = std::malloc(n == 0 ? 1 : n)) {
        return p;
    }
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace switchyard::analysis {
namespace {

using std::chrono::microseconds;

using test::allocations_in;

std::uint64_t midpoint(std::size_t i) {
    return latency_buckets::lower(i) + (latency_buckets::upper(i) - latency_buckets::lower(i)) / 2;
}

double relative_error(double got, double want) {
    return std::abs(got - want) / want;
}

// The exact q-quantile of `sorted` under the definition quantile() uses: the ceil(q * n)-th
// value, the first for q = 0.
std::uint64_t exact_quantile(const std::vector<std::uint64_t>& sorted, double q) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

std::vector<std::uint64_t> histogram_of(const std::vector<std::uint64_t>& samples) {
    std::vector<std::uint64_t> h(latency_buckets::count, 0);
    for (const std::uint64_t v : samples) {
        ++h[latency_buckets::index(v)];
    }
    return h;
}

std::uint64_t sum(std::span<const std::uint64_t> v) {
    std::uint64_t n = 0;
    for (const std::uint64_t x : v) {
        n += x;
    }
    return n;
}

// A record without an upstream time (aggregate initialisation would name every member).
request_record record(std::uint16_t status, upstream_failure failure, microseconds latency,
                      std::uint64_t bytes_in, std::uint64_t bytes_out) {
    request_record r;
    r.status = status;
    r.failure = failure;
    r.latency = latency;
    r.bytes_in = bytes_in;
    r.bytes_out = bytes_out;
    return r;
}

request_record ok(std::uint64_t micros, std::uint16_t status = 200) {
    return record(status, upstream_failure::none, microseconds{static_cast<std::int64_t>(micros)},
                  100, 1000);
}

constexpr double quantiles[] = {0.0,  0.001, 0.01, 0.1,  0.25,  0.5,
                                0.75, 0.9,   0.95, 0.99, 0.999, 1.0};

// --- latency_buckets -------------------------------------------------------------------------

static_assert(latency_buckets::index(0) == 0);
static_assert(latency_buckets::index(31) == 31);
static_assert(latency_buckets::index(64) == 64 && latency_buckets::index(65) == 64);
static_assert(latency_buckets::lower(64) == 64 && latency_buckets::upper(64) == 66);
static_assert(latency_buckets::count == 736);

TEST(latency_buckets, are_contiguous_and_cover_the_range) {
    EXPECT_EQ(latency_buckets::lower(0), 0U);
    for (std::size_t i = 0; i < latency_buckets::count; ++i) {
        const std::uint64_t lo = latency_buckets::lower(i);
        const std::uint64_t hi = latency_buckets::upper(i);
        ASSERT_LT(lo, hi) << i;
        if (i + 1 < latency_buckets::count) {
            ASSERT_EQ(hi, latency_buckets::lower(i + 1)) << i;
        }
        ASSERT_EQ(latency_buckets::index(lo), i);
        ASSERT_EQ(latency_buckets::index(hi - 1), i);
        // HDR's promise: a bucket is at most 1/32 of its lower bound wide.
        if (lo >= latency_buckets::sub_buckets) {
            ASSERT_LE((hi - lo) * latency_buckets::sub_buckets, lo) << i;
        }
    }
    EXPECT_EQ(latency_buckets::upper(latency_buckets::count - 1), latency_buckets::max_micros + 1);
}

TEST(latency_buckets, small_values_are_exact) {
    for (std::uint64_t v = 0; v < 64; ++v) {
        const std::size_t i = latency_buckets::index(v);
        EXPECT_EQ(latency_buckets::lower(i), v);
        EXPECT_EQ(latency_buckets::upper(i), v + 1);
    }
}

TEST(latency_buckets, clamp_above_the_maximum) {
    const std::size_t last = latency_buckets::count - 1;
    EXPECT_EQ(latency_buckets::index(latency_buckets::max_micros), last);
    EXPECT_EQ(latency_buckets::index(latency_buckets::max_micros + 1), last);
    EXPECT_EQ(latency_buckets::index(std::uint64_t{1} << 40), last);
    EXPECT_EQ(latency_buckets::index(~std::uint64_t{0}), last);
}

// The precision: any value from 100 µs to 60 s is read back within 2%.
TEST(latency_buckets, midpoint_is_within_2_percent_from_100us_to_60s) {
    constexpr std::uint64_t from = 100;
    constexpr std::uint64_t to = 60'000'000;
    std::vector<double> mid(latency_buckets::count);
    for (std::size_t i = 0; i < mid.size(); ++i) {
        mid[i] = static_cast<double>(midpoint(i));
    }
    double worst = 0;
    for (std::uint64_t v = from; v <= to; ++v) {  // every value: 60 M lookups
        worst =
            std::max(worst, relative_error(mid[latency_buckets::index(v)], static_cast<double>(v)));
    }
    EXPECT_LT(worst, 0.02);
    EXPECT_LE(worst, 1.0 / 64 + 1e-12);

    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> log_value(std::log(static_cast<double>(from)),
                                                     std::log(static_cast<double>(to)));
    for (int n = 0; n < 1'000'000; ++n) {
        const auto v = static_cast<std::uint64_t>(std::exp(log_value(rng)));
        ASSERT_LT(relative_error(mid[latency_buckets::index(v)], static_cast<double>(v)), 0.02)
            << v;
    }
}

// --- quantile --------------------------------------------------------------------------------

TEST(quantile, of_an_empty_histogram_is_zero) {
    const std::vector<std::uint64_t> h(latency_buckets::count, 0);
    EXPECT_EQ(quantile(h, 0.5), microseconds{0});
    EXPECT_EQ(quantile({}, 0.5), microseconds{0});
}

TEST(quantile, picks_the_ceil_rank_and_is_exact_below_64us) {
    // Ten values 1..10 µs: p0 is the first, p50 the 5th, p51 the 6th, p100 the last.
    std::vector<std::uint64_t> samples;
    for (std::uint64_t v = 1; v <= 10; ++v) {
        samples.push_back(v);
    }
    const auto h = histogram_of(samples);
    EXPECT_EQ(quantile(h, 0.0), microseconds{1});
    EXPECT_EQ(quantile(h, 0.1), microseconds{1});
    EXPECT_EQ(quantile(h, 0.11), microseconds{2});
    EXPECT_EQ(quantile(h, 0.5), microseconds{5});
    EXPECT_EQ(quantile(h, 0.51), microseconds{6});
    EXPECT_EQ(quantile(h, 1.0), microseconds{10});
}

TEST(quantile, reads_the_bucket_midpoint) {
    const auto h = histogram_of({1'000'000});  // bucket [999424, 1015808)
    const std::size_t i = latency_buckets::index(1'000'000);
    EXPECT_EQ(quantile(h, 0.5), microseconds{static_cast<std::int64_t>(midpoint(i))});
}

// --- metrics_shard ---------------------------------------------------------------------------

struct distribution {
    const char* name;
    std::vector<std::uint64_t> samples;
};

std::uint64_t clamp_micros(double v) {
    return static_cast<std::uint64_t>(std::clamp(v, 100.0, 60'000'000.0));
}

std::vector<distribution> distributions() {
    constexpr int n = 200'000;
    std::mt19937_64 rng(7);
    std::vector<distribution> out;

    distribution uniform{"uniform 100 us..2 s", {}};
    std::uniform_int_distribution<std::uint64_t> flat(100, 2'000'000);
    for (int i = 0; i < n; ++i) {
        uniform.samples.push_back(flat(rng));
    }
    out.push_back(std::move(uniform));

    distribution lognormal{"lognormal, median 2 ms", {}};
    std::lognormal_distribution<double> tail(std::log(2000.0), 1.2);
    for (int i = 0; i < n; ++i) {
        lognormal.samples.push_back(clamp_micros(tail(rng)));
    }
    out.push_back(std::move(lognormal));

    // 90% fast around 800 µs, 10% slow around 250 ms: p95 and p99 land in the second mode.
    distribution bimodal{"bimodal 800 us / 250 ms", {}};
    std::normal_distribution<double> fast(800, 150);
    std::normal_distribution<double> slow(250'000, 40'000);
    std::bernoulli_distribution is_slow(0.1);
    for (int i = 0; i < n; ++i) {
        bimodal.samples.push_back(clamp_micros(is_slow(rng) ? slow(rng) : fast(rng)));
    }
    out.push_back(std::move(bimodal));

    distribution spread{"log-uniform 100 us..60 s", {}};
    std::uniform_real_distribution<double> log_value(std::log(100.0), std::log(60'000'000.0));
    for (int i = 0; i < n; ++i) {
        spread.samples.push_back(clamp_micros(std::exp(log_value(rng))));
    }
    out.push_back(std::move(spread));
    return out;
}

TEST(metrics_shard, quantiles_are_within_2_percent_of_exact) {
    for (distribution& d : distributions()) {
        auto shard = std::make_unique<metrics_shard>();
        for (const std::uint64_t v : d.samples) {
            shard->request_finished(0, ok(v));
        }
        const metrics_shard* shards[] = {shard.get()};
        const slot_totals t = merge(shards)[0];
        ASSERT_EQ(t.requests(), d.samples.size());

        std::sort(d.samples.begin(), d.samples.end());
        for (const double q : quantiles) {
            const std::uint64_t exact = exact_quantile(d.samples, q);
            const auto got = static_cast<double>(quantile(t.duration.buckets, q).count());
            EXPECT_LT(relative_error(got, static_cast<double>(exact)), 0.02)
                << d.name << " q=" << q << " exact=" << exact << " got=" << got;
        }
    }
}

TEST(metrics_shard, counts_status_failure_bytes_and_latency) {
    auto shard = std::make_unique<metrics_shard>();
    shard->request_finished(1, ok(150, 200));
    shard->request_finished(1, ok(250, 404));
    shard->request_finished(1, record(502, upstream_failure::connect, microseconds{3000}, 10, 20));
    shard->request_finished(1, record(0, upstream_failure::timeout, microseconds{5000}, 10, 0));
    shard->request_finished(1, record(200, upstream_failure::reset, microseconds{100}, 10, 5));
    shard->request_finished(1, record(504, upstream_failure::protocol, microseconds{7}, 1, 2));
    shard->request_finished(1, ok(10, 99));   // not a status: counted as none sent
    shard->request_finished(1, ok(10, 600));  // likewise
    shard->request_finished(1, ok(10, 100));
    shard->request_finished(1, ok(10, 599));
    shard->request_finished(
        1, record(200, upstream_failure::none, microseconds{-5}, 0, 0));  // clock bug

    const metrics_shard* shards[] = {shard.get()};
    const auto totals = merge(shards);
    const slot_totals& t = totals[1];
    EXPECT_EQ(t.by_status[200 - 100], 3U);
    EXPECT_EQ(t.by_status[404 - 100], 1U);
    EXPECT_EQ(t.by_status[502 - 100], 1U);
    EXPECT_EQ(t.by_status[504 - 100], 1U);
    EXPECT_EQ(t.by_status[0], 1U);
    EXPECT_EQ(t.by_status[499], 1U);
    EXPECT_EQ(t.no_status, 3U);
    EXPECT_EQ(t.failures, (std::array<std::uint64_t, 4>{1, 1, 1, 1}));
    EXPECT_EQ(t.failed_without_5xx, 2U);  // the timeout with no answer, the reset after a 200
    EXPECT_EQ(t.requests(), 11U);
    // 502, 504, 599, the timeout and the reset: each failed request once.
    EXPECT_EQ(t.errors(), 5U);
    EXPECT_EQ(t.bytes_in, 100U * 6 + 10 + 10 + 10 + 1 + 0);
    EXPECT_EQ(t.bytes_out, 1000U * 6 + 20 + 0 + 5 + 2 + 0);
    EXPECT_EQ(sum(t.duration.buckets), 11U);
    EXPECT_EQ(t.duration.count(), 11U);
    EXPECT_EQ(t.duration.buckets[0], 1U);  // the negative duration
    EXPECT_EQ(t.duration.sum_micros, 150U + 250 + 3000 + 5000 + 100 + 7 + 10 * 4);
    EXPECT_EQ(t.upstream.count(), 0U);    // no record carried an upstream time
    EXPECT_EQ(totals[0].requests(), 0U);  // the other slot saw nothing
    EXPECT_EQ(sum(totals[0].duration.buckets), 0U);
}

TEST(metrics_shard, upstream_time_has_a_histogram_of_its_own) {
    auto shard = std::make_unique<metrics_shard>();
    request_record slow_client = ok(900'000);         // a slow client: 900 ms in all
    slow_client.upstream_time = microseconds{2'000};  // of which the upstream took 2 ms
    shard->request_finished(0, slow_client);
    shard->request_finished(0, record(502, upstream_failure::connect, microseconds{3000}, 0, 0));

    const metrics_shard* shards[] = {shard.get()};
    const slot_totals t = merge(shards)[0];
    EXPECT_EQ(t.duration.count(), 2U);
    EXPECT_EQ(t.duration.sum_micros, 903'000U);
    EXPECT_EQ(t.upstream.count(), 1U);  // the failed connect has no upstream time
    EXPECT_EQ(t.upstream.buckets[latency_buckets::index(2'000)], 1U);
    EXPECT_EQ(t.upstream.sum_micros, 2'000U);
}

TEST(metrics_shard, in_flight_is_started_minus_finished) {
    auto a = std::make_unique<metrics_shard>();
    auto b = std::make_unique<metrics_shard>();
    for (int i = 0; i < 5; ++i) {
        a->request_started(0);
    }
    for (int i = 0; i < 3; ++i) {
        a->request_finished(0, ok(1000));
    }
    b->request_started(0);
    b->request_started(1);
    b->request_finished(1, ok(1000));
    const metrics_shard* shards[] = {a.get(), b.get()};
    const auto totals = merge(shards);
    EXPECT_EQ(totals[0].in_flight, 3U);
    EXPECT_EQ(totals[1].in_flight, 0U);
}

TEST(metrics_shard, tunnels_open_and_total_merge_across_shards) {
    auto a = std::make_unique<metrics_shard>();
    auto b = std::make_unique<metrics_shard>();
    a->tunnel_opened(0);
    a->tunnel_opened(0);
    a->tunnel_closed(0);
    b->tunnel_opened(0);
    b->tunnel_opened(1);
    b->tunnel_closed(1);
    const metrics_shard* shards[] = {a.get(), b.get()};
    const auto totals = merge(shards);
    EXPECT_EQ(totals[0].tunnels_open, 2U);
    EXPECT_EQ(totals[0].tunnels_total, 3U);
    EXPECT_EQ(totals[1].tunnels_open, 0U);
    EXPECT_EQ(totals[1].tunnels_total, 1U);
    EXPECT_EQ(totals[0].requests(), 0U);  // a tunnel is not a request of its own
}

TEST(metrics_shard, merge_of_shards_equals_one_shard) {
    std::vector<std::unique_ptr<metrics_shard>> shards;
    for (int i = 0; i < 4; ++i) {
        shards.push_back(std::make_unique<metrics_shard>());
    }
    auto all = std::make_unique<metrics_shard>();
    std::mt19937_64 rng(3);
    std::uniform_int_distribution<std::uint16_t> status(0, 650);
    std::uniform_int_distribution<int> failure(0, 4);
    std::uniform_int_distribution<std::uint64_t> micros(0, 100'000'000);
    std::uniform_int_distribution<std::uint64_t> bytes(0, 1 << 20);
    for (int n = 0; n < 100'000; ++n) {
        const auto slot = static_cast<slot_index>(n % 2);
        request_record r =
            record(status(rng), static_cast<upstream_failure>(failure(rng)),
                   microseconds{static_cast<std::int64_t>(micros(rng))}, bytes(rng), bytes(rng));
        if (n % 3 != 0) {
            r.upstream_time = microseconds{static_cast<std::int64_t>(micros(rng))};
        }
        metrics_shard& one = *shards[static_cast<std::size_t>(n) % shards.size()];
        one.request_started(slot);
        all->request_started(slot);
        if ((n / 2) % 10 != 0) {  // leave one in ten of each slot in flight
            one.request_finished(slot, r);
            all->request_finished(slot, r);
        }
    }
    std::vector<const metrics_shard*> views;
    for (const auto& s : shards) {
        views.push_back(s.get());
    }
    const metrics_shard* single[] = {all.get()};
    const auto merged = merge(views);
    const auto expected = merge(single);
    for (std::size_t s = 0; s < slot_count; ++s) {
        const slot_totals& m = merged[s];
        const slot_totals& e = expected[s];
        EXPECT_EQ(m.by_status, e.by_status);
        EXPECT_EQ(m.no_status, e.no_status);
        EXPECT_EQ(m.failures, e.failures);
        EXPECT_EQ(m.failed_without_5xx, e.failed_without_5xx);
        EXPECT_EQ(m.bytes_in, e.bytes_in);
        EXPECT_EQ(m.bytes_out, e.bytes_out);
        EXPECT_EQ(m.in_flight, e.in_flight);
        EXPECT_EQ(m.in_flight, 5'000U);
        EXPECT_EQ(m.duration.buckets, e.duration.buckets);
        EXPECT_EQ(m.duration.sum_micros, e.duration.sum_micros);
        EXPECT_EQ(m.upstream.buckets, e.upstream.buckets);
        EXPECT_EQ(m.upstream.sum_micros, e.upstream.sum_micros);
        EXPECT_EQ(m.requests(), 45'000U);
        EXPECT_EQ(m.errors(), e.errors());
    }
}

TEST(metrics_shard, recording_does_not_allocate) {
    auto shard = std::make_unique<metrics_shard>();
    const std::size_t n = allocations_in([&] {
        for (std::uint64_t i = 0; i < 1000; ++i) {
            shard->request_started(0);
            shard->request_finished(0,
                                    record(502, upstream_failure::reset, microseconds{1000}, 1, 2));
        }
    });
    EXPECT_EQ(n, 0U);
}

// A reader merging while the worker records never sees a count go down, and once the worker
// stops it sees every record. Run it under the sanitizer build too.
TEST(metrics_shard, concurrent_reader_sees_growing_counts_and_ends_exact) {
    constexpr std::uint64_t records = 1'000'000;
    auto shard = std::make_unique<metrics_shard>();
    std::atomic<bool> done{false};
    std::thread worker([&] {
        for (std::uint64_t i = 0; i < records; ++i) {
            const auto slot = static_cast<slot_index>(i & 1U);
            shard->request_started(slot);
            shard->request_finished(slot, ok(100 + i % 5000, i % 100 < 2 ? 503 : 200));
        }
        done.store(true, std::memory_order_release);
    });

    const metrics_shard* shards[] = {shard.get()};
    per_slot<std::uint64_t> requests{};
    per_slot<std::uint64_t> in_histogram{};
    per_slot<std::uint64_t> bytes{};
    std::uint64_t reads = 0;
    const auto check = [&] {
        const auto totals = merge(shards);
        for (std::size_t s = 0; s < slot_count; ++s) {
            const std::uint64_t r = totals[s].requests();
            const std::uint64_t h = sum(totals[s].duration.buckets);
            ASSERT_GE(r, requests[s]);
            ASSERT_GE(h, in_histogram[s]);
            ASSERT_GE(totals[s].bytes_in, bytes[s]);
            requests[s] = r;
            in_histogram[s] = h;
            bytes[s] = totals[s].bytes_in;
        }
        ++reads;
    };
    while (!done.load(std::memory_order_acquire)) {
        check();
        if (::testing::Test::HasFatalFailure()) {
            break;
        }
    }
    worker.join();
    check();
    const auto totals = merge(shards);
    for (std::size_t s = 0; s < slot_count; ++s) {
        EXPECT_EQ(totals[s].requests(), records / 2);
        EXPECT_EQ(sum(totals[s].duration.buckets), records / 2);
        EXPECT_EQ(totals[s].errors(), records / 100);
        EXPECT_EQ(totals[s].bytes_in, records / 2 * 100);
        EXPECT_EQ(totals[s].in_flight, 0U);
    }
    RecordProperty("reads_during_writes", static_cast<int>(reads));
}

// --- difference and metrics_window ----------------------------------------------------------

request_record with_upstream(std::uint64_t micros, std::uint16_t status = 200) {
    request_record r = ok(micros * 3, status);  // the client side took longer; not judged
    r.upstream_time = microseconds{static_cast<std::int64_t>(micros)};
    return r;
}

TEST(difference, is_what_the_totals_gained) {
    auto shard = std::make_unique<metrics_shard>();
    const metrics_shard* shards[] = {shard.get()};
    shard->request_finished(1, with_upstream(500));
    const auto before = merge(shards);
    shard->request_finished(1, with_upstream(1000));
    shard->request_finished(1, with_upstream(2000, 503));
    shard->request_finished(1, record(0, upstream_failure::timeout, microseconds{1}, 0, 0));
    const auto after = merge(shards);

    const slot_window w = difference(after[1], before[1]);
    EXPECT_EQ(w.requests, 3U);
    EXPECT_EQ(w.errors, 2U);
    EXPECT_DOUBLE_EQ(w.error_rate(), 2.0 / 3.0);
    EXPECT_DOUBLE_EQ(w.success_rate(), 1.0 / 3.0);
    EXPECT_EQ(w.upstream_latency, histogram_of({1000, 2000}));  // upstream time only
    EXPECT_EQ(w.upstream_quantile(1.0), quantile(histogram_of({2000}), 0.5));
    EXPECT_EQ(difference(after[0], before[0]).requests, 0U);
}

TEST(difference, of_a_shrinking_total_counts_nothing) {
    auto shard = std::make_unique<metrics_shard>();
    const metrics_shard* shards[] = {shard.get()};
    shard->request_finished(0, with_upstream(500, 500));
    const auto more = merge(shards);
    const slot_totals none;  // a shard went away
    const slot_window w = difference(none, more[0]);
    EXPECT_EQ(w.requests, 0U);
    EXPECT_EQ(w.errors, 0U);
    EXPECT_EQ(w.error_rate(), 0.0);
    EXPECT_EQ(sum(w.upstream_latency), 0U);
}

TEST(metrics_window, first_push_only_sets_the_baseline) {
    auto shard = std::make_unique<metrics_shard>();
    for (int i = 0; i < 50; ++i) {
        shard->request_finished(0, with_upstream(1000));
    }
    const metrics_shard* shards[] = {shard.get()};
    metrics_window w;
    w.push(100, merge(shards));
    EXPECT_EQ(w.over(0, 0, 1000).stats.requests, 0U);
    EXPECT_EQ(w.over(0, 0, 1000).seconds, 0);
    EXPECT_EQ(w.over(0, 0, 1000).stats.upstream_quantile(0.99), microseconds{0});

    shard->request_finished(0, with_upstream(2000));
    w.push(101, merge(shards));
    const auto got = w.over(0, 101, 102);
    EXPECT_EQ(got.stats.requests, 1U);
    EXPECT_EQ(got.seconds, 1);
    EXPECT_EQ(got.stats.upstream_quantile(0.5), quantile(histogram_of({2000}), 0.5));
}

// 100 seconds of random traffic on two shards; the last 30 s of the window equal what those
// 30 s recorded: counts exactly, quantiles exactly as a histogram of those samples reads them,
// and within 2% of the exact sorted quantiles.
TEST(metrics_window, over_the_last_30_of_100_seconds_equals_what_they_recorded) {
    auto a = std::make_unique<metrics_shard>();
    auto b = std::make_unique<metrics_shard>();
    const metrics_shard* shards[] = {a.get(), b.get()};
    std::mt19937_64 rng(11);
    std::uniform_int_distribution<int> per_second(0, 3000);
    std::lognormal_distribution<double> latency(std::log(5000.0), 1.0);
    std::uniform_int_distribution<int> outcome(0, 99);

    struct second_log {
        std::vector<std::uint64_t> samples;  // upstream times
        std::uint64_t requests = 0;
        std::uint64_t errors = 0;
    };
    std::vector<per_slot<second_log>> seconds;
    metrics_window w;
    constexpr std::int64_t start = 5000;
    w.push(start, merge(shards));
    for (int t = 1; t <= 100; ++t) {
        auto& log = seconds.emplace_back();
        for (int n = per_second(rng); n > 0; --n) {
            const auto slot = static_cast<slot_index>(outcome(rng) < 90 ? 0 : 1);
            const std::uint64_t micros = clamp_micros(latency(rng));
            const int o = outcome(rng);
            request_record r = with_upstream(micros);
            if (o < 2) {
                r.status = 503;
            } else if (o < 4) {
                r = record(502, upstream_failure::connect, microseconds{1}, 0, 0);
            } else if (o < 5) {
                r = record(0, upstream_failure::timeout, microseconds{1}, 0, 0);
            }
            (n % 2 == 0 ? *a : *b).request_finished(slot, r);
            if (r.upstream_time) {
                log[slot].samples.push_back(micros);
            }
            log[slot].requests += 1;
            log[slot].errors += o < 5 ? 1 : 0;
        }
        w.push(start + t, merge(shards));
    }

    for (const std::int64_t span : {1, 30, 100}) {
        for (slot_index slot = 0; slot < slot_count; ++slot) {
            std::vector<std::uint64_t> samples;
            std::uint64_t requests = 0;
            std::uint64_t errors = 0;
            for (std::size_t t = seconds.size() - static_cast<std::size_t>(span);
                 t < seconds.size(); ++t) {
                const auto& s = seconds[t][slot];
                samples.insert(samples.end(), s.samples.begin(), s.samples.end());
                requests += s.requests;
                errors += s.errors;
            }
            const auto got = w.over(slot, start + 101 - span, start + 101);
            EXPECT_EQ(got.seconds, span);
            ASSERT_EQ(got.stats.requests, requests) << span;
            EXPECT_EQ(got.stats.errors, errors) << span;
            EXPECT_DOUBLE_EQ(got.rate(), static_cast<double>(requests) / static_cast<double>(span));
            const auto h = histogram_of(samples);
            std::sort(samples.begin(), samples.end());
            for (const double q : {0.5, 0.9, 0.95, 0.99, 0.999}) {
                const microseconds value = got.stats.upstream_quantile(q);
                EXPECT_EQ(value, quantile(h, q));
                const auto exact = static_cast<double>(exact_quantile(samples, q));
                EXPECT_LT(relative_error(static_cast<double>(value.count()), exact), 0.02)
                    << "span " << span << " q " << q;
            }
        }
    }
    // Asking for more than is held gives what is held.
    EXPECT_EQ(w.over(0, 0, start + 1000).stats.requests,
              w.over(0, start + 1, start + 101).stats.requests);
}

// Builds cumulative totals by hand: `requests` 200s at `micros` and `errors` 500s.
void add(slot_totals& t, std::uint64_t requests, std::uint64_t errors, std::uint64_t micros) {
    t.by_status[200 - 100] += requests - errors;
    t.by_status[500 - 100] += errors;
    t.upstream.buckets[latency_buckets::index(micros)] += requests;
}

TEST(metrics_window, a_late_push_leaves_a_gap_and_says_how_long_its_traffic_took) {
    metrics_window w;
    per_slot<slot_totals> totals;
    w.push(10, totals);
    add(totals[0], 10, 0, 100);
    w.push(11, totals);
    add(totals[0], 90, 3, 100);  // what seconds 12, 13 and 14 added, seen late at 14
    w.push(14, totals);

    EXPECT_EQ(w.over(0, 12, 14).stats.requests, 0U);  // the gap holds nothing
    EXPECT_EQ(w.over(0, 12, 14).seconds, 0);
    const auto late = w.over(0, 14, 15);
    EXPECT_EQ(late.stats.requests, 90U);
    EXPECT_EQ(late.stats.errors, 3U);
    EXPECT_EQ(late.seconds, 3);
    EXPECT_DOUBLE_EQ(late.rate(), 30.0);
    const auto all = w.over(0, 0, 100);
    EXPECT_EQ(all.stats.requests, 100U);
    EXPECT_EQ(all.seconds, 4);
    EXPECT_DOUBLE_EQ(all.rate(), 25.0);
}

TEST(metrics_window, a_second_pushed_twice_adds_up_and_the_past_is_ignored) {
    metrics_window w;
    per_slot<slot_totals> totals;
    w.push(10, totals);
    add(totals[1], 5, 1, 100);
    w.push(11, totals);
    add(totals[1], 7, 0, 100);
    w.push(11, totals);
    add(totals[1], 100, 100, 100);
    w.push(9, totals);  // back in time: ignored, and the next push still counts those 100
    EXPECT_EQ(w.over(1, 11, 12).stats.requests, 12U);
    EXPECT_EQ(w.over(1, 11, 12).seconds, 1);
    EXPECT_EQ(w.over(1, 0, 11).stats.requests, 0U);
    w.push(12, totals);
    EXPECT_EQ(w.over(1, 12, 13).stats.requests, 100U);
}

TEST(metrics_window, keeps_the_last_600_seconds) {
    metrics_window w;
    per_slot<slot_totals> totals;
    w.push(0, totals);
    for (std::uint64_t t = 1; t <= 700; ++t) {  // second t adds t requests, t % 3 errors
        add(totals[0], t, t % 3, t);
        add(totals[1], 1, 0, 100);
        w.push(static_cast<std::int64_t>(t), totals);
    }
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    for (std::uint64_t t = 101; t <= 700; ++t) {
        requests += t;
        errors += t % 3;
    }
    EXPECT_EQ(w.over(0, 101, 701).stats.requests, requests);
    EXPECT_EQ(w.over(0, 101, 701).stats.errors, errors);
    EXPECT_EQ(w.over(0, 0, 701).stats.requests, requests);  // older seconds were overwritten
    EXPECT_EQ(w.over(0, 0, 701).seconds, 600);
    EXPECT_EQ(w.over(0, 700, 701).stats.requests, 700U);
    EXPECT_EQ(w.over(0, 700, 701).stats.upstream_quantile(0.5),
              microseconds{static_cast<std::int64_t>(midpoint(latency_buckets::index(700)))});
    EXPECT_EQ(w.over(1, 101, 701).stats.requests, 600U);
    EXPECT_EQ(w.over(1, 101, 701).stats.upstream_quantile(0.99),
              microseconds{101});  // bucket [100, 102)
}

TEST(metrics_window, a_shrinking_total_counts_nothing) {
    metrics_window w;
    per_slot<slot_totals> totals;
    add(totals[0], 100, 10, 1000);
    w.push(1, totals);
    per_slot<slot_totals> fewer;  // a shard went away
    add(fewer[0], 50, 5, 1000);
    w.push(2, fewer);
    EXPECT_EQ(w.over(0, 2, 3).stats.requests, 0U);
    EXPECT_EQ(w.over(0, 2, 3).stats.errors, 0U);
    EXPECT_EQ(w.over(0, 2, 3).stats.upstream_quantile(0.5), microseconds{0});
}

TEST(metrics_window, push_does_not_allocate_after_the_baseline) {
    auto shard = std::make_unique<metrics_shard>();
    const metrics_shard* shards[] = {shard.get()};
    metrics_window w;
    w.push(0, merge(shards));
    for (int t = 1; t <= 700; ++t) {
        shard->request_finished(0, with_upstream(static_cast<std::uint64_t>(100 + t)));
        const auto totals = merge(shards);  // merge allocates; push must not
        EXPECT_EQ(allocations_in([&] { w.push(t, totals); }), 0U);
    }
}

TEST(metrics_window, holds_600_seconds_in_under_5_mib) {
    metrics_window w(600);
    const metrics_shard shard;
    const metrics_shard* shards[] = {&shard};
    w.push(0, merge(shards));
    EXPECT_LE(w.memory_bytes(), std::size_t{5} << 20);
    RecordProperty("memory_bytes", static_cast<int>(w.memory_bytes()));
}

}  // namespace
}  // namespace switchyard::analysis
