// ExpertTrace: a record of everything a decode asked of the expert store, in order (begin_step,
// prefetch, announce, acquire, release), and its replay on a fresh store without the model
// (docs/offload.md "Predictive decode"). ExpertTraceRecorder is a thin ExpertSource decorator over
// an ExpertStore: the model talks to it as to the store, and the engine sends its begin_step and
// prefetch calls through it too, so the trace holds the whole sequence.
// Determinism: with `settle`, the recorder waits for the store to go idle before each begin_step and
// after each prefetch, so the state at every acquire depends only on the sequence of calls; with
// `forward_announce` off, the store does not start reads between announce and acquire (a race of
// microseconds). Replaying a trace through a recorder with the same settings on a fresh store with
// the same config, miss policy `wait` and no throttle, gives the same hit and miss counts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "chronos/model/expert_source.h"
#include "chronos/store/expert_store.h"

namespace chronos {

struct TraceEvent {
  enum class Kind { begin_step, prefetch, announce, acquire, release };
  Kind kind = Kind::begin_step;
  int64_t value = 0;                      // the step (begin_step) or the layer (announce, acquire, release)
  std::vector<int64_t> experts;           // announce, acquire
  std::vector<PrefetchRequest> requests;  // prefetch
};

struct ExpertTrace {
  std::vector<TraceEvent> events;
  // The number of acquire events.
  size_t acquires() const;
};

struct TraceRecorderOptions {
  bool record = true;            // keep the events (off: only forward and call on_acquire)
  bool settle = false;           // wait_idle() around begin_step, after prefetch and release (tests, replay)
  bool forward_announce = true;  // pass announce() on to the store
};

class ExpertTraceRecorder : public ExpertSource {
 public:
  using Clock = std::chrono::steady_clock;
  ExpertTraceRecorder(ExpertStore& store, TraceRecorderOptions options = {});

  // ExpertSource, forwarded to the store.
  std::vector<std::optional<ExpertWeights>> acquire(int64_t layer, const std::vector<int64_t>& experts) override;
  void release(int64_t layer) override;
  size_t max_batch() const override { return store_.max_batch(); }
  void announce(int64_t layer, const std::vector<int64_t>& experts) override;

  // The store's step and prefetch calls, forwarded.
  void begin_step(int64_t step);
  void prefetch(const std::vector<PrefetchRequest>& requests);

  // Called at every acquire with the layer, the experts and the time it was called (before any wait).
  std::function<void(int64_t layer, const std::vector<int64_t>& experts, Clock::time_point at)> on_acquire;
  // Called at every announce with the layer and its experts, before the store sees it.
  std::function<void(int64_t layer, const std::vector<int64_t>& experts)> on_announce;

  ExpertStore& store() { return store_; }
  const ExpertTrace& trace() const { return trace_; }
  ExpertTrace take_trace();
  const TraceRecorderOptions& options() const { return options_; }

 private:
  void settle();  // options_.settle: wait until the store is idle

  ExpertStore& store_;
  TraceRecorderOptions options_;
  ExpertTrace trace_;
};

// Drives `trace` on `store` through a recorder with `options` (record off); acquired experts are
// released as the trace says. Returns the store's stats after the replay.
StoreStats replay_trace(const ExpertTrace& trace, ExpertStore& store, TraceRecorderOptions options = {});

}  // namespace chronos
