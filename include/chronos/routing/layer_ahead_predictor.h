// Layer-ahead prediction (docs/offload.md "Predictive decode"): while MoE layer l of a decode step
// runs, the routers of layers l+1..l+distance, applied to layer l's MoE input, predict which experts
// those layers will route the same token to. The residual stream changes little from one layer to
// the next, so this needs no training; the requests carry the current step as their deadline, and
// the store keeps them wanted until the model has passed their layer. Only one-token inputs (decode
// steps) are predicted: a prefill routes many tokens, which its own announce already covers.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "chronos/routing/scored_expert.h"
#include "chronos/store/prefetch_queue.h"

namespace chronos {

class ChronosForCausalLMImpl;

struct LayerAheadConfig {
  int64_t distance = 2;          // layers predicted ahead: l+1..l+distance (0: off)
  int64_t top_k = 0;             // experts predicted per layer; 0: the model's num_experts_per_tok
  // Throws ConfigError naming the field.
  void validate() const;
};

class LayerAheadPredictor {
 public:
  // Keeps views of the model's router weights; the model must outlive the predictor.
  LayerAheadPredictor(ChronosForCausalLMImpl& model, LayerAheadConfig config);

  // For one token's MoE input at `layer` ([1,1,H]): entry d-1 holds the predicted experts of layer
  // layer+d (empty past the last layer, and for inputs of more than one token), most likely first.
  std::vector<std::vector<ScoredExpert>> predict(int64_t layer, const at::Tensor& moe_input) const;

  // Compute-tier requests due at `step` for the predicted experts, nearest layer first.
  static std::vector<PrefetchRequest> requests(const std::vector<std::vector<ScoredExpert>>& predicted, int64_t step);

  const LayerAheadConfig& config() const { return config_; }

 private:
  LayerAheadConfig config_;
  int64_t top_k_;
  std::vector<at::Tensor> gates_;  // per layer [E, H]: the router weights
};

}  // namespace chronos
