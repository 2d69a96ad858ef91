#include "chronos/train/chronos_losses.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/config.h"
#include "chronos/train/stage_recipe.h"
#include "support/tiny_config.h"
#include "train/gradient_check.h"

namespace chronos {
namespace {

at::Tensor values(std::vector<double> v, at::IntArrayRef shape) { return at::tensor(v, at::kDouble).view(shape); }

// 1 x 3 x 2 layer-averaged router probabilities without top-1 ties.
at::Tensor three_tokens() { return values({0.6, 0.4, 0.7, 0.3, 0.2, 0.8}, {1, 3, 2}); }

// Lookahead probabilities [1,3,K+1=2,2]: slot 1 of t=0 is [0.5,0.5], of t=1 [0.25,0.75]; slot 0 and
// t=2 are never read by the losses (set to values that would change the result if they were).
at::Tensor three_token_lookahead() {
  return values({0.9, 0.1, 0.5, 0.5,     // t = 0: slot 0, slot 1
                 0.9, 0.1, 0.25, 0.75,   // t = 1
                 0.9, 0.1, 0.01, 0.99},  // t = 2
                {1, 3, 2, 2});
}

at::Tensor real(std::vector<int64_t> m, int64_t B, int64_t S) { return at::tensor(m, at::kLong).view({B, S}); }

RouterLossWeights only(double RouterLossWeights::*field, double value = 1.0) {
  RouterLossWeights w;
  w.balance = w.temporal = w.router_locality = w.lookahead = w.lookahead_topk = w.lookahead_union = w.router_anchor = 0;
  w.*field = value;
  return w;
}

// ---- each term against a hand-computed value --------------------------------------------------------

TEST(TemporalLoss, MeanSquaredStepBetweenAdjacentTokens) {
  // steps (0.1,-0.1) and (-0.5,0.5): squared norms 0.02 and 0.5.
  EXPECT_NEAR(temporal_loss(three_tokens()).item<double>(), 0.26, 1e-12);
}

TEST(TemporalLoss, PaddingLeavesOutEveryPairItTouches) {
  EXPECT_NEAR(temporal_loss(three_tokens(), real({1, 1, 0}, 1, 3)).item<double>(), 0.02, 1e-12);
}

TEST(TemporalLoss, PairsNeedBothEndsReal) {
  // Left padding: only the pair (1, 2) is real.
  EXPECT_NEAR(temporal_loss(three_tokens(), real({0, 1, 1}, 1, 3)).item<double>(), 0.5, 1e-12);
}

TEST(RouterLocality, MassOnThePreviousTopKSet) {
  // top-1 of t-1 is expert 0 both times: -(log 0.7 + log 0.2) / 2.
  EXPECT_NEAR(router_locality_loss(three_tokens(), 1).item<double>(), 0.9830564281864164, 1e-12);
}

TEST(RouterLocality, DividesByKSoAFullSetCostsLogK) {
  // k = E: the set holds all the mass, -log(1 / 2) at every pair.
  EXPECT_NEAR(router_locality_loss(three_tokens(), 2).item<double>(), std::log(2.0), 1e-12);
}

TEST(LookaheadSoftCe, TeacherWeightedLogOfThePrediction) {
  // t=0: -(0.7 + 0.3) log 0.5 = ln 2; t=1: -(0.2 log 0.25 + 0.8 log 0.75).
  EXPECT_NEAR(lookahead_soft_ce(three_token_lookahead(), three_tokens()).item<double>(), 0.6002758553726741, 1e-12);
}

TEST(LookaheadTopk, PredictedMassOnTheFutureTopKSet) {
  // t=0: top-1 of t+1 is expert 0, mass 0.5; t=1: top-1 of t+2 is expert 1, mass 0.75.
  EXPECT_NEAR(lookahead_topk_loss(three_token_lookahead(), three_tokens(), 1).item<double>(), 0.4904146265058631,
              1e-12);
}

TEST(LookaheadUnion, MaxPredictionOnTheUnionOfFutureSets) {
  // K = 2, S = 3: only t = 0. Union of top-1(t+1) = {0} and top-1(t+2) = {2}; max over slots of
  // Q = [0.5, 0.25, 0.6]; -log((0.5 + 0.6) / 2).
  const at::Tensor teacher = values({0.5, 0.3, 0.2, 0.6, 0.3, 0.1, 0.1, 0.2, 0.7}, {1, 3, 3});
  at::Tensor q = at::full({1, 3, 3, 3}, 1.0 / 3, at::kDouble);
  q[0][0][1] = values({0.5, 0.25, 0.25}, {3});
  q[0][0][2] = values({0.2, 0.2, 0.6}, {3});
  EXPECT_NEAR(lookahead_union_loss(q, teacher, 1).item<double>(), 0.5978370007556204, 1e-12);
}

TEST(LookaheadUnion, NeedsMoreTokensThanSteps) {
  const at::Tensor teacher = values({0.5, 0.5, 0.4, 0.6}, {1, 2, 2});
  EXPECT_EQ(lookahead_union_loss(at::full({1, 2, 3, 2}, 0.5, at::kDouble), teacher, 1).item<double>(), 0.0);
}

TEST(LoadBalance, HandValueAndMaskedValue) {
  const at::Tensor probs = values({0.8, 0.2, 0.4, 0.6}, {1, 2, 2});
  const at::Tensor selected = at::zeros({1, 2, 1}, at::kLong);  // both tokens routed to expert 0
  // f = [1, 0], mean p = [0.6, 0.4]: 2 * 0.6. With token 1 masked: mean p = [0.8, 0.2].
  EXPECT_NEAR(load_balance_value(probs, selected).item<double>(), 1.2, 1e-12);
  EXPECT_NEAR(load_balance_value(probs, selected, real({1, 0}, 1, 2)).item<double>(), 1.6, 1e-12);
}

TEST(LoadBalance, UniformRouterGivesK) {  // a check the reference states
  const int64_t E = 4, k = 2;
  const at::Tensor probs = at::full({2, 5, E}, 1.0 / E, at::kDouble);
  at::manual_seed(3);
  const at::Tensor selected = at::randint(0, E, {2, 5, k}, at::kLong);
  EXPECT_NEAR(load_balance_value(probs, selected).item<double>(), static_cast<double>(k), 1e-12);
}

TEST(LoadBalance, ModelWithUniformGateReportsKPerLayer) {  // a check of the reference's, through the model
  at::manual_seed(0);
  ModelConfig c = testing::tiny_config();
  ChronosForCausalLM model(c);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) model->layer(l).moe->gate->weight.data().zero_();
  model->train();
  const ForwardOutput out = model->forward(at::randint(3, c.vocab_size, {2, 6}, at::kLong));
  const RouterLossTerms terms =
      chronos_router_losses(RouterLossInputs::from_forward(out, c.num_experts_per_tok), RouterLossWeights{});
  const double expected = static_cast<double>(c.num_hidden_layers * c.num_experts_per_tok);
  EXPECT_NEAR(terms.balance.item<double>(), expected, 1e-5);
  RouterLossInputs from_model_values = RouterLossInputs::from_forward(out, c.num_experts_per_tok);
  from_model_values.selected.clear();  // fall back to the model's aux_raw
  EXPECT_NEAR(chronos_router_losses(from_model_values, RouterLossWeights{}).balance.item<double>(), expected, 1e-5);
}

TEST(LoadBalance, MatchesTheModelsMaskedValue) {
  at::manual_seed(1);
  ModelConfig c = testing::tiny_config();
  ChronosForCausalLM model(c);
  model->train();
  ForwardOptions options;
  options.attention_mask = real({1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, 2, 5);
  const ForwardOutput out = model->forward(at::randint(3, c.vocab_size, {2, 5}, at::kLong), options);
  for (size_t l = 0; l < out.aux_raw.size(); ++l)
    EXPECT_NEAR(load_balance_value(out.router_probs[l], out.selected[l], options.attention_mask).item<double>(),
                out.aux_raw[l].item<double>(), 1e-6);
}

TEST(RouterAnchor, KlOfCurrentFromReference) {
  const at::Tensor current = values({0.5, 0.5}, {1, 1, 2});
  const at::Tensor reference = values({0.25, 0.75}, {1, 1, 2});
  EXPECT_NEAR(router_anchor_kl(current, reference).item<double>(), 0.14384103622589042, 1e-12);
  EXPECT_EQ(router_anchor_kl(current, current).item<double>(), 0.0);
}

TEST(RouterAnchor, HasANonZeroGradientThatMatchesFiniteDifferences) {  // B1
  at::manual_seed(2);
  const at::Tensor logits = at::randn({2, 3, 4}, at::kDouble);
  const at::Tensor reference = at::softmax(at::randn({2, 3, 4}, at::kDouble), -1);
  const at::Tensor mask = real({1, 1, 1, 1, 1, 0}, 2, 3);
  auto f = [&](const at::Tensor& x) { return router_anchor_kl(at::softmax(x, -1), reference, mask); };
  const at::Tensor grad = testing::autograd_gradient(f, logits);
  EXPECT_GT(grad.abs().sum().item<double>(), 1e-3);
  EXPECT_EQ(grad[1][2].abs().sum().item<double>(), 0.0);  // the padded token gets none
  testing::expect_gradient_matches_finite_differences(f, logits);
}

TEST(RouterAnchor, RejectsReferenceOfOtherTokens) {  // B2: no cropping to a common prefix
  EXPECT_THROW(router_anchor_kl(at::full({2, 4, 3}, 1.0 / 3), at::full({2, 3, 3}, 1.0 / 3)), InvalidArgument);
}

// ---- gradients of every differentiable term ---------------------------------------------------------

struct RouterGradient : ::testing::Test {
  void SetUp() override {
    at::manual_seed(7);
    router_logits = at::randn({2, 4, 3}, at::kDouble) * 2;
    lookahead_logits = at::randn({2, 4, 3, 3}, at::kDouble) * 2;  // K = 2
    mask = real({1, 1, 1, 1, 1, 1, 1, 0}, 2, 4);
  }
  at::Tensor router_logits, lookahead_logits, mask;
};

TEST_F(RouterGradient, TemporalAndLocality) {
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return temporal_loss(at::softmax(x, -1), mask); }, router_logits);
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return router_locality_loss(at::softmax(x, -1), 2, mask); }, router_logits);
}

TEST_F(RouterGradient, LookaheadTermsTrainTheLookaheadRouterOnly) {
  const at::Tensor teacher = at::softmax(router_logits, -1);
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return lookahead_soft_ce(at::softmax(x, -1), teacher, mask); }, lookahead_logits);
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return lookahead_topk_loss(at::softmax(x, -1), teacher, 1, mask); }, lookahead_logits);
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return lookahead_union_loss(at::softmax(x, -1), teacher, 1, mask); },
      lookahead_logits);
  // The teacher is a stop-gradient target: no graph reaches the router through it.
  const at::Tensor q = at::softmax(lookahead_logits, -1);
  const at::Tensor router = router_logits.clone().set_requires_grad(true);
  EXPECT_FALSE(lookahead_soft_ce(q, at::softmax(router, -1), mask).requires_grad());
  EXPECT_FALSE(lookahead_topk_loss(q, at::softmax(router, -1), 1, mask).requires_grad());
  EXPECT_FALSE(lookahead_union_loss(q, at::softmax(router, -1), 1, mask).requires_grad());
}

TEST_F(RouterGradient, BalanceThroughMeanProbabilities) {
  const at::Tensor selected = std::get<1>(router_logits.topk(2, -1));
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return load_balance_value(at::softmax(x, -1), selected, mask); }, router_logits);
}

TEST_F(RouterGradient, TotalOfTheRegulariserWithAnchor) {
  const at::Tensor reference = at::softmax(at::randn({2, 4, 3}, at::kDouble), -1);
  const at::Tensor selected = std::get<1>(router_logits.topk(2, -1));
  RouterLossWeights w;
  w.router_anchor = 0.1;
  // The lookahead targets are sg(P-bar): finite differences through the router would move them,
  // autograd by design does not, so the lookahead terms are checked on their own above.
  w.lookahead = 0;
  auto f = [&](const at::Tensor& x) {
    RouterLossInputs in;
    // Two layers sharing the logits: P-bar stays differentiable through both.
    in.router_probs = {at::softmax(x, -1), at::softmax(x * 0.5, -1)};
    in.selected = {selected, selected};
    in.lookahead_probs = at::softmax(lookahead_logits, -1);
    in.reference_router_probs = reference;
    in.mask = mask;
    in.top_k = 2;
    return chronos_router_losses(in, w).total;
  };
  testing::expect_gradient_matches_finite_differences(f, router_logits);
}

// ---- the regulariser: gating, weighting, masking -----------------------------------------------------

RouterLossInputs three_token_inputs() {
  RouterLossInputs in;
  in.router_probs = {three_tokens()};
  in.selected = {at::zeros({1, 3, 1}, at::kLong)};
  in.lookahead_probs = three_token_lookahead();
  in.top_k = 1;
  return in;
}

TEST(ChronosRouterLosses, TotalIsTheWeightedSumOfTheActiveTerms) {
  RouterLossWeights w;  // defaults, anchor 0
  const RouterLossTerms t = chronos_router_losses(three_token_inputs(), w);
  EXPECT_TRUE(t.balance_active && t.temporal_active && t.locality_active && t.lookahead_active &&
              t.lookahead_topk_active && t.lookahead_union_active);
  EXPECT_FALSE(t.anchor_active);
  EXPECT_NEAR(t.temporal.item<double>(), 0.26, 1e-12);
  EXPECT_NEAR(t.lookahead.item<double>(), 0.6002758553726741, 1e-12);
  const double expected = w.balance * t.balance.item<double>() + w.temporal * 0.26 +
                          w.router_locality * 0.9830564281864164 + w.lookahead * 0.6002758553726741 +
                          w.lookahead_topk * 0.4904146265058631 + w.lookahead_union * t.lookahead_union.item<double>();
  EXPECT_NEAR(t.total.item<double>(), expected, 1e-12);
}

TEST(ChronosRouterLosses, EachTermIsSkippedWhenItsLambdaIsZero) {
  const RouterLossInputs in = three_token_inputs();
  const RouterLossTerms t = chronos_router_losses(in, only(&RouterLossWeights::temporal, 2.0));
  EXPECT_TRUE(t.temporal_active);
  EXPECT_FALSE(t.balance_active || t.locality_active || t.lookahead_active);
  EXPECT_NEAR(t.total.item<double>(), 0.52, 1e-12);
  EXPECT_EQ(t.locality.item<double>(), 0.0);  // not computed
}

TEST(ChronosRouterLosses, TopkAndUnionAreNestedUnderLambdaLookahead) {
  RouterLossWeights w = only(&RouterLossWeights::lookahead_topk);
  w.lookahead_union = 1.0;
  const RouterLossTerms t = chronos_router_losses(three_token_inputs(), w);
  EXPECT_FALSE(t.lookahead_topk_active || t.lookahead_union_active);
  EXPECT_EQ(t.total.item<double>(), 0.0);
}

TEST(ChronosRouterLosses, ComputeAllLogsGatedTermsWithoutAddingThem) {
  const RouterLossTerms t =
      chronos_router_losses(three_token_inputs(), only(&RouterLossWeights::temporal), /*compute_all=*/true);
  EXPECT_NEAR(t.lookahead.item<double>(), 0.6002758553726741, 1e-12);
  EXPECT_NEAR(t.lookahead_topk.item<double>(), 0.4904146265058631, 1e-12);
  EXPECT_NEAR(t.locality.item<double>(), 0.9830564281864164, 1e-12);
  EXPECT_GT(t.balance.item<double>(), 0.0);
  EXPECT_FALSE(t.lookahead_active || t.locality_active || t.balance_active);
  EXPECT_NEAR(t.total.item<double>(), 0.26, 1e-12);
}

TEST(ChronosRouterLosses, SingleTokenKeepsOnlyTheBalance) {
  RouterLossInputs in;
  in.router_probs = {values({0.8, 0.2}, {1, 1, 2})};
  in.selected = {at::zeros({1, 1, 1}, at::kLong)};
  in.lookahead_probs = at::full({1, 1, 2, 2}, 0.5, at::kDouble);
  const RouterLossTerms t = chronos_router_losses(in, RouterLossWeights{}, /*compute_all=*/true);
  EXPECT_TRUE(t.balance_active);
  EXPECT_FALSE(t.temporal_active || t.locality_active || t.lookahead_active || t.lookahead_topk_active ||
               t.lookahead_union_active);
  EXPECT_NEAR(t.balance.item<double>(), 1.6, 1e-12);
  EXPECT_NEAR(t.total.item<double>(), 5e-4 * 1.6, 1e-15);
}

// A per-layer lookahead [B,S,K+1,L,E] is trained against each layer's own routing: with the same
// tokens in every layer, its terms are the mean over layers of the layer-averaged terms computed
// with that layer's probabilities as the teacher.
TEST(ChronosRouterLosses, PerLayerLookaheadLearnsEachLayersRouting) {
  const at::Tensor layer0 = three_tokens();
  const at::Tensor layer1 = values({0.1, 0.9, 0.5, 0.5, 0.3, 0.7}, {1, 3, 2});
  const at::Tensor q0 = three_token_lookahead();
  const at::Tensor q1 = values({0.3, 0.7, 0.2, 0.8, 0.6, 0.4, 0.9, 0.1, 0.5, 0.5, 0.5, 0.5}, {1, 3, 2, 2});
  RouterLossInputs in;
  in.router_probs = {layer0, layer1};
  in.selected = {at::zeros({1, 3, 1}, at::kLong), at::ones({1, 3, 1}, at::kLong)};
  in.lookahead_probs = at::stack({q0, q1}, 3);  // [1,3,2,2,2]
  in.top_k = 1;
  const RouterLossTerms t = chronos_router_losses(in, RouterLossWeights{}, /*compute_all=*/true);
  const at::Tensor mask = at::ones({1, 3});
  const double soft = (lookahead_soft_ce(q0, layer0, mask).item<double>() + lookahead_soft_ce(q1, layer1, mask).item<double>()) / 2;
  const double topk = (lookahead_topk_loss(q0, layer0, 1, mask).item<double>() + lookahead_topk_loss(q1, layer1, 1, mask).item<double>()) / 2;
  EXPECT_NEAR(t.lookahead.item<double>(), soft, 1e-12);
  EXPECT_NEAR(t.lookahead_topk.item<double>(), topk, 1e-12);
  in.lookahead_probs = at::stack({q0, q1, q1}, 3);  // three layers of predictions for two layers
  EXPECT_THROW(chronos_router_losses(in, RouterLossWeights{}), std::exception);
}

TEST(ChronosRouterLosses, NoLookaheadStepsMeansNoLookaheadTerms) {
  RouterLossInputs in = three_token_inputs();
  in.lookahead_probs = at::full({1, 3, 1, 2}, 0.5, at::kDouble);  // K = 0
  const RouterLossTerms t = chronos_router_losses(in, RouterLossWeights{});
  EXPECT_FALSE(t.lookahead_active || t.lookahead_topk_active || t.lookahead_union_active);
  in.lookahead_probs = at::Tensor();
  EXPECT_FALSE(chronos_router_losses(in, RouterLossWeights{}).lookahead_active);
}

TEST(ChronosRouterLosses, AnchorNeedsTheReferenceWhenWeighted) {
  RouterLossInputs in = three_token_inputs();
  EXPECT_THROW(chronos_router_losses(in, only(&RouterLossWeights::router_anchor)), InvalidArgument);
  in.reference_router_probs = values({0.5, 0.5, 0.5, 0.5, 0.5, 0.5}, {1, 3, 2});
  const RouterLossTerms t = chronos_router_losses(in, only(&RouterLossWeights::router_anchor, 0.1));
  EXPECT_TRUE(t.anchor_active);
  EXPECT_GT(t.anchor.item<double>(), 0.0);
  EXPECT_NEAR(t.total.item<double>(), 0.1 * t.anchor.item<double>(), 1e-15);
}

// Every term of a batch padded at the front or at the end equals the term of the real
// tokens alone, and differs from the unmasked padded batch.
void expect_padding_is_invisible(bool left_padding) {
  at::manual_seed(11);
  const at::Tensor probs = at::softmax(at::randn({1, 6, 4}, at::kDouble), -1);
  const at::Tensor q = at::softmax(at::randn({1, 6, 3, 4}, at::kDouble), -1);
  const at::Tensor selected = std::get<1>(probs.topk(2, -1));
  const at::Tensor reference = at::softmax(at::randn({1, 6, 4}, at::kDouble), -1);
  RouterLossInputs padded;
  padded.router_probs = {probs};
  padded.selected = {selected};
  padded.lookahead_probs = q;
  padded.reference_router_probs = reference;
  padded.mask = left_padding ? real({0, 0, 1, 1, 1, 1}, 1, 6) : real({1, 1, 1, 1, 0, 0}, 1, 6);
  const int64_t first = left_padding ? 2 : 0;
  padded.top_k = 2;
  RouterLossInputs cropped;
  cropped.router_probs = {probs.narrow(1, first, 4)};
  cropped.selected = {selected.narrow(1, first, 4)};
  cropped.lookahead_probs = q.narrow(1, first, 4);
  cropped.reference_router_probs = reference.narrow(1, first, 4);
  cropped.top_k = 2;
  RouterLossWeights w;
  w.router_anchor = 0.1;
  const RouterLossTerms a = chronos_router_losses(padded, w), b = chronos_router_losses(cropped, w);
  EXPECT_NEAR(a.balance.item<double>(), b.balance.item<double>(), 1e-12);
  EXPECT_NEAR(a.temporal.item<double>(), b.temporal.item<double>(), 1e-12);
  EXPECT_NEAR(a.locality.item<double>(), b.locality.item<double>(), 1e-12);
  EXPECT_NEAR(a.lookahead.item<double>(), b.lookahead.item<double>(), 1e-12);
  EXPECT_NEAR(a.lookahead_topk.item<double>(), b.lookahead_topk.item<double>(), 1e-12);
  EXPECT_NEAR(a.lookahead_union.item<double>(), b.lookahead_union.item<double>(), 1e-12);
  EXPECT_NEAR(a.anchor.item<double>(), b.anchor.item<double>(), 1e-12);
  EXPECT_NEAR(a.total.item<double>(), b.total.item<double>(), 1e-12);
  // And the mask does change the value: the unmasked padded batch differs.
  padded.mask = at::Tensor();
  EXPECT_GT(std::abs(chronos_router_losses(padded, w).total.item<double>() - b.total.item<double>()), 1e-6);
}

TEST(ChronosRouterLosses, RightPaddingGivesTheTermsOfTheRealTokens) { expect_padding_is_invisible(false); }  // B6
TEST(ChronosRouterLosses, LeftPaddingGivesTheTermsOfTheRealTokens) { expect_padding_is_invisible(true); }

TEST(ChronosRouterLosses, AllPaddingGivesZeroNotNaN) {
  RouterLossInputs in = three_token_inputs();
  in.mask = real({0, 0, 0}, 1, 3);
  in.reference_router_probs = values({0.5, 0.5, 0.5, 0.5, 0.5, 0.5}, {1, 3, 2});
  const at::Tensor logits = at::randn({1, 3, 2}, at::kDouble).set_requires_grad(true);
  in.router_probs = {at::softmax(logits, -1)};
  RouterLossWeights w;
  w.router_anchor = 0.1;
  const RouterLossTerms t = chronos_router_losses(in, w, /*compute_all=*/true);
  for (const at::Tensor& term : {t.balance, t.temporal, t.locality, t.lookahead, t.lookahead_topk, t.lookahead_union,
                                 t.anchor, t.total})
    EXPECT_EQ(term.item<double>(), 0.0);
  t.total.backward();
  EXPECT_TRUE(at::isfinite(logits.grad()).all().item<bool>());
}

TEST(ChronosRouterLosses, NonFiniteValuesInPaddingDoNotLeak) {
  RouterLossInputs in = three_token_inputs();
  in.router_probs = {values({0.6, 0.4, 0.7, 0.3, NAN, NAN}, {1, 3, 2})};
  in.mask = real({1, 1, 0}, 1, 3);
  const RouterLossTerms t = chronos_router_losses(in, RouterLossWeights{}, /*compute_all=*/true);
  EXPECT_TRUE(std::isfinite(t.total.item<double>()));
  EXPECT_NEAR(t.temporal.item<double>(), 0.02, 1e-12);
}

TEST(ChronosRouterLosses, GradientReachesEveryLayersRouterProbabilities) {  // B1: live probabilities
  at::manual_seed(5);
  std::vector<at::Tensor> logits = {at::randn({1, 4, 3}).set_requires_grad(true),
                                    at::randn({1, 4, 3}).set_requires_grad(true)};
  RouterLossInputs in;
  in.router_probs = {at::softmax(logits[0], -1), at::softmax(logits[1], -1)};
  in.reference_router_probs = at::full({1, 4, 3}, 1.0f / 3);
  chronos_router_losses(in, only(&RouterLossWeights::router_anchor)).total.backward();
  for (const at::Tensor& l : logits) EXPECT_GT(l.grad().abs().sum().item<float>(), 0.0f);
}

TEST(ChronosRouterLosses, WorksInFloat32) {
  RouterLossInputs in = three_token_inputs();
  in.router_probs = {three_tokens().to(at::kFloat)};
  in.lookahead_probs = three_token_lookahead().to(at::kFloat);
  const RouterLossTerms t = chronos_router_losses(in, RouterLossWeights{});
  EXPECT_EQ(t.total.scalar_type(), at::kFloat);
  EXPECT_NEAR(t.temporal.item<float>(), 0.26f, 1e-6f);
}

TEST(ChronosRouterLosses, RejectsInconsistentShapes) {
  RouterLossInputs in = three_token_inputs();
  in.mask = real({1, 1}, 1, 2);
  EXPECT_THROW(chronos_router_losses(in, RouterLossWeights{}), InvalidArgument);
  in = three_token_inputs();
  in.router_probs.push_back(values({0.5, 0.5}, {1, 1, 2}));
  EXPECT_THROW(chronos_router_losses(in, RouterLossWeights{}), InvalidArgument);
  in = three_token_inputs();
  in.lookahead_probs = at::full({1, 3, 2, 3}, 1.0 / 3, at::kDouble);
  EXPECT_THROW(chronos_router_losses(in, RouterLossWeights{}), InvalidArgument);
  in = three_token_inputs();
  in.selected.clear();
  EXPECT_THROW(chronos_router_losses(in, RouterLossWeights{}), InvalidArgument);  // balance has no source
}

// ---- weights and stage defaults ------------------------------------------------------------------------

TEST(RouterLossWeights, DefaultsMatchTheSpec) {
  const RouterLossWeights w;
  EXPECT_EQ(w.balance, 5e-4);
  EXPECT_EQ(w.temporal, 3e-3);
  EXPECT_EQ(w.lookahead, 0.1);
  EXPECT_EQ(w.lookahead_topk, 0.15);
  EXPECT_EQ(w.lookahead_union, 0.05);
  EXPECT_EQ(w.router_locality, 0.02);
  EXPECT_EQ(w.router_anchor, 0.0);
}

TEST(RouterLossWeights, FromConfigCopiesTheLambdas) {
  ModelConfig c;
  c.lambda_temporal = 0.5;
  c.lambda_router_anchor = 0.25;
  const RouterLossWeights w = RouterLossWeights::from_config(c);
  EXPECT_EQ(w.temporal, 0.5);
  EXPECT_EQ(w.router_anchor, 0.25);
  EXPECT_EQ(w.balance, c.lambda_balance);
}

TEST(RouterLossWeights, ValidateRejectsNegativeOrNonFinite) {
  RouterLossWeights w;
  w.lookahead_union = -1;
  try {
    w.validate();
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("lambda_lookahead_union"), std::string::npos) << e.what();
  }
  w.lookahead_union = NAN;
  EXPECT_THROW(w.validate(), ConfigError);
}

TEST(StageDefaults, RegulariserColumnsMatchTheReference) {
  const std::vector<std::tuple<TrainStage, double, double>> table = {
      {TrainStage::Pretrain, 0.0, 0.08}, {TrainStage::Sft, 0.01, 0.04},  {TrainStage::Dpo, 0.10, 0.02},
      {TrainStage::Orpo, 0.10, 0.02},    {TrainStage::Grpo, 0.10, 0.02}, {TrainStage::Distill, 0.05, 0.02}};
  for (const auto& [stage, anchor, fallback] : table) {
    EXPECT_EQ(stage_defaults(stage).router_anchor, anchor) << train_stage_name(stage);
    EXPECT_EQ(stage_defaults(stage).fallback_mask_prob, fallback) << train_stage_name(stage);
    EXPECT_EQ(parse_train_stage(train_stage_name(stage)), stage);
  }
  EXPECT_THROW(parse_train_stage("ppo"), ConfigError);
}

}  // namespace
}  // namespace chronos
