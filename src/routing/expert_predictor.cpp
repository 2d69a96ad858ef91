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
  at::Tensor usage = at::zeros({num_layers_, num_experts_}, at::kFloat);
  for (int64_t l = 0; l < num_layers_; ++l) {
    const at::Tensor ids = selected[static_cast<size_t>(l)].to(at::kCPU, at::kLong);
    if (ids.dim() < 1 || ids.numel() == 0) continue;
    const at::Tensor per_token = ids.reshape({-1, ids.size(-1)});
    const int64_t tokens = per_token.size(0);
    at::Tensor hits = at::zeros({tokens, num_experts_}, at::kFloat);
    hits.scatter_(1, per_token, 1.0);  // one hit per (token, expert), however often it appears
    usage[l] = hits.sum(0) / static_cast<double>(tokens);
  }
  frequency_ = observations_ == 0 ? usage : frequency_ * decay_ + usage * (1 - decay_);
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
