#include "chronos/train/intent_training.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "chronos/core/error.h"
#include "chronos/train/intent_data.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

// Prompts drawn from token set A (ids 4..11) use experts {0} in layer 0 and {1,2} in layer 1; prompts
// from set B (ids 12..19) use {3} and {0}. Expert 1 of layer 0 is always used.
std::vector<IntentExample> synthetic(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<IntentExample> out;
  for (int64_t i = 0; i < n; ++i) {
    const bool a = i % 2 == 0;
    const int64_t len = 3 + static_cast<int64_t>(rng() % 20);
    IntentExample e;
    for (int64_t t = 0; t < len; ++t) e.prompt.push_back((a ? 4 : 12) + static_cast<int64_t>(rng() % 8));
    e.target = at::zeros({2, 4});
    e.target[0][1] = 1;
    if (a) {
      e.target[0][0] = 1;
      e.target[1][1] = 1;
      e.target[1][2] = 1;
    } else {
      e.target[0][3] = 1;
      e.target[1][0] = 1;
    }
    out.push_back(e);
  }
  return out;
}

IntentClassifierConfig synthetic_config() {
  IntentClassifierConfig c;
  c.vocab_size = 24;
  c.num_layers = 2;
  c.num_experts = 4;
  c.embed_dim = 16;
  c.hidden_size = 32;
  return c;
}

IntentTrainingConfig quick_training() {
  IntentTrainingConfig t;
  t.steps = 120;
  t.batch_size = 16;
  t.lr = 1e-2;
  t.val_fraction = 0.25;
  t.seed = 7;
  return t;
}

TEST(IntentTraining, LearnsThePromptDependenceAndBeatsTheFrequencyBaseline) {
  const IntentTrainingResult r = train_intent_classifier(synthetic_config(), synthetic(160, 1), quick_training());
  EXPECT_EQ(r.train_examples, 120);
  EXPECT_EQ(r.val_examples, 40);
  ASSERT_EQ(r.losses.size(), 120u);
  const double first = std::accumulate(r.losses.begin(), r.losses.begin() + 10, 0.0) / 10;
  const double last = std::accumulate(r.losses.end() - 10, r.losses.end(), 0.0) / 10;
  EXPECT_LT(last, 0.25 * first);
  const IntentEvaluation& v = r.validation;
  EXPECT_EQ(v.examples, 40);
  EXPECT_EQ(v.classifier.budget, 4);  // A prompts use 4 pairs, B prompts 3: the mean 3.5 rounds up
  EXPECT_LT(v.classifier.loss, 0.5 * v.baseline.loss);
  EXPECT_GT(v.classifier.recall_at_budget, v.baseline.recall_at_budget + 0.1);
  EXPECT_GT(v.classifier.precision, 0.95);
  EXPECT_GT(v.classifier.recall, 0.95);
  // The always-used expert is the frequency baseline's only sure prediction.
  EXPECT_NEAR(r.frequency[0][1].item<double>(), 1.0, 1e-9);
}

TEST(IntentTraining, IsDeterministicForASeed) {
  IntentTrainingConfig t = quick_training();
  t.steps = 10;
  const auto examples = synthetic(40, 2);
  const IntentTrainingResult a = train_intent_classifier(synthetic_config(), examples, t);
  const IntentTrainingResult b = train_intent_classifier(synthetic_config(), examples, t);
  EXPECT_EQ(a.losses, b.losses);
  const std::vector<int64_t> prompt = {4, 5, 6};
  EXPECT_TRUE(at::equal(a.classifier->predict(prompt), b.classifier->predict(prompt)));
}

TEST(IntentTraining, StartsAtTheFrequencyBaseline) {
  IntentTrainingConfig t = quick_training();
  t.steps = 1;
  t.lr = 1e-9;
  const auto examples = synthetic(40, 3);
  const IntentTrainingResult r = train_intent_classifier(synthetic_config(), examples, t);
  const at::Tensor f = r.frequency.clamp(1e-3, 1 - 1e-3);
  // The prompt still moves the logits a little through the small random MLP.
  EXPECT_TRUE(at::allclose(r.classifier->predict({4, 5}), f, 0, 0.2));
}

TEST(IntentTraining, ScoresKnownPredictions) {
  const at::Tensor targets = at::tensor({1.0F, 0.0F, 1.0F, 0.0F}).view({1, 2, 2});
  const at::Tensor probs = at::tensor({0.9F, 0.8F, 0.2F, 0.1F}).view({1, 2, 2});
  const IntentMetrics m = score_intent(probs, targets, 0.5, 2);
  EXPECT_DOUBLE_EQ(m.precision, 0.5);  // predicted {0,1}, used {0,2}
  EXPECT_DOUBLE_EQ(m.recall, 0.5);
  EXPECT_DOUBLE_EQ(m.recall_at_budget, 0.5);
  EXPECT_DOUBLE_EQ(score_intent(probs, targets, 0.5, 3).recall_at_budget, 1.0);
}

TEST(IntentTraining, RejectsBadConfigAndData) {
  IntentTrainingConfig t = quick_training();
  t.val_fraction = 1.0;
  EXPECT_THROW(train_intent_classifier(synthetic_config(), synthetic(4, 1), t), ConfigError);
  t = quick_training();
  t.steps = 0;
  EXPECT_THROW(t.validate(), ConfigError);
  EXPECT_THROW(train_intent_classifier(synthetic_config(), synthetic(0, 1), quick_training()), InvalidArgument);
  t = quick_training();
  t.val_fraction = 0.5;  // the one example would be held out
  EXPECT_THROW(train_intent_classifier(synthetic_config(), synthetic(1, 1), t), InvalidArgument);
  auto bad = synthetic(8, 1);
  bad[3].target = at::zeros({3, 4});
  EXPECT_THROW(train_intent_classifier(synthetic_config(), bad, quick_training()), InvalidArgument);
}

TEST(IntentActivationLog, TargetsAreTheGeneratedPositionsExperts) {
  at::manual_seed(0);
  const ModelConfig config = testing::tiny_config();
  ChronosForCausalLM model(config);
  std::vector<int64_t> prompt;
  for (int i = 0; i < 10; ++i) prompt.push_back((i * 7 + 3) % config.vocab_size);
  ActivationLogOptions options;
  options.max_new_tokens = 1;  // one generated position: exactly top-k experts a layer
  const IntentExample one = record_activations(*model, prompt, options);
  EXPECT_EQ(one.prompt, prompt);
  ASSERT_EQ(one.target.sizes(), (at::IntArrayRef{config.num_hidden_layers, config.num_experts}));
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    EXPECT_EQ(one.target[l].sum().item<double>(), static_cast<double>(config.num_experts_per_tok)) << "layer " << l;
  options.max_new_tokens = 12;
  const auto logs = collect_activation_logs(*model, {prompt, prompt}, options);
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_TRUE(at::equal(logs[0].target, logs[1].target));  // greedy: the same continuation
  EXPECT_TRUE(((logs[0].target == 0) | (logs[0].target == 1)).all().item<bool>());
  EXPECT_TRUE((logs[0].target >= one.target).all().item<bool>());  // a longer continuation covers the first token's experts
}

}  // namespace
}  // namespace chronos
