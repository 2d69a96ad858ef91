// The decode kernels' parallel loop: every item runs exactly once, whatever the size, grain and
// thread count, also with several callers at once and from inside a loop.
#include "model/work_pool.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

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

}  // namespace
}  // namespace chronos
