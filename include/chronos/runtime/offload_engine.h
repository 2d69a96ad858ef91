// The predictive offload decode (docs/offload.md "Predictive decode"): generate() over an
// ExpertStore with the predictors of routing/ wired in through the decode loop's DecodeObserver.
//  - intent: before the prefill, the ExpertPredictor's hot set (from the IntentClassifier when the
//    model has one, else from the running frequency of expert use across this engine's
//    generations) goes to the store via the PrefillScheduler plan, so its reads overlap the prefill.
//  - lookahead: right after block 0 of every step t, the LookaheadPrefetcher's predictions for
//    t+1..t+K (the LookaheadRouter's output with the recent per-layer routing) become prefetch
//    requests with deadlines, overlapping the reads and copies for t+1 with blocks 1..L-1 of step
//    t. At the end of step t they are issued once more with step t's routing known. Each MoE
//    layer then waits only on its own experts (the store's per-expert events).
//  - layer-ahead (with lookahead): before MoE layer l of a decode step routes, the routers of layers
//    l+1..l+distance applied to its input predict their experts for the same token, requested with
//    the step as deadline (LayerAheadPredictor).
//  - every step: store.begin_step(step) cancels stale requests; a MetricsBus record per token.
// The plain generate() path (no observer) is untouched. Prediction never changes the output under
// the `wait` miss policy: it only moves experts earlier.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "chronos/routing/expert_predictor.h"
#include "chronos/routing/expert_trace.h"
#include "chronos/routing/intent_classifier.h"
#include "chronos/routing/layer_ahead_predictor.h"
#include "chronos/routing/lookahead_prefetcher.h"
#include "chronos/routing/prefill_scheduler.h"
#include "chronos/runtime/decode_run.h"
#include "chronos/runtime/generation.h"
#include "chronos/runtime/metrics.h"
#include "chronos/store/expert_store.h"

namespace chronos {

enum class PredictMode { none, lookahead, intent, both };
// Parses none|lookahead|intent|both; InvalidArgument naming the accepted values otherwise.
PredictMode parse_predict_mode(const std::string& name);
std::string to_string(PredictMode mode);

struct OffloadEngineConfig {
  PredictMode predict = PredictMode::both;
  LookaheadConfig lookahead;
  LayerAheadConfig layer_ahead;  // part of the lookahead modes
  PrefillSchedulerConfig prefill;
  double frequency_decay = 0.95;  // ExpertPredictor decay of the running frequency
  TraceRecorderOptions trace{/*record=*/false};  // record: keep the ExpertTrace; settle: deterministic (tests)
  // Throws ConfigError naming the field.
  void validate() const;
};

class OffloadEngine : private DecodeObserver {
 public:
  // `classifier` may be null (the hot set then comes from the running frequency); it must outlive
  // the engine, as must `model` and `store`.
  OffloadEngine(ChronosForCausalLMImpl& model, ExpertStore& store, OffloadEngineConfig config = {},
                const IntentClassifierImpl* classifier = nullptr);

  // generate() with the store as the expert source and the predictors on. options.expert_source
  // and options.observer are set by the engine. Clears the metrics of the previous call.
  GenerationResult generate(const std::vector<int64_t>& prompt, GenerationOptions options, const TokenCallback& on_token = {});
  // The same as a run to step (runtime/decode_run.h). The engine follows one token stream: a run
  // started here ends the predictions of any earlier run, which must not be stepped again.
  std::unique_ptr<DecodeRun> start(const std::vector<int64_t>& prompt, GenerationOptions options);

  const MetricsBus& metrics() const { return metrics_; }
  // The ExpertTrace of the last generate() (config.trace.record).
  const ExpertTrace& trace() const { return recorder_.trace(); }
  const ExpertPredictor& predictor() const { return predictor_; }
  const LookaheadPrefetcher& lookahead() const { return lookahead_; }
  const LayerAheadPredictor& layer_ahead() const { return layer_ahead_; }
  // The plan of the last prefill (empty when intent prediction is off).
  const PrefillPlan& last_prefill() const { return last_prefill_; }
  const OffloadEngineConfig& config() const { return config_; }

 private:
  void begin_step(int64_t step) override;
  void on_lookahead(int64_t step, const at::Tensor& lookahead_probs) override;
  void on_moe_input(int64_t step, int64_t layer, const at::Tensor& moe_input) override;
  void end_step(int64_t step, const ForwardOutput& output) override;
  void issue(const std::vector<PrefetchRequest>& requests);
  bool uses_intent() const { return config_.predict == PredictMode::intent || config_.predict == PredictMode::both; }
  bool uses_lookahead() const { return config_.predict == PredictMode::lookahead || config_.predict == PredictMode::both; }

  ChronosForCausalLMImpl& model_;
  ExpertStore& store_;
  OffloadEngineConfig config_;
  const IntentClassifierImpl* classifier_;
  ExpertTraceRecorder recorder_;
  ExpertPredictor predictor_;
  LookaheadPrefetcher lookahead_;
  LayerAheadPredictor layer_ahead_;
  MetricsBus metrics_;
  PrefillPlan last_prefill_;

  // Per generate() call.
  std::vector<int64_t> prompt_;
  StoreStats step_start_;
  struct Issued {
    ExpertTraceRecorder::Clock::time_point at;
    int64_t deadline_step;
  };
  std::unordered_map<int64_t, Issued> issued_;  // key index -> its earliest live prefetch
  struct Prediction {
    std::vector<std::vector<ExpertKey>> pairs;   // entry j-1: the LookaheadPrefetcher's pairs for step+j
    std::vector<std::vector<ExpertKey>> router;  // the LookaheadRouter's own top pairs (router_pairs)
  };
  std::unordered_map<int64_t, Prediction> predicted_;  // by the step that made it
  at::Tensor last_lookahead_;                          // the LookaheadRouter's output of the step in flight
  std::vector<std::vector<ExpertKey>> layer_ahead_pairs_;  // this step's layer-ahead predictions, entry d-1 for distance d
  struct Misses {
    int64_t late = 0, not_started = 0, unpredicted = 0;
  } step_misses_;  // this step's, as TokenMetrics counts them
  int64_t used_prefetches_ = 0;
  double lead_ms_ = 0;
};

}  // namespace chronos
