// RouterControl: choice counts on a hand case, the bias each kind hands the model and when, exact
// state round trips (in memory and through router_control.json), freezing, and refusals.
#include "chronos/routing/router_control.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "chronos/core/error.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

RouterControlOptions chronovisor_options() {
  RouterControlOptions o;
  o.kind = RouterControlKind::chronovisor;
  o.chronovisor.pressure_scale = 0.5;
  o.chronovisor.micro_period = 2;
  o.chronovisor.macro_period = 4;
  o.chronovisor.gamma = 0.5;
  return o;
}

at::Tensor counts(std::vector<std::vector<float>> rows) {
  std::vector<at::Tensor> t;
  for (auto& r : rows) t.push_back(at::tensor(r));
  return at::stack(t);
}

TEST(RouterControl, ChoiceCountsSkipMaskedTokens) {
  // Two layers, B=1, S=3, k=2; the last token is padding.
  const at::Tensor l0 = at::tensor({0, 1, 0, 2, 3, 3}, at::kLong).view({1, 3, 2});
  const at::Tensor l1 = at::tensor({1, 1, 2, 2, 0, 0}, at::kLong).view({1, 3, 2});
  const at::Tensor mask = at::tensor({1, 1, 0}, at::kLong).view({1, 3});
  const at::Tensor c = expert_choice_counts({l0, l1}, mask, 4);
  EXPECT_TRUE(at::equal(c, at::tensor({2.f, 1.f, 1.f, 0.f, 0.f, 2.f, 2.f, 0.f}).view({2, 4})));
  EXPECT_TRUE(at::equal(expert_choice_counts({l0, l1}, {}, 4).sum(1), at::tensor({6.f, 6.f})));
  EXPECT_FALSE(expert_choice_counts({}, mask, 4).defined());
}

TEST(RouterControl, NoneGivesNoBiasAndNoRecords) {
  RouterControl control(RouterControlOptions{}, 2, 4);
  EXPECT_EQ(control.bias(), nullptr);
  EXPECT_TRUE(control.tick(counts({{1, 0, 0, 0}, {0, 1, 0, 0}})).is_null());
  EXPECT_EQ(control.num_layers(), 0);
}

TEST(RouterControl, ChronovisorBiasAppearsAtTheFirstMicroTick) {
  RouterControl control(chronovisor_options(), 1, 2);
  EXPECT_EQ(control.bias(), nullptr);  // no pressure yet: the routers stay untouched
  nlohmann::json r = control.tick(counts({{3, 1}}));
  EXPECT_EQ(r["tick"], 1);
  EXPECT_EQ(control.bias(), nullptr);
  r = control.tick(counts({{1, 1}}));
  EXPECT_TRUE(r["micro"].get<bool>());
  ASSERT_NE(control.bias(), nullptr);
  // The hand case of chronovisor_test: pressure 0.5 * (0.5 - 0.625) = -0.0625 on expert 0.
  EXPECT_NEAR(control.bias()->per_layer[0][0].item<double>(), -0.0625, 1e-7);
  EXPECT_NEAR(control.bias()->per_layer[0][1].item<double>(), 0.0625, 1e-7);
  EXPECT_EQ(control.bias()->target, BiasTarget::selection);
}

TEST(RouterControl, ZeroPressureScaleNeverBiases) {
  RouterControlOptions o = chronovisor_options();
  o.chronovisor.pressure_scale = 0;
  RouterControl control(o, 1, 2);
  for (int i = 0; i < 9; ++i) control.tick(counts({{static_cast<float>(i), 1}}));
  EXPECT_EQ(control.bias(), nullptr);
}

TEST(RouterControl, AuxFreeMovesTheBiasBySignEveryTick) {
  RouterControlOptions o;
  o.kind = RouterControlKind::aux_free;
  o.aux_free_step = 0.25;
  RouterControl control(o, 1, 3);
  const nlohmann::json r = control.tick(counts({{4, 1, 1}}));  // mean 2: expert 0 over, 1 and 2 under
  EXPECT_EQ(r["bias"], nlohmann::json::parse("[[-0.25, 0.25, 0.25]]"));
  ASSERT_NE(control.bias(), nullptr);
  EXPECT_EQ(control.bias()->target, BiasTarget::selection);
  EXPECT_TRUE(at::equal(control.bias()->per_layer[0], at::tensor({-0.25f, 0.25f, 0.25f})));
}

TEST(RouterControl, StateRoundTripTicksOnIdentically) {
  for (const RouterControlKind kind : {RouterControlKind::chronovisor, RouterControlKind::aux_free}) {
    RouterControlOptions o = chronovisor_options();
    o.kind = kind;
    RouterControl a(o, 2, 3);
    int seed = 1;
    const auto next = [&] {
      seed = (seed * 37 + 11) % 101;
      return counts({{static_cast<float>(seed % 7), static_cast<float>(seed % 5), 1}, {1, static_cast<float>(seed % 3), 2}});
    };
    for (int i = 0; i < 7; ++i) a.tick(next());
    testing::TempDir dir;
    save_router_control(a, dir.path());
    std::optional<RouterControl> b = load_router_control(dir.path());
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->state(), a.state());
    for (int i = 0; i < 9; ++i) {
      const at::Tensor c = next();
      EXPECT_EQ(a.tick(c), b->tick(c)) << to_string(kind) << " tick " << i;
    }
    EXPECT_EQ(a.state(), b->state());
  }
}

TEST(RouterControl, FrozenKeepsItsBias) {
  RouterControlOptions o;
  o.kind = RouterControlKind::aux_free;
  RouterControl control(o, 1, 2);
  control.tick(counts({{3, 1}}));
  const at::Tensor before = control.bias()->per_layer[0].clone();
  control.freeze();
  EXPECT_TRUE(control.tick(counts({{3, 1}})).is_null());
  EXPECT_TRUE(at::equal(control.bias()->per_layer[0], before));
  EXPECT_EQ(control.ticks(), 1);
}

TEST(RouterControl, RefusesBadShapesAndMalformedFiles) {
  RouterControl control(chronovisor_options(), 2, 4);
  EXPECT_THROW(control.tick(counts({{1, 0, 0, 0}})), InvalidArgument);
  testing::TempDir dir;
  EXPECT_FALSE(load_router_control(dir.path()).has_value());
  const std::string file = dir.file(kRouterControlFile);
  const auto expect_format_error = [&](const std::string& text, const std::string& fragment) {
    std::ofstream(file) << text;
    try {
      load_router_control(dir.path());
      ADD_FAILURE() << "accepted " << text;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_format_error("{\"kind\": \"magic\", \"ticks\": 0}", "magic");
  expect_format_error("{\"kind\": \"chronovisor\", \"ticks\": 3}", "'chronovisor' is missing");
  expect_format_error("{\"kind\": \"aux_free\", \"ticks\": -1}", "ticks");
  nlohmann::json state = control.state();
  state["chronovisor"]["layers"][1]["lens"] = {1, 2};
  expect_format_error(state.dump(), "layers[1].lens");
  expect_format_error("[1, 2", "");
}

TEST(RouterControl, OptionsNameTheField) {
  RouterControlOptions o = chronovisor_options();
  o.chronovisor.macro_period = 1;
  EXPECT_THROW(o.validate(), ConfigError);
  o = RouterControlOptions{};
  o.kind = RouterControlKind::aux_free;
  o.aux_free_step = -1;
  try {
    o.validate();
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("aux_free_step"), std::string::npos);
  }
  EXPECT_EQ(parse_router_control_kind("aux_free"), RouterControlKind::aux_free);
  EXPECT_THROW(parse_router_control_kind("chronovisors"), InvalidArgument);
}

}  // namespace
}  // namespace chronos
