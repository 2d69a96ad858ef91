#include "chronos/runtime/sampler.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>

#include "chronos/core/error.h"

namespace chronos {
namespace {

SamplingOptions plain() {
  SamplingOptions o;
  o.temperature = 1.0;
  o.top_k = 0;
  o.top_p = 1.0;
  o.min_p = 0.0;
  return o;
}

TEST(Sampler, GreedyTakesTheArgmax) {
  SamplingOptions o = plain();
  o.greedy = true;
  Sampler s(o);
  EXPECT_EQ(s.next(at::tensor({0.1f, 2.0f, -1.0f, 1.9f}), {}), 1);
  // Any shape of V scores (a decode step's [1, 1, V] logits), with and without a penalty to apply.
  EXPECT_EQ(s.next(at::tensor({0.1f, 2.0f, -1.0f, 1.9f}).view({1, 1, 4}), {3}), 1);
  o.repetition_penalty = 2.0;
  Sampler penalised(o);
  EXPECT_EQ(penalised.next(at::tensor({0.1f, 2.0f, -1.0f, 1.9f}).view({1, 1, 4}), {1}), 3);
  EXPECT_EQ(penalised.next(at::tensor({0.1f, 2.0f, -1.0f, 1.9f}).view({1, 1, 4}), {}), 1);
}

// The CPU loop picks as at::argmax does: the first of equal maxima, a NaN over any number, -inf rows.
TEST(Sampler, GreedyPicksAsArgmaxOnTiesNaNAndInfinities) {
  SamplingOptions o = plain();
  o.greedy = true;
  Sampler s(o);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (const at::Tensor& logits : {at::tensor({1.0f, 3.0f, 3.0f, 0.0f}), at::tensor({1.0f, nan, 5.0f, nan}), at::tensor({-inf, -inf, -inf}),
                                   at::tensor({-inf, 2.0f, inf, inf}), at::tensor({7.0f})})
    EXPECT_EQ(s.next(logits, {}), logits.argmax().item<int64_t>()) << logits;
}

TEST(Sampler, RepetitionPenaltyRespectsTheSign) {
  SamplingOptions o = plain();
  o.repetition_penalty = 2.0;
  Sampler s(o);
  // Token 0 (positive) is divided, token 2 (negative) multiplied, repeated ids penalised once.
  const at::Tensor probs = s.probabilities(at::tensor({2.0f, 1.0f, -1.0f}), {0, 2, 2});
  const at::Tensor expected = at::softmax(at::tensor({1.0f, 1.0f, -2.0f}), 0);
  EXPECT_LT((probs - expected).abs().max().item<float>(), 1e-6);
  o.greedy = true;
  EXPECT_EQ(Sampler(o).next(at::tensor({2.0f, 1.5f, -1.0f}), {0}), 1);
}

TEST(Sampler, TopKKeepsKTokens) {
  SamplingOptions o = plain();
  o.top_k = 2;
  const at::Tensor probs = Sampler(o).probabilities(at::tensor({1.0f, 3.0f, 2.0f, 0.0f}), {});
  EXPECT_EQ(probs[0].item<float>(), 0.0f);
  EXPECT_EQ(probs[3].item<float>(), 0.0f);
  EXPECT_NEAR(probs[1].item<float>(), std::exp(3.0) / (std::exp(3.0) + std::exp(2.0)), 1e-6);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  SamplingOptions o = plain();
  o.top_p = 0.7;
  // Probabilities 0.5, 0.3, 0.2: 0.5 < 0.7, so the second token is needed; the third is not.
  const at::Tensor logits = at::log(at::tensor({0.3f, 0.5f, 0.2f}));
  const at::Tensor probs = Sampler(o).probabilities(logits, {});
  EXPECT_NEAR(probs[1].item<float>(), 0.5f / 0.8f, 1e-6);
  EXPECT_NEAR(probs[0].item<float>(), 0.3f / 0.8f, 1e-6);
  EXPECT_EQ(probs[2].item<float>(), 0.0f);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  SamplingOptions o = plain();
  o.min_p = 0.5;
  const at::Tensor probs = Sampler(o).probabilities(at::log(at::tensor({0.5f, 0.3f, 0.2f})), {});
  EXPECT_GT(probs[1].item<float>(), 0.0f);  // 0.3 >= 0.25
  EXPECT_EQ(probs[2].item<float>(), 0.0f);  // 0.2 < 0.25
}

TEST(Sampler, TemperatureSharpens) {
  SamplingOptions o = plain();
  o.temperature = 0.5;
  const at::Tensor probs = Sampler(o).probabilities(at::tensor({1.0f, 0.0f}), {});
  EXPECT_NEAR(probs[0].item<float>(), 1.0 / (1.0 + std::exp(-2.0)), 1e-6);
}

TEST(Sampler, SeedMakesDrawsReproducible) {
  SamplingOptions o = plain();
  o.seed = 42;
  const at::Tensor logits = at::zeros({1000});
  Sampler a(o), b(o);
  std::vector<int64_t> da, db;
  for (int i = 0; i < 20; ++i) {
    da.push_back(a.next(logits, {}));
    db.push_back(b.next(logits, {}));
  }
  EXPECT_EQ(da, db);
  o.seed = 43;
  Sampler c(o);
  std::vector<int64_t> dc;
  for (int i = 0; i < 20; ++i) dc.push_back(c.next(logits, {}));
  EXPECT_NE(da, dc);
}

TEST(Sampler, SamplesOnlyKeptTokens) {
  SamplingOptions o = plain();
  o.top_k = 3;
  Sampler s(o);
  const at::Tensor logits = at::arange(10, at::kFloat);
  for (int i = 0; i < 50; ++i) EXPECT_GE(s.next(logits, {}), 7);
}

TEST(Sampler, RejectsBadOptions) {
  SamplingOptions o = plain();
  o.temperature = 0;
  EXPECT_THROW(Sampler{o}, ConfigError);
  o = plain();
  o.top_p = 1.5;
  EXPECT_THROW(Sampler{o}, ConfigError);
  o = plain();
  o.repetition_penalty = 0;
  EXPECT_THROW(Sampler{o}, ConfigError);
  o = plain();
  o.frequency_penalty = 2.5;
  EXPECT_THROW(Sampler{o}, ConfigError);
  o = plain();
  o.presence_penalty = -2.5;
  EXPECT_THROW(Sampler{o}, ConfigError);
}

TEST(Sampler, FrequencyAndPresencePenaltiesSubtractPerOccurrenceAndOnce) {
  SamplingOptions o = plain();
  o.greedy = true;
  o.frequency_penalty = 0.5;
  // Token 0 seen three times: 3.0 - 1.5 = 1.5 < 1.9 (token 3).
  EXPECT_EQ(Sampler(o).next(at::tensor({3.0f, 1.0f, -1.0f, 1.9f}), {0, 0, 0}), 3);
  EXPECT_EQ(Sampler(o).next(at::tensor({3.0f, 1.0f, -1.0f, 1.9f}), {0}), 0);  // 2.5 > 1.9
  o.frequency_penalty = 0;
  o.presence_penalty = 1.0;
  EXPECT_EQ(Sampler(o).next(at::tensor({3.0f, 1.0f, -1.0f, 2.5f}), {0, 0, 0, 0}), 3);  // 3.0 - 1.0 < 2.5, once
  const at::Tensor p = Sampler(plain()).probabilities(at::tensor({1.0f, 1.0f}), {0});
  SamplingOptions negative = plain();
  negative.presence_penalty = -1.0;  // a negative penalty favours what was said
  EXPECT_GT(Sampler(negative).probabilities(at::tensor({1.0f, 1.0f}), {0})[0].item<float>(), p[0].item<float>());
}

}  // namespace
}  // namespace chronos
