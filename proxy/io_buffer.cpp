#include "proxy/io_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace switchyard::proxy {

std::unique_ptr<char[]> buffer_pool::acquire() {
    if (free_.empty()) {
        return std::unique_ptr<char[]>(new char[block_bytes]);
    }
    auto block = std::move(free_.back());
    free_.pop_back();
    return block;
}

void buffer_pool::release(std::unique_ptr<char[]> block) {
    if (free_.size() < max_free_) {
        free_.push_back(std::move(block));
    }
}

void io_buffer::consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) {
        begin_ = end_ = 0;
    }
}

std::span<char> io_buffer::prepare(std::size_t limit) {
    if (end_ == capacity_ && begin_ > 0) {
        std::memmove(storage_.get(), storage_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (end_ == capacity_ && capacity_ < limit) {
        const std::size_t grown = std::min(limit, capacity_ * 2);
        std::unique_ptr<char[]> bigger(new char[grown]);
        std::memcpy(bigger.get(), storage_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
        storage_ = std::move(bigger);
        capacity_ = grown;
    }
    return {storage_.get() + end_, capacity_ - end_};
}

void io_buffer::borrow(buffer_pool& pool) {
    if (storage_ == nullptr) {
        storage_ = pool.acquire();
        capacity_ = buffer_pool::block_bytes;
        begin_ = end_ = 0;
    }
}

void io_buffer::give_back(buffer_pool& pool) {
    if (storage_ == nullptr || size() != 0) {
        return;
    }
    if (capacity_ == buffer_pool::block_bytes) {
        pool.release(std::move(storage_));
    }
    storage_.reset();
    capacity_ = 0;
    begin_ = end_ = 0;
}

}  // namespace switchyard::proxy
