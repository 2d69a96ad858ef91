// The server's decode slots (docs/serve.md "Concurrency"): up to `slots` generations are active
// at once and one decode thread steps them in turn, one token each (fair interleaving: the model's
// batch-1 decode path serves every slot, so N active requests share its tokens/s). Requests beyond
// the slots wait in a bounded queue; beyond that they are refused (ApiError 429) or, with
// wait_when_full, the caller waits for room. A cancelled request leaves its slot before its next
// token. Where the runs share per-run state (the offload engine follows one token stream),
// `one_run_at_a_time` keeps a single run active and the others queued.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "chronos/runtime/decode_run.h"

namespace chronos {

struct SchedulerConfig {
  int slots = 1;                // active generations (--parallel)
  int max_queued = 16;          // requests waiting for a slot (--max-queue)
  bool wait_when_full = false;  // a request beyond the queue waits for room instead of a 429
  bool one_run_at_a_time = false;
  // Throws ConfigError naming the field.
  void validate() const;
};

// One request's work. Both callbacks run on the decode thread and must not throw.
struct DecodeJob {
  std::vector<int64_t> prompt;
  GenerationOptions options;
  // Each new token; false ends the run (a stop string completed): stop_reason "callback".
  std::function<bool(int64_t token)> on_token;
  // Exactly once: the result (stop_reason "cancelled" after cancel(), possibly with no tokens), or
  // the error that ended the run (result null).
  std::function<void(const GenerationResult* result, std::exception_ptr error)> on_end;
};

// Held by the request's owner; cancel() is safe from any thread.
class JobHandle {
 public:
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  std::atomic<bool> cancelled_{false};
};

struct SchedulerCounts {
  int64_t processing = 0;  // active runs
  int64_t queued = 0;      // waiting for a slot
  int64_t finished = 0;    // runs ended (any reason) since start
  int64_t cancelled = 0;   // of those, cancelled by their client
  int64_t failed = 0;      // ended by an error
  int64_t rejected = 0;    // refused with 429
};

class RequestScheduler {
 public:
  // Makes the run of a job on the decode thread (DecodeRun directly, or OffloadEngine::start).
  using RunFactory = std::function<std::unique_ptr<DecodeRun>(const std::vector<int64_t>& prompt, GenerationOptions options)>;

  RequestScheduler(SchedulerConfig config, RunFactory factory);
  // Cancels what is queued or active (their on_end runs) and joins the decode thread.
  ~RequestScheduler();
  RequestScheduler(const RequestScheduler&) = delete;
  RequestScheduler& operator=(const RequestScheduler&) = delete;

  // Queues the job. Throws ApiError 429 when the queue is full (unless wait_when_full) and 503
  // once shut down.
  std::shared_ptr<JobHandle> submit(DecodeJob job);
  SchedulerCounts counts() const;
  const SchedulerConfig& config() const { return config_; }
  // Runs stepped at once: 1 with one_run_at_a_time, else config.slots.
  int slots() const { return config_.one_run_at_a_time ? 1 : config_.slots; }
  // Cancels everything and stops the decode thread (the destructor calls it).
  void shutdown();

 private:
  struct Entry {
    DecodeJob job;
    std::shared_ptr<JobHandle> handle;
    std::unique_ptr<DecodeRun> run;
  };
  void loop();
  // Runs one token of `entry`; true when the run has ended (its on_end called).
  bool advance(Entry& entry);
  void end(Entry& entry, const GenerationResult* result, std::exception_ptr error);

  SchedulerConfig config_;
  RunFactory factory_;
  mutable std::mutex mutex_;
  std::condition_variable work_;   // the decode thread waits for jobs
  std::condition_variable room_;   // submitters wait for queue room (wait_when_full)
  std::deque<Entry> queue_;
  int64_t active_ = 0;
  bool stopping_ = false;
  SchedulerCounts totals_;  // finished, cancelled, failed, rejected
  std::thread thread_;
};

}  // namespace chronos
