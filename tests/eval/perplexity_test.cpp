// Held-out cross-entropy per group: the sums against the model's own loss, grouping, an expert
// source giving the resident figures, and bad records named by file and line.
#include "chronos/eval/perplexity.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "chronos/store/expert_store.h"
#include "chronos/train/data.h"
#include "store/store_fixture.h"
#include "support/temp_dir.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace chronos {
namespace {

class PerplexityTest : public ::testing::Test {
 protected:
  PerplexityTest() : tokenizer(Tokenizer::from_json(testing::small_tokenizer_json())) {
    config = testing::tiny_config();
    config.vocab_size = 300;  // the small tokenizer's ids
    at::manual_seed(5);
    model = ChronosForCausalLM(config);
    model->eval();
    data = dir.file("heldout.jsonl");
    testing::write_bytes(data,
                         "{\"text\": \"the cat sat\", \"domain\": \"en\"}\n"
                         "{\"text\": \"der Hund bellt laut\", \"domain\": \"de\"}\n"
                         "\n"
                         "{\"text\": \"the end\", \"domain\": \"en\"}\n"
                         "{\"text\": \"no domain here\"}\n");
  }

  // The mean CE the model's own loss gives for one text, times its predicted tokens.
  double nll_of(const std::string& text) {
    at::NoGradGuard no_grad;
    const ExampleEncoder encoder(tokenizer, {256, config.bos_token_id, config.eos_token_id});
    const std::vector<int64_t> ids = encoder.pretrain_tokens({{"text", text}}, "test");
    ForwardOptions options;
    const at::Tensor t = at::tensor(ids, at::kLong).unsqueeze(0);
    options.labels = t;
    return model->forward(t, options).loss.item<double>() * static_cast<double>(ids.size() - 1);
  }

  testing::TempDir dir;
  Tokenizer tokenizer;
  ModelConfig config;
  ChronosForCausalLM model{nullptr};
  std::string data;
};

TEST_F(PerplexityTest, SumsEachRecordsLossPerGroup) {
  PerplexityOptions options;
  options.batch_size = 3;  // a padded batch, then a batch of one
  const PerplexityReport r = evaluate_perplexity(*model, tokenizer, data, options);
  ASSERT_EQ(r.groups.size(), 3u);
  EXPECT_EQ(r.groups[0].group, "");
  EXPECT_EQ(r.groups[1].group, "de");
  EXPECT_EQ(r.groups[2].group, "en");
  EXPECT_EQ(r.groups[2].records, 2);
  EXPECT_NEAR(r.groups[2].nll_sum, nll_of("the cat sat") + nll_of("the end"), 1e-3);
  EXPECT_NEAR(r.groups[1].nll_sum, nll_of("der Hund bellt laut"), 1e-3);
  EXPECT_EQ(r.total.records, 4);
  EXPECT_EQ(r.total.tokens, r.groups[0].tokens + r.groups[1].tokens + r.groups[2].tokens);
  EXPECT_NEAR(r.total.cross_entropy(), r.total.nll_sum / static_cast<double>(r.total.tokens), 1e-12);
  EXPECT_NEAR(std::log(r.total.perplexity()), r.total.cross_entropy(), 1e-9);
  // One group without a key; the first N records only.
  options.group_key = "";
  options.max_records = 2;
  const PerplexityReport one = evaluate_perplexity(*model, tokenizer, data, options);
  ASSERT_EQ(one.groups.size(), 1u);
  EXPECT_EQ(one.total.records, 2);
}

// Each group counts its records' expert choices: k per real token and layer (padding left out), and
// the very choices a forward of the record alone makes.
TEST_F(PerplexityTest, CountsEachGroupsExpertChoices) {
  PerplexityOptions options;
  options.batch_size = 3;
  const PerplexityReport batched = evaluate_perplexity(*model, tokenizer, data, options);
  const int64_t L = config.num_hidden_layers, k = config.num_experts_per_tok;
  for (const GroupLoss& g : batched.groups) {
    ASSERT_EQ(g.expert_counts.size(), static_cast<size_t>(L)) << g.group;
    for (const auto& layer : g.expert_counts) {
      ASSERT_EQ(layer.size(), static_cast<size_t>(config.num_experts));
      double sum = 0;
      for (double c : layer) sum += c;
      EXPECT_EQ(sum, static_cast<double>(k * (g.tokens + g.records))) << g.group;  // every token of the record routes
    }
  }
  options.batch_size = 1;
  const PerplexityReport alone = evaluate_perplexity(*model, tokenizer, data, options);
  at::NoGradGuard no_grad;
  const ExampleEncoder encoder(tokenizer, {256, config.bos_token_id, config.eos_token_id});
  const std::vector<int64_t> ids = encoder.pretrain_tokens({{"text", "der Hund bellt laut"}}, "test");
  const ForwardOutput out = model->forward(at::tensor(ids, at::kLong).unsqueeze(0));
  ASSERT_EQ(alone.groups[1].group, "de");
  for (int64_t l = 0; l < L; ++l) {
    const at::Tensor counts = at::bincount(out.selected[static_cast<size_t>(l)].reshape({-1}), {}, config.num_experts).to(at::kDouble);
    EXPECT_EQ(alone.groups[1].expert_counts[static_cast<size_t>(l)],
              std::vector<double>(counts.data_ptr<double>(), counts.data_ptr<double>() + config.num_experts)) << "layer " << l;
  }
}

TEST_F(PerplexityTest, ExpertsFromAStoreGiveTheResidentFigures) {
  testing::StoreFixture fx;  // its own tiny model and fp32 cache
  ExpertStore store(fx.offload(1.0, 1.0), fx.config);
  testing::write_bytes(data, "{\"text\": \"\\u0001\\u0005\\u0009\", \"domain\": \"a\"}\n{\"text\": \"\\u0002\\u0003\", \"domain\": \"b\"}\n");
  const Tokenizer bytes = Tokenizer::from_json(testing::small_tokenizer_json());
  PerplexityOptions options;
  const PerplexityReport resident = evaluate_perplexity(*fx.model, bytes, data, options);
  options.expert_source = &store;
  const PerplexityReport offloaded = evaluate_perplexity(*fx.model, bytes, data, options);
  ASSERT_EQ(resident.groups.size(), offloaded.groups.size());
  for (size_t g = 0; g < resident.groups.size(); ++g) EXPECT_NEAR(resident.groups[g].nll_sum, offloaded.groups[g].nll_sum, 1e-4);
  EXPECT_GT(store.stats().hits + store.stats().cold_misses, 0);
}

TEST_F(PerplexityTest, BadRecordsAreNamedByFileAndLine) {
  testing::write_bytes(data, "{\"text\": \"fine\"}\n{\"text\": \"x\", \"domain\": 3}\n");
  try {
    evaluate_perplexity(*model, tokenizer, data);
    FAIL() << "expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("heldout.jsonl:2"), std::string::npos) << e.what();
  }
  testing::write_bytes(data, "{\"text\": \"fine\"}\nnot json\n");
  EXPECT_THROW(evaluate_perplexity(*model, tokenizer, data), FormatError);
  EXPECT_THROW(evaluate_perplexity(*model, tokenizer, dir.file("missing.jsonl")), IoError);
  PerplexityOptions bad;
  bad.max_seq_len = 1;
  EXPECT_THROW(evaluate_perplexity(*model, tokenizer, data, bad), ConfigError);
}

}  // namespace
}  // namespace chronos
