#include "chronos/routing/intent_classifier.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "chronos/core/error.h"
#include "support/temp_dir.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

IntentClassifierConfig small_config() {
  IntentClassifierConfig c = IntentClassifierConfig::for_model(testing::tiny_config());
  c.embed_dim = 16;
  c.hidden_size = 32;
  return c;
}

std::vector<int64_t> tokens(int64_t n, int64_t salt, int64_t vocab) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back((i * 13 + salt) % vocab);
  return ids;
}

template <typename Fn>
void expect_config_error(const char* field, Fn&& breaks) {
  IntentClassifierConfig c = small_config();
  breaks(c);
  try {
    c.validate();
    FAIL() << field << " accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
}

TEST(IntentClassifierConfig, EachRuleNamesItsField) {
  EXPECT_NO_THROW(small_config().validate());
  expect_config_error("max_prompt_tokens", [](auto& c) { c.max_prompt_tokens = 0; });
  expect_config_error("embed_dim", [](auto& c) { c.embed_dim = 0; });
  expect_config_error("hidden_size", [](auto& c) { c.hidden_size = -1; });
  expect_config_error("vocab_size", [](auto& c) { c.vocab_size = 0; });
  expect_config_error("num_layers", [](auto& c) { c.num_layers = 0; });
  expect_config_error("num_experts", [](auto& c) { c.num_experts = 0; });
}

TEST(IntentClassifier, ShapesAndProbabilities) {
  at::manual_seed(0);
  const IntentClassifierConfig c = small_config();
  IntentClassifier model(c);
  const IntentBatch batch = make_intent_batch({tokens(5, 1, c.vocab_size), tokens(9, 2, c.vocab_size)}, c.max_prompt_tokens);
  EXPECT_EQ(batch.ids.sizes(), (at::IntArrayRef{2, 9}));
  EXPECT_EQ(batch.mask.sum().item<double>(), 14.0);
  const at::Tensor logits = model->forward(batch.ids, batch.mask);
  EXPECT_EQ(logits.sizes(), (at::IntArrayRef{2, c.num_layers, c.num_experts}));
  const at::Tensor p = model->predict(tokens(7, 3, c.vocab_size));
  EXPECT_EQ(p.sizes(), (at::IntArrayRef{c.num_layers, c.num_experts}));
  EXPECT_EQ(p.scalar_type(), at::kFloat);
  EXPECT_TRUE(((p > 0) & (p < 1)).all().item<bool>());
  EXPECT_THROW(model->forward(batch.ids, batch.mask.slice(1, 0, 3)), InvalidArgument);
}

TEST(IntentClassifier, PaddingDoesNotChangeThePrediction) {
  at::manual_seed(1);
  const IntentClassifierConfig c = small_config();
  IntentClassifier model(c);
  model->eval();
  const std::vector<int64_t> short_prompt = tokens(4, 5, c.vocab_size);
  const at::Tensor alone = model->predict(short_prompt);
  // Batched beside a longer prompt: right padding of 16 tokens, whose ids are then scrambled.
  IntentBatch batch = make_intent_batch({short_prompt, tokens(20, 7, c.vocab_size)}, c.max_prompt_tokens);
  batch.ids[0].slice(0, 4).fill_(42);
  const at::Tensor batched = at::sigmoid(model->forward(batch.ids, batch.mask)[0]).detach();
  EXPECT_TRUE(at::allclose(alone, batched, 1e-6, 1e-6));
}

TEST(IntentClassifier, ReadsOnlyTheLast512Tokens) {
  at::manual_seed(2);
  const IntentClassifierConfig c = small_config();
  ASSERT_EQ(c.max_prompt_tokens, 512);
  IntentClassifier model(c);
  const std::vector<int64_t> long_prompt = tokens(700, 3, c.vocab_size);
  const std::vector<int64_t> tail(long_prompt.end() - 512, long_prompt.end());
  const std::vector<int64_t> head(long_prompt.begin(), long_prompt.begin() + 512);
  EXPECT_TRUE(at::equal(model->predict(long_prompt), model->predict(tail)));
  EXPECT_FALSE(at::equal(model->predict(long_prompt), model->predict(head)));
  EXPECT_EQ(make_intent_batch({long_prompt}, 512).ids.size(1), 512);
}

TEST(IntentClassifier, SaveLoadRoundTripIsExact) {
  at::manual_seed(3);
  testing::TempDir dir;
  const ModelConfig model_config = testing::tiny_config();
  EXPECT_FALSE(load_intent_classifier(dir.path(), model_config).has_value());
  IntentClassifier model(small_config());
  save_intent_classifier(*model, dir.path());
  auto loaded = load_intent_classifier(dir.path(), model_config);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ((*loaded)->config().to_json(), model->config().to_json());
  const auto a = model->named_parameters(), b = (*loaded)->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(at::equal(item.value(), b[item.key()])) << item.key();
  const std::vector<int64_t> prompt = tokens(30, 1, model_config.vocab_size);
  EXPECT_TRUE(at::equal(model->predict(prompt), (*loaded)->predict(prompt)));
}

void expect_format_error(const std::string& dir, const ModelConfig& config, const std::string& fragment) {
  try {
    load_intent_classifier(dir, config);
    FAIL() << "no error, wanted " << fragment;
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(IntentClassifier, MalformedOrMismatchedFilesNameTheFile) {
  at::manual_seed(4);
  testing::TempDir dir;
  const ModelConfig config = testing::tiny_config();
  IntentClassifier model(small_config());
  save_intent_classifier(*model, dir.path());

  ModelConfig other = config;
  other.num_experts = 8;
  other.num_experts_per_tok = 2;
  expect_format_error(dir.path(), other, kIntentClassifierConfig);

  IntentClassifierConfig wider = model->config();
  wider.embed_dim = 17;  // shapes no longer fit the weights
  std::ofstream(dir.file(kIntentClassifierConfig)) << wider.to_json().dump();
  expect_format_error(dir.path(), config, kIntentClassifierWeights);
  std::ofstream(dir.file(kIntentClassifierConfig)) << "{\"embed_dim\": ";
  expect_format_error(dir.path(), config, kIntentClassifierConfig);
  std::ofstream(dir.file(kIntentClassifierConfig)) << "{\"embed_dim\": 0}";
  expect_format_error(dir.path(), config, "embed_dim");

  save_intent_classifier(*model, dir.path());
  std::ofstream(dir.file(kIntentClassifierWeights), std::ios::trunc) << "not a safetensors file";
  expect_format_error(dir.path(), config, kIntentClassifierWeights);
  std::filesystem::remove(dir.file(kIntentClassifierWeights));
  expect_format_error(dir.path(), config, kIntentClassifierWeights);
}

}  // namespace
}  // namespace chronos
