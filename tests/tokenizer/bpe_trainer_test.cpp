#include "chronos/tokenizer/bpe_trainer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

#include "chronos/core/error.h"
#include "chronos/tokenizer/special_tokens.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

// Varied text from a fixed seed: common words, made-up words, numbers, CJK, punctuation, newlines.
std::string corpus(size_t lines, uint32_t seed) {
  static const char* const words[] = {"the", "expert", "router", "cache", "prefetch", "latency", "token", "model",
                                      "sparse", "dense", "缓存", "专家", "路由", "模型", "😀", "it's", "don't",
                                      "1024", "3.14", "attention", "layer", "(x)", "->", "==", "é"};
  std::mt19937 rng(seed);
  std::string text;
  for (size_t l = 0; l < lines; ++l) {
    const size_t n = 4 + rng() % 20;
    for (size_t i = 0; i < n; ++i) {
      if (i) text += (rng() % 9 == 0) ? "  " : " ";
      if (rng() % 3 == 0) {
        const size_t len = 2 + rng() % 7;
        for (size_t k = 0; k < len; ++k) text.push_back(static_cast<char>('a' + rng() % 26));
      } else {
        text += words[rng() % (sizeof(words) / sizeof(words[0]))];
      }
    }
    text += (rng() % 4 == 0) ? ".\n\n" : "\n";
  }
  return text;
}

BpeTrainerConfig chronos_config(int64_t vocab_size) {
  BpeTrainerConfig config;
  config.vocab_size = vocab_size;
  config.added_tokens = chronos_added_tokens();
  return config;
}

Tokenizer train(const BpeTrainerConfig& config, const std::vector<std::string>& texts) {
  BpeTrainer trainer(config);
  for (const std::string& t : texts) trainer.add_text(t);
  return trainer.train();
}

TEST(BpeTrainer, HandVerifiedMerges) {
  // Words "aaab" x1, " aaab" x2, " ab" x1. Pair counts a+a 6, a+b 4, Ġ+a 3: merge "a a". Then
  // a+b 4, aa+a 3, Ġ+aa 2: merge "a b". Then aa+ab 3, Ġ+aa 2: merge "aa ab".
  BpeTrainerConfig config;
  config.vocab_size = 256 + 3;
  BpeTrainer trainer(config);
  trainer.add_text("aaab aaab aaab ab");
  const Tokenizer t = trainer.train();
  const auto doc = t.to_json();
  ASSERT_EQ(doc["model"]["merges"].size(), 3u);
  EXPECT_EQ(doc["model"]["merges"][0], nlohmann::ordered_json::array({"a", "a"}));
  EXPECT_EQ(doc["model"]["merges"][1], nlohmann::ordered_json::array({"a", "b"}));
  EXPECT_EQ(doc["model"]["merges"][2], nlohmann::ordered_json::array({"aa", "ab"}));
  EXPECT_EQ(t.encode("aaab"), (std::vector<TokenId>{258}));
  // " aaab" is its own word (leading space): never seen, so it stays in pieces.
  EXPECT_EQ(t.decode(t.encode(" aaab aaab")), " aaab aaab");
}

TEST(BpeTrainer, TiesGoToTheSmallerIds) {
  // "ab" and "cd" occur equally often: the pair with the smaller left id ("a") is merged first.
  BpeTrainerConfig config;
  config.vocab_size = 256 + 2;
  BpeTrainer trainer(config);
  trainer.add_text("cd ab cd ab");
  const auto merges = trainer.train().to_json()["model"]["merges"];
  ASSERT_EQ(merges.size(), 2u);
  EXPECT_EQ(merges[0], nlohmann::ordered_json::array({"a", "b"}));
  EXPECT_EQ(merges[1], nlohmann::ordered_json::array({"c", "d"}));
}

TEST(BpeTrainer, LayoutFollowsTheSpec) {
  const Tokenizer t = train(chronos_config(600), {corpus(400, 1)});
  EXPECT_EQ(t.vocab_size(), 600);
  EXPECT_EQ(t.merge_count(), 600u - 36 - 256);
  for (const AddedToken& a : chronos_added_tokens()) {
    EXPECT_EQ(t.token_to_id(a.content), a.id);
    EXPECT_EQ(t.is_special(a.id), a.id <= 20);
  }
  // The byte symbols follow, ordered by their stand-in character: "!" first, as in MiniMind.
  EXPECT_EQ(t.id_to_token(36), "!");
  EXPECT_EQ(t.encode("<|im_start|>assistant\n")[0], 1);
}

TEST(BpeTrainer, IsDeterministicAndRoundTrips) {
  const std::vector<std::string> texts = {corpus(800, 2), "<|im_start|>user\nhi<|im_end|>\n", corpus(200, 3)};
  const Tokenizer a = train(chronos_config(1200), texts);
  const Tokenizer b = train(chronos_config(1200), texts);
  EXPECT_EQ(a.to_json().dump(), b.to_json().dump());

  testing::TempDir dir;
  a.save(dir.file("tokenizer.json"));
  const Tokenizer loaded = Tokenizer::from_file(dir.file("tokenizer.json"));
  const std::string sample = corpus(50, 9) + "<think>\n\n</think>\n\n" + "unseen: Ωmega ∑ \x01\xff";
  EXPECT_EQ(loaded.encode(sample), a.encode(sample));
  EXPECT_EQ(loaded.decode(loaded.encode(sample)), sample);
  // Training compresses: far fewer tokens than bytes on text like the corpus.
  const std::string held_out = corpus(100, 4);
  EXPECT_LT(loaded.encode(held_out).size() * 2, held_out.size());
}

TEST(BpeTrainer, AddedTokensNeverTakePartInMerges) {
  BpeTrainerConfig config = chronos_config(36 + 256 + 50);
  BpeTrainer trainer(config);
  for (int i = 0; i < 100; ++i) trainer.add_text("<think><think><|im_end|>");
  const Tokenizer t = trainer.train();
  EXPECT_EQ(t.merge_count(), 0u);  // nothing but added tokens: no pairs at all
}

TEST(BpeTrainer, StopsWhenPairsRunOut) {
  BpeTrainerConfig config;
  config.vocab_size = 5000;
  config.min_frequency = 2;
  BpeTrainer trainer(config);
  trainer.add_text("abc abc xyz");
  const Tokenizer t = trainer.train();
  EXPECT_EQ(t.merge_count(), 2u);  // "a b", then "ab c"; "xyz" occurs once
  EXPECT_EQ(t.vocab_size(), 258);
}

TEST(BpeTrainer, ConfigRules) {
  BpeTrainerConfig config = chronos_config(291);
  EXPECT_THROW(config.validate(), ConfigError);
  try {
    config.validate();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size must be at least 292 (36 added tokens + 256 byte symbols) (got 291)"), std::string::npos) << e.what();
  }
  config.vocab_size = 6400;
  config.min_frequency = -1;
  EXPECT_THROW(config.validate(), ConfigError);
  config.min_frequency = 1;
  config.added_tokens.push_back(config.added_tokens[3]);
  EXPECT_THROW(config.validate(), ConfigError);
  config.added_tokens.pop_back();
  config.added_tokens.push_back(AddedToken{0, "!", false, false});
  EXPECT_THROW(config.validate(), ConfigError);
  config.added_tokens.back().content = "";
  EXPECT_THROW(BpeTrainer{config}, ConfigError);
}

// Its speed is chronos-bench's business; here: a corpus of a few hundred kilobytes trains to the
// requested size with progress reports, and the tokenizer round-trips it.
TEST(BpeTrainer, TrainsAFewHundredKilobytes) {
  const std::string text = corpus(6000, 5);
  ASSERT_GT(text.size(), 250000u);
  BpeTrainer trainer(chronos_config(4000));
  for (size_t pos = 0; pos < text.size(); pos += 4096) trainer.add_text(std::string_view(text).substr(pos, 4096));
  int calls = 0;
  const Tokenizer t = trainer.train([&](int64_t done, int64_t target) {
    EXPECT_LE(done, target);
    ++calls;
  });
  EXPECT_GT(calls, 0);
  EXPECT_EQ(t.decode(t.encode(text)), text);
}

}  // namespace
}  // namespace chronos
