// chronos-compare: the vanilla config (parts removed, parameters matched), the shared
// initialisation, identical data order on both sides, the KV footprint against real caches, and a
// whole tiny comparison written to disk.
#include "chronos/eval/compare.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "chronos/core/error.h"
#include "chronos/eval/kv_footprint.h"
#include "chronos/io/json_file.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/kv_cache.h"
#include "support/temp_dir.h"
#include "support/tiny_config.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace chronos {
namespace {

double relative_gap(const ModelConfig& a, const ModelConfig& b) {
  return std::abs(static_cast<double>(count_parameters(a)) / static_cast<double>(count_parameters(b)) - 1);
}

ModelConfig fine_like() {
  ModelConfig c = testing::tiny_config();
  c.vocab_size = 300;  // the small tokenizer's ids
  c.num_experts = 8;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 32;
  c.lookahead_per_layer = true;
  return c;
}

TEST(CompareConfig, VanillaDropsTheChronosPartsAndKeepsTheBalanceLoss) {
  const ModelConfig chronos = fine_like();
  const ModelConfig v = vanilla_config(chronos);
  EXPECT_FALSE(v.has_lookahead_router());
  EXPECT_FALSE(v.use_hybrid_attention);
  for (int64_t l = 0; l < v.num_hidden_layers; ++l) EXPECT_FALSE(v.layer_is_mla(l) || v.layer_has_window(l));
  EXPECT_EQ(v.fallback_mask_prob, 0);
  EXPECT_EQ(v.lambda_temporal, 0);
  EXPECT_EQ(v.lambda_lookahead, 0);
  EXPECT_EQ(v.lambda_router_locality, 0);
  EXPECT_EQ(v.lambda_balance, chronos.lambda_balance);
  // What the offloaded decode moves is the same on both sides.
  EXPECT_EQ(v.num_experts, chronos.num_experts);
  EXPECT_EQ(v.resolved_moe_intermediate_size(), chronos.resolved_moe_intermediate_size());
  EXPECT_LE(relative_gap(v, chronos), 0.02);
}

TEST(CompareConfig, ResizesTheSharedExpertsWhenTheGapIsLarge) {
  ModelConfig chronos = fine_like();
  chronos.lookahead_steps = 24;  // a LookaheadRouter of 25 x 4 layers x 8 experts outputs: more than 2%
  ModelConfig unmatched = chronos;
  unmatched.lookahead_router = false;
  unmatched.use_hybrid_attention = false;
  ASSERT_GT(relative_gap(unmatched, chronos), 0.02);
  const ModelConfig v = vanilla_config(chronos);
  EXPECT_LE(relative_gap(v, chronos), 0.02);
  EXPECT_GT(v.resolved_shared_intermediate_size(), chronos.resolved_shared_intermediate_size());
}

TEST(CompareConfig, RefusesWhatItCannotMatch) {
  ModelConfig chronos = fine_like();
  chronos.lookahead_steps = 24;
  chronos.num_shared_experts = 0;  // nothing to resize
  EXPECT_THROW(vanilla_config(chronos), ConfigError);
  ModelConfig family = fine_like();
  family.model_type = "mixtral";
  EXPECT_THROW(vanilla_config(family), ConfigError);
}

TEST(CompareConfig, AModelWithoutALookaheadRouterTrainsWithoutItsLosses) {
  ModelConfig c = fine_like();
  c.lookahead_router = false;  // its lambda_lookahead is still the default 0.1
  const RouterLossWeights w = stage_router_weights(TrainStage::Pretrain, c, {});
  EXPECT_EQ(w.lookahead, 0);
  EXPECT_EQ(w.lookahead_topk, 0);
  EXPECT_EQ(w.lookahead_union, 0);
  EXPECT_EQ(w.balance, c.lambda_balance);
  RouterWeightOverrides explicit_weight;
  explicit_weight.lookahead = 0.2;
  EXPECT_THROW(stage_router_weights(TrainStage::Pretrain, c, explicit_weight), ConfigError);
  EXPECT_TRUE(ChronosForCausalLM(c)->model->lookahead_router.is_empty());
  EXPECT_FALSE(ModelConfig::from_json(c.to_json()).lookahead_router);  // kept in config.json
}

TEST(CompareModels, StartFromTheSameTensorsWhereverBothHaveThem) {
  const ModelConfig c = fine_like();
  const ComparePair pair = make_compare_models(c, 7);
  const auto chronos = pair.chronos->named_parameters();
  int64_t shared = 0, numel = 0;
  for (const auto& item : pair.vanilla->named_parameters()) {
    EXPECT_EQ(item.key().find("lookahead_router"), std::string::npos);
    numel += item.value().numel();
    const at::Tensor* other = chronos.find(item.key());
    if (!other || other->sizes() != item.value().sizes()) continue;
    EXPECT_TRUE(at::equal(item.value(), *other)) << item.key();
    ++shared;
  }
  EXPECT_GT(shared, 20);  // embedding, norms, routers, every expert
  EXPECT_EQ(numel, count_parameters(pair.vanilla->config()));
  // The same seed again gives the same pair; another seed another one.
  EXPECT_TRUE(at::equal(make_compare_models(c, 7).chronos->model->embed_tokens->weight, pair.chronos->model->embed_tokens->weight));
  EXPECT_FALSE(at::equal(make_compare_models(c, 8).chronos->model->embed_tokens->weight, pair.chronos->model->embed_tokens->weight));
}

class CompareRun : public ::testing::Test {
 protected:
  CompareRun() {
    testing::write_bytes(dir.file("tokenizer.json"), testing::small_tokenizer_json().dump());
    std::string corpus, heldout;
    const char* words[] = {"the cat sat on the mat", "a dog ran in the park", "the sun is hot today", "rain falls on the hills",
                           "the end of the story",  "birds sing in the tree", "the sea is deep",      "stars shine at night"};
    for (int i = 0; i < 48; ++i)
      corpus += cat("{\"text\": \"", words[i % 8], " ", i, "\", \"domain\": \"", i % 2 ? "odd" : "even", "\"}\n");
    for (int i = 0; i < 6; ++i) heldout += cat("{\"text\": \"", words[(i * 3) % 8], "\", \"domain\": \"", i % 2 ? "odd" : "even", "\"}\n");
    testing::write_bytes(dir.file("corpus.jsonl"), corpus);
    testing::write_bytes(dir.file("heldout.jsonl"), heldout);
    testing::write_bytes(dir.file("prompts.jsonl"), "{\"text\": \"the cat\"}\n{\"text\": \"birds sing\"}\n");
    options.config = fine_like();
    options.tokenizer = dir.file("tokenizer.json");
    options.stages = {CompareStage{TrainStage::Pretrain, dir.file("corpus.jsonl"), 3, 2, 16, 1e-3}};
    options.measure.heldout = dir.file("heldout.jsonl");
    options.measure.prompts = dir.file("prompts.jsonl");
    options.out_dir = dir.file("out");
    options.measure.max_prompt_tokens = 16;
    options.measure.max_new_tokens = 6;
    options.measure.eval_seq_len = 32;
    options.measure.kv_contexts = {8, 32};
    options.seed = 3;
  }

  testing::TempDir dir;
  CompareOptions options;
};

TEST_F(CompareRun, BothSidesDrawTheSameBatchesInTheSameOrder) {
  const Tokenizer tokenizer = Tokenizer::from_file(options.tokenizer);
  const ComparePair pair = make_compare_models(options.config, options.seed);
  const auto vanilla = make_compare_stage(options, 0, CompareSide::vanilla, pair.vanilla->config(), tokenizer, "");
  const auto chronos = make_compare_stage(options, 0, CompareSide::chronos, pair.chronos->config(), tokenizer, "");
  CompareOptions reseeded = options;
  reseeded.seed = 4;
  const auto other = make_compare_stage(reseeded, 0, CompareSide::chronos, pair.chronos->config(), tokenizer, "");
  // One model scores both sides' batches: equal cross-entropy means equal tokens.
  pair.chronos->eval();
  at::NoGradGuard no_grad;
  bool other_differs = false;
  for (int step = 0; step < 4; ++step) {
    const double a = vanilla->micro_step(*pair.chronos).log.at("ce").item<double>();
    const double b = chronos->micro_step(*pair.chronos).log.at("ce").item<double>();
    EXPECT_EQ(a, b) << "step " << step;
    other_differs |= other->micro_step(*pair.chronos).log.at("ce").item<double>() != a;
  }
  EXPECT_EQ(vanilla->data_state(), chronos->data_state());
  EXPECT_TRUE(other_differs);  // the comparison would see a different order
}

TEST_F(CompareRun, WritesBothSidesFiguresAndTheTable) {
  const nlohmann::json out = run_compare(options);
  EXPECT_EQ(read_json_file(dir.file("out/compare.json")), out);
  EXPECT_TRUE(std::filesystem::is_regular_file(dir.file("out/compare.md")));
  EXPECT_TRUE(out["settings"]["identical_data_order"].get<bool>());
  EXPECT_NEAR(out["settings"]["parameter_ratio"].get<double>(), 1.0, 0.02);
  for (const char* side : {"vanilla", "chronos"}) {
    const nlohmann::json& m = out[side];
    for (const char* key : {"params", "perplexity", "kv_bytes_per_token", "decode_tokens_per_s", "offload_tokens_per_s", "hit_rate",
                            "stall_ms_per_token"})
      EXPECT_TRUE(m.contains(key)) << side << " " << key;
    EXPECT_GT(m["perplexity"].get<double>(), 1.0) << side;
    EXPECT_TRUE(m["perplexity_by_domain"].contains("odd")) << side;
    EXPECT_GT(m["offload_tokens_per_s"].get<double>(), 0) << side;
    EXPECT_EQ(m["stages"]["pretrain"]["steps"], 3) << side;
    EXPECT_TRUE(m["stages"]["pretrain"]["value"].is_number()) << side;
    EXPECT_TRUE(std::filesystem::is_regular_file(dir.file(cat("out/", side, "/1_pretrain/model.safetensors"))));
  }
  EXPECT_EQ(out["vanilla"]["offload_mode"], "reactive");
  EXPECT_EQ(out["chronos"]["offload_mode"], "lookahead");
  EXPECT_TRUE(out["chronos"]["lookahead_recall"].is_array());
  EXPECT_TRUE(out["vanilla"]["lookahead_recall"].is_null());
  // MLA and the window hold less than plain GQA at every context.
  for (const char* context : {"8", "32"})
    EXPECT_LT(out["chronos"]["kv_bytes_per_token"][context].get<double>(), out["vanilla"]["kv_bytes_per_token"][context].get<double>());
  EXPECT_EQ(out["greedy_agreement"]["compared"].get<int64_t>() > 0, true);
}

TEST_F(CompareRun, NamesWhatIsMissing) {
  CompareOptions o = options;
  o.measure.heldout = dir.file("absent.jsonl");
  EXPECT_THROW(run_compare(o), IoError);
  o = options;
  o.stages.front().steps = 0;
  EXPECT_THROW(run_compare(o), ConfigError);
  o = options;
  o.stages.push_back(CompareStage{TrainStage::Distill, dir.file("corpus.jsonl"), 1});
  EXPECT_THROW(run_compare(o), ConfigError);
}

TEST(KvFootprint, EqualsWhatTheCachesHold) {
  for (const bool hybrid : {true, false}) {
    ModelConfig c = testing::tiny_config();
    c.use_hybrid_attention = hybrid;
    at::manual_seed(0);
    ChronosForCausalLM model(c);
    model->eval();
    at::NoGradGuard no_grad;
    for (const int64_t context : {5, 20}) {  // below and above the window of 8
      KVCache cache(c.num_hidden_layers);
      ForwardOptions options;
      options.cache = &cache;
      model->forward(at::randint(c.vocab_size, {1, context}), options);
      EXPECT_EQ(kv_cache_bytes(c, context), cache.bytes()) << "hybrid " << hybrid << ", context " << context;
    }
  }
  EXPECT_THROW(kv_cache_bytes(testing::tiny_config(), 0), InvalidArgument);
}

}  // namespace
}  // namespace chronos
