#include "chronos/model/causal_lm.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "chronos/core/error.h"
#include "chronos/model/pretrained.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

int64_t numel_of_parameters(ChronosForCausalLMImpl& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

TEST(CausalLM, ParameterCountMatchesTheFormula) {
  for (bool hybrid : {true, false}) {
    for (bool moe : {true, false}) {
      ModelConfig c = testing::tiny_config();
      c.use_hybrid_attention = hybrid;
      c.use_moe = moe;
      ChronosForCausalLM model(c);
      EXPECT_EQ(numel_of_parameters(*model), count_parameters(c)) << "hybrid " << hybrid << " moe " << moe;
    }
  }
  ModelConfig per_layer = testing::tiny_config();
  per_layer.lookahead_per_layer = true;
  EXPECT_EQ(numel_of_parameters(*ChronosForCausalLM(per_layer)), count_parameters(per_layer));
}

// lookahead_per_layer: one distribution over E per step and layer.
TEST(CausalLM, PerLayerLookaheadRouterPredictsEachLayer) {
  ModelConfig c = testing::tiny_config();
  c.lookahead_per_layer = true;
  ChronosForCausalLM model(c);
  model->eval();
  at::NoGradGuard no_grad;
  const ForwardOutput out = model->forward(at::randint(c.vocab_size, {2, 7}));
  EXPECT_EQ(out.lookahead_probs.sizes(), (std::vector<int64_t>{2, 7, 3, 4, 4}));
  EXPECT_LT((out.lookahead_probs.sum(-1) - 1).abs().max().item<float>(), 1e-5);
  EXPECT_EQ(ModelConfig::from_json(c.to_json()).lookahead_per_layer, true);
  EXPECT_EQ(ModelConfig::from_json(testing::tiny_config().to_json()).lookahead_per_layer, false);
}

// ForwardOptions::lookahead = false: the LookaheadRouter does not run and nothing else changes.
TEST(CausalLM, ForwardWithoutLookaheadLeavesItOutAndTheLogitsAlone) {
  const ModelConfig c = testing::tiny_config();
  ChronosForCausalLM model(c);
  model->eval();
  at::NoGradGuard no_grad;
  const at::Tensor ids = at::randint(c.vocab_size, {1, 5});
  ForwardOptions without;
  without.lookahead = false;
  int calls = 0;
  without.on_lookahead = [&](const at::Tensor&) { ++calls; };
  const ForwardOutput a = model->forward(ids), b = model->forward(ids, without);
  ASSERT_TRUE(a.lookahead_probs.defined());
  EXPECT_FALSE(b.lookahead_probs.defined());
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(at::equal(a.logits, b.logits));
}

TEST(CausalLM, SmokeConfigHasTheSpecSize) {
  ModelConfig c;
  c.hidden_size = 128;
  c.num_hidden_layers = 4;
  c.kv_latent_dim = 16;
  c.rope_dim = 8;
  c.sliding_window_size = 16;
  ChronosForCausalLM model(c);
  EXPECT_EQ(numel_of_parameters(*model), 4439680);
}

TEST(CausalLM, TensorNamesAreTheReferenceNames) {
  ChronosForCausalLM model(testing::tiny_config());
  std::set<std::string> names;
  for (const auto& [name, t] : reference_state_dict(*model)) names.insert(name);
  const std::vector<std::string> expected = {
      "lm_head.weight", "model.embed_tokens.weight", "model.norm.weight",
      "model.lookahead_router.proj.0.weight", "model.lookahead_router.proj.2.weight",
      "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
      "model.layers.0.self_attn.q_nope_proj.weight", "model.layers.0.self_attn.q_rope_proj.weight",
      "model.layers.0.self_attn.q_nope_norm.weight", "model.layers.0.self_attn.q_rope_norm.weight",
      "model.layers.0.self_attn.kv_down_proj.weight", "model.layers.0.self_attn.kv_down_norm.weight",
      "model.layers.0.self_attn.k_nope_proj.weight", "model.layers.0.self_attn.k_rope_proj.weight",
      "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
      "model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
      "model.layers.1.self_attn.v_proj.weight", "model.layers.1.self_attn.o_proj.weight",
      "model.layers.1.self_attn.q_norm.weight", "model.layers.1.self_attn.k_norm.weight",
      "model.layers.0.mlp.gate.weight", "model.layers.3.mlp.experts.3.down_proj.weight",
      "model.layers.2.mlp.shared_experts.0.gate_proj.weight", "model.layers.2.mlp.experts.0.up_proj.weight"};
  for (const auto& name : expected) EXPECT_TRUE(names.count(name)) << name;
  const std::regex pattern(R"(lm_head\.weight|model\.(embed_tokens|norm|lookahead_router\.proj\.[02])\.weight|)"
                           R"(model\.layers\.\d+\.(input_layernorm|post_attention_layernorm|self_attn\.\w+|)"
                           R"(mlp\.gate|mlp\.(experts|shared_experts)\.\d+\.(gate_proj|up_proj|down_proj))\.weight)");
  for (const auto& name : names) EXPECT_TRUE(std::regex_match(name, pattern)) << name;
  const auto shape = [&](const std::string& n) {
    for (const auto& [name, t] : reference_state_dict(*model))
      if (name == n) return t.sizes().vec();
    return std::vector<int64_t>{};
  };
  EXPECT_EQ(shape("model.lookahead_router.proj.2.weight"), (std::vector<int64_t>{12, 16}));
  EXPECT_EQ(shape("model.layers.0.self_attn.k_rope_proj.weight"), (std::vector<int64_t>{2 * 8, 16}));
  EXPECT_EQ(shape("model.layers.0.self_attn.v_proj.weight"), (std::vector<int64_t>{2 * 16, 16}));
}

TEST(CausalLM, ForwardShapesAndProbabilities) {
  at::manual_seed(0);
  ModelConfig c = testing::tiny_config();
  ChronosForCausalLM model(c);
  model->eval();
  at::NoGradGuard no_grad;
  const at::Tensor ids = at::randint(c.vocab_size, {2, 7});
  const ForwardOutput out = model->forward(ids);
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 7, c.vocab_size}));
  EXPECT_EQ(out.lookahead_probs.sizes(), (std::vector<int64_t>{2, 7, 3, 4}));
  EXPECT_LT((out.lookahead_probs.sum(-1) - 1).abs().max().item<float>(), 1e-5);
  EXPECT_EQ(out.router_probs.size(), 4u);
  EXPECT_EQ(out.hidden_states.sizes(), (std::vector<int64_t>{2, 7, c.hidden_size}));
  EXPECT_EQ(out.aux_loss.item<float>(), 0.0f);
  EXPECT_FALSE(out.loss.defined());
  EXPECT_EQ(mean_router_probs(out.router_probs).sizes(), (std::vector<int64_t>{2, 7, 4}));

  ForwardOptions last;
  last.logits_to_keep = 1;
  const ForwardOutput tail = model->forward(ids, last);
  EXPECT_EQ(tail.logits.size(1), 1);
  EXPECT_LT((tail.logits.select(1, 0) - out.logits.select(1, 6)).abs().max().item<float>(), 1e-5);
}

TEST(CausalLM, LossIsShiftedCrossEntropy) {
  at::manual_seed(0);
  ModelConfig c = testing::tiny_config();
  ChronosForCausalLM model(c);
  model->eval();
  at::NoGradGuard no_grad;
  const at::Tensor ids = at::randint(c.vocab_size, {1, 6});
  at::Tensor labels = ids.clone();
  labels[0][3] = -100;
  ForwardOptions options;
  options.labels = labels;
  const ForwardOutput out = model->forward(ids, options);
  const at::Tensor logp = at::log_softmax(out.logits[0], -1);
  double total = 0;
  int count = 0;
  for (int64_t t = 0; t < 5; ++t) {
    const int64_t target = labels[0][t + 1].item<int64_t>();
    if (target == -100) continue;
    total -= logp[t][target].item<double>();
    ++count;
  }
  EXPECT_NEAR(out.loss.item<double>(), total / count, 1e-4);
}

TEST(CausalLM, TrainingReportsAuxLossAndTrainsEverything) {
  at::manual_seed(0);
  ModelConfig c = testing::tiny_config();
  ChronosForCausalLM model(c);
  model->train();
  const at::Tensor ids = at::randint(c.vocab_size, {2, 6});
  ForwardOptions options;
  options.labels = ids;
  const ForwardOutput out = model->forward(ids, options);
  EXPECT_GT(out.aux_loss.item<float>(), 0.0f);
  (out.loss + out.aux_loss + out.lookahead_probs.sum()).backward();
  EXPECT_TRUE(model->model->embed_tokens->weight.grad().defined());
  EXPECT_TRUE(model->model->lookahead_router->proj->parameters()[0].grad().defined());
}

TEST(CausalLM, PlainGqaAndDenseModesRun) {
  at::manual_seed(0);
  ModelConfig c = testing::tiny_config();
  c.use_hybrid_attention = false;  // the reference crashes here [Q5]
  c.use_moe = false;
  ChronosForCausalLM model(c);
  model->eval();
  at::NoGradGuard no_grad;
  const ForwardOutput out = model->forward(at::randint(c.vocab_size, {1, 20}));
  EXPECT_EQ(out.logits.size(1), 20);
  EXPECT_TRUE(out.logits.isfinite().all().item<bool>());
}

TEST(CausalLM, RejectsBadInputs) {
  ChronosForCausalLM model(testing::tiny_config());
  EXPECT_THROW(model->forward(at::zeros({3}, at::kLong)), InvalidArgument);
  EXPECT_THROW(model->forward(at::zeros({1, 0}, at::kLong)), InvalidArgument);
  KVCache wrong(2);
  ForwardOptions options;
  options.cache = &wrong;
  EXPECT_THROW(model->forward(at::zeros({1, 2}, at::kLong), options), InvalidArgument);
}

TEST(CausalLM, InvalidConfigIsRejectedAtConstruction) {
  ModelConfig c = testing::tiny_config();
  c.num_experts_per_tok = 9;
  EXPECT_THROW(ChronosForCausalLM{c}, ConfigError);
}

}  // namespace
}  // namespace chronos
