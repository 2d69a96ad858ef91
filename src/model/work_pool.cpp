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
// Chunks per thread: a running thread takes over the chunks of a parked one. 4 decoded 5-15% slower
// on a quiet machine than 2, and no faster on a busy one.
constexpr int64_t kChunksPerThread = 2;
constexpr int64_t kMaxChunks = 0xffff;

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// One chunk's claim and completion: the generation of the loop that last claimed it and the last that
// finished it. Generations only grow (48 bits, no wrap in centuries of loops), so "claimed < g" means
// free in loop g, and a thread still holding an older generation can never claim a chunk of a newer
// loop. On its own cache line: a chunk is claimed and finished by its owner, and only a thief's claim
// or the caller's wait for it moves the line to another core.
struct alignas(64) ChunkState {
  std::atomic<uint64_t> claimed{0};
  std::atomic<uint64_t> done{0};
};

// Each participant (the caller 0, worker i as i + 1) owns a run of adjacent chunks, runs it in order,
// claiming each chunk on a line no other core has touched, then takes over the chunks of threads that
// have not reached them (a parked or late worker's), from the end. A loop in the common case moves
// few cache lines between cores: the caller's announcement and the completion of the worker's
// chunks. A thread's rows stay one sequential stream: with one shared counter, claims alternated
// between the threads (chunks 0 and 2 on one, 1 and 3 on the other), and each chunk started a new
// stream for the hardware prefetcher; one chunk a thread ran 3-5% faster than that, and this order
// 2-4% (int8, base.json and fine.json, tokens paired one by one), with a parked thread's share still
// taken over in halves.
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
    body_ = &body;
    const uint64_t generation = ++generation_;
    announced_.store(announce(generation, chunks), std::memory_order_seq_cst);  // publishes the fields above
    if (sleeping_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      cv_.notify_all();
    }
    work(generation, chunks, 0);
    // Chunks other threads claimed and are still running.
    for (int64_t c = 0; c < chunks; ++c) {
      for (int spins = 0; states_[static_cast<size_t>(c)].done.load(std::memory_order_acquire) != generation; ++spins) {
        if (spins < kSpinsBeforeYield) relax();
        else std::this_thread::yield();
      }
    }
    busy_.store(false, std::memory_order_release);
  }

 private:
  WorkPool() = default;

  // Claims chunk c for `generation`; false when it is taken (in this loop, or the loop has ended).
  bool claim(int64_t c, uint64_t generation) {
    std::atomic<uint64_t>& claimed = states_[static_cast<size_t>(c)].claimed;
    uint64_t seen = claimed.load(std::memory_order_relaxed);
    while (seen < generation)
      if (claimed.compare_exchange_weak(seen, generation, std::memory_order_acq_rel, std::memory_order_relaxed)) return true;
    return false;
  }

  // Runs the chunk just claimed: the loop cannot end before it is done, so its fields are still valid.
  void run_chunk(int64_t c, uint64_t generation) {
    const int64_t first = c * chunk_, last = std::min(n_, first + chunk_);
    (*body_)(first, last);
    states_[static_cast<size_t>(c)].done.store(generation, std::memory_order_release);
  }

  // Participant p's share of loop `generation`: its own run of chunks in order, then whatever others
  // left unclaimed, from the last (which their owners reach last). A worker late for a loop that has
  // ended claims nothing: every chunk of it carries its generation or a newer one.
  void work(uint64_t generation, int64_t chunks, int p) {
    const int64_t participants = static_cast<int64_t>(threads_.size()) + 1;
    const int64_t own_first = (p * chunks + participants - 1) / participants;
    const int64_t own_last = ((p + 1) * chunks + participants - 1) / participants;
    for (int64_t c = own_first; c < own_last; ++c)
      if (claim(c, generation)) run_chunk(c, generation);
    for (int64_t c = chunks - 1; c >= 0; --c)
      if ((c < own_first || c >= own_last) && claim(c, generation)) run_chunk(c, generation);
  }

  void loop(int p) {
    is_worker_ = true;
    uint64_t seen = announced_.load(std::memory_order_acquire) >> 16;
    while (true) {
      uint64_t word = announced_.load(std::memory_order_acquire);
      const auto start = std::chrono::steady_clock::now();
      bool yielding = false;  // past kPauseFor; the clock is read every 64 pauses and at every yield
      for (int spins = 1; word >> 16 == seen && !stop_.load(std::memory_order_relaxed); ++spins) {
        const bool check = yielding || spins % 64 == 0;
        const auto waited = check ? std::chrono::steady_clock::now() - start : std::chrono::steady_clock::duration::zero();
        if (waited < kSpinFor) {
          yielding = yielding || waited >= kPauseFor;
          if (yielding) std::this_thread::yield();
          else relax();
          word = announced_.load(std::memory_order_acquire);
          continue;
        }
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        cv_.wait(lock, [&] {
          word = announced_.load(std::memory_order_seq_cst);
          return word >> 16 != seen || stop_.load(std::memory_order_relaxed);
        });
        sleeping_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (stop_.load(std::memory_order_relaxed)) return;
      seen = word >> 16;
      work(seen, static_cast<int64_t>(word & 0xffff), p);
    }
  }

  // Called with the pool busy and no loop running. The chunk states change only here, with every
  // worker joined (a late worker may still read them after its loop has ended); their generations
  // stay below every later loop's.
  void resize(int workers) {
    if (static_cast<int>(threads_.size()) == workers) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true, std::memory_order_relaxed);
      cv_.notify_all();
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    states_ = std::vector<ChunkState>(static_cast<size_t>((workers + 1) * kChunksPerThread));
    stop_.store(false, std::memory_order_relaxed);
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { loop(i + 1); });
  }

  // The loop in progress (or the last one): its generation << 16 | its chunk count.
  static uint64_t announce(uint64_t generation, int64_t chunks) { return generation << 16 | static_cast<uint64_t>(chunks); }
  std::atomic<uint64_t> announced_{0};
  const Body* body_ = nullptr;  // these three: written before announced_ is published, read after a claim
  int64_t n_ = 0, chunk_ = 0;
  std::vector<ChunkState> states_;
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  uint64_t generation_ = 0;  // the caller's (under busy_)
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
  static thread_local bool is_worker_;
};

thread_local bool WorkPool::is_worker_ = false;

}  // namespace

void parallel_chunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body, int64_t align) {
  if (n <= 0) return;
  const int threads = std::max(1, at::get_num_threads());
  const int64_t chunks = std::min<int64_t>({n / std::max<int64_t>(grain, 1), threads * kChunksPerThread, kMaxChunks});
  WorkPool& pool = WorkPool::instance();
  if (threads == 1 || chunks <= 1 || !pool.try_begin()) {
    body(0, n);
    return;
  }
  align = std::max<int64_t>(align, 1);
  const int64_t chunk = ((n + chunks - 1) / chunks + align - 1) / align * align;
  pool.run(n, chunk, (n + chunk - 1) / chunk, threads - 1, body);
}

}  // namespace chronos::cpu
