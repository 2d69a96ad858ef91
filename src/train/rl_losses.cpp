#include "chronos/train/rl_losses.h"

#include <cmath>

#include "chronos/core/error.h"
#include "chronos/train/global_batch.h"
#include "train/loss_utils.h"

namespace chronos {

using losses::check_config;
using losses::masked_mean;
using losses::require;
using losses::shape_of;

namespace {

void require_tokens(const char* what, const at::Tensor& a, const at::Tensor& b) {
  require(a.defined() && a.dim() == 2 && b.defined() && b.sizes() == a.sizes(),
          cat(what, ": expected per-token tensors [G,T] of one shape (got ", shape_of(a), " and ", shape_of(b), ")"));
}

// sum_t m * values / max(sum_t m, 1) per row: the length-normalised per-sequence mean, [G].
at::Tensor per_sequence_mean(const at::Tensor& values, const at::Tensor& valid) {
  const at::Tensor kept = at::where(valid, values, at::zeros({}, values.options()));
  return kept.sum(1) / valid.sum(1).to(values.scalar_type()).clamp_min(1);
}

}  // namespace

void GrpoLossConfig::validate() const {
  check_config(std::isfinite(beta) && beta >= 0, "grpo.beta", "finite and >= 0", beta);
  check_config(std::isfinite(clip_eps) && clip_eps > 0 && clip_eps < 1, "grpo.clip_eps", "in (0, 1)", clip_eps);
}

at::Tensor group_relative_advantages(const at::Tensor& rewards, const GroupAdvantageOptions& options) {
  require(rewards.defined() && (rewards.dim() == 1 || rewards.dim() == 2) && rewards.numel() > 0,
          cat("group_relative_advantages: expected rewards [G] or [N,G] (got ", shape_of(rewards), ")"));
  check_config(std::isfinite(options.eps) && options.eps > 0, "advantage eps", "finite and > 0", options.eps);
  const at::ScalarType out_type = rewards.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor r = (rewards.dim() == 1 ? rewards.unsqueeze(0) : rewards).detach().to(at::kDouble);
  const int64_t G = r.size(1);
  at::Tensor advantages;
  if (G < 2) {
    advantages = at::zeros_like(r);  // one sample: no spread to compare against
  } else {
    const at::Tensor centered = r - r.mean(1, /*keepdim=*/true);
    const double dof = options.unbiased_std ? static_cast<double>(G - 1) : static_cast<double>(G);
    const at::Tensor std = (centered.pow(2).sum(1, /*keepdim=*/true) / dof).sqrt();
    // Equal rewards carry no signal: 0, rather than rounding noise divided by eps.
    advantages = at::where(std > options.eps, centered / std.clamp_min(options.eps), at::zeros({}, r.options()));
  }
  advantages = advantages.to(out_type);
  return rewards.dim() == 1 ? advantages.squeeze(0) : advantages;
}

at::Tensor k3_kl_per_token(const at::Tensor& policy_log_probs, const at::Tensor& reference_log_probs) {
  require_tokens("k3_kl_per_token", policy_log_probs, reference_log_probs);
  const at::Tensor policy = losses::upcast(policy_log_probs);
  const at::Tensor delta = reference_log_probs.detach().to(policy.device(), policy.scalar_type()) - policy;
  return delta.exp() - delta - 1;
}

at::Tensor k3_kl(const at::Tensor& policy_log_probs, const at::Tensor& reference_log_probs, const at::Tensor& mask) {
  require_tokens("k3_kl", policy_log_probs, mask);
  const at::Tensor kl = k3_kl_per_token(policy_log_probs, reference_log_probs);
  return masked_mean(kl, mask.to(kl.device()) != 0);
}

GrpoLossOutput grpo_loss(const at::Tensor& policy_log_probs, const at::Tensor& reference_log_probs,
                         const at::Tensor& old_log_probs, const at::Tensor& mask, const at::Tensor& advantages,
                         const GrpoLossConfig& config) {
  config.validate();
  require_tokens("grpo_loss", policy_log_probs, reference_log_probs);
  require_tokens("grpo_loss", policy_log_probs, mask);
  const int64_t G = policy_log_probs.size(0);
  require(advantages.defined() && advantages.dim() == 1 && advantages.size(0) == G,
          cat("grpo_loss: advantages must be [", G, "] (got ", shape_of(advantages), ")"));

  const at::Tensor log_p = losses::upcast(policy_log_probs);
  const at::Tensor valid = mask.to(log_p.device()) != 0;
  const at::Tensor A = advantages.detach().to(log_p.device(), log_p.scalar_type());  // sg(A)

  GrpoLossOutput out;
  if (config.objective == PolicyObjective::Reinforce) {
    out.policy_loss = -batch_mean(A * per_sequence_mean(log_p, valid));
    out.clip_fraction = at::zeros({}, log_p.options());
  } else {
    require_tokens("grpo_loss (ClippedRatio needs old_log_probs)", log_p, old_log_probs);
    const at::Tensor old = old_log_probs.detach().to(log_p.device(), log_p.scalar_type());
    const at::Tensor ratio = (log_p - old).exp();
    const at::Tensor a = A.unsqueeze(1);
    const double lo = 1.0 - config.clip_eps, hi = 1.0 + config.clip_eps;
    const at::Tensor surrogate = at::minimum(ratio * a, ratio.clamp(lo, hi) * a);
    out.policy_loss = -batch_mean(per_sequence_mean(surrogate, valid));
    const at::Tensor r = ratio.detach();
    const at::Tensor clipped = ((a > 0).logical_and(r > hi)).logical_or((a < 0).logical_and(r < lo));
    out.clip_fraction = masked_mean(clipped.to(log_p.scalar_type()), valid);
  }
  out.kl = k3_kl(log_p, reference_log_probs, mask);
  out.loss = out.policy_loss + config.beta * out.kl;
  return out;
}

}  // namespace chronos
