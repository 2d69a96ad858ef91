// The decode kernels' parallel loop: every item runs exactly once, whatever the size, grain and
// thread count, also with several callers at once and from inside a loop; phases run in order, each
// seeing everything the one before wrote.
#include "model/work_pool.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "chronos/core/error.h"

namespace chronos {
namespace {

// Runs one loop over n items and checks that each ran once and every chunk was at least `grain`
// long (but the last).
void expect_each_once(int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<bool> short_chunk{false};
  cpu::parallel_chunks(n, grain, [&](int64_t first, int64_t last) {
    if (last - first < grain && last != n) short_chunk = true;
    for (int64_t i = first; i < last; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "item " << i << " of " << n << ", grain " << grain;
  EXPECT_FALSE(short_chunk) << n << " items, grain " << grain;
}

class ThreadCount {
 public:
  explicit ThreadCount(int threads) : before_(at::get_num_threads()) { at::set_num_threads(threads); }
  ~ThreadCount() { at::set_num_threads(before_); }

 private:
  int before_;
};

TEST(WorkPool, RunsEveryItemOnceForAnySizeGrainAndThreadCount) {
  for (const int threads : {1, 2, 3, 5}) {
    const ThreadCount count(threads);
    SCOPED_TRACE(threads);
    for (const int64_t n : {0, 1, 2, 7, 64, 1000, 6400, 100000})
      for (const int64_t grain : {1, 3, 64, 4096}) expect_each_once(n, grain);
  }
}

TEST(WorkPool, ManyLoopsInARowReuseTheWorkers) {
  const ThreadCount count(2);
  std::vector<int64_t> sums;
  for (int loop = 0; loop < 2000; ++loop) {
    std::atomic<int64_t> sum{0};
    cpu::parallel_chunks(64 + loop % 7, 4, [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) sum += i;
    });
    const int64_t n = 64 + loop % 7;
    ASSERT_EQ(sum.load(), n * (n - 1) / 2) << "loop " << loop;
  }
}

TEST(WorkPool, ConcurrentCallersAndNestedLoopsRunSerially) {
  const ThreadCount count(2);
  std::atomic<int> failures{0};
  const auto caller = [&] {
    for (int loop = 0; loop < 300; ++loop) {
      std::vector<std::atomic<int>> hits(500);
      cpu::parallel_chunks(500, 8, [&](int64_t first, int64_t last) {
        for (int64_t i = first; i < last; ++i) {
          // A loop inside a loop runs on the thread that asked for it.
          std::atomic<int64_t> inner{0};
          cpu::parallel_chunks(10, 1, [&](int64_t a, int64_t b) { inner += b - a; });
          hits[static_cast<size_t>(i)] += inner == 10 ? 1 : 100;
        }
      });
      for (auto& h : hits)
        if (h.load() != 1) ++failures;
    }
  };
  std::thread other(caller);
  caller();
  other.join();
  EXPECT_EQ(failures.load(), 0);
}

// Phase 0 writes a[i] = i + 1, its last chunk late (another thread would be through its own chunks by
// then); phase 1 sums all of a in every chunk (each must see every write of phase 0) and writes b;
// phase 2 checks b. Every item of every phase runs once.
void expect_phases_in_order(int64_t n0, int64_t n1, int64_t grain) {
  std::vector<int64_t> a(static_cast<size_t>(n0), 0), b(static_cast<size_t>(n1), 0);
  std::vector<std::atomic<int>> hits0(static_cast<size_t>(n0)), hits1(static_cast<size_t>(n1)), hits2(static_cast<size_t>(n1));
  std::atomic<int> stale{0};
  const int64_t expected = n0 * (n0 + 1) / 2;
  cpu::parallel_phases({
      {n0, grain,
       [&](int64_t first, int64_t last) {
         if (last == n0 && first > 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
         for (int64_t i = first; i < last; ++i) {
           a[static_cast<size_t>(i)] = i + 1;
           hits0[static_cast<size_t>(i)].fetch_add(1);
         }
       }},
      {n1, grain,
       [&](int64_t first, int64_t last) {
         const int64_t sum = std::accumulate(a.begin(), a.end(), int64_t{0});
         if (sum != expected) stale.fetch_add(1);
         for (int64_t i = first; i < last; ++i) {
           b[static_cast<size_t>(i)] = sum + i;
           hits1[static_cast<size_t>(i)].fetch_add(1);
         }
       }},
      {n1, 1,
       [&](int64_t first, int64_t last) {
         for (int64_t i = first; i < last; ++i) {
           if (b[static_cast<size_t>(i)] != expected + i) stale.fetch_add(1);
           hits2[static_cast<size_t>(i)].fetch_add(1);
         }
       }},
  });
  EXPECT_EQ(stale.load(), 0) << n0 << ", " << n1 << " items, grain " << grain;
  for (const auto* hits : {&hits0, &hits1, &hits2})
    for (size_t i = 0; i < hits->size(); ++i) ASSERT_EQ((*hits)[i].load(), 1) << "item " << i << " of " << n0 << ", " << n1 << ", grain " << grain;
}

TEST(WorkPool, PhasesRunInOrderEachItemOnce) {
  for (const int threads : {1, 2, 3, 5}) {
    const ThreadCount count(threads);
    SCOPED_TRACE(threads);
    for (const int64_t n0 : {0, 1, 7, 64, 1000})
      for (const int64_t n1 : {0, 1, 9, 256})
        for (const int64_t grain : {1, 4, 64}) expect_phases_in_order(n0, n1, grain);
  }
}

TEST(WorkPool, ManyPhasedLoopsInARowAndBesideAnotherCaller) {
  const ThreadCount count(2);
  std::atomic<int> failures{0};
  const auto caller = [&] {
    for (int loop = 0; loop < 1000; ++loop) {
      std::vector<int64_t> first_phase(static_cast<size_t>(40 + loop % 5), 0);
      std::atomic<int64_t> seen{0};
      cpu::parallel_phases({
          {static_cast<int64_t>(first_phase.size()), 2,
           [&](int64_t first, int64_t last) {
             for (int64_t i = first; i < last; ++i) first_phase[static_cast<size_t>(i)] = 1;
           }},
          {4, 1,
           [&](int64_t first, int64_t last) {
             for (int64_t i = first; i < last; ++i) seen += std::accumulate(first_phase.begin(), first_phase.end(), int64_t{0});
           }},
      });
      if (seen.load() != 4 * static_cast<int64_t>(first_phase.size())) ++failures;
      // A plain loop between phased ones reuses the same chunk states.
      std::atomic<int64_t> sum{0};
      cpu::parallel_chunks(100, 3, [&](int64_t first, int64_t last) { sum += last - first; });
      if (sum.load() != 100) ++failures;
    }
  };
  caller();
  std::thread other(caller);
  caller();
  other.join();
  EXPECT_EQ(failures.load(), 0);
}

// The caller's own work runs once, on the calling thread, while phase 0 runs; phase 1 sees it.
TEST(WorkPool, CallerWorkRunsOnTheCallerBeforePhaseOne) {
  for (const int threads : {1, 2, 3}) {
    const ThreadCount count(threads);
    for (int loop = 0; loop < 200; ++loop) {
      const std::thread::id caller = std::this_thread::get_id();
      std::atomic<int> runs{0}, stale{0};
      std::thread::id ran_on;
      int64_t routed = 0;
      std::vector<std::atomic<int>> hits0(64), hits1(32);
      cpu::parallel_phases(
          [&] {
            ran_on = std::this_thread::get_id();
            std::this_thread::sleep_for(std::chrono::microseconds(loop % 3 == 0 ? 100 : 0));
            routed = 32;
            runs.fetch_add(1);
          },
          {{64, 4,
            [&](int64_t first, int64_t last) {
              for (int64_t i = first; i < last; ++i) hits0[static_cast<size_t>(i)].fetch_add(1);
            }},
           {32, 4, [&](int64_t first, int64_t last) {
              for (int64_t i = first; i < last; ++i) {
                if (routed != 32) stale.fetch_add(1);
                hits1[static_cast<size_t>(i)].fetch_add(1);
              }
            }}});
      ASSERT_EQ(runs.load(), 1);
      ASSERT_EQ(ran_on, caller);
      ASSERT_EQ(stale.load(), 0) << threads << " threads, loop " << loop;
      for (const auto* hits : {&hits0, &hits1})
        for (const auto& h : *hits) ASSERT_EQ(h.load(), 1);
    }
  }
}

// Whether a loop of two chunks ran one of them on a pool worker. The caller's chunk waits (up to 10 s)
// for the worker's to start, so that a worker the scheduler runs late (a loaded machine) still
// counts; a loop the caller runs alone waits in vain.
bool loop_shared_with_a_worker() {
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int64_t> sum{0};
  std::atomic<bool> other_thread{false};
  cpu::parallel_chunks(2, 1, [&](int64_t first, int64_t last) {
    if (std::this_thread::get_id() != caller) {
      other_thread = true;
    } else {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!other_thread.load() && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
    }
    sum += last - first;
  });
  EXPECT_EQ(sum.load(), 2);
  return other_thread.load();
}

// A worker started for a loop (a new thread count) takes part in that loop, however late it starts.
TEST(WorkPool, AWorkerStartedForALoopTakesPartInIt) {
  for (int round = 0; round < 5; ++round) {
    for (const int threads : {3, 2}) {
      const ThreadCount count(threads);
      ASSERT_TRUE(loop_shared_with_a_worker()) << threads << " threads, round " << round;
    }
  }
}

// A throw from the caller's work: no later phase runs, the exception reaches the caller, and the
// pool runs the next loops in parallel as before.
TEST(WorkPool, CallerWorkThatThrowsSkipsTheLaterPhases) {
  const ThreadCount count(2);
  for (int loop = 0; loop < 100; ++loop) {
    std::atomic<int> later{0}, first_phase{0};
    EXPECT_THROW(cpu::parallel_phases(
                     [&] {
                       std::this_thread::sleep_for(std::chrono::microseconds(loop % 2 == 0 ? 50 : 0));
                       throw InvalidArgument("routing failed");
                     },
                     {{16, 1, [&](int64_t first, int64_t last) { first_phase += static_cast<int>(last - first); }},
                      {16, 1, [&](int64_t first, int64_t last) { later += static_cast<int>(last - first); }}}),
                 InvalidArgument);
    EXPECT_EQ(later.load(), 0);
    EXPECT_LE(first_phase.load(), 16);
    // The pool is free again: the next loop runs on both threads (a worker that missed one loop
    // takes part in the next ones; a pool left busy would run both chunks on the caller).
    ASSERT_TRUE(loop_shared_with_a_worker()) << "loop " << loop << ": the worker took no part";
  }
}

TEST(WorkPool, MorePhasesThanTheLimitIsAnError) {
  const auto nothing = [](int64_t, int64_t) {};
  EXPECT_THROW(cpu::parallel_phases({{1, 1, nothing}, {1, 1, nothing}, {1, 1, nothing}, {1, 1, nothing}, {1, 1, nothing}}), InvalidArgument);
}

}  // namespace
}  // namespace chronos
