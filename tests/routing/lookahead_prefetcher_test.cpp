#include "chronos/routing/lookahead_prefetcher.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

#include "chronos/core/error.h"
#include "chronos/routing/expert_predictor.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

// lookahead_probs [1, S=2, K+1=3, E=4]; the last position's rows are given, the first is noise.
at::Tensor probs(std::vector<std::vector<float>> last_rows) {
  at::Tensor t = at::full({1, 2, 3, 4}, 0.25f);
  for (size_t j = 0; j < last_rows.size(); ++j) t[0][1][static_cast<int64_t>(j)] = at::tensor(last_rows[j]);
  return t;
}

// Routing of one step's last position: per layer [1, 1, k] ids.
std::vector<at::Tensor> routing(const std::vector<std::vector<int64_t>>& ids) {
  std::vector<at::Tensor> out;
  for (const auto& layer : ids) out.push_back(at::tensor(layer, at::kLong).view({1, 1, -1}));
  return out;
}

std::set<int32_t> experts_of_layer(const std::vector<ScoredExpert>& predicted, int32_t layer) {
  std::set<int32_t> out;
  for (const ScoredExpert& s : predicted)
    if (s.key.layer == layer) out.insert(s.key.expert);
  return out;
}

const at::Tensor kUniform = probs({{0.25f, 0.25f, 0.25f, 0.25f}, {0.25f, 0.25f, 0.25f, 0.25f}, {0.25f, 0.25f, 0.25f, 0.25f}});

TEST(LookaheadPrefetcherTest, RouterIdsAreTheMostLikelyPerOffset) {
  const ModelConfig c = testing::tiny_config();  // L=4, E=4, k=2, K=2
  const LookaheadPrefetcher prefetcher(c, {}, /*compute_slots=*/64);
  const at::Tensor p = probs({{0.7f, 0.1f, 0.1f, 0.1f}, {0.1f, 0.6f, 0.05f, 0.25f}, {0.4f, 0.0f, 0.5f, 0.1f}});
  const auto pairs = prefetcher.router_pairs(p);
  ASSERT_EQ(pairs.size(), 2u);
  ASSERT_EQ(pairs[0].size(), 8u);  // the same top-2 ids in each of the 4 layers
  for (int32_t l = 0; l < 4; ++l) {
    EXPECT_EQ(pairs[0][2 * l].key, (ExpertKey{l, 1}));
    EXPECT_EQ(pairs[0][2 * l + 1].key, (ExpertKey{l, 3}));
    EXPECT_FLOAT_EQ(pairs[0][2 * l].probability, 0.6f);
    EXPECT_EQ(pairs[1][2 * l].key, (ExpertKey{l, 2}));
    EXPECT_EQ(pairs[1][2 * l + 1].key, (ExpertKey{l, 0}));
  }
  // Without history only router ids at or above the floor (0.5) are predicted, in every layer.
  const auto predicted = prefetcher.predict(p);
  ASSERT_EQ(predicted.size(), 2u);
  for (int32_t l = 0; l < 4; ++l) {
    EXPECT_EQ(experts_of_layer(predicted[0], l), (std::set<int32_t>{1}));
    EXPECT_EQ(experts_of_layer(predicted[1], l), (std::set<int32_t>{2}));
  }
  EXPECT_THROW(prefetcher.router_pairs(at::rand({1, 2, 3, 5})), InvalidArgument);
  EXPECT_THROW(prefetcher.router_pairs(at::rand({1, 2, 3, 3, 4})), InvalidArgument);  // 3 layers, the model has 4
}

// A per-layer router ([B,S,K+1,L,E]) predicts each layer's own experts.
TEST(LookaheadPrefetcherTest, PerLayerRouterPredictsEachLayersOwnExperts) {
  const ModelConfig c = testing::tiny_config();  // L=4, E=4, k=2
  LookaheadConfig config;
  config.history = 0;
  config.frequent = 0;
  const LookaheadPrefetcher prefetcher(c, config, 64);
  at::Tensor p = at::full({1, 1, 3, 4, 4}, 0.05f);
  for (int64_t j = 1; j <= 2; ++j)
    for (int64_t l = 0; l < 4; ++l) {
      p[0][0][j][l][(l + j) % 4] = 0.8f;        // above the floor: predicted
      p[0][0][j][l][(l + j + 1) % 4] = 0.1f;    // second, under the floor: only in router_pairs
    }
  const auto pairs = prefetcher.router_pairs(p);
  ASSERT_EQ(pairs.size(), 2u);
  const auto predicted = prefetcher.predict(p);
  for (int32_t j = 1; j <= 2; ++j)
    for (int32_t l = 0; l < 4; ++l) {
      EXPECT_EQ(pairs[j - 1][2 * l].key, (ExpertKey{l, (l + j) % 4}));
      EXPECT_EQ(pairs[j - 1][2 * l + 1].key, (ExpertKey{l, (l + j + 1) % 4}));
      EXPECT_EQ(experts_of_layer(predicted[j - 1], l), (std::set<int32_t>{(l + j) % 4}));
    }
}

TEST(LookaheadPrefetcherTest, RecentRoutingIsPredictedPerLayerWithDecayingScores) {
  const ModelConfig c = testing::tiny_config();
  LookaheadConfig config;
  config.frequent = 0;
  LookaheadPrefetcher prefetcher(c, config, 64);
  prefetcher.observe(routing({{0, 1}, {1, 2}, {2, 3}, {3, 0}}));  // older
  prefetcher.observe(routing({{0, 2}, {1, 2}, {2, 3}, {0, 1}}));  // latest
  const auto predicted = prefetcher.predict(kUniform);
  EXPECT_EQ(experts_of_layer(predicted[0], 0), (std::set<int32_t>{0, 1, 2}));
  EXPECT_EQ(experts_of_layer(predicted[0], 1), (std::set<int32_t>{1, 2}));
  EXPECT_EQ(experts_of_layer(predicted[0], 3), (std::set<int32_t>{0, 1, 3}));
  for (const ScoredExpert& s : predicted[0]) {
    if (s.key.layer != 0) continue;
    EXPECT_FLOAT_EQ(s.probability, s.key.expert == 1 ? 0.9f * 0.6f : 0.9f) << s.key.expert;  // expert 1: older token only
  }
  // Within a layer, most likely first.
  EXPECT_EQ(predicted[0][2].key, (ExpertKey{0, 1}));
  // A third token pushes the oldest out (history 2).
  prefetcher.observe(routing({{3, 2}, {1, 2}, {2, 3}, {0, 1}}));
  EXPECT_EQ(experts_of_layer(prefetcher.predict(kUniform)[0], 0), (std::set<int32_t>{0, 2, 3}));
  prefetcher.reset_history();
  EXPECT_TRUE(prefetcher.predict(kUniform)[0].empty());
  EXPECT_THROW(prefetcher.observe(routing({{0, 1}})), InvalidArgument);
}

TEST(LookaheadPrefetcherTest, RunningFrequencyAddsEachLayersMostUsedExpert) {
  const ModelConfig c = testing::tiny_config();
  LookaheadConfig config;
  config.history = 0;
  const LookaheadPrefetcher prefetcher(c, config, 64);
  ExpertPredictor frequency(c, {4, 8});  // the engine's one running frequency
  for (int i = 0; i < 5; ++i) frequency.observe(routing({{0, 3}, {1, 2}, {2, 3}, {0, 1}}));
  frequency.observe(routing({{1, 3}, {1, 2}, {2, 3}, {0, 1}}));
  EXPECT_TRUE(prefetcher.predict(kUniform)[0].empty());  // no frequency given
  EXPECT_THROW(prefetcher.predict(kUniform, at::zeros({2, 4})), InvalidArgument);
  const auto predicted = prefetcher.predict(kUniform, frequency.frequency());
  EXPECT_EQ(experts_of_layer(predicted[0], 0), (std::set<int32_t>{3}));  // used 6 times, expert 0 only 5
  EXPECT_EQ(experts_of_layer(predicted[0], 1), (std::set<int32_t>{1}));  // a tie: the lower id
}

TEST(LookaheadPrefetcherTest, RequestsAreOnePerExpertAtTheEarliestOffsetCoreFirst) {
  const ModelConfig c = testing::tiny_config();
  LookaheadConfig config;
  config.frequent = 0;
  LookaheadPrefetcher prefetcher(c, config, /*compute_slots=*/4, /*ram_slots=*/100);
  prefetcher.observe(routing({{0, 1}, {0, 1}, {0, 1}, {0, 1}}));
  prefetcher.observe(routing({{1, 2}, {1, 2}, {1, 2}, {1, 2}}));
  const at::Tensor p = probs({{0.25f, 0.25f, 0.25f, 0.25f}, {0.1f, 0.1f, 0.1f, 0.7f}, {0.1f, 0.1f, 0.1f, 0.7f}});
  const auto requests = prefetcher.requests(prefetcher.predict(p), /*step=*/5);
  // t+1: per layer {1, 2} (0.9), {3} (router 0.7), {0} (0.54): 16 requests; t+2 predicts the same pairs.
  ASSERT_EQ(requests.size(), 16u);
  std::set<ExpertKey> keys;
  for (size_t i = 0; i < requests.size(); ++i) {
    const PrefetchRequest& r = requests[i];
    EXPECT_TRUE(keys.insert(r.key).second);
    EXPECT_EQ(r.deadline_step, 6);
    // The core (k = 2 per layer) of every layer first, layer by layer.
    if (i < 8) {
      EXPECT_EQ(r.key.layer, static_cast<int32_t>(i / 2));
      EXPECT_TRUE(r.key.expert == 1 || r.key.expert == 2);
      EXPECT_FLOAT_EQ(r.probability, 0.9f);
    }
    EXPECT_EQ(r.target, i < 2 ? Tier::compute : Tier::ram);  // compute_limit = 4 - k
    EXPECT_FALSE(r.whole_cluster);
  }
  EXPECT_EQ(prefetcher.compute_limit(), 2);
  // The RAM tier caps the requests: a prefix of the same order.
  for (int64_t ram : {0, 3, 8, 12}) {
    LookaheadPrefetcher capped(c, config, 4, ram);
    capped.observe(routing({{0, 1}, {0, 1}, {0, 1}, {0, 1}}));
    capped.observe(routing({{1, 2}, {1, 2}, {1, 2}, {1, 2}}));
    const auto limited = capped.requests(capped.predict(p), 5);
    ASSERT_EQ(static_cast<int64_t>(limited.size()), ram);
    for (size_t i = 0; i < limited.size(); ++i) EXPECT_EQ(limited[i].key, requests[i].key);
  }
}

TEST(LookaheadPrefetcherTest, ConfigIsValidated) {
  const ModelConfig c = testing::tiny_config();
  LookaheadConfig config;
  config.compute_horizon = 0;
  LookaheadPrefetcher ram_only(c, config, 100);
  ram_only.observe(routing({{0, 1}, {0, 1}, {0, 1}, {0, 1}}));
  for (const auto& r : ram_only.requests(ram_only.predict(kUniform), 0)) EXPECT_EQ(r.target, Tier::ram);
  for (auto bad : {&LookaheadConfig::router_floor, &LookaheadConfig::recency_score}) {
    LookaheadConfig b;
    b.*bad = -0.5;
    EXPECT_THROW(LookaheadPrefetcher(c, b, 4), ConfigError);
  }
  for (auto bad : {&LookaheadConfig::router_top_k, &LookaheadConfig::history, &LookaheadConfig::frequent, &LookaheadConfig::compute_horizon}) {
    LookaheadConfig b;
    b.*bad = -1;
    EXPECT_THROW(LookaheadPrefetcher(c, b, 4), ConfigError);
  }
  EXPECT_THROW(LookaheadPrefetcher(c, {}, -1), InvalidArgument);
}

}  // namespace
}  // namespace chronos
