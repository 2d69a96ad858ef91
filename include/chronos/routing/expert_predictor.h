// ExpertPredictor (docs/offload.md "Predictive decode"): turns the intent classifier's [L,E]
// probabilities, or, without a classifier, the running frequency of expert use, into a hot set per
// (layer, expert) that fits the store's two budgets: the most likely `compute_slots` pairs for the
// compute tier, the next ones for RAM, compute + RAM together at most `ram_slots` (a HOT expert
// is read through a host slot first). The reference's predictor took one global id set for every
// layer and an ad-hoc threshold; this one ranks (layer, expert) pairs.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "chronos/model/config.h"
#include "chronos/routing/scored_expert.h"

namespace chronos {

struct PredictorBudget {
  int64_t compute_slots = 0;  // experts the compute tier holds (ExpertStore::compute_slots())
  int64_t ram_slots = 0;      // experts the host RAM tier holds (ExpertStore::ram_slots())
  // Throws ConfigError naming the field when negative.
  void validate() const;
};

struct HotSet {
  std::vector<ScoredExpert> compute;  // most likely first; size <= compute_slots
  std::vector<ScoredExpert> ram;      // the next most likely; compute.size() + ram.size() <= ram_slots
  size_t size() const { return compute.size() + ram.size(); }
};

class ExpertPredictor {
 public:
  // `decay` weighs the old frequency against each new observation (f <- decay f + (1 - decay) u).
  ExpertPredictor(const ModelConfig& model, PredictorBudget budget, double decay = 0.95);

  // Records the experts the model routed to: `selected` holds one [B,S,k] id tensor per layer;
  // u[l][e] is the share of the observed tokens that routed to e at layer l.
  void observe(const std::vector<at::Tensor>& selected);

  // The hot set from `intent_probs` ([L,E] probabilities), or from the running frequency when it is
  // undefined. Pairs with probability 0 are left out (no observation yet: an empty set). Ties go to
  // the lower (layer, expert). Never over either budget.
  HotSet predict(const at::Tensor& intent_probs = {}) const;

  // The running frequency [L,E] (float, CPU): the decayed share of tokens routed to each expert.
  at::Tensor frequency() const { return frequency_; }
  int64_t observations() const { return observations_; }
  const PredictorBudget& budget() const { return budget_; }

 private:
  int64_t num_layers_, num_experts_;
  PredictorBudget budget_;
  double decay_;
  at::Tensor frequency_;  // [L,E] float
  int64_t observations_ = 0;
};

}  // namespace chronos
