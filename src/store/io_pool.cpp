#include "store/io_pool.h"

#include <xxhash.h>

#include "chronos/core/error.h"
#include "chronos/core/log.h"

namespace chronos {

SsdThrottleClock::Clock::time_point SsdThrottleClock::reserve(uint64_t bytes) {
  const auto now = Clock::now();
  const auto latency = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(throttle_.latency_ms));
  if (throttle_.mbps <= 0) return now + latency;
  const auto transfer = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(static_cast<double>(bytes) / (throttle_.mbps * 1e6)));
  std::lock_guard<std::mutex> lock(mutex_);
  const auto start = std::max(now + latency, bus_free_);
  bus_free_ = start + transfer;
  return bus_free_;
}

bool SsdThrottleClock::sleep_until(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  return !cv_.wait_until(lock, deadline, [&] { return stopped_; });
}

void SsdThrottleClock::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
  }
  cv_.notify_all();
}

IoPool::IoPool(std::vector<std::unique_ptr<SsdFile>> files, int threads, SsdThrottle throttle, ReadScheduler& scheduler)
    : files_(std::move(files)), throttle_(throttle), scheduler_(scheduler) {
  if (threads < 1) throw InvalidArgument(cat("IoPool: threads must be >= 1 (got ", threads, ")"));
  threads_.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) threads_.emplace_back([this] { loop(); });
}

IoPool::~IoPool() { stop(); }

void IoPool::stop() {
  throttle_.stop();
  for (auto& thread : threads_)
    if (thread.joinable()) thread.join();
}

ReadOutcome IoPool::run(const ReadJob& job, uint64_t& bytes) {
  ReadOutcome outcome(job.targets.size());
  const SsdFile& file = *files_.at(static_cast<size_t>(job.file));
  std::vector<ReadSpan> spans;
  uint64_t total = 0, needed = 0;
  for (const ReadTarget& t : job.targets) {
    spans.push_back({t.buffer, t.read_length});
    needed = total + t.length;  // the last expert's padding may be missing at the end of the file
    total += t.read_length;
  }
  const auto earliest = throttle_.enabled() ? throttle_.reserve(total) : SsdThrottleClock::Clock::time_point{};
  try {
    bytes += file.read(spans, job.offset, needed);
    uint64_t offset = job.offset;
    for (size_t i = 0; i < job.targets.size(); ++i) {
      const ReadTarget& t = job.targets[i];
      if (XXH3_64bits(t.buffer, t.length) != t.checksum)
        outcome[i] = cat("checksum mismatch in cluster file ", file.path(), " for expert ", t.key.name(), " at offset ", offset,
                         " (the file changed after it was opened, or the read was corrupted)");
      offset += t.read_length;
    }
  } catch (const IoError& e) {
    for (auto& message : outcome) message = e.what();
  }
  if (throttle_.enabled()) throttle_.sleep_until(earliest);
  return outcome;
}

void IoPool::loop() {
  ReadJob job;
  while (scheduler_.next_read(job)) {
    uint64_t bytes = 0;
    ReadOutcome outcome;
    try {
      outcome = run(job, bytes);
    } catch (const std::exception& e) {  // never let an exception end the thread: report it
      outcome.assign(job.targets.size(), cat("read failed: ", e.what()));
    }
    scheduler_.read_finished(job, outcome, bytes);
  }
}

}  // namespace chronos
