// chronos-tune's search space and front: Optuna distributions for the eight knobs, trial values
// applied to a config, the Pareto front and its knee.
#include "chronos/tune/search_space.h"

#include <gtest/gtest.h>

#include "chronos/core/error.h"
#include "chronos/tune/tuner.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

TEST(TuneSpace, EveryParameterHasAnOptunaDistribution) {
  const nlohmann::json space = optuna_search_space(tunable_parameters());
  ASSERT_EQ(space.size(), 8u);
  for (const auto& [name, d] : space.items()) {
    EXPECT_TRUE(d.contains("name") && d.contains("attributes")) << name;
    const std::string kind = d["name"];
    EXPECT_TRUE(kind == "FloatDistribution" || kind == "IntDistribution" || kind == "CategoricalDistribution") << name;
  }
  EXPECT_TRUE(space["lambda_balance"]["attributes"]["log"].get<bool>());
  EXPECT_THROW(optuna_search_space({"lambda_balance", "lambda_balance"}), InvalidArgument);
  EXPECT_THROW(optuna_search_space({"dropout"}), InvalidArgument);
  EXPECT_THROW(optuna_search_space({}), InvalidArgument);
}

TEST(TuneSpace, TrialValuesBecomeAValidatedConfig) {
  ModelConfig base = testing::tiny_config();
  const ModelConfig c = apply_trial_params(
      base, {{"lambda_balance", 0.02}, {"lookahead_steps", 3}, {"hidden_size", 128}, {"num_experts", 8}, {"kv_latent_dim", 32}});
  EXPECT_EQ(c.lambda_balance, 0.02);
  EXPECT_EQ(c.lookahead_steps, 3);
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.resolved_head_dim(), 32);  // follows the hidden size
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.kv_latent_dim, 32);
  // The fine preset's rope width (32 of a 64-wide head) keeps its share when the hidden size shrinks.
  ModelConfig fine = base;
  fine.hidden_size = 256;
  fine.rope_dim = 32;
  EXPECT_EQ(apply_trial_params(fine, {{"hidden_size", 128}}).rope_dim, 16);
  EXPECT_EQ(apply_trial_params(fine, {{"hidden_size", 192}}).rope_dim, 24);
  EXPECT_EQ(apply_trial_params(fine, {{"hidden_size", 256}}).rope_dim, 32);
  EXPECT_THROW(apply_trial_params(base, {{"num_experts", 1}}), ConfigError);  // fewer experts than the top-k of 2
  EXPECT_THROW(apply_trial_params(base, {{"lookahead_steps", 1.5}}), ConfigError);
  EXPECT_THROW(apply_trial_params(base, {{"lambda_balance", "high"}}), ConfigError);
  EXPECT_THROW(apply_trial_params(base, {{"dropout", 0.2}}), ConfigError);
}

TEST(TuneFront, KeepsTheNonDominatedPointsSortedByTheFirstObjective) {
  // (perplexity, tokens/s): minimise, maximise.
  const std::vector<std::vector<double>> points = {{10, 100}, {8, 90}, {12, 120}, {11, 95}, {8, 80}, {20, 121}};
  const std::vector<std::string> dirs = {"minimize", "maximize"};
  EXPECT_EQ(pareto_front(points, dirs), (std::vector<size_t>{1, 0, 2, 5}));
  // Scaled to the front's ranges, (12, 120) is nearest the corner (8, 121): 0.11 against 0.49 for (10, 100).
  EXPECT_EQ(knee_point(points, pareto_front(points, dirs), dirs), 2u);
  EXPECT_EQ(knee_point(points, {1}, dirs), 1u);
  EXPECT_THROW(knee_point(points, {}, dirs), InvalidArgument);
  EXPECT_EQ(pareto_front({{1, 4}, {2, 5}}, {"minimize", "minimize"}), (std::vector<size_t>{0}));
  EXPECT_EQ(pareto_front({{1, 5}, {2, 4}}, {"minimize", "minimize"}), (std::vector<size_t>{0, 1}));
}

}  // namespace
}  // namespace chronos
