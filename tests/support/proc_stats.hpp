#pragma once
// What a process holds and spends, read from /proc: the leak checks count its sockets, the
// descriptor tests its descriptors and CPU time.

#include <sys/types.h>

#include <chrono>
#include <cstddef>

namespace switchyard::test {

// The descriptors of process `pid` (0: this process) that are sockets, of any kind and state.
std::size_t open_sockets(pid_t pid = 0);
// Every descriptor of process `pid` (0: this process).
std::size_t open_descriptors(pid_t pid = 0);
// The CPU time process `pid` has used so far, user and system, all threads.
std::chrono::microseconds cpu_time(pid_t pid);

}  // namespace switchyard::test
