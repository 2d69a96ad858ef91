#include "chronos/train/rewards.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chronos/core/error.h"

namespace chronos {
namespace {

std::string join(const std::vector<std::string>& words, size_t count, size_t from = 0) {
  std::string text;
  for (size_t i = 0; i < count; ++i) text += (i ? " " : "") + words[(from + i) % words.size()];
  return text;
}

TEST(ToyReward, EmptyResponseIsMinusOne) {  // a check the reference states
  ToyReward reward;
  EXPECT_EQ(reward.score("prompt", ""), -1.0f);
  EXPECT_EQ(reward.score("prompt", " \n\t "), -1.0f);
}

TEST(ToyReward, TwentyFourDistinctToyWordsScoreTwo) {  // a check the reference states
  ToyReward reward;
  EXPECT_FLOAT_EQ(reward.score("prompt", join(ToyReward::vocabulary(), 24, 10)), 2.0f);
}

TEST(ToyReward, HandValueWithNoiseAndARepeat) {
  // n = 3: 3/24 + 2/3 (two toy words) - 1/3 (one adjacent repeat).
  ToyReward reward;
  EXPECT_NEAR(reward.score("", "cache cache zzz"), 3.0 / 24 + 2.0 / 3 - 1.0 / 3, 1e-6);
}

TEST(ToyReward, VocabularyIsMatchedCaseInsensitively) {
  ToyReward reward;
  EXPECT_NEAR(reward.score("", "Cache ROUTER"), 2.0 / 24 + 1.0, 1e-6);
}

TEST(ToyReward, LengthTermSaturatesAtTheTarget) {
  ToyReward reward(4);
  EXPECT_NEAR(reward.score("", "qqq zzz"), 0.5, 1e-6);
  EXPECT_NEAR(reward.score("", join(ToyReward::vocabulary(), 10)), 2.0, 1e-6);
  EXPECT_THROW(ToyReward(0), InvalidArgument);
}

TEST(ToyReward, ScoresStayWithinMinusOneAndTwo) {
  std::mt19937 rng(20260421);
  std::vector<std::string> pool = ToyReward::vocabulary();
  for (const char* noise : {"zzz", "qqq", "@@@", "###", "Cache"}) pool.push_back(noise);
  ToyReward reward;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::string> words(rng() % 40);
    for (auto& w : words) w = pool[rng() % (rng() % 3 == 0 ? 2 : pool.size())];  // repeats are common
    const float score = reward.score("", join(words, words.size()));
    EXPECT_GE(score, -1.0f);
    EXPECT_LE(score, 2.0f);
  }
}

TEST(ToyReward, SplitsOnPythonWhitespace) {
  // NBSP, ideographic space and the ASCII separators all split, as Python's str.split() does.
  const std::vector<std::string> words = ToyReward::split_words("cache\xC2\xA0router\xE3\x80\x80" "expert\x1F"
                                                                "kv\r\n  rope");
  EXPECT_EQ(words, (std::vector<std::string>{"cache", "router", "expert", "kv", "rope"}));
  // Non-space multibyte characters and invalid bytes stay inside words.
  EXPECT_EQ(ToyReward::split_words("caf\xC3\xA9 \xFF"), (std::vector<std::string>{"caf\xC3\xA9", "\xFF"}));
}

TEST(ToyReward, VocabularyIsTheSpecsFortyEight) {
  const std::vector<std::string>& v = ToyReward::vocabulary();
  EXPECT_EQ(v.size(), 48u);
  EXPECT_EQ(std::set<std::string>(v.begin(), v.end()).size(), 48u);
  for (const char* dropped : {"jumps", "over", "lazy", "dog", "prefill", "adam"})
    EXPECT_EQ(std::count(v.begin(), v.end(), dropped), 0) << dropped;
  for (const char* kept : {"chronos", "kv", "of", "the", "minimind"})
    EXPECT_EQ(std::count(v.begin(), v.end(), kept), 1) << kept;
}

TEST(RewardFunction, ScoreGroupScoresEachResponse) {
  ToyReward reward;
  const std::vector<float> scores = reward.score_group("p", {"", "cache cache zzz"});
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_EQ(scores[0], -1.0f);
  EXPECT_NEAR(scores[1], 0.4583333f, 1e-6f);
  EXPECT_EQ(reward.name(), "toy");
}

}  // namespace
}  // namespace chronos
