#include "chronos/routing/layer_ahead_predictor.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/decoder_layer.h"
#include "chronos/model/moe.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

ChronosForCausalLM tiny_model(ModelConfig c = testing::tiny_config()) {
  at::manual_seed(21);
  ChronosForCausalLM model(c);
  model->eval();
  return model;
}

// What MoE layer `layer` itself routes one token x [1,1,H] to.
std::set<int32_t> routed_by(ChronosForCausalLMImpl& model, int64_t layer, const at::Tensor& x) {
  at::NoGradGuard no_grad;
  const at::Tensor selected = model.layer(layer).moe->forward(x, MoECall{layer}).selected.reshape({-1});
  std::set<int32_t> out;
  for (int64_t i = 0; i < selected.numel(); ++i) out.insert(static_cast<int32_t>(selected[i].item<int64_t>()));
  return out;
}

// Applied to a layer's own input, the prediction for layer l+d is exactly what layer l+d's router
// would choose for that input: the routers of the next layers, top-k, most likely first.
TEST(LayerAheadPredictorTest, PredictsWhatTheNextLayersRoutersChoose) {
  ChronosForCausalLM model = tiny_model();
  const LayerAheadPredictor predictor(*model, {});
  at::manual_seed(3);
  for (int trial = 0; trial < 5; ++trial) {
    const at::Tensor x = at::randn({1, 1, 64});
    const auto predicted = predictor.predict(0, x);
    ASSERT_EQ(predicted.size(), 2u);
    for (int64_t d = 1; d <= 2; ++d) {
      const auto& layer = predicted[static_cast<size_t>(d - 1)];
      ASSERT_EQ(layer.size(), 2u);  // k experts
      std::set<int32_t> experts;
      for (const ScoredExpert& s : layer) {
        EXPECT_EQ(s.key.layer, d);
        experts.insert(s.key.expert);
      }
      EXPECT_EQ(experts, routed_by(*model, d, x)) << "distance " << d;
      EXPECT_GE(layer[0].probability, layer[1].probability);
    }
  }
}

TEST(LayerAheadPredictorTest, PredictsOnlyOneTokenAndOnlyExistingLayers) {
  ChronosForCausalLM model = tiny_model();
  LayerAheadConfig config;
  config.distance = 3;
  config.top_k = 3;
  const LayerAheadPredictor predictor(*model, config);
  const auto near_end = predictor.predict(2, at::randn({1, 1, 64}));  // only layer 3 is ahead
  ASSERT_EQ(near_end.size(), 3u);
  EXPECT_EQ(near_end[0].size(), 3u);
  EXPECT_TRUE(near_end[1].empty() && near_end[2].empty());
  for (const auto& layer : predictor.predict(0, at::randn({1, 5, 64}))) EXPECT_TRUE(layer.empty());  // a prefill
  LayerAheadConfig off;
  off.distance = 0;
  EXPECT_TRUE(LayerAheadPredictor(*model, off).predict(0, at::randn({1, 1, 64})).empty());
}

TEST(LayerAheadPredictorTest, RequestsAreDueThisStepNearestLayerFirst) {
  const std::vector<std::vector<ScoredExpert>> predicted = {{{{1, 3}, 0.7f}, {{1, 0}, 0.2f}}, {{{2, 1}, 0.9f}}};
  const auto requests = LayerAheadPredictor::requests(predicted, 5);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].key, (ExpertKey{1, 3}));
  EXPECT_EQ(requests[2].key, (ExpertKey{2, 1}));
  for (const PrefetchRequest& r : requests) {
    EXPECT_EQ(r.deadline_step, 5);
    EXPECT_EQ(r.target, Tier::compute);
    EXPECT_FALSE(r.whole_cluster);
  }
  EXPECT_FLOAT_EQ(requests[1].probability, 0.2f);
}

TEST(LayerAheadPredictorTest, RejectsNegativeSettings) {
  ChronosForCausalLM model = tiny_model();
  LayerAheadConfig bad;
  bad.distance = -1;
  EXPECT_THROW(LayerAheadPredictor(*model, bad), ConfigError);
  bad = {};
  bad.top_k = -2;
  EXPECT_THROW(bad.validate(), ConfigError);
}

}  // namespace
}  // namespace chronos
