#include "chronos/routing/layer_ahead_predictor.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/decoder_layer.h"
#include "chronos/model/moe.h"
#include "model/cpu_kernels.h"

namespace chronos {

void LayerAheadConfig::validate() const {
  if (distance < 0) throw ConfigError(cat("LayerAheadConfig.distance must be >= 0 (got ", distance, ")"));
  if (top_k < 0) throw ConfigError(cat("LayerAheadConfig.top_k must be >= 0 (got ", top_k, ")"));
}

LayerAheadPredictor::LayerAheadPredictor(ChronosForCausalLMImpl& model, LayerAheadConfig config) : config_(config) {
  config_.validate();
  const ModelConfig& c = model.config();
  top_k_ = std::min(config_.top_k > 0 ? config_.top_k : c.num_experts_per_tok, c.num_experts);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const MoE& moe = model.layer(l).moe;
    gates_.push_back(moe.is_empty() ? at::Tensor() : moe->gate->weight.detach());
  }
}

std::vector<std::vector<ScoredExpert>> LayerAheadPredictor::predict(int64_t layer, const at::Tensor& moe_input) const {
  std::vector<std::vector<ScoredExpert>> predicted(static_cast<size_t>(config_.distance));
  if (moe_input.numel() == 0 || moe_input.numel() != moe_input.size(-1)) return predicted;  // not one token
  const at::Tensor x = moe_input.reshape({-1});
  for (int64_t d = 1; d <= config_.distance; ++d) {
    const int64_t target = layer + d;
    if (target >= static_cast<int64_t>(gates_.size()) || !gates_[static_cast<size_t>(target)].defined()) break;
    const at::Tensor& gate = gates_[static_cast<size_t>(target)];
    const int64_t E = gate.size(0);
    std::vector<float> probs(static_cast<size_t>(E));
    if (cpu::gemv_applies(x, gate)) {  // the decode path's own kernel: no tensor operations per layer
      cpu::gemv(gate.data_ptr<float>(), x.data_ptr<float>(), probs.data(), E, gate.size(1));
    } else {
      const at::Tensor logits = at::mv(gate, x.to(gate.scalar_type())).to(at::kCPU, at::kFloat).contiguous();
      std::copy(logits.data_ptr<float>(), logits.data_ptr<float>() + E, probs.begin());
    }
    cpu::softmax_in_place(probs.data(), E);
    std::vector<int64_t> order(static_cast<size_t>(E));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + top_k_, order.end(), [&](int64_t a, int64_t b) {
      return probs[static_cast<size_t>(a)] > probs[static_cast<size_t>(b)] || (probs[static_cast<size_t>(a)] == probs[static_cast<size_t>(b)] && a < b);
    });
    for (int64_t i = 0; i < top_k_; ++i)
      predicted[static_cast<size_t>(d - 1)].push_back(
          {{static_cast<int32_t>(target), static_cast<int32_t>(order[static_cast<size_t>(i)])}, probs[static_cast<size_t>(order[static_cast<size_t>(i)])]});
  }
  return predicted;
}

std::vector<PrefetchRequest> LayerAheadPredictor::requests(const std::vector<std::vector<ScoredExpert>>& predicted, int64_t step) {
  std::vector<PrefetchRequest> out;
  for (const auto& layer : predicted)
    for (const ScoredExpert& s : layer) out.push_back({s.key, step, s.probability, Tier::compute, false});
  return out;
}

}  // namespace chronos
