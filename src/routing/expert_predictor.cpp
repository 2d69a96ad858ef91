#include "chronos/routing/expert_predictor.h"

#include <algorithm>
#include <numeric>

#include "chronos/core/error.h"

namespace chronos {

void PredictorBudget::validate() const {
  if (compute_slots < 0) throw ConfigError(cat("PredictorBudget.compute_slots must be >= 0 (got ", compute_slots, ")"));
  if (ram_slots < 0) throw ConfigError(cat("PredictorBudget.ram_slots must be >= 0 (got ", ram_slots, ")"));
}

ExpertPredictor::ExpertPredictor(const ModelConfig& model, PredictorBudget budget, double decay)
    : num_layers_(model.num_hidden_layers), num_experts_(model.num_experts), budget_(budget), decay_(decay) {
  budget_.validate();
  if (!(decay >= 0 && decay < 1)) throw ConfigError(cat("ExpertPredictor decay must be in [0, 1) (got ", decay, ")"));
  frequency_ = at::zeros({num_layers_, num_experts_}, at::kFloat);
}

void ExpertPredictor::observe(const std::vector<at::Tensor>& selected) {
  if (static_cast<int64_t>(selected.size()) != num_layers_)
    throw InvalidArgument(cat("ExpertPredictor::observe: ", selected.size(), " layers of routing for a model with ", num_layers_));
  // Host loops, no tensor operations per layer: this runs after every decode step.
  std::vector<float> usage(static_cast<size_t>(num_layers_ * num_experts_), 0.0f);
  for (int64_t l = 0; l < num_layers_; ++l) {
    const at::Tensor ids = selected[static_cast<size_t>(l)].to(at::kCPU, at::kLong).contiguous();
    if (ids.dim() < 1 || ids.numel() == 0) continue;
    const int64_t k = ids.size(-1), tokens = ids.numel() / k;
    const int64_t* p = ids.data_ptr<int64_t>();
    float* row = usage.data() + l * num_experts_;
    for (int64_t t = 0; t < tokens; ++t) {
      const int64_t* token = p + t * k;
      for (int64_t j = 0; j < k; ++j) {
        if (token[j] < 0 || token[j] >= num_experts_)
          throw InvalidArgument(cat("ExpertPredictor::observe: expert id ", token[j], " in layer ", l, " (", num_experts_, " experts)"));
        if (std::find(token, token + j, token[j]) == token + j) row[token[j]] += 1.0f;  // once per (token, expert)
      }
    }
    for (int64_t e = 0; e < num_experts_; ++e) row[e] /= static_cast<float>(tokens);
  }
  // A fresh tensor each time: a caller may still hold the previous frequency().
  at::Tensor next = at::empty({num_layers_, num_experts_}, at::kFloat);
  float* out = next.data_ptr<float>();
  const float* before = frequency_.data_ptr<float>();
  const float keep = observations_ == 0 ? 0.0f : static_cast<float>(decay_);
  for (size_t i = 0; i < usage.size(); ++i) out[i] = before[i] * keep + usage[i] * (1.0f - keep);
  frequency_ = next;
  ++observations_;
}

HotSet ExpertPredictor::predict(const at::Tensor& intent_probs) const {
  at::Tensor scores = frequency_;
  if (intent_probs.defined()) {
    if (intent_probs.dim() != 2 || intent_probs.size(0) != num_layers_ || intent_probs.size(1) != num_experts_)
      throw InvalidArgument(cat("ExpertPredictor::predict: intent probabilities of shape ", intent_probs.sizes(), ", expected [",
                                num_layers_, ", ", num_experts_, "]"));
    scores = intent_probs.detach().to(at::kCPU, at::kFloat).contiguous();
  }
  const float* p = scores.contiguous().data_ptr<float>();
  const int64_t n = num_layers_ * num_experts_;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
  HotSet hot;
  const size_t compute_cap = static_cast<size_t>(budget_.compute_slots);
  for (int64_t index : order) {
    if (!(p[index] > 0)) break;
    const ScoredExpert scored{ExpertKey::from_index(index, num_experts_), p[index]};
    if (hot.compute.size() < compute_cap && static_cast<int64_t>(hot.compute.size()) < budget_.ram_slots) {
      hot.compute.push_back(scored);
    } else if (static_cast<int64_t>(hot.size()) < budget_.ram_slots) {
      hot.ram.push_back(scored);
    } else {
      break;
    }
  }
  return hot;
}

}  // namespace chronos
