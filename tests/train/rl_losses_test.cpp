#include "chronos/train/rl_losses.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "chronos/core/error.h"
#include "train/gradient_check.h"

namespace chronos {
namespace {

at::Tensor vec(std::vector<double> v) { return at::tensor(v, at::kDouble); }
at::Tensor grid(std::vector<double> v, int64_t G, int64_t T) { return vec(std::move(v)).view({G, T}); }

// ---- advantages ----

TEST(GroupAdvantages, BesselCorrectedByDefault) {
  const at::Tensor a = group_relative_advantages(vec({1, 2, 3, 4}));
  const std::vector<double> expected = {-1.161895003862225, -0.3872983346207417, 0.3872983346207417, 1.161895003862225};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(a[i].item<double>(), expected[i], 1e-12);
}

TEST(GroupAdvantages, BiasedStdOnRequest) {
  GroupAdvantageOptions options;
  options.unbiased_std = false;
  EXPECT_NEAR(group_relative_advantages(vec({1, 2, 3, 4}), options)[3].item<double>(), 1.3416407864998738, 1e-12);
}

TEST(GroupAdvantages, GroupOfOneIsZeroNotNaN) {  // B4
  const at::Tensor a = group_relative_advantages(at::full({1}, 0.7f));
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  EXPECT_EQ(a[0].item<float>(), 0.0f);
}

TEST(GroupAdvantages, EqualRewardsGiveZero) {  // B4: zero-variance group, rounding noise included
  const at::Tensor a = group_relative_advantages(at::full({4}, 1.0f / 3));
  EXPECT_EQ(a.abs().sum().item<float>(), 0.0f);
}

TEST(GroupAdvantages, RowsAreIndependentGroups) {
  const at::Tensor a = group_relative_advantages(grid({1, 2, 3, 4, 5, 5, 5, 5}, 2, 4));
  EXPECT_NEAR(a[0][0].item<double>(), -1.161895003862225, 1e-12);
  EXPECT_EQ(a[1].abs().sum().item<double>(), 0.0);
}

// ---- k3 KL ----

TEST(K3Kl, ZeroWhenPolicyEqualsReference) {  // a check the reference states
  at::manual_seed(9);
  const at::Tensor lp = -at::rand({3, 5}, at::kDouble) * 4;
  EXPECT_EQ(k3_kl(lp, lp, at::ones({3, 5})).item<double>(), 0.0);
}

TEST(K3Kl, HandValueOverMaskedTokens) {
  // token 0: d = -2 - (-1) = -1 -> e^-1 + 1 - 1; token 1: d = 0; token 2 (masked): d = 5.
  const at::Tensor kl = k3_kl(grid({-1, -3, -1}, 1, 3), grid({-2, -3, 4}, 1, 3), grid({1, 1, 0}, 1, 3));
  EXPECT_NEAR(kl.item<double>(), std::exp(-1.0) / 2, 1e-12);
}

TEST(K3Kl, EmptyMaskIsZero) {
  EXPECT_EQ(k3_kl(grid({-1, -2}, 1, 2), grid({-3, -4}, 1, 2), grid({0, 0}, 1, 2)).item<double>(), 0.0);
}

// ---- policy loss ----

TEST(GrpoLoss, ReinforceHandValue) {
  // l = [(-1 - 2) / 2, -0.5 / 1] = [-1.5, -0.5]; A = [1, -1]: -mean(-1.5, 0.5) = 0.5. KL 0 (ref = policy).
  const at::Tensor lp = grid({-1, -2, -3, -0.5, -0.5, -9}, 2, 3);
  const at::Tensor mask = grid({1, 1, 0, 1, 0, 0}, 2, 3);
  const GrpoLossOutput out = grpo_loss(lp, lp, {}, mask, vec({1, -1}), GrpoLossConfig{});
  EXPECT_NEAR(out.policy_loss.item<double>(), 0.5, 1e-12);
  EXPECT_EQ(out.kl.item<double>(), 0.0);
  EXPECT_NEAR(out.loss.item<double>(), 0.5, 1e-12);
}

TEST(GrpoLoss, LossAddsBetaTimesKl) {
  const at::Tensor lp = grid({-1, -3}, 1, 2), ref = grid({-2, -3}, 1, 2), mask = grid({1, 1}, 1, 2);
  const GrpoLossOutput out = grpo_loss(lp, ref, {}, mask, vec({0.0}), GrpoLossConfig{});
  EXPECT_NEAR(out.kl.item<double>(), std::exp(-1.0) / 2, 1e-12);
  EXPECT_NEAR(out.loss.item<double>(), 0.04 * std::exp(-1.0) / 2, 1e-12);
}

TEST(GrpoLoss, ReinforceGradientMatchesFiniteDifferences) {
  at::manual_seed(10);
  const at::Tensor ref = -at::rand({3, 4}, at::kDouble) * 3;
  const at::Tensor mask = grid({1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0}, 3, 4);
  const at::Tensor advantages = vec({0.7, -1.2, 0.5});
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return grpo_loss(x, ref, {}, mask, advantages, GrpoLossConfig{0.3}).loss; },
      -at::rand({3, 4}, at::kDouble) * 3);
}

GrpoLossConfig clipped(double beta = 0.0) {
  GrpoLossConfig c;
  c.beta = beta;
  c.objective = PolicyObjective::ClippedRatio;
  return c;
}

TEST(GrpoLoss, ClippedRatioOnPolicyHasTheReinforceGradient) {
  at::manual_seed(12);
  const at::Tensor start = -at::rand({3, 4}, at::kDouble) * 3;
  const at::Tensor ref = -at::rand({3, 4}, at::kDouble) * 3;
  const at::Tensor mask = grid({1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0}, 3, 4);
  const at::Tensor advantages = vec({0.7, -1.2, 0.5});
  const at::Tensor reinforce = testing::autograd_gradient(
      [&](const at::Tensor& x) { return grpo_loss(x, ref, {}, mask, advantages, GrpoLossConfig{0.04}).loss; }, start);
  const at::Tensor ratio = testing::autograd_gradient(
      [&](const at::Tensor& x) { return grpo_loss(x, ref, x.detach(), mask, advantages, clipped(0.04)).loss; }, start);
  EXPECT_TRUE(at::allclose(reinforce, ratio, 1e-12, 1e-12));
}

TEST(GrpoLoss, ClippedRatioHandValues) {
  const at::Tensor old = grid({0.0}, 1, 1), lp = grid({std::log(1.5)}, 1, 1), mask = grid({1}, 1, 1);
  // A > 0, r = 1.5 > 1.2: the clipped 1.2 wins the min, no gradient.
  const at::Tensor x = lp.clone().set_requires_grad(true);
  GrpoLossOutput up = grpo_loss(x, x.detach(), old, mask, vec({1.0}), clipped());
  EXPECT_NEAR(up.policy_loss.item<double>(), -1.2, 1e-12);
  EXPECT_EQ(up.clip_fraction.item<double>(), 1.0);
  up.loss.backward();
  EXPECT_EQ(x.grad()[0][0].item<double>(), 0.0);
  // A < 0, r = 1.5: the unclipped -1.5 wins, gradient -A r = 1.5.
  const at::Tensor y = lp.clone().set_requires_grad(true);
  GrpoLossOutput down = grpo_loss(y, y.detach(), old, mask, vec({-1.0}), clipped());
  EXPECT_NEAR(down.policy_loss.item<double>(), 1.5, 1e-12);
  EXPECT_EQ(down.clip_fraction.item<double>(), 0.0);
  down.loss.backward();
  EXPECT_NEAR(y.grad()[0][0].item<double>(), 1.5, 1e-12);
}

TEST(GrpoLoss, ClippedRatioGradientMatchesFiniteDifferences) {
  at::manual_seed(13);
  const at::Tensor old = -at::rand({2, 3}, at::kDouble) * 2;
  const at::Tensor start = old + at::randn({2, 3}, at::kDouble) * 0.05;  // inside the clip range
  const at::Tensor ref = -at::rand({2, 3}, at::kDouble) * 2;
  const at::Tensor mask = grid({1, 1, 0, 1, 1, 1}, 2, 3);
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return grpo_loss(x, ref, old, mask, vec({0.9, -0.4}), clipped(0.1)).loss; }, start);
}

TEST(GrpoLoss, ClippedRatioNeedsOldLogProbs) {
  const at::Tensor lp = grid({-1, -2}, 1, 2);
  EXPECT_THROW(grpo_loss(lp, lp, {}, grid({1, 1}, 1, 2), vec({1.0}), clipped()), InvalidArgument);
}

TEST(GrpoLoss, PaddedTokensDoNotCount) {
  const at::Tensor mask = grid({1, 0}, 1, 2);
  const GrpoLossOutput a = grpo_loss(grid({-1, -7}, 1, 2), grid({-1.5, 3}, 1, 2), {}, mask, vec({1.0}), GrpoLossConfig{});
  const GrpoLossOutput b = grpo_loss(grid({-1, NAN}, 1, 2), grid({-1.5, NAN}, 1, 2), {}, mask, vec({1.0}), GrpoLossConfig{});
  EXPECT_NEAR(a.loss.item<double>(), b.loss.item<double>(), 1e-15);
  EXPECT_NEAR(a.policy_loss.item<double>(), 1.0, 1e-12);
}

TEST(GrpoLossConfig, RejectsBadValues) {
  GrpoLossConfig c;
  c.beta = -0.1;
  EXPECT_THROW(c.validate(), ConfigError);
  c.beta = 0.04;
  c.clip_eps = 1.0;
  EXPECT_THROW(c.validate(), ConfigError);
}

}  // namespace
}  // namespace chronos
