// The parallel loop of the batch-1 decode kernels (cpu_kernels.h, the one-token attention).
//
// An OpenMP fork-join splits a range into one fixed share per thread and then waits at a barrier
// for every thread; on a machine where another process holds a core, the share of a thread the
// scheduler has parked waits for its next time slice, and decode fell below its one-thread speed.
// Here the range is cut into a few chunks per thread; each thread runs its own adjacent chunks and
// then claims the ones other threads have not started. The caller returns once every chunk has run:
// a worker that has not woken up yet claims nothing, so nobody waits for it, and the caller (or a
// worker that is running) takes over its share. Between loops a worker spins (a token's kernels come microseconds
// apart), then yields its core for a while (a busy machine's caller needs it), then sleeps.
#pragma once

#include <cstdint>
#include <functional>

namespace chronos::cpu {

// Runs body(first, last) over [0, n) in chunks of at least `grain` items, on the calling thread
// and up to at::get_num_threads() - 1 pool workers; returns when all of [0, n) has run. Serial when
// one chunk covers the range, with one thread, or when called while another parallel_chunks runs
// (from a worker, or from a second thread at the same time). `body` must not throw. Chunks start at
// multiples of `align`.
void parallel_chunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body, int64_t align = 1);

}  // namespace chronos::cpu
