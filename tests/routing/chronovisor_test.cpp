#include "chronos/routing/chronovisor.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/moe.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

double entropy_coherence(double a) {  // coherence of (a, 1 - a) over two experts
  double h = 0;
  for (const double p : {a, 1 - a})
    if (p > 0) h -= p * std::log(p);
  return 1 - h / std::log(2.0);
}

ChronovisorConfig hand_config() {
  ChronovisorConfig c;
  c.pressure_scale = 0.5;
  c.micro_period = 2;
  c.macro_period = 4;
  c.gamma = 0.5;
  c.gate_sharpness = 5;
  return c;
}

TEST(Chronovisor, CoherenceIsOneMinusNormalisedEntropy) {
  EXPECT_DOUBLE_EQ(coherence({1, 1, 1, 1}), 0.0);
  EXPECT_DOUBLE_EQ(coherence({0, 7, 0, 0}), 1.0);
  EXPECT_NEAR(coherence({3, 1}), entropy_coherence(0.75), 1e-15);
  EXPECT_DOUBLE_EQ(coherence({0, 0}), 0.0);  // nothing routed
  EXPECT_THROW(coherence({1}), InvalidArgument);
}

TEST(Chronovisor, HandComputedTicks) {
  Chronovisor cv(hand_config(), /*layers=*/1, /*experts=*/2);
  // Tick 1: usage (0.75, 0.25).
  TickRecord r = cv.tick_counts({{3, 1}});
  EXPECT_EQ(r.tick, 1);
  EXPECT_FALSE(r.micro);
  EXPECT_NEAR(r.layers[0].coherence, entropy_coherence(0.75), 1e-12);
  EXPECT_EQ(r.layers[0].delta_coherence, 0.0);
  EXPECT_EQ(r.layers[0].pressure, (std::vector<double>{0, 0}));
  // Tick 2: uniform; micro: the window's mean usage (0.625, 0.375), pressure 0.5 * (lens - mean).
  r = cv.tick_counts({{1, 1}});
  EXPECT_TRUE(r.micro);
  EXPECT_FALSE(r.macro);
  EXPECT_NEAR(r.layers[0].delta_coherence, -entropy_coherence(0.75), 1e-12);
  EXPECT_NEAR(r.layers[0].pressure[0], -0.0625, 1e-15);
  EXPECT_NEAR(r.layers[0].pressure[1], 0.0625, 1e-15);
  // Ticks 3 and 4: all on expert 0. Tick 4 is macro: window mean (0.8125, 0.1875); the first macro
  // tick has no previous window, so the gate is sigmoid(0) = 0.5 and the lens moves 0.5 * 0.5 of the way.
  r = cv.tick_counts({{4, 0}});
  EXPECT_NEAR(r.layers[0].delta_coherence, 1.0, 1e-12);
  r = cv.tick_counts({{4, 0}});
  EXPECT_TRUE(r.micro);
  EXPECT_TRUE(r.macro);
  EXPECT_NEAR(r.layers[0].lens[0], 0.578125, 1e-15);
  EXPECT_NEAR(r.layers[0].lens[1], 0.421875, 1e-15);
  // The same tick's pressure aims at the moved lens: 0.5 * (lens - (1, 0)).
  EXPECT_NEAR(r.layers[0].pressure[0], -0.2109375, 1e-15);
  EXPECT_NEAR(r.layers[0].pressure[1], 0.2109375, 1e-15);
  // Ticks 5..8 uniform: the window's coherence fell from that of (0.8125, 0.1875) to 0, so the
  // gate closes towards 0 and the lens moves less.
  for (int i = 0; i < 3; ++i) cv.tick_counts({{2, 2}});
  r = cv.tick_counts({{2, 2}});
  const double gate = 1 / (1 + std::exp(-5 * (0.0 - entropy_coherence(0.8125))));
  EXPECT_LT(gate, 0.5);
  EXPECT_NEAR(r.layers[0].lens[0], 0.578125 + 0.5 * gate * (0.5 - 0.578125), 1e-15);
  EXPECT_NEAR(r.layers[0].pressure[0], 0.5 * (r.layers[0].lens[0] - 0.5), 1e-15);
  // The lens stays a distribution.
  EXPECT_NEAR(r.layers[0].lens[0] + r.layers[0].lens[1], 1.0, 1e-15);
}

TEST(Chronovisor, TicksFromTopKChoicesCountEveryChoice) {
  Chronovisor cv(hand_config(), 2, 4);
  const at::Tensor layer0 = at::tensor({0, 1, 0, 2, 0, 3}, at::kLong).reshape({1, 3, 2});  // [B,S,k]
  const at::Tensor layer1 = at::tensor({3, 3, 3, 3}, at::kLong).reshape({2, 2});
  const TickRecord r = cv.tick({layer0, layer1});
  EXPECT_EQ(r.layers[0].usage, (std::vector<double>{0.5, 1.0 / 6, 1.0 / 6, 1.0 / 6}));
  EXPECT_DOUBLE_EQ(r.layers[1].coherence, 1.0);
  EXPECT_THROW(cv.tick({layer0}), InvalidArgument);
  EXPECT_THROW(cv.tick({layer0, at::tensor({4}, at::kLong)}), InvalidArgument);
}

TEST(Chronovisor, ZeroPressureScaleLeavesTheBiasAtZero) {
  ChronovisorConfig c = hand_config();
  c.pressure_scale = 0;
  Chronovisor cv(c, 1, 3);
  for (int i = 0; i < 40; ++i) cv.tick_counts({{static_cast<double>(i % 3), 5, 0}});
  EXPECT_TRUE(at::equal(cv.bias(0), at::zeros({3})));
}

TEST(Chronovisor, StateRoundTripTicksOnExactly) {
  Chronovisor a(hand_config(), 2, 3);
  const auto counts = [](int i) {
    return std::vector<std::vector<double>>{{static_cast<double>(i % 4), 1, 2}, {0, static_cast<double>(i % 3), 5}};
  };
  for (int i = 0; i < 7; ++i) a.tick_counts(counts(i));  // mid-window for both clocks
  Chronovisor b = Chronovisor::from_state(nlohmann::json::parse(a.state().dump()));
  EXPECT_EQ(b.ticks(), 7);
  for (int i = 7; i < 30; ++i) {
    const TickRecord ra = a.tick_counts(counts(i)), rb = b.tick_counts(counts(i));
    for (size_t l = 0; l < 2; ++l) {
      EXPECT_EQ(ra.layers[l].pressure, rb.layers[l].pressure) << "tick " << i;
      EXPECT_EQ(ra.layers[l].lens, rb.layers[l].lens);
      EXPECT_EQ(ra.layers[l].delta_coherence, rb.layers[l].delta_coherence);
    }
  }
  nlohmann::json broken = a.state();
  broken["layers"][1]["lens"] = {1, 2};
  EXPECT_THROW(Chronovisor::from_state(broken, "x.json"), FormatError);
  broken = a.state();
  broken["config"]["micro_period"] = 0;
  EXPECT_THROW(Chronovisor::from_state(broken, "x.json"), FormatError);
  EXPECT_THROW(Chronovisor::from_state(nlohmann::json::object(), "x.json"), FormatError);
}

TEST(Chronovisor, TheLogRecordHoldsEveryLayer) {
  Chronovisor cv(hand_config(), 2, 2);
  const nlohmann::json j = to_json(cv.tick_counts({{1, 0}, {1, 1}}));
  EXPECT_EQ(j["tick"], 1);
  EXPECT_EQ(j["coherence"].size(), 2u);
  EXPECT_EQ(j["lens"][1], (nlohmann::json{0.5, 0.5}));
}

TEST(ChronovisorConfig, ValidateNamesTheField) {
  const auto expect_field = [](ChronovisorConfig c, const std::string& field) {
    try {
      c.validate();
      FAIL() << "accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  ChronovisorConfig c;
  c.pressure_scale = -1;
  expect_field(c, "chronovisor.pressure_scale");
  c = {};
  c.micro_period = 0;
  expect_field(c, "chronovisor.micro_period");
  c = {};
  c.macro_period = 3;
  expect_field(c, "chronovisor.macro_period");
  c = {};
  c.gamma = 1.5;
  expect_field(c, "chronovisor.gamma");
  c = {};
  c.gate_sharpness = 0;
  expect_field(c, "chronovisor.gate_sharpness");
  EXPECT_EQ(parse_bias_target("selection_and_weights"), BiasTarget::selection_and_weights);
  EXPECT_THROW(parse_bias_target("weights"), InvalidArgument);
}

TEST(AuxFreeBalancer, MovesEachBiasOneStepTowardsBalance) {
  AuxFreeBalancer b(1, 4, 0.01);
  b.update_counts({{5, 1, 0, 2}});  // mean 2: over-, under-, under-loaded, balanced
  EXPECT_EQ(b.bias_values(0), (std::vector<double>{-0.01, 0.01, 0.01, 0.0}));
  b.update({at::tensor({1, 1, 1, 1, 0, 0, 2, 3}, at::kLong).reshape({4, 2})});  // counts (2, 4, 1, 1), mean 2
  EXPECT_NEAR(b.bias_values(0)[0], -0.01, 1e-15);
  EXPECT_NEAR(b.bias_values(0)[1], 0.0, 1e-15);
  EXPECT_NEAR(b.bias_values(0)[2], 0.02, 1e-15);
  EXPECT_NEAR(b.bias_values(0)[3], 0.01, 1e-15);
  const AuxFreeBalancer restored = AuxFreeBalancer::from_state(b.state());
  EXPECT_EQ(restored.bias_values(0), b.bias_values(0));
  EXPECT_THROW(AuxFreeBalancer(1, 4, -1), ConfigError);
}

}  // namespace
}  // namespace chronos

// The seam to the model: ForwardOptions::router_bias reaches every MoE layer's router.
namespace chronos {
namespace {

struct RouterBiasTest : ::testing::Test {
  void SetUp() override {
    at::manual_seed(3);
    config = testing::tiny_config();
    moe = MoE(config);
    moe->eval();
  }
  ModelConfig config;
  MoE moe{nullptr};
  at::NoGradGuard no_grad;
};

TEST_F(RouterBiasTest, WithWeightsTheLogitsShiftByExactlyTheBias) {
  const at::Tensor x = at::randn({1, 5, config.hidden_size});
  const at::Tensor bias = at::tensor({0.5f, -1.0f, 2.0f, 0.0f});
  MoECall call;
  call.router_bias = bias;
  call.bias_target = BiasTarget::selection_and_weights;
  const MoEOutput out = moe->forward(x, call);
  const at::Tensor logits = at::matmul(x, moe->gate->weight.t());
  EXPECT_TRUE(at::allclose(out.router_probs, at::softmax(logits + bias, -1), 1e-6, 1e-6));
}

TEST_F(RouterBiasTest, SelectionOnlyMovesTheChoiceNotTheWeights) {
  // A bias that makes expert 3 win everywhere; the router's own probabilities are unchanged.
  const at::Tensor x = at::randn({1, 6, config.hidden_size});
  const at::Tensor bias = at::tensor({0.0f, 0.0f, 0.0f, 100.0f});
  const MoEOutput plain = moe->forward(x, MoECall{});
  MoECall call;
  call.router_bias = bias;
  const MoEOutput biased = moe->forward(x, call);
  EXPECT_TRUE(at::equal(biased.router_probs, plain.router_probs));
  EXPECT_TRUE((biased.selected == 3).any(-1).all().item<bool>());
  // The one-token decode path agrees, token by token.
  for (int64_t s = 0; s < 6; ++s) {
    const at::Tensor token = x.slice(1, s, s + 1).contiguous();
    ASSERT_TRUE(moe->one_token_path_applies(token));
    const MoEOutput one = moe->forward(token, call);
    EXPECT_TRUE(at::equal(std::get<0>(one.selected.sort(-1)), std::get<0>(biased.selected.slice(1, s, s + 1).sort(-1)))) << s;
    EXPECT_TRUE(at::allclose(one.output, biased.output.slice(1, s, s + 1), 1e-5, 1e-5)) << s;
  }
  call.router_bias = at::zeros({5});
  EXPECT_THROW(moe->forward(x, call), InvalidArgument);
}

TEST_F(RouterBiasTest, AControllerWithZeroScaleChangesNothing) {
  ChronosForCausalLM model(config);
  model->eval();
  ChronovisorConfig c;
  c.pressure_scale = 0;
  c.micro_period = 1;
  Chronovisor cv(c, config.num_hidden_layers, config.num_experts);
  const at::Tensor ids = at::randint(config.vocab_size, {2, 9}, at::kLong);
  const ForwardOutput first = model->forward(ids, ForwardOptions{});
  cv.tick(first.selected);
  const RouterBias bias = cv.router_bias();
  for (const at::Tensor& b : bias.per_layer) EXPECT_FALSE(b.defined());
  ForwardOptions with;
  with.router_bias = &bias;
  EXPECT_TRUE(at::equal(model->forward(ids, with).logits, first.logits));
  // A nonzero scale does change the routing of a skewed layer.
  c.pressure_scale = 50;
  Chronovisor strong(c, config.num_hidden_layers, config.num_experts);
  strong.tick(first.selected);
  const RouterBias pushed = strong.router_bias();
  with.router_bias = &pushed;
  const ForwardOutput moved = model->forward(ids, with);
  bool any_changed = false;
  for (size_t l = 0; l < moved.selected.size(); ++l)
    any_changed = any_changed || !at::equal(std::get<0>(moved.selected[l].sort(-1)), std::get<0>(first.selected[l].sort(-1)));
  EXPECT_TRUE(any_changed);
}

}  // namespace
}  // namespace chronos
