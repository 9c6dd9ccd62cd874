// buffer_pool and io_buffer: blocks lent and kept, and the buffer's read position, compaction
// and growth.

#include "proxy/io_buffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace switchyard::test {
namespace {

using proxy::buffer_pool;
using proxy::io_buffer;
constexpr std::size_t block = buffer_pool::block_bytes;

// Appends `bytes` to `buf` through prepare/commit; false when prepare(limit) had no room.
bool append(io_buffer& buf, std::string_view bytes, std::size_t limit = block) {
    const auto space = buf.prepare(limit);
    if (space.size() < bytes.size()) {
        return false;
    }
    std::memcpy(space.data(), bytes.data(), bytes.size());
    buf.commit(bytes.size());
    return true;
}

// `n` bytes counting 0, 1, ... 255, 0, ...: a misplaced byte shows.
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>(i % 256);
    }
    return s;
}

// --- buffer_pool ---

TEST(buffer_pool, a_released_block_is_lent_again) {
    buffer_pool pool;
    std::unique_ptr<char[]> first = pool.acquire();
    ASSERT_NE(first, nullptr);
    char* const at = first.get();
    first[0] = 'x';
    first[block - 1] = 'y';  // a whole block is usable
    pool.release(std::move(first));
    EXPECT_EQ(pool.acquire().get(), at);
}

TEST(buffer_pool, blocks_lent_at_once_are_distinct) {
    buffer_pool pool;
    const auto one = pool.acquire();
    const auto two = pool.acquire();
    EXPECT_NE(one.get(), two.get());
}

TEST(buffer_pool, keeps_at_most_max_free_blocks_the_latest_first) {
    buffer_pool pool(2);
    auto one = pool.acquire();
    auto two = pool.acquire();
    auto three = pool.acquire();
    char* const at_one = one.get();
    char* const at_two = two.get();
    pool.release(std::move(one));
    pool.release(std::move(two));
    pool.release(std::move(three));  // over max_free: freed
    // Had the third been kept, it would come first.
    EXPECT_EQ(pool.acquire().get(), at_two);
    EXPECT_EQ(pool.acquire().get(), at_one);
}

// --- io_buffer ---

TEST(io_buffer, starts_detached_and_borrows_one_block) {
    buffer_pool pool;
    io_buffer buf;
    EXPECT_FALSE(buf.attached());
    EXPECT_EQ(buf.size(), 0U);
    buf.borrow(pool);
    EXPECT_TRUE(buf.attached());
    EXPECT_EQ(buf.size(), 0U);
    EXPECT_EQ(buf.prepare(block).size(), block);
}

TEST(io_buffer, borrowing_again_keeps_the_block_and_its_bytes) {
    buffer_pool pool;
    io_buffer buf;
    buf.borrow(pool);
    ASSERT_TRUE(append(buf, "kept"));
    const char* const at = buf.data();
    buf.borrow(pool);
    EXPECT_EQ(buf.data(), at);
    EXPECT_EQ(buf.view(), "kept");
}

TEST(io_buffer, commit_makes_bytes_readable_and_consume_moves_past_them) {
    buffer_pool pool;
    io_buffer buf;
    buf.borrow(pool);
    ASSERT_TRUE(append(buf, "GET / HTTP/1.1\r\n"));
    ASSERT_TRUE(append(buf, "Host: x\r\n\r\n"));
    EXPECT_EQ(buf.view(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(buf.size(), buf.view().size());
    EXPECT_EQ(std::string_view(buf.span().data(), buf.span().size()), buf.view());

    buf.consume(4);
    EXPECT_EQ(buf.view(), "/ HTTP/1.1\r\nHost: x\r\n\r\n");
    // Free space stays after the data: only what follows the end is offered.
    EXPECT_EQ(buf.prepare(block).size(), block - 27);
}

TEST(io_buffer, consuming_everything_rewinds_to_the_start) {
    buffer_pool pool;
    io_buffer buf;
    buf.borrow(pool);
    ASSERT_TRUE(append(buf, "abc"));
    const char* const start = buf.data();
    buf.consume(3);
    EXPECT_EQ(buf.size(), 0U);
    EXPECT_EQ(buf.prepare(block).size(), block);  // the whole block again
    ASSERT_TRUE(append(buf, "d"));
    EXPECT_EQ(buf.data(), start);
}

TEST(io_buffer, clear_drops_the_bytes_and_keeps_the_block) {
    buffer_pool pool;
    io_buffer buf;
    buf.borrow(pool);
    ASSERT_TRUE(append(buf, "abc"));
    buf.clear();
    EXPECT_EQ(buf.size(), 0U);
    EXPECT_TRUE(buf.attached());
    EXPECT_EQ(buf.prepare(block).size(), block);
}

TEST(io_buffer, a_full_buffer_moves_its_data_to_the_front_before_growing) {
    buffer_pool pool;
    io_buffer buf;
    buf.borrow(pool);
    const std::string full = pattern(block);
    ASSERT_TRUE(append(buf, full));
    EXPECT_TRUE(buf.prepare(block).empty());  // full, and at the limit
    const char* const start = buf.data();

    buf.consume(100);
    const auto space = buf.prepare(block);
    EXPECT_EQ(space.size(), 100U);  // the room before the data, now after it
    EXPECT_EQ(buf.data(), start);   // moved to the front of the same block
    EXPECT_EQ(buf.view(), std::string_view(full).substr(100));
}

TEST(io_buffer, grows_by_doubling_up_to_the_limit_keeping_the_data) {
    buffer_pool pool;
    io_buffer buf;
    buf.borrow(pool);
    const std::size_t limit = 3 * block;
    const std::string first = pattern(block);
    ASSERT_TRUE(append(buf, first, limit));

    auto space = buf.prepare(limit);
    EXPECT_EQ(space.size(), block);  // doubled to two blocks
    EXPECT_EQ(buf.view(), first);
    const std::string second(block, 's');
    ASSERT_TRUE(append(buf, second, limit));

    space = buf.prepare(limit);
    EXPECT_EQ(space.size(), block);  // two blocks would double to four: held to the limit
    ASSERT_TRUE(append(buf, std::string(block, 't'), limit));
    EXPECT_TRUE(buf.prepare(limit).empty());  // at the limit: no more room
    EXPECT_EQ(buf.size(), limit);
    EXPECT_EQ(buf.view().substr(0, block), first);
    EXPECT_EQ(buf.view().substr(block, block), second);
}

TEST(io_buffer, a_grown_buffer_moves_data_to_the_front_when_it_can) {
    buffer_pool pool;
    io_buffer buf;
    buf.borrow(pool);
    const std::size_t limit = 2 * block;
    ASSERT_TRUE(append(buf, pattern(block), limit));
    ASSERT_TRUE(append(buf, pattern(block), limit));  // grew to the limit
    buf.consume(block + 10);
    EXPECT_EQ(buf.prepare(limit).size(), block + 10);
    EXPECT_EQ(buf.view(), pattern(block).substr(10));
}

TEST(io_buffer, gives_its_block_back_only_when_empty) {
    buffer_pool pool;
    io_buffer buf;
    buf.borrow(pool);
    ASSERT_TRUE(append(buf, "pipelined"));
    const char* const block_at = buf.data();
    buf.give_back(pool);  // bytes not yet used: the block stays
    EXPECT_TRUE(buf.attached());
    EXPECT_EQ(buf.view(), "pipelined");

    buf.consume(buf.size());
    buf.give_back(pool);
    EXPECT_FALSE(buf.attached());
    EXPECT_EQ(buf.size(), 0U);
    EXPECT_EQ(pool.acquire().get(), block_at);  // back in the pool
}

TEST(io_buffer, giving_back_a_detached_buffer_does_nothing) {
    buffer_pool pool(1);
    auto kept = pool.acquire();
    char* const at = kept.get();
    pool.release(std::move(kept));
    io_buffer buf;
    buf.give_back(pool);
    EXPECT_FALSE(buf.attached());
    EXPECT_EQ(pool.acquire().get(), at);  // the pool holds what it held
}

TEST(io_buffer, a_grown_block_is_freed_not_pooled) {
    buffer_pool pool;
    // Two blocks in the pool: the buffer borrows the second, and the first shows what else the
    // pool holds afterwards.
    auto first = pool.acquire();
    auto second = pool.acquire();
    char* const at_first = first.get();
    pool.release(std::move(first));
    pool.release(std::move(second));

    io_buffer buf;
    buf.borrow(pool);
    ASSERT_TRUE(append(buf, pattern(block), 2 * block));
    ASSERT_FALSE(buf.prepare(2 * block).empty());  // grew past one block
    buf.clear();
    buf.give_back(pool);
    EXPECT_FALSE(buf.attached());
    // Only the untouched block is in the pool: the grown one would have come first.
    EXPECT_EQ(pool.acquire().get(), at_first);
}

TEST(io_buffer, borrows_again_after_giving_back) {
    buffer_pool pool;
    io_buffer buf;
    buf.borrow(pool);
    buf.give_back(pool);
    buf.borrow(pool);
    EXPECT_TRUE(buf.attached());
    ASSERT_TRUE(append(buf, "again"));
    EXPECT_EQ(buf.view(), "again");
}

}  // namespace
}  // namespace switchyard::test
