#include "chronos/train/preference_losses.h"

#include <cmath>

#include "chronos/core/error.h"
#include "chronos/train/global_batch.h"
#include "train/loss_utils.h"

namespace chronos {

using losses::check_config;
using losses::require;
using losses::shape_of;

namespace {

void require_pairs(const char* what, std::initializer_list<const at::Tensor*> tensors) {
  const at::Tensor& first = **tensors.begin();
  for (const at::Tensor* t : tensors)
    require(t->defined() && t->dim() == 1 && first.defined() && t->size(0) == first.size(0),
            cat(what, ": expected per-sequence log-probabilities [B], all the same length (got ", shape_of(*t),
                " and ", shape_of(first), ")"));
}

// log(max(1 - e^m, floor)), with a zero gradient where the floor applies.
at::Tensor log_one_minus_exp_floored(const at::Tensor& m, double floor) {
  const double cap = std::log1p(-floor);  // m above this: 1 - e^m < floor
  return at::where(m > cap, at::full({}, std::log(floor), m.options()), log1mexp(m.clamp_max(cap)));
}

}  // namespace

void DpoConfig::validate() const { check_config(std::isfinite(beta) && beta > 0, "dpo.beta", "finite and > 0", beta); }

void OrpoConfig::validate() const {
  check_config(std::isfinite(beta) && beta > 0, "orpo.beta", "finite and > 0", beta);
  check_config(std::isfinite(lambda_or) && lambda_or >= 0, "orpo.lambda_or", "finite and >= 0", lambda_or);
}

DpoOutput dpo_loss(const at::Tensor& policy_chosen, const at::Tensor& policy_rejected,
                   const at::Tensor& reference_chosen, const at::Tensor& reference_rejected, const DpoConfig& config) {
  config.validate();
  require_pairs("dpo_loss", {&policy_chosen, &policy_rejected, &reference_chosen, &reference_rejected});
  const at::Tensor pc = losses::upcast(policy_chosen);
  const at::Tensor pr = policy_rejected.to(pc.scalar_type());
  const at::Tensor rc = reference_chosen.detach().to(pc.device(), pc.scalar_type());
  const at::Tensor rr = reference_rejected.detach().to(pc.device(), pc.scalar_type());
  const at::Tensor logits = config.beta * ((pc - pr) - (rc - rr));
  DpoOutput out;
  out.loss = -batch_mean(at::log_sigmoid(logits));  // log_sigmoid is stable for large |logits|
  out.chosen_rewards = (config.beta * (pc - rc)).detach();
  out.rejected_rewards = (config.beta * (pr - rr)).detach();
  out.reward_margin = batch_mean(out.chosen_rewards - out.rejected_rewards);
  out.reward_accuracy = batch_mean((out.chosen_rewards > out.rejected_rewards).to(pc.scalar_type()));
  return out;
}

at::Tensor log1mexp(const at::Tensor& m) {
  // Both branches are evaluated everywhere; each is finite on the other's side for m < 0.
  static const double kLn2 = std::log(2.0);
  return at::where(m > -kLn2, (-at::expm1(m)).log(), at::log1p(-m.exp()));
}

at::Tensor log_odds(const at::Tensor& m) { return m - log_one_minus_exp_floored(m, 1e-6); }

OrpoOutput orpo_loss(const at::Tensor& chosen_mean, const at::Tensor& rejected_mean, const OrpoConfig& config) {
  config.validate();
  require_pairs("orpo_loss", {&chosen_mean, &rejected_mean});
  const at::Tensor mc = losses::upcast(chosen_mean);
  const at::Tensor mr = rejected_mean.to(mc.scalar_type());
  const at::Tensor ratio = log_odds(mc) - log_odds(mr);
  OrpoOutput out;
  out.nll = -batch_mean(mc);
  out.odds_ratio_loss = -batch_mean(at::log_sigmoid(config.beta * ratio));
  out.loss = out.nll + config.lambda_or * out.odds_ratio_loss;
  out.log_odds_ratio = batch_mean(ratio.detach());
  out.accuracy = batch_mean((ratio.detach() > 0).to(mc.scalar_type()));
  return out;
}

}  // namespace chronos
