// Preference objectives of stages 3 and 4 (docs/training_losses.md): DPO (Rafailov et al. 2023) and
// ORPO (Hong et al. 2024). Inputs are per-sequence log-probabilities from sequence_log_probs.h;
// pair i is (chosen_i, rejected_i). All outputs are fp32 (fp64 for fp64 inputs).
#pragma once

#include <ATen/ATen.h>

namespace chronos {

struct DpoConfig {
  double beta = 0.1;  // inverse temperature of the implicit reward (minimind uses 0.15)
  void validate() const;  // ConfigError unless beta is finite and > 0
};

struct DpoOutput {
  at::Tensor loss;              // scalar: mean_i -log sigmoid(beta * ((pi_c - pi_r) - (ref_c - ref_r)))
  at::Tensor chosen_rewards;    // [B] beta * (pi_c - ref_c), detached
  at::Tensor rejected_rewards;  // [B] beta * (pi_r - ref_r), detached
  at::Tensor reward_margin;     // scalar mean(chosen - rejected rewards), detached
  at::Tensor reward_accuracy;   // scalar fraction of pairs with chosen reward > rejected reward
};

// DPO on summed sequence log-probabilities (SequenceLogProbs::sum), each [B]. The reference terms
// are constants (detached). With policy == reference the loss is ln 2.
DpoOutput dpo_loss(const at::Tensor& policy_chosen, const at::Tensor& policy_rejected,
                   const at::Tensor& reference_chosen, const at::Tensor& reference_rejected, const DpoConfig& config);

struct OrpoConfig {
  double beta = 0.1;       // scale inside the sigmoid. The paper has none (beta = 1); 0.1 times lambda_or 0.1
                           // makes the odds-ratio term ~100x weaker than the paper's (B3): consider beta = 1
  double lambda_or = 0.1;  // weight of the odds-ratio term
  void validate() const;   // ConfigError unless beta > 0 and lambda_or >= 0, both finite
};

struct OrpoOutput {
  at::Tensor loss;             // scalar nll + lambda_or * odds_ratio_loss
  at::Tensor nll;              // scalar -mean_i m(chosen_i)
  at::Tensor odds_ratio_loss;  // scalar mean_i -log sigmoid(beta * (lo(m_c) - lo(m_r)))
  at::Tensor log_odds_ratio;   // scalar mean_i lo(m_c) - lo(m_r), detached (logging)
  at::Tensor accuracy;         // scalar fraction of pairs with lo(m_c) > lo(m_r), detached
};

// ORPO on length-normalised log-probabilities m = SequenceLogProbs::mean (each [B], m <= 0).
OrpoOutput orpo_loss(const at::Tensor& chosen_mean, const at::Tensor& rejected_mean, const OrpoConfig& config);

// log(1 - e^m) for m <= 0, stable at both ends: log(-expm1(m)) when m > -ln 2, else log1p(-e^m).
at::Tensor log1mexp(const at::Tensor& m);

// Log-odds of a length-normalised log-probability: lo(m) = m - log(max(1 - e^m, 1e-6)). Finite with
// a finite gradient for every m (the clamp region, m > log(1 - 1e-6), has zero gradient).
at::Tensor log_odds(const at::Tensor& m);

}  // namespace chronos
