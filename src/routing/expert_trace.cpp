#include "chronos/routing/expert_trace.h"

#include "chronos/core/error.h"

namespace chronos {

size_t ExpertTrace::acquires() const {
  size_t n = 0;
  for (const TraceEvent& e : events) n += e.kind == TraceEvent::Kind::acquire;
  return n;
}

ExpertTraceRecorder::ExpertTraceRecorder(ExpertStore& store, TraceRecorderOptions options) : store_(store), options_(options) {}

std::vector<std::optional<ExpertWeights>> ExpertTraceRecorder::acquire(int64_t layer, const std::vector<int64_t>& experts) {
  if (options_.record) trace_.events.push_back({TraceEvent::Kind::acquire, layer, experts, {}});
  if (on_acquire) on_acquire(layer, experts, Clock::now());
  return store_.acquire(layer, experts);
}

void ExpertTraceRecorder::release(int64_t layer) {
  if (options_.record) trace_.events.push_back({TraceEvent::Kind::release, layer, {}, {}});
  store_.release(layer);
  settle();  // a later layer (or free slots) may let waiting prefetches go on
}

void ExpertTraceRecorder::settle() {
  if (options_.settle && !store_.wait_idle()) throw IoError("expert trace: the store did not become idle within 60 s");
}

void ExpertTraceRecorder::announce(int64_t layer, const std::vector<int64_t>& experts) {
  if (options_.record) trace_.events.push_back({TraceEvent::Kind::announce, layer, experts, {}});
  if (on_announce) on_announce(layer, experts);
  if (options_.forward_announce) store_.announce(layer, experts);
}

void ExpertTraceRecorder::begin_step(int64_t step) {
  if (options_.record) trace_.events.push_back({TraceEvent::Kind::begin_step, step, {}, {}});
  settle();
  store_.begin_step(step);
  settle();  // the step may let waiting prefetches go on
}

void ExpertTraceRecorder::prefetch(const std::vector<PrefetchRequest>& requests) {
  if (requests.empty()) return;
  if (options_.record) trace_.events.push_back({TraceEvent::Kind::prefetch, 0, {}, requests});
  store_.prefetch(requests);
  settle();
}

ExpertTrace ExpertTraceRecorder::take_trace() {
  ExpertTrace out = std::move(trace_);
  trace_ = {};
  return out;
}

StoreStats replay_trace(const ExpertTrace& trace, ExpertStore& store, TraceRecorderOptions options) {
  options.record = false;
  ExpertTraceRecorder recorder(store, options);
  for (const TraceEvent& e : trace.events) {
    switch (e.kind) {
      case TraceEvent::Kind::begin_step: recorder.begin_step(e.value); break;
      case TraceEvent::Kind::prefetch: recorder.prefetch(e.requests); break;
      case TraceEvent::Kind::announce: recorder.announce(e.value, e.experts); break;
      case TraceEvent::Kind::acquire: recorder.acquire(e.value, e.experts); break;
      case TraceEvent::Kind::release: recorder.release(e.value); break;
    }
  }
  return store.stats();
}

}  // namespace chronos
