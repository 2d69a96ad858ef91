#include "chronos/train/sequence_log_probs.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "support/tiny_config.h"
#include "train/gradient_check.h"

namespace chronos {
namespace {

// [1,3,2]: position 0 gives p = [0.25, 0.75], position 1 p = [0.8, 0.2], position 2 is never scored.
at::Tensor hand_logits() {
  return at::tensor(std::vector<double>{0.0, std::log(3.0), std::log(4.0), 0.0, 5.0, -5.0}, at::kDouble).view({1, 3, 2});
}
at::Tensor ids(std::vector<int64_t> v, int64_t B, int64_t S) { return at::tensor(v, at::kLong).view({B, S}); }

TEST(TargetLogProbs, HandValuesAndIgnoredTargets) {
  const at::Tensor lp = target_log_probs(hand_logits(), ids({1, 0, -100}, 1, 3));
  EXPECT_NEAR(lp[0][0].item<double>(), std::log(0.75), 1e-12);
  EXPECT_NEAR(lp[0][1].item<double>(), std::log(0.8), 1e-12);
  EXPECT_EQ(lp[0][2].item<double>(), 0.0);
}

TEST(NextTokenLogProbs, PositionTScoresTokenTPlusOne) {
  const at::Tensor lp = next_token_log_probs(hand_logits(), ids({0, 1, 0}, 1, 3));
  ASSERT_EQ(lp.sizes(), (std::vector<int64_t>{1, 2}));
  EXPECT_NEAR(lp[0][0].item<double>(), std::log(0.75), 1e-12);
  EXPECT_NEAR(lp[0][1].item<double>(), std::log(0.8), 1e-12);
}

TEST(SequenceLogProbs, SumCountAndMeanUnderTheMask) {
  const SequenceLogProbs all = sequence_log_probs(hand_logits(), ids({0, 1, 0}, 1, 3), ids({1, 1, 1}, 1, 3));
  EXPECT_NEAR(all.sum.item<double>(), std::log(0.6), 1e-12);
  EXPECT_EQ(all.count.item<double>(), 2.0);  // column 0 is never scored
  EXPECT_NEAR(all.mean.item<double>(), std::log(0.6) / 2, 1e-12);
  const SequenceLogProbs first = sequence_log_probs(hand_logits(), ids({0, 1, 0}, 1, 3), ids({0, 1, 0}, 1, 3));
  EXPECT_NEAR(first.sum.item<double>(), std::log(0.75), 1e-12);
  EXPECT_EQ(first.count.item<double>(), 1.0);
}

TEST(SequenceLogProbs, DefaultMaskIgnoresMinus100Labels) {
  const SequenceLogProbs s = sequence_log_probs(hand_logits(), ids({-100, -100, 0}, 1, 3));
  EXPECT_NEAR(s.sum.item<double>(), std::log(0.8), 1e-12);
  EXPECT_EQ(s.count.item<double>(), 1.0);
}

TEST(ReduceLogProbs, EmptyRowHasMeanZeroNotNaN) {
  const at::Tensor lp = at::tensor(std::vector<double>{-1.0, NAN, -2.0, -3.0}, at::kDouble).view({2, 2});
  const SequenceLogProbs s = reduce_log_probs(lp, ids({0, 0, 1, 1}, 2, 2));
  EXPECT_EQ(s.mean[0].item<double>(), 0.0);
  EXPECT_EQ(s.sum[0].item<double>(), 0.0);
  EXPECT_NEAR(s.mean[1].item<double>(), -2.5, 1e-12);
}

TEST(TargetLogProbs, LowPrecisionLogitsAreScoredInFloat32) {
  at::manual_seed(4);
  const at::Tensor logits = at::randn({2, 5, 11}) * 3;
  const at::Tensor targets = at::randint(0, 11, {2, 5}, at::kLong);
  const at::Tensor reference = target_log_probs(logits, targets);
  const at::Tensor half = target_log_probs(logits.to(at::kBFloat16), targets);
  EXPECT_EQ(half.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(half, reference, 0, 5e-2));
}

TEST(TargetLogProbs, GradientMatchesFiniteDifferences) {
  at::manual_seed(5);
  const at::Tensor targets = ids({3, 0, -100, 2, 1, 4}, 2, 3);
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return target_log_probs(x, targets).sum(); }, at::randn({2, 3, 5}, at::kDouble));
}

TEST(CausalLmLoss, MatchesTheModelsCrossEntropy) {
  at::manual_seed(6);
  ChronosForCausalLM model(testing::tiny_config());
  model->eval();
  const at::Tensor input = at::randint(3, 97, {2, 6}, at::kLong);
  at::Tensor labels = input.clone();
  labels[0][4] = -100;
  labels[1][0] = -100;
  labels[1][5] = -100;
  ForwardOptions options;
  options.labels = labels;
  const ForwardOutput out = model->forward(input, options);
  EXPECT_NEAR(causal_lm_loss(out.logits, labels).item<float>(), out.loss.item<float>(), 1e-5f);
}

TEST(CausalLmLoss, AllIgnoredIsZeroWithFiniteGradient) {  // B9
  const at::Tensor logits = at::randn({1, 4, 6}).set_requires_grad(true);
  const at::Tensor loss = causal_lm_loss(logits, at::full({1, 4}, -100, at::kLong));
  EXPECT_EQ(loss.item<float>(), 0.0f);
  loss.backward();
  EXPECT_TRUE(at::isfinite(logits.grad()).all().item<bool>());
}

TEST(SequenceLogProbs, RejectsMismatchedShapes) {
  EXPECT_THROW(target_log_probs(at::zeros({1, 3, 2}), ids({0, 1}, 1, 2)), InvalidArgument);
  EXPECT_THROW(next_token_log_probs(at::zeros({1, 1, 2}), ids({0}, 1, 1)), InvalidArgument);
  EXPECT_THROW(sequence_log_probs(hand_logits(), ids({0, 1, 0}, 1, 3), ids({1, 1}, 1, 2)), InvalidArgument);
}

}  // namespace
}  // namespace chronos
