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
#include <initializer_list>
#include <type_traits>
#include <utility>

namespace chronos::cpu {

// A reference to a callable, not a copy of it (a std::function holding a lambda of more than two
// references allocates). The callable must outlive the call it is passed to, as a lambda written in
// the call does.
template <typename Signature>
class FunctionRef;
template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT(google-explicit-constructor): lambdas convert at the call
      : callable_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* c, Args... args) -> R { return (*static_cast<std::remove_reference_t<F>*>(c))(std::forward<Args>(args)...); }) {}
  R operator()(Args... args) const { return call_(callable_, std::forward<Args>(args)...); }

 private:
  void* callable_;
  R (*call_)(void*, Args...);
};

// A loop body: runs items [first, last).
using ChunkBody = FunctionRef<void(int64_t, int64_t)>;

// Runs body(first, last) over [0, n) in chunks of at least `grain` items, on the calling thread
// and up to at::get_num_threads() - 1 pool workers; returns when all of [0, n) has run. Serial when
// one chunk covers the range, with one thread, or when called while another parallel_chunks runs
// (from a worker, or from a second thread at the same time). `body` must not throw. Chunks start at
// multiples of `align`.
void parallel_chunks(int64_t n, int64_t grain, ChunkBody body, int64_t align = 1);

// One step of parallel_phases: a loop as parallel_chunks runs it.
struct Phase {
  int64_t n;
  int64_t grain;
  ChunkBody body;
  int64_t align = 1;
};

// Runs the phases in order, each over its own range as parallel_chunks would, in one pass of the
// work pool: a thread starts a phase once every chunk of the one before has run (it may read what
// they wrote). A barrier between the phases instead of a join and a fork: two loops of two units on
// two threads cost 1.4-2.9 us here beyond their work, two phases 0.9-1.8 us. A thread that has not
// woken up still holds nobody up: the others run its chunks. At most kMaxPhases phases; the same
// serial cases as parallel_chunks.
constexpr int kMaxPhases = 4;
void parallel_phases(std::initializer_list<Phase> phases);

// parallel_phases, with `caller_work` run first on the calling thread as a part of phase 0: the pool's
// threads start on phase 0's chunks meanwhile, and phase 1 starts once both are done (it may read
// what caller_work wrote). Only the calling thread runs caller_work: it may use tensors and throw;
// then no later phase runs (phase 0's chunks may have) and the exception propagates.
void parallel_phases(FunctionRef<void()> caller_work, std::initializer_list<Phase> phases);

}  // namespace chronos::cpu
