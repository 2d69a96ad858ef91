#include "chronos/serve/request_scheduler.h"

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/serve/api_error.h"

namespace chronos {
namespace {

// The result of a request cancelled before its run started.
GenerationResult cancelled_before_start(const DecodeJob& job) {
  GenerationResult result;
  result.stop_reason = "cancelled";
  result.stats.prompt_tokens = static_cast<int64_t>(job.prompt.size());
  return result;
}

}  // namespace

void SchedulerConfig::validate() const {
  if (slots < 1 || slots > 256) throw ConfigError(cat("serve.slots (--parallel) must be in [1, 256] (got ", slots, ")"));
  if (max_queued < 0) throw ConfigError(cat("serve.max_queued (--max-queue) must be >= 0 (got ", max_queued, ")"));
}

RequestScheduler::RequestScheduler(SchedulerConfig config, RunFactory factory) : config_(config), factory_(std::move(factory)) {
  config_.validate();
  thread_ = std::thread([this] { loop(); });
}

RequestScheduler::~RequestScheduler() { shutdown(); }

void RequestScheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  work_.notify_all();
  room_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<JobHandle> RequestScheduler::submit(DecodeJob job) {
  auto handle = std::make_shared<JobHandle>();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto full = [&] { return static_cast<int64_t>(queue_.size()) >= config_.max_queued + (slots() - active_); };
    if (config_.wait_when_full) room_.wait(lock, [&] { return stopping_ || !full(); });
    if (stopping_) throw ApiError::unavailable("the server is shutting down");
    if (full()) {
      ++totals_.rejected;
      throw ApiError::too_many_requests(cat("all ", config_.slots, " decode slots are busy and ", config_.max_queued,
                                            " requests are queued; retry later"));
    }
    queue_.push_back(Entry{std::move(job), handle, nullptr});
  }
  work_.notify_one();
  return handle;
}

SchedulerCounts RequestScheduler::counts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SchedulerCounts c = totals_;
  c.processing = active_;
  c.queued = static_cast<int64_t>(queue_.size());
  return c;
}

void RequestScheduler::end(Entry& entry, const GenerationResult* result, std::exception_ptr error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++totals_.finished;
    if (error) ++totals_.failed;
    else if (result->stop_reason == "cancelled") ++totals_.cancelled;
  }
  if (entry.job.on_end) entry.job.on_end(result, error);
  entry.run.reset();  // its KV cache goes now, not when the slot is reused
}

bool RequestScheduler::advance(Entry& entry) {
  try {
    if (!entry.run && entry.handle->cancelled()) {
      const GenerationResult result = cancelled_before_start(entry.job);
      end(entry, &result, nullptr);
      return true;
    }
    if (!entry.run) entry.run = factory_(entry.job.prompt, entry.job.options);
    DecodeRun& run = *entry.run;
    if (entry.handle->cancelled()) {
      run.stop("cancelled");
    } else if (!run.done()) {
      const int64_t token = run.step();
      if (entry.job.on_token && !entry.job.on_token(token)) run.stop("callback");
    }
    if (!run.done()) return false;
    end(entry, &run.result(), nullptr);
  } catch (...) {
    end(entry, nullptr, std::current_exception());
  }
  return true;
}

void RequestScheduler::loop() {
  std::vector<Entry> active;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active.empty(); });
      if (stopping_) break;
      while (static_cast<int>(active.size()) < slots() && !queue_.empty()) {
        active.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      active_ = static_cast<int64_t>(active.size());
    }
    room_.notify_all();
    // One token of every active run, in the order they were admitted.
    for (size_t i = 0; i < active.size();) {
      if (advance(active[i])) {
        active.erase(active.begin() + static_cast<std::ptrdiff_t>(i));
        {
          std::lock_guard<std::mutex> lock(mutex_);
          active_ = static_cast<int64_t>(active.size());
        }
        room_.notify_all();  // a freed slot is room for a waiting submitter
      } else {
        ++i;
      }
    }
  }
  // Shutting down: every request still held ends as cancelled.
  std::deque<Entry> queued;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queued.swap(queue_);
  }
  for (Entry& e : queued) active.push_back(std::move(e));
  for (Entry& e : active) {
    e.handle->cancel();
    const GenerationResult not_started = cancelled_before_start(e.job);
    if (e.run) e.run->stop("cancelled");
    end(e, e.run ? &e.run->result() : &not_started, nullptr);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  active_ = 0;
}

}  // namespace chronos
