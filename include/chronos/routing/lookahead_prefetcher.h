// Per-token lookahead prefetch (docs/offload.md "Predictive decode").
// Right after block 0 of step t, it predicts which (layer, expert) pairs steps t+1..t+K will use
// and turns them into prefetch requests with deadlines. Three signals, per layer l and offset j:
//  - the LookaheadRouter: its `router_top_k` most likely experts at or above `router_floor`, scored by
//    their probability. A layer-averaged router (lookahead_probs [B,S,K+1,E]) gives
//    one distribution over ids for all layers, so its ids are predicted in every layer; a per-layer
//    one ([B,S,K+1,L,E], ModelConfig::lookahead_per_layer) gives each layer's own;
//  - recency: the experts layer l used for the last `history` decode tokens (routing persists
//    from token to token; the temporal loss trains for it), scored `recency_score` for the latest
//    token and geometrically less for older ones;
//  - frequency: the `frequent` experts layer l used most, by the running frequency the caller
//    passes in (ExpertPredictor::frequency(): one tracker for the engine), scored by that frequency.
// A model without a LookaheadRouter (the Hugging Face families) predicts offset 1 from recency and
// frequency alone (lookahead_probs undefined). An expert's score is the largest of its signals; it orders the requests and is what the store
// queue calls probability. The layer-averaged router cannot tell the layers apart, which is why it
// does not predict alone (docs/offload.md has the recall of each signal).
// Requests: one per expert, at the earliest offset that predicts it, in (offset, layer, -score)
// order. Offsets j <= `compute_horizon` ask for the compute tier, at most compute_limit() =
// compute_slots - num_experts_per_tok of them (the earliest layers of t+1, as they are needed
// first; the rest go to RAM). At most request_limit() = ram_slots requests are made per step: a
// prediction the RAM tier cannot hold is not worth reading.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <deque>
#include <vector>

#include "chronos/model/config.h"
#include "chronos/routing/scored_expert.h"
#include "chronos/store/prefetch_queue.h"

namespace chronos {

struct LookaheadConfig {
  int64_t router_top_k = 0;       // LookaheadRouter ids considered per offset; 0: num_experts_per_tok
  double router_floor = 0.5;      // ... and kept at or above this probability (0..1; > 1: router unused)
  int64_t history = 2;            // decode tokens whose per-layer experts are predicted again (0: none)
  double recency_score = 0.9;     // score of the latest token's experts; each older token x0.6
  int64_t frequent = 1;           // per layer, the most frequently used experts also predicted (0: none)
  int64_t compute_horizon = 1;    // offsets 1..this target the compute tier (0: none), later ones RAM
  // Throws ConfigError naming the field.
  void validate() const;
};

class LookaheadPrefetcher {
 public:
  LookaheadPrefetcher(const ModelConfig& model, LookaheadConfig config, int64_t compute_slots, int64_t ram_slots = INT64_MAX);

  // Learns from the step that just ran: `selected` per layer [B,S,k] (batch 0, last position; host
  // tensors avoid a device-to-host copy per layer).
  void observe(const std::vector<at::Tensor>& selected);
  // Forgets the recent tokens (a new generation).
  void reset_history();

  // The LookaheadRouter's own prediction for offsets 1..K (entry j-1): per layer, its router_top_k
  // most likely experts with their probabilities (batch 0, last position), layer by layer, most
  // likely first; the same ids in every layer for a layer-averaged router. Undefined probs: K empty entries.
  std::vector<std::vector<ScoredExpert>> router_pairs(const at::Tensor& lookahead_probs) const;
  // The predicted (layer, expert) pairs for offsets 1..K, per offset by layer, then by -score.
  // `frequency` is the running frequency [L,E] (undefined: no frequency signal).
  std::vector<std::vector<ScoredExpert>> predict(const at::Tensor& lookahead_probs, const at::Tensor& frequency = {}) const;

  // The prefetch requests for `predicted` (predict()'s output), made at step `step`.
  std::vector<PrefetchRequest> requests(const std::vector<std::vector<ScoredExpert>>& predicted, int64_t step) const;

  int64_t steps() const { return lookahead_steps_; }  // K: the offsets predicted
  int64_t compute_limit() const { return compute_limit_; }
  int64_t request_limit() const { return request_limit_; }
  const LookaheadConfig& config() const { return config_; }

 private:
  int64_t num_layers_, num_experts_, lookahead_steps_, experts_per_token_, top_k_;
  LookaheadConfig config_;
  int64_t compute_limit_;
  int64_t request_limit_;
  std::deque<std::vector<std::vector<int64_t>>> recent_;  // newest first: per layer, the ids used
};

}  // namespace chronos
