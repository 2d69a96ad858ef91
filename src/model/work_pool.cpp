#include "model/work_pool.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace chronos::cpu {
namespace {

// A worker's wait for the next loop: pause instructions for kPauseFor, then yields of its core, then
// sleep after kSpinFor. A token's loops come some microseconds apart, with gaps of tens between
// layers; a worker that has gone to sleep misses the next loops (the caller runs them alone and pays
// the wake-up call), and one that only pauses takes, beside a busy process, the time slices the caller
// needs, where a yield hands them over. int8, medians of interleaved runs, tokens/s quiet / beside one
// busy core: pause 28 us then sleep: base 282 / 211, fine 925 / 774; pause 200 us: 286 / 138, 1051 /
// 570; pause 30 us, yield to 200 us: 304 / 187, 1272 / 828. Timed, not counted: a pause instruction
// lasts 3 to 40 ns by CPU.
constexpr auto kPauseFor = std::chrono::microseconds(30);
constexpr auto kSpinFor = std::chrono::microseconds(200);
// The caller's wait for chunks that other threads claimed, in pause instructions before it yields.
constexpr int kSpinsBeforeYield = 1 << 10;
// Chunks per thread: a running thread takes over the chunks of a parked one. 4 decoded 10-15%
// slower on a quiet machine than 2 (more claims on the shared word), and no faster on a busy one.
constexpr int64_t kChunksPerThread = 2;
constexpr int64_t kMaxChunks = 0xffff;

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// The loop in progress is one atomic word: generation (32 bits) | chunks (16) | next chunk (16).
// A thread claims chunk `next` of generation g by a compare-and-swap on the whole word, so a worker
// that read an older generation can never claim a chunk of a newer loop.
constexpr uint64_t pack(uint32_t generation, int64_t chunks, int64_t next) {
  return (static_cast<uint64_t>(generation) << 32) | (static_cast<uint64_t>(chunks) << 16) | static_cast<uint64_t>(next);
}
constexpr uint32_t generation_of(uint64_t s) { return static_cast<uint32_t>(s >> 32); }

class WorkPool {
 public:
  using Body = std::function<void(int64_t, int64_t)>;

  // Never destroyed (see instance()): its threads are parked on the condition variable at exit.
  static WorkPool& instance() {
    static WorkPool* pool = new WorkPool();
    return *pool;
  }

  // Whether this thread may start a loop now (false: another loop runs, or this is a worker).
  bool try_begin() { return !is_worker_ && !busy_.exchange(true, std::memory_order_acquire); }

  void run(int64_t n, int64_t chunk, int64_t chunks, int workers, const Body& body) {
    resize(workers);
    n_ = n;
    chunk_ = chunk;
    body_.store(&body, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    const uint32_t generation = ++generation_;
    state_.store(pack(generation, chunks, 0), std::memory_order_seq_cst);  // publishes the fields above
    if (sleeping_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      cv_.notify_all();
    }
    work(generation);
    // Chunks other threads claimed and are still running; nobody waits for a thread that claimed nothing.
    for (int spins = 0; done_.load(std::memory_order_acquire) < chunks; ++spins) {
      if (spins < kSpinsBeforeYield) relax();
      else std::this_thread::yield();
    }
    busy_.store(false, std::memory_order_release);
  }

 private:
  WorkPool() = default;

  // Claims and runs chunks of `generation` until none is left.
  void work(uint32_t generation) {
    uint64_t s = state_.load(std::memory_order_acquire);
    while (generation_of(s) == generation) {
      const int64_t chunks = static_cast<int64_t>((s >> 16) & 0xffff), next = static_cast<int64_t>(s & 0xffff);
      if (next >= chunks) return;
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      // The loop cannot end before this chunk is done, so its body and sizes are still valid.
      const int64_t first = next * chunk_, last = std::min(n_, first + chunk_);
      (*body_.load(std::memory_order_relaxed))(first, last);
      done_.fetch_add(1, std::memory_order_release);
      s = state_.load(std::memory_order_acquire);
    }
  }

  void loop() {
    is_worker_ = true;
    uint32_t seen = generation_of(state_.load(std::memory_order_acquire));
    while (true) {
      uint64_t s = state_.load(std::memory_order_acquire);
      const auto start = std::chrono::steady_clock::now();
      bool yielding = false;  // past kPauseFor; the clock is read every 64 pauses and at every yield
      for (int spins = 1; generation_of(s) == seen && !stop_.load(std::memory_order_relaxed); ++spins) {
        const bool check = yielding || spins % 64 == 0;
        const auto waited = check ? std::chrono::steady_clock::now() - start : std::chrono::steady_clock::duration::zero();
        if (waited < kSpinFor) {
          yielding = yielding || waited >= kPauseFor;
          if (yielding) std::this_thread::yield();
          else relax();
          s = state_.load(std::memory_order_acquire);
          continue;
        }
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        cv_.wait(lock, [&] {
          s = state_.load(std::memory_order_seq_cst);
          return generation_of(s) != seen || stop_.load(std::memory_order_relaxed);
        });
        sleeping_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (stop_.load(std::memory_order_relaxed)) return;
      seen = generation_of(s);
      work(seen);
    }
  }

  // Called with the pool busy and no loop running: every worker is waiting for a new generation.
  void resize(int workers) {
    if (static_cast<int>(threads_.size()) == workers) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true, std::memory_order_relaxed);
      cv_.notify_all();
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    stop_.store(false, std::memory_order_relaxed);
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { loop(); });
  }

  std::atomic<uint64_t> state_{0};
  std::atomic<const Body*> body_{nullptr};
  int64_t n_ = 0, chunk_ = 0;  // written before state_ is published, read after a claim
  std::atomic<int64_t> done_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  uint32_t generation_ = 0;  // the caller's (under busy_)
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
  static thread_local bool is_worker_;
};

thread_local bool WorkPool::is_worker_ = false;

}  // namespace

void parallel_chunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  const int threads = std::max(1, at::get_num_threads());
  const int64_t chunks = std::min<int64_t>({n / std::max<int64_t>(grain, 1), threads * kChunksPerThread, kMaxChunks});
  WorkPool& pool = WorkPool::instance();
  if (threads == 1 || chunks <= 1 || !pool.try_begin()) {
    body(0, n);
    return;
  }
  const int64_t chunk = (n + chunks - 1) / chunks;
  pool.run(n, chunk, (n + chunk - 1) / chunk, threads - 1, body);
}

}  // namespace chronos::cpu
