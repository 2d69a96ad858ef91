#include "chronos/train/preference_losses.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "chronos/train/sequence_log_probs.h"
#include "support/tiny_config.h"
#include "train/gradient_check.h"

namespace chronos {
namespace {

at::Tensor vec(std::vector<double> v) { return at::tensor(v, at::kDouble); }

// ---- DPO ----

TEST(DpoLoss, IsLn2WhenPolicyEqualsReference) {  // a check the reference states
  const at::Tensor chosen = vec({-10.0, -3.5}), rejected = vec({-20.0, -1.0});
  const DpoOutput out = dpo_loss(chosen, rejected, chosen, rejected, DpoConfig{});
  EXPECT_NEAR(out.loss.item<double>(), std::log(2.0), 1e-12);
  EXPECT_EQ(out.reward_margin.item<double>(), 0.0);
}

TEST(DpoLoss, HandValueRewardsAndAccuracy) {
  // beta 0.1, policy margin 10, reference margin 6: -log sigmoid(0.4).
  const DpoOutput out = dpo_loss(vec({-10.0}), vec({-20.0}), vec({-12.0}), vec({-18.0}), DpoConfig{});
  EXPECT_NEAR(out.loss.item<double>(), 0.5130152523999526, 1e-12);
  EXPECT_NEAR(out.chosen_rewards[0].item<double>(), 0.2, 1e-12);
  EXPECT_NEAR(out.rejected_rewards[0].item<double>(), -0.2, 1e-12);
  EXPECT_NEAR(out.reward_margin.item<double>(), 0.4, 1e-12);
  EXPECT_EQ(out.reward_accuracy.item<double>(), 1.0);
}

TEST(DpoLoss, StartsAtLn2OnATinyModelWithDropoutOff) {  // a check of the reference's, B8: same weights, eval mode
  at::manual_seed(8);
  ChronosForCausalLM policy(testing::tiny_config());
  policy->eval();
  const at::Tensor chosen = at::randint(3, 97, {2, 7}, at::kLong), rejected = at::randint(3, 97, {2, 7}, at::kLong);
  at::Tensor mask = at::ones({2, 7}, at::kLong);
  mask.narrow(1, 0, 3).zero_();  // prompt tokens are not scored
  const at::Tensor both = at::cat({chosen, rejected}, 0);
  const SequenceLogProbs pi = sequence_log_probs(policy->forward(both).logits, both, at::cat({mask, mask}, 0));
  const SequenceLogProbs ref = sequence_log_probs(policy->forward(both).logits.detach(), both, at::cat({mask, mask}, 0));
  const DpoOutput out = dpo_loss(pi.sum.narrow(0, 0, 2), pi.sum.narrow(0, 2, 2), ref.sum.narrow(0, 0, 2),
                                 ref.sum.narrow(0, 2, 2), DpoConfig{});
  EXPECT_NEAR(out.loss.item<float>(), std::log(2.0f), 1e-6f);
}

TEST(DpoLoss, GradientFlowsToThePolicyOnly) {
  const at::Tensor ref_c = vec({-11.0, -4.0}).set_requires_grad(true), ref_r = vec({-19.0, -2.0});
  const at::Tensor rejected = vec({-20.0, -1.0});
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return dpo_loss(x, rejected, ref_c, ref_r, DpoConfig{0.5}).loss; },
      vec({-10.0, -3.5}));
  // The reference is a constant: a loss built from a grad-requiring reference has no graph to it.
  EXPECT_FALSE(dpo_loss(vec({-10.0, -3.5}), rejected, ref_c, ref_r, DpoConfig{}).loss.requires_grad());
}

TEST(DpoLoss, StaysFiniteForHugeMargins) {
  const DpoOutput out = dpo_loss(vec({0.0, -1e5}), vec({-1e5, 0.0}), vec({0.0, 0.0}), vec({0.0, 0.0}), DpoConfig{});
  EXPECT_NEAR(out.loss.item<double>(), 1e4 / 2, 1e-6);  // pair 1 costs 0, pair 2 costs beta * 1e5
}

TEST(DpoConfig, RejectsNonPositiveBeta) {
  EXPECT_THROW(DpoConfig{0.0}.validate(), ConfigError);
  EXPECT_THROW(dpo_loss(vec({0}), vec({0}), vec({0}), vec({0}), DpoConfig{-1}), ConfigError);
}

// ---- ORPO ----

TEST(OrpoLoss, HandValue) {
  // lo(-0.5) = 0.432752..., lo(-2) = -1.854587...; beta 0.1, lambda_or 0.1.
  const OrpoOutput out = orpo_loss(vec({-0.5}), vec({-2.0}), OrpoConfig{});
  EXPECT_NEAR(out.nll.item<double>(), 0.5, 1e-12);
  EXPECT_NEAR(out.log_odds_ratio.item<double>(), 2.2873386716983295, 1e-12);
  EXPECT_NEAR(out.odds_ratio_loss.item<double>(), 0.5853059374998159, 1e-12);
  EXPECT_NEAR(out.loss.item<double>(), 0.5585305937499816, 1e-12);
  EXPECT_EQ(out.accuracy.item<double>(), 1.0);
}

TEST(Log1mexp, AccurateAtBothEnds) {
  EXPECT_NEAR(log1mexp(vec({-1e-10})).item<double>(), -23.025850929990458, 1e-9);
  const double far = log1mexp(vec({-50.0})).item<double>();
  EXPECT_NEAR(far / -1.9287498479639178e-22, 1.0, 1e-12);
  EXPECT_NEAR(log1mexp(vec({-std::log(2.0)})).item<double>(), -std::log(2.0), 1e-12);
}

TEST(LogOdds, FlooredNearZeroWithFiniteGradient) {
  const at::Tensor m = vec({0.0, -1e-9, -1e-3}).set_requires_grad(true);
  const at::Tensor lo = log_odds(m);
  EXPECT_NEAR(lo[1].item<double>(), 13.815510556964274, 1e-9);  // -1e-9 - log(1e-6)
  EXPECT_NEAR(lo[2].item<double>(), -1e-3 - std::log(-std::expm1(-1e-3)), 1e-12);
  lo.sum().backward();
  EXPECT_TRUE(at::isfinite(m.grad()).all().item<bool>());
  EXPECT_NEAR(m.grad()[0].item<double>(), 1.0, 1e-12);  // only the m term: the floor is constant
}

TEST(OrpoLoss, GradientMatchesFiniteDifferences) {
  const at::Tensor rejected = vec({-2.0, -0.3});
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return orpo_loss(x, rejected, OrpoConfig{1.0, 0.5}).loss; }, vec({-0.5, -1.7}));
  const at::Tensor chosen = vec({-0.5, -1.7});
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return orpo_loss(chosen, x, OrpoConfig{1.0, 0.5}).loss; }, rejected);
}

TEST(OrpoConfig, RejectsBadValues) {
  EXPECT_THROW((OrpoConfig{0.0, 0.1}).validate(), ConfigError);
  EXPECT_THROW((OrpoConfig{0.1, -0.1}).validate(), ConfigError);
  EXPECT_THROW(orpo_loss(vec({-1.0, -2.0}), vec({-1.0}), OrpoConfig{}), InvalidArgument);
}

}  // namespace
}  // namespace chronos
