#include "model/work_pool.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "chronos/core/error.h"

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
// A thread's wait for chunks that other threads claimed (the end of a loop or of a phase), in pause
// instructions before it yields.
constexpr int kSpinsBeforeYield = 1 << 10;
// Chunks per thread: a running thread takes over the chunks of a parked one. 4 decoded 5-15% slower
// on a quiet machine than 2, and no faster on a busy one.
constexpr int64_t kChunksPerThread = 2;

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// One chunk's claim and completion: the generation of the loop that last claimed it and the last that
// finished it. Generations only grow (no wrap in centuries of loops), so "claimed < g" means free in
// loop g. A loop stamps the chunk slots it leaves unused as claimed and done when it starts, so after
// loop g every slot carries g or more: a thread still holding an older generation (or reading a newer
// loop's chunk counts) can never claim a chunk of a newer loop, and its waits for "done >= g" pass. On
// its own cache line: a chunk is claimed and finished by its owner, and only a thief's claim or a wait
// for it moves the line to another core.
struct alignas(64) ChunkState {
  std::atomic<uint64_t> claimed{0};
  std::atomic<uint64_t> done{0};
};

// Each participant (the caller 0, worker i as i + 1) owns a run of adjacent chunks of each phase, runs
// it in order, claiming each chunk on a line no other core has touched, then takes over the chunks of
// threads that have not reached them (a parked or late worker's), from the end; then it waits until
// every chunk of the phase is done and goes on to the next. A loop in the common case moves few cache
// lines between cores: the caller's announcement, the completion of the worker's chunks and, between
// phases, each side's. A thread's rows stay one sequential stream: with one shared counter, claims
// alternated between the threads (chunks 0 and 2 on one, 1 and 3 on the other), and each chunk
// started a new stream for the hardware prefetcher; one chunk a thread ran 3-5% faster than that, and
// this order 2-4% (int8, base.json and fine.json, tokens paired one by one), with a parked thread's
// share still taken over in halves.
class WorkPool {
 public:
  // Never destroyed (see instance()): its threads are parked on the condition variable at exit.
  static WorkPool& instance() {
    static WorkPool* pool = new WorkPool();
    return *pool;
  }

  // Whether this thread may start a loop now (false: another loop runs, or this is a worker).
  bool try_begin() { return !is_worker_ && !busy_.exchange(true, std::memory_order_acquire); }
  void end() { busy_.store(false, std::memory_order_release); }

  // The phases' ranges cut into chunks, as parallel_chunks and parallel_phases ask; under busy_.
  struct Cut {
    int64_t n, chunk, chunks;
    const ChunkBody* body;
  };

  // Runs the phases; with `caller_work`, the calling thread runs it first, as a chunk of phase 0
  // that only it claims (the slot after phase 0's chunks).
  void run(const Cut* cuts, int phases, int workers, const FunctionRef<void()>* caller_work = nullptr) {
    resize(workers);
    const uint64_t generation = ++generation_;
    const int64_t slots = slots_per_phase();
    for (int p = 0; p < kMaxPhases; ++p) {
      int64_t chunks = p < phases ? cuts[p].chunks : 0;
      if (p == 0 && caller_work) {
        state(0, chunks).claimed.store(generation, std::memory_order_relaxed);  // the caller's, claimed
        ++chunks;
      }
      if (p < phases) {
        cuts_[p] = cuts[p];
        chunks_[p].store(chunks, std::memory_order_relaxed);
      }
      for (int64_t c = chunks; c < slots; ++c) {
        ChunkState& unused = state(p, c);
        unused.claimed.store(generation, std::memory_order_relaxed);
        unused.done.store(generation, std::memory_order_relaxed);
      }
    }
    phases_.store(phases, std::memory_order_relaxed);
    announced_.store(generation, std::memory_order_seq_cst);  // publishes the fields above
    if (sleeping_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      cv_.notify_all();
    }
    if (caller_work) {
      ChunkState& own = state(0, cuts[0].chunks);
      try {
        (*caller_work)();
      } catch (...) {
        cancel(generation, phases);
        own.done.store(generation, std::memory_order_release);
        wait_all(generation, phases);
        throw;
      }
      own.done.store(generation, std::memory_order_release);
    }
    work(generation, 0);
  }

 private:
  WorkPool() = default;

  // A phase's chunks and the slot of the caller's own work after them.
  int64_t slots_per_phase() const { return static_cast<int64_t>(threads_.size() + 1) * kChunksPerThread + 1; }
  ChunkState& state(int p, int64_t c) { return states_[static_cast<size_t>(p * slots_per_phase() + c)]; }

  // Claims chunk c of phase p for `generation`; false when it is taken (in this loop, or the loop
  // has ended).
  bool claim(int p, int64_t c, uint64_t generation) {
    std::atomic<uint64_t>& claimed = state(p, c).claimed;
    uint64_t seen = claimed.load(std::memory_order_relaxed);
    while (seen < generation)
      if (claimed.compare_exchange_weak(seen, generation, std::memory_order_acq_rel, std::memory_order_relaxed)) return true;
    return false;
  }

  // Runs the chunk just claimed: the loop cannot end (nor its phase) before it is done, so the
  // phase's fields are still this loop's.
  void run_chunk(int p, int64_t c, uint64_t generation) {
    const Cut& cut = cuts_[p];
    const int64_t first = c * cut.chunk, last = std::min(cut.n, first + cut.chunk);
    (*cut.body)(first, last);
    state(p, c).done.store(generation, std::memory_order_release);
  }

  // After the caller's work threw: every chunk nobody has claimed yet, later phases first (no other
  // thread can be past phase 0 before the caller's own chunk is done), is marked done unrun.
  void cancel(uint64_t generation, int phases) {
    for (int p = phases - 1; p >= 0; --p) {
      const int64_t chunks = chunks_[p].load(std::memory_order_relaxed);
      for (int64_t c = 0; c < chunks; ++c)
        if (claim(p, c, generation)) state(p, c).done.store(generation, std::memory_order_release);
    }
  }

  // Waits until every chunk of phase p is done.
  void wait_phase(uint64_t generation, int p) {
    const int64_t chunks = std::min(chunks_[p].load(std::memory_order_relaxed), slots_per_phase());
    for (int64_t c = 0; c < chunks; ++c) {
      for (int spins = 0; state(p, c).done.load(std::memory_order_acquire) < generation; ++spins) {
        if (spins < kSpinsBeforeYield) relax();
        else std::this_thread::yield();
      }
    }
  }

  void wait_all(uint64_t generation, int phases) {
    for (int p = 0; p < phases; ++p) wait_phase(generation, p);
  }

  // Participant p's share of loop `generation`, phase by phase: its own run of chunks in order, then
  // whatever others left unclaimed, from the last (which their owners reach last), then the wait for
  // the chunks others are running. A worker late for a loop claims nothing of it and waits for nothing.
  void work(uint64_t generation, int participant) {
    const int64_t participants = static_cast<int64_t>(threads_.size()) + 1;
    const int phases = phases_.load(std::memory_order_relaxed);
    for (int p = 0; p < phases && p < kMaxPhases; ++p) {
      const int64_t chunks = std::min(chunks_[p].load(std::memory_order_relaxed), slots_per_phase());
      const int64_t own_first = (participant * chunks + participants - 1) / participants;
      const int64_t own_last = ((participant + 1) * chunks + participants - 1) / participants;
      for (int64_t c = own_first; c < own_last; ++c)
        if (claim(p, c, generation)) run_chunk(p, c, generation);
      for (int64_t c = chunks - 1; c >= 0; --c)
        if ((c < own_first || c >= own_last) && claim(p, c, generation)) run_chunk(p, c, generation);
      wait_phase(generation, p);
    }
  }

  // `seen`: the last loop before this worker was started. It takes part in the loop that started it
  // (the states of a loop it comes too late for carry that loop's generation: it claims nothing).
  void loop(int participant, uint64_t seen) {
    is_worker_ = true;
    while (true) {
      uint64_t word = announced_.load(std::memory_order_acquire);
      const auto start = std::chrono::steady_clock::now();
      bool yielding = false;  // past kPauseFor; the clock is read every 64 pauses and at every yield
      for (int spins = 1; word == seen && !stop_.load(std::memory_order_relaxed); ++spins) {
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
          return word != seen || stop_.load(std::memory_order_relaxed);
        });
        sleeping_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (stop_.load(std::memory_order_relaxed)) return;
      seen = word;
      work(seen, participant);
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
    states_ = std::vector<ChunkState>(static_cast<size_t>(kMaxPhases * ((workers + 1) * kChunksPerThread + 1)));
    stop_.store(false, std::memory_order_relaxed);
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i, seen = generation_] { loop(i + 1, seen); });
  }

  std::atomic<uint64_t> announced_{0};  // the generation of the loop in progress (or the last one)
  // The loop's phases: their count and chunk counts, read by a worker before it claims (atomics: a late
  // worker may read the next loop's), and their cuts, read only after a claim.
  std::atomic<int> phases_{0};
  std::atomic<int64_t> chunks_[kMaxPhases] = {};
  Cut cuts_[kMaxPhases] = {};
  std::vector<ChunkState> states_;  // [phase][slot]
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

// Phase p of a loop with `threads` threads cut into chunks (its whole range in one when it is too
// small to split).
WorkPool::Cut cut(const Phase& phase, int threads) {
  const int64_t chunks = std::min<int64_t>({phase.n / std::max<int64_t>(phase.grain, 1), threads * kChunksPerThread});
  if (chunks <= 1) return {phase.n, std::max<int64_t>(phase.n, 1), phase.n > 0 ? 1 : 0, &phase.body};
  const int64_t align = std::max<int64_t>(phase.align, 1);
  const int64_t chunk = ((phase.n + chunks - 1) / chunks + align - 1) / align * align;
  return {phase.n, chunk, (phase.n + chunk - 1) / chunk, &phase.body};
}

}  // namespace

void parallel_chunks(int64_t n, int64_t grain, ChunkBody body, int64_t align) {
  parallel_phases({Phase{n, grain, body, align}});
}

namespace {

void run_phases(const FunctionRef<void()>* caller_work, std::initializer_list<Phase> phases) {
  if (phases.size() > static_cast<size_t>(kMaxPhases))
    throw InvalidArgument(cat("parallel_phases: ", phases.size(), " phases, at most ", kMaxPhases));
  const int threads = std::max(1, at::get_num_threads());
  WorkPool::Cut cuts[kMaxPhases];
  int count = 0;
  bool any_split = caller_work != nullptr && phases.size() > 0 && phases.begin()->n > 0;
  for (const Phase& phase : phases) {
    cuts[count] = cut(phase, threads);
    any_split = any_split || cuts[count].chunks > 1;
    ++count;
  }
  WorkPool& pool = WorkPool::instance();
  if (threads == 1 || !any_split || !pool.try_begin()) {
    if (caller_work) (*caller_work)();
    for (const Phase& phase : phases)
      if (phase.n > 0) phase.body(0, phase.n);
    return;
  }
  struct End {
    WorkPool& pool;
    ~End() { pool.end(); }
  } end{pool};
  pool.run(cuts, count, threads - 1, caller_work);
}

}  // namespace

void parallel_phases(std::initializer_list<Phase> phases) { run_phases(nullptr, phases); }

void parallel_phases(FunctionRef<void()> caller_work, std::initializer_list<Phase> phases) {
  if (phases.size() == 0) throw InvalidArgument("parallel_phases: caller work without a phase 0");
  run_phases(&caller_work, phases);
}

}  // namespace chronos::cpu
