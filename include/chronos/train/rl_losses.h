// GRPO objective of stage 5 (docs/training_losses.md; Shao et al. 2024, DeepSeekMath): group-relative
// advantages, the k3 KL estimator against the frozen reference, and the policy loss, either the
// reference's plain advantage-weighted log-likelihood or the PPO clipped-ratio surrogate.
//
// Per-token tensors are [G,T] and aligned: position t holds log p(token t+1) (next_token_log_probs)
// and mask[g,t] != 0 marks a response token (the response mask shifted by one). fp32 maths (fp64
// inputs stay fp64).
#pragma once

#include <ATen/ATen.h>

namespace chronos {

struct GroupAdvantageOptions {
  // Std of the group: Bessel-corrected (n-1), as the reference, DeepSeekMath and TRL use; false gives
  // the biased (n) std of minimind. Either way a group of one (std undefined) or a group whose
  // rewards are all equal (std <= eps) gets advantage 0, never NaN or a blown-up value (B4).
  bool unbiased_std = true;
  double eps = 1e-6;  // std floor: A = (r - mean) / max(std, eps)
};

// rewards [G] (one group) or [N,G] (N groups, one per row) -> advantages of the same shape, no
// gradient. Computed in fp64; returned as fp32 (fp64 for fp64 rewards).
at::Tensor group_relative_advantages(const at::Tensor& rewards, const GroupAdvantageOptions& options = {});

// k3 estimator per token: e^d - d - 1 with d = reference - policy (>= 0, 0 when equal). [G,T].
at::Tensor k3_kl_per_token(const at::Tensor& policy_log_probs, const at::Tensor& reference_log_probs);

// Mean k3 KL over the masked tokens of the whole group: sum(m * kl) / max(sum(m), 1). The gradient
// flows through the policy only.
at::Tensor k3_kl(const at::Tensor& policy_log_probs, const at::Tensor& reference_log_probs, const at::Tensor& mask);

enum class PolicyObjective {
  Reinforce,     // the reference: -mean_i sg(A_i) * l_i with l_i = length-normalised sum of log p
  ClippedRatio,  // PPO surrogate with r = exp(log p - log p_old) per token (B4: corrects off-policy drift)
};

struct GrpoLossConfig {
  double beta = 0.04;                                  // weight of the k3 KL (minimind 0.1)
  PolicyObjective objective = PolicyObjective::Reinforce;
  double clip_eps = 0.2;                               // ClippedRatio: r is clipped to [1-eps, 1+eps]
  void validate() const;                               // ConfigError: beta >= 0, 0 < clip_eps < 1, finite
};

struct GrpoLossOutput {
  at::Tensor loss;           // scalar policy_loss + beta * kl
  at::Tensor policy_loss;    // scalar
  at::Tensor kl;             // scalar k3_kl(policy, reference, mask)
  at::Tensor clip_fraction;  // scalar share of masked tokens where the clip is active (0 for Reinforce), detached
};

// Advantage-weighted policy loss, masked tokens only, each sequence length-normalised
// (1/|o_i| sum_t, as DeepSeekMath eq. 3), then the mean over the G sequences:
//   Reinforce:    -mean_i A_i * sum_t m log p / max(sum_t m, 1)
//   ClippedRatio: -mean_i sum_t m min(r A_i, clip(r, 1-eps, 1+eps) A_i) / max(sum_t m, 1),
//                 r = exp(log p - sg(log p_old)); with log p_old = sg(log p) its gradient equals Reinforce's.
// policy/reference/old log-probs and mask [G,T]; advantages [G] (treated as constants);
// old_log_probs is required for ClippedRatio and ignored otherwise.
GrpoLossOutput grpo_loss(const at::Tensor& policy_log_probs, const at::Tensor& reference_log_probs,
                         const at::Tensor& old_log_probs, const at::Tensor& mask, const at::Tensor& advantages,
                         const GrpoLossConfig& config);

}  // namespace chronos
