#pragma once
// Byte buffers of a connection, and the per-worker pool that lends them.

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace switchyard::proxy {

// Fixed-size blocks a worker lends to its sessions while a request is in flight, so that an idle
// keep-alive connection holds none (nginx frees its request buffers on keep-alive the same way).
// One per worker; not thread-safe. Blocks are only returned from a running session, never from a
// destructor, so the pool never outlives a caller.
class buffer_pool {
public:
    static constexpr std::size_t block_bytes = 16 * 1024;

    explicit buffer_pool(std::size_t max_free = 256) : max_free_(max_free) {}

    std::unique_ptr<char[]> acquire();
    // Keeps the block for reuse, or frees it when enough are kept.
    void release(std::unique_ptr<char[]> block);

private:
    std::vector<std::unique_ptr<char[]>> free_;
    std::size_t max_free_;
};

// A byte buffer with a read position: [begin, end) holds bytes received and not yet used. It
// holds a pool block while a request is in flight, and may grow past it to hold an unusually
// large head.
class io_buffer {
public:
    io_buffer() = default;

    bool attached() const noexcept { return storage_ != nullptr; }
    char* data() noexcept { return storage_.get() + begin_; }
    std::size_t size() const noexcept { return end_ - begin_; }
    std::string_view view() const noexcept { return {storage_.get() + begin_, end_ - begin_}; }
    std::span<char> span() noexcept { return {data(), size()}; }
    void consume(std::size_t n) noexcept;
    void clear() noexcept { begin_ = end_ = 0; }
    // Free space after the data, made by moving the data to the front or, when the buffer is
    // full, by growing it up to `limit` bytes. Empty when the buffer already holds `limit`.
    // The buffer must be attached.
    std::span<char> prepare(std::size_t limit);
    void commit(std::size_t n) noexcept { end_ += n; }

    // Takes a pool block when the buffer has none.
    void borrow(buffer_pool& pool);
    // Gives the block back when the buffer is empty (a grown block is freed instead).
    void give_back(buffer_pool& pool);

private:
    std::unique_ptr<char[]> storage_;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

}  // namespace switchyard::proxy
