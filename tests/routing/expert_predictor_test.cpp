#include "chronos/routing/expert_predictor.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

#include "chronos/core/error.h"
#include "chronos/routing/prefill_scheduler.h"
#include "chronos/store/expert_store.h"
#include "store/store_fixture.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

// [B=1, S, k] ids for one layer.
at::Tensor ids(std::vector<std::vector<int64_t>> rows) {
  std::vector<at::Tensor> t;
  for (auto& r : rows) t.push_back(at::tensor(r, at::kLong));
  return at::stack(t).unsqueeze(0);
}

TEST(ExpertPredictorTest, HotSetRespectsBothBudgetsAndRanksByIntent) {
  const ModelConfig c = testing::tiny_config();  // L=4, E=4
  for (const PredictorBudget budget : {PredictorBudget{3, 7}, PredictorBudget{5, 2}, PredictorBudget{0, 4}, PredictorBudget{16, 16},
                                       PredictorBudget{2, 0}}) {
    ExpertPredictor predictor(c, budget);
    at::manual_seed(3);
    const at::Tensor intent = at::rand({4, 4});
    const HotSet hot = predictor.predict(intent);
    EXPECT_LE(static_cast<int64_t>(hot.compute.size()), budget.compute_slots);
    EXPECT_LE(static_cast<int64_t>(hot.size()), budget.ram_slots);
    EXPECT_EQ(static_cast<int64_t>(hot.size()), std::min<int64_t>(16, budget.ram_slots));
    // Descending probability across compute then RAM, and no pair twice.
    std::vector<ScoredExpert> all = hot.compute;
    all.insert(all.end(), hot.ram.begin(), hot.ram.end());
    std::set<ExpertKey> seen;
    for (size_t i = 0; i < all.size(); ++i) {
      EXPECT_TRUE(seen.insert(all[i].key).second);
      EXPECT_FLOAT_EQ(all[i].probability, intent[all[i].key.layer][all[i].key.expert].item<float>());
      if (i > 0) EXPECT_GE(all[i - 1].probability, all[i].probability);
    }
  }
}

TEST(ExpertPredictorTest, FrequencyFallbackLearnsFromObservations) {
  const ModelConfig c = testing::tiny_config();
  ExpertPredictor predictor(c, {2, 3});
  EXPECT_EQ(predictor.predict().size(), 0u);  // nothing observed yet: nothing to predict
  // Every layer routes its two tokens to experts {1,3} and {1,2}: expert 1 always, 2 and 3 half the time.
  std::vector<at::Tensor> selected(4, ids({{1, 3}, {1, 2}}));
  predictor.observe(selected);
  EXPECT_FLOAT_EQ(predictor.frequency()[0][1].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(predictor.frequency()[2][3].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(predictor.frequency()[2][0].item<float>(), 0.0f);
  const HotSet hot = predictor.predict();
  ASSERT_EQ(hot.compute.size(), 2u);
  ASSERT_EQ(hot.ram.size(), 1u);
  for (const auto& s : hot.compute) {
    EXPECT_EQ(s.key.expert, 1);
    EXPECT_FLOAT_EQ(s.probability, 1.0f);
  }
  EXPECT_EQ(hot.compute[0].key.layer, 0);  // ties go to the lower (layer, expert)
  EXPECT_EQ(hot.compute[1].key.layer, 1);
  // Decay: a new observation moves the frequency by (1 - decay).
  predictor.observe(std::vector<at::Tensor>(4, ids({{0, 2}})));
  EXPECT_NEAR(predictor.frequency()[0][1].item<float>(), 0.95f, 1e-6);
  EXPECT_NEAR(predictor.frequency()[0][0].item<float>(), 0.05f, 1e-6);
}

TEST(ExpertPredictorTest, RejectsBadInput) {
  const ModelConfig c = testing::tiny_config();
  EXPECT_THROW(ExpertPredictor(c, {-1, 2}), ConfigError);
  ExpertPredictor predictor(c, {2, 4});
  EXPECT_THROW(predictor.predict(at::rand({3, 4})), InvalidArgument);
  EXPECT_THROW(predictor.observe({ids({{0, 1}})}), InvalidArgument);
}

TEST(PrefillSchedulerTest, PlansComputeThenRamAndReadsMostlyWantedClustersWhole) {
  const testing::StoreFixture fx(/*clusters=*/4);  // key u goes to cluster u % 4: cluster c holds experts e == c of every layer
  HotSet hot;
  // Cluster 1 (expert 1 of layers 0..3): three of four members wanted; cluster 2: one of four.
  hot.compute = {{{0, 1}, 0.9f}, {{1, 1}, 0.8f}};
  hot.ram = {{{2, 1}, 0.5f}, {{0, 2}, 0.4f}};
  const PrefillPlan plan = plan_prefill(hot, fx.manifest);
  ASSERT_EQ(plan.requests.size(), 4u);
  EXPECT_EQ(plan.compute, 2);
  EXPECT_EQ(plan.ram, 2);
  EXPECT_EQ(plan.whole_clusters, 1);
  EXPECT_EQ(plan.requests[0].key, (ExpertKey{0, 1}));
  EXPECT_EQ(plan.requests[0].target, Tier::compute);
  EXPECT_EQ(plan.requests[0].deadline_step, 1);
  EXPECT_TRUE(plan.requests[0].whole_cluster);  // the most urgent request of the cluster carries the whole read
  EXPECT_FALSE(plan.requests[1].whole_cluster);
  EXPECT_EQ(plan.requests[2].target, Tier::ram);
  EXPECT_EQ(plan.requests[2].deadline_step, 2);
  EXPECT_FALSE(plan.requests[3].whole_cluster);
  EXPECT_FLOAT_EQ(plan.requests[3].probability, 0.4f);

  PrefillSchedulerConfig never;
  never.cluster_fraction = 2;
  EXPECT_EQ(plan_prefill(hot, fx.manifest, never).whole_clusters, 0);
  PrefillSchedulerConfig bad;
  bad.deadline_step = -1;
  EXPECT_THROW(plan_prefill(hot, fx.manifest, bad), ConfigError);
}

TEST(PrefillSchedulerTest, ScheduledHotSetBecomesResident) {
  const testing::StoreFixture fx;
  ExpertStore store(fx.offload(0.25, 0.5), fx.config);
  ExpertPredictor predictor(fx.config, {store.compute_slots(), store.ram_slots()});
  const HotSet hot = predictor.predict(at::rand({4, 4}));
  PrefillScheduler scheduler(store);
  const PrefillPlan plan = scheduler.schedule(hot);
  EXPECT_EQ(static_cast<int64_t>(plan.requests.size()), static_cast<int64_t>(hot.size()));
  ASSERT_TRUE(store.wait_idle());
  for (const auto& s : hot.compute) EXPECT_EQ(store.state(s.key), ExpertState::hot) << s.key.name();
  for (const auto& s : hot.ram) EXPECT_NE(store.state(s.key), ExpertState::cold) << s.key.name();
}

}  // namespace
}  // namespace chronos
