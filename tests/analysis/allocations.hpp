#pragma once
// This thread's allocations while a test asks, to prove that a path allocates nothing. The
// counting operator new that bumps them is defined once per test binary, in metrics_test.cpp.

#include <cstddef>

namespace switchyard::test {

inline thread_local bool counting_allocations = false;
inline thread_local std::size_t allocations = 0;

// Allocations made by `f` on this thread.
template <typename F>
std::size_t allocations_in(F&& f) {
    allocations = 0;
    counting_allocations = true;
    f();
    counting_allocations = false;
    return allocations;
}

}  // namespace switchyard::test
