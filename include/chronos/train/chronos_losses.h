// The shared Chronos router regulariser of every training stage (docs/training_losses.md):
// load balance, temporal smoothness, router locality, the three lookahead terms and the router KL
// anchor. Pure tensor functions: no I/O, no model, no optimiser.
//
// Differences from the Python reference (docs/training_losses.md), all on purpose:
//  * B6/Q9: an optional token mask [B,S] (1 = real token) keeps padding out of every term. A pair
//    term (t-1,t) or (t,t+j) counts only when both positions are real; every masked mean divides by
//    the number of valid positions clamped to >= 1, so an all-padding batch gives 0, never NaN.
//  * B1/B2: the anchor is KL(current || reference) on the live (differentiable) router
//    probabilities, against reference probabilities the caller computed on the same tokens.
//  * B13: every term is returned separately (weighted sum in `total`), so logging never recomputes.
// All router maths runs in fp32 (fp64 inputs stay fp64, which the gradient tests use).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace chronos {

struct ModelConfig;
struct ForwardOutput;

// Loss weights of the regulariser. A term whose weight is <= 0 is left out of the total.
struct RouterLossWeights {
  double balance = 5e-4;          // lambda_balance: times the sum over layers of the balance value A_l
  double temporal = 3e-3;         // lambda_temporal: squared change of P-bar between adjacent tokens
  double router_locality = 0.02;  // lambda_router_locality: mass at t on the top-k set of t-1
  double lookahead = 0.1;         // lambda_lookahead: soft CE of Q[t, j] against sg(P-bar[t+j]); gates topk and union
  double lookahead_topk = 0.15;   // lambda_lookahead_topk: Q[t, j] mass on the top-k set of P-bar[t+j]
  double lookahead_union = 0.05;  // lambda_lookahead_union: max_j Q[t, j] mass on the union of future top-k sets
  double router_anchor = 0.0;     // lambda_router_anchor: KL(current || reference) of P-bar (stages 2-6)

  // The lambda_* fields of a model config (the values a checkpoint carries forward).
  static RouterLossWeights from_config(const ModelConfig& config);
  // Throws ConfigError naming the field when a weight is negative or not finite.
  void validate() const;
};

enum class TrainStage { Pretrain, Sft, Dpo, Orpo, Grpo, Distill };

// "pretrain", "sft", "dpo", "orpo", "grpo", "distill".
const char* train_stage_name(TrainStage stage);
// Inverse of train_stage_name; throws ConfigError listing the valid names.
TrainStage parse_train_stage(const std::string& name);

// What the regulariser reads from one forward pass.
struct RouterLossInputs {
  std::vector<at::Tensor> router_probs;  // per MoE layer [B,S,E] softmax probabilities, with autograd
  std::vector<at::Tensor> selected;      // optional, per layer [B,S,k] routed expert ids: the balance is then
                                         // recomputed here over the masked tokens (train and eval alike)
  std::vector<at::Tensor> aux_raw;       // per layer scalar A_l from the model; used only when `selected` is
                                         // empty (the model masks it when forward got an attention_mask)
  at::Tensor lookahead_probs;            // optional [B,S,K+1,E] probabilities; slot j predicts P-bar[t+j]
                                         // ([B,S,K+1,L,E] per layer: slot j, layer l predicts layer l's probabilities at t+j)
  at::Tensor mask;                       // optional [B,S], nonzero = real token; undefined = every token real
  at::Tensor reference_router_probs;     // optional [B,S,E] layer-averaged probabilities of the frozen
                                         // reference model on the same tokens (the anchor's target)
  int64_t top_k = 1;                     // k = num_experts_per_tok, clamped to [1, E]

  // Borrows the router pieces of a forward pass (selected included). `mask` as above.
  static RouterLossInputs from_forward(const ForwardOutput& out, int64_t top_k, const at::Tensor& mask = {});
};

// Every term, unweighted, as 0-dim tensors on the router device (fp32, or fp64 for fp64 inputs).
// A term that was not computed is a zero scalar with its `*_active` flag false; an active term is
// part of `total`. With `compute_all` a gated-off term is still computed (for logging) but stays
// out of `total`.
struct RouterLossTerms {
  at::Tensor balance;          // A = sum_l A_l (equals L*k for a perfectly balanced router)
  at::Tensor temporal;         // Tmp
  at::Tensor locality;         // Loc
  at::Tensor lookahead;        // LA (logged as `la`)
  at::Tensor lookahead_topk;   // Top
  at::Tensor lookahead_union;  // Uni
  at::Tensor anchor;           // KL(current || reference), mean over real tokens
  at::Tensor total;            // sum of lambda * term over the active terms
  bool balance_active = false, temporal_active = false, locality_active = false, lookahead_active = false,
       lookahead_topk_active = false, lookahead_union_active = false, anchor_active = false;
};

// The regulariser with the gating of the reference:
//   balance  when lambda_balance > 0;
//   temporal, locality (each by its lambda) only when S > 1;
//   lookahead, topk, union only when S > 1, lookahead probabilities are given, K > 0 and
//     lambda_lookahead > 0, each then by its own lambda; union also needs S > K;
//   anchor when lambda_router_anchor > 0 and reference probabilities are given.
// Throws InvalidArgument on inconsistent shapes (layers, mask, lookahead, reference).
RouterLossTerms chronos_router_losses(const RouterLossInputs& inputs, const RouterLossWeights& weights,
                                      bool compute_all = false);

// ---- the terms one by one (the regulariser calls these). p_bar [B,S,E] = layer-averaged router
// probabilities with autograd; mask [B,S] optional; k clamped to [1, E]. Each returns a 0-dim
// tensor and is 0 when no position is valid (S = 1, all padding). ----

// Tmp: mean over valid pairs (t-1, t) of ||p_bar[t] - p_bar[t-1]||^2.
at::Tensor temporal_loss(const at::Tensor& p_bar, const at::Tensor& mask = {});
// Loc: mean over valid pairs (t-1, t) of -log(max(sum_{e in G} p_bar[t,e], 1e-9) / k),
// G = top-k set of sg(p_bar[t-1]).
at::Tensor router_locality_loss(const at::Tensor& p_bar, int64_t k, const at::Tensor& mask = {});
// LA: for j = 1..K with j < S, c_j = mean over valid (t, t+j) of -sum_e T[t+j,e] log max(Q[t,j,e], 1e-9);
// the average of c_j over the steps that have a valid pair. lookahead [B,S,K+1,E], teacher = sg(p_bar).
at::Tensor lookahead_soft_ce(const at::Tensor& lookahead, const at::Tensor& teacher, const at::Tensor& mask = {});
// Top: per j, mean over valid (t, t+j) of -log(max(sum_{e in H} Q[t,j,e], 1e-9) / k), H = top-k of
// T[t+j]; averaged over the steps that have a valid pair.
at::Tensor lookahead_topk_loss(const at::Tensor& lookahead, const at::Tensor& teacher, int64_t k,
                               const at::Tensor& mask = {});
// Uni (needs S > K): for t < S-K with t..t+K all real, U = union over j = 1..K of top-k(T[t+j]),
// pred = max_j Q[t,j]; mean of -log(max(sum_e pred*U, 1e-9) / max(sum_e U, 1)).
at::Tensor lookahead_union_loss(const at::Tensor& lookahead, const at::Tensor& teacher, int64_t k,
                                const at::Tensor& mask = {});

// One layer's balance value over the real tokens: E * sum_e f_e * mean_p_e with
// f_e = (routed slots to e) / N and mean_p = sum of probs / N, N = real tokens (>= 1).
// probs [B,S,E] (gradient flows through mean_p only), selected [B,S,k] int64, mask [B,S] optional.
at::Tensor load_balance_value(const at::Tensor& probs, const at::Tensor& selected, const at::Tensor& mask = {});

// The router KL anchor: mean over real tokens of sum_e R (log max(R,1e-9) - log max(R_ref,1e-9)),
// R = current layer-averaged probabilities [B,S,E] (gradient flows), R_ref = the reference's on the
// same tokens [B,S,E] (treated as a constant). Shapes must match exactly: the anchor is only
// meaningful position by position on identical tokens (B2). Unweighted.
at::Tensor router_anchor_kl(const at::Tensor& current, const at::Tensor& reference, const at::Tensor& mask = {});

}  // namespace chronos
