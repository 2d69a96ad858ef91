// The expert store's SSD readers: N threads, each asking a ReadScheduler (the store) for the next
// read, performing it against the cluster files (O_DIRECT preadv into aligned host slots), checking
// every expert's XXH3-64 checksum, and reporting the outcome back. Picking the next read when a
// thread becomes free, not when the request arrives, is what lets priorities and cancellation act
// late. The simulated SSD (SsdThrottle) sleeps here, interruptibly, so shutdown never waits on it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chronos/store/expert_key.h"
#include "chronos/store/offload_config.h"
#include "store/ssd_file.h"

namespace chronos {

// Latency and a shared bandwidth timeline: a read of n bytes reserved at time t completes no
// earlier than max(t + latency, end of the previous transfer) + n / bandwidth.
class SsdThrottleClock {
 public:
  using Clock = std::chrono::steady_clock;

  explicit SsdThrottleClock(SsdThrottle throttle) : throttle_(throttle) {}
  bool enabled() const { return throttle_.enabled(); }
  // Reserves a read of `bytes` starting now; returns the earliest time it may complete.
  Clock::time_point reserve(uint64_t bytes);
  // Sleeps until `deadline`; returns early (false) once stop() was called.
  bool sleep_until(Clock::time_point deadline);
  void stop();

 private:
  SsdThrottle throttle_;
  std::mutex mutex_;
  std::condition_variable cv_;
  Clock::time_point bus_free_{};  // when the shared bandwidth timeline is next free
  bool stopped_ = false;
};

// One expert of a read: where its bytes go and how to check them.
struct ReadTarget {
  ExpertKey key;
  void* buffer = nullptr;    // host slot, 4 KiB aligned
  uint64_t length = 0;       // bytes of the expert (checksummed)
  uint64_t read_length = 0;  // bytes read (length rounded up to 4 KiB)
  uint64_t checksum = 0;     // XXH3-64 of the `length` bytes
};

// One positional read: a contiguous run of one cluster file's experts.
struct ReadJob {
  int32_t file = -1;              // index into the pool's files
  uint64_t offset = 0;            // of the first target
  std::vector<ReadTarget> targets;  // back to back in the file
};

// Per target: empty when its bytes arrived and matched their checksum, else the error message.
using ReadOutcome = std::vector<std::string>;

class ReadScheduler {
 public:
  virtual ~ReadScheduler() = default;
  // Blocks until there is a read to do (fills `job`, returns true) or the pool stops (false).
  virtual bool next_read(ReadJob& job) = 0;
  // Called once per job on the same thread after the read, with the bytes that came from the file.
  virtual void read_finished(const ReadJob& job, const ReadOutcome& outcome, uint64_t bytes) = 0;
};

class IoPool {
 public:
  // Starts `threads` readers over `files`. The scheduler must outlive the pool.
  IoPool(std::vector<std::unique_ptr<SsdFile>> files, int threads, SsdThrottle throttle, ReadScheduler& scheduler);
  // Stops and joins (see stop()).
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  // Interrupts throttle sleeps and joins the threads. The scheduler's next_read must return false
  // by then (the store sets its own stop flag and wakes its readers before calling this).
  void stop();

  const SsdFile& file(int32_t index) const { return *files_.at(static_cast<size_t>(index)); }
  size_t num_files() const { return files_.size(); }
  int threads() const { return static_cast<int>(threads_.size()); }

  // Performs one job (read, checksum, throttle) on the calling thread; returns the outcome and
  // adds the bytes read to `bytes`. Used by the threads; public for tests and benchmarks.
  ReadOutcome run(const ReadJob& job, uint64_t& bytes);

 private:
  void loop();

  std::vector<std::unique_ptr<SsdFile>> files_;
  SsdThrottleClock throttle_;
  ReadScheduler& scheduler_;
  std::vector<std::thread> threads_;
};

}  // namespace chronos
