#include "chronos/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "chronos/core/error.h"
#include "chronos/tokenizer/special_tokens.h"
#include "chronos/tokenizer/utf8.h"
#include "support/temp_dir.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace chronos {
namespace {

using testing::minimind;

// The reference tokenizer's "useful encodings".
TEST(MiniMindTokenizer, SpecEncodings) {
  CHRONOS_REQUIRE_MINIMIND();
  EXPECT_EQ(minimind().encode("<|im_start|>assistant\n"), (std::vector<TokenId>{1, 1388, 570, 811, 234}));
  EXPECT_EQ(minimind().encode("<|im_end|>\n"), (std::vector<TokenId>{2, 234}));
  EXPECT_EQ(minimind().encode("<think>\n\n</think>\n\n"), (std::vector<TokenId>{25, 234, 234, 26, 234, 234}));
}

TEST(MiniMindTokenizer, VocabularyAndAddedTokens) {
  CHRONOS_REQUIRE_MINIMIND();
  const Tokenizer& t = minimind();
  EXPECT_EQ(t.vocab_size(), 6400);
  EXPECT_EQ(t.merge_count(), 6108u);
  ASSERT_EQ(t.added_tokens().size(), 36u);
  const std::vector<AddedToken> expected = chronos_added_tokens();
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(t.added_tokens()[i].id, expected[i].id);
    EXPECT_EQ(t.added_tokens()[i].content, expected[i].content);
    EXPECT_EQ(t.added_tokens()[i].special, expected[i].special) << expected[i].content;
    EXPECT_EQ(t.is_special(static_cast<TokenId>(i)), i <= 20);
  }
  EXPECT_EQ(t.token_to_id("<|im_start|>"), 1);
  EXPECT_EQ(t.token_to_id("Ċ"), 234);  // "\n" in byte-level form
  EXPECT_EQ(t.id_to_token(234), "Ċ");
  EXPECT_EQ(t.token_bytes(234), "\n");
  EXPECT_FALSE(t.token_to_id("no such token").has_value());
}

TEST(MiniMindTokenizer, DecodeSkipsOnlySpecialTokens) {
  CHRONOS_REQUIRE_MINIMIND();
  const std::vector<TokenId> ids = minimind().encode("<|im_start|>assistant\n<think>\nr\n</think>\n\nok<tool_call>x</tool_call><|im_end|>\n");
  EXPECT_EQ(minimind().decode(ids, true), "assistant\n<think>\nr\n</think>\n\nok<tool_call>x</tool_call>\n");
  EXPECT_EQ(minimind().decode(ids), "<|im_start|>assistant\n<think>\nr\n</think>\n\nok<tool_call>x</tool_call><|im_end|>\n");
}

TEST(MiniMindTokenizer, UnknownIdsAreRefused) {
  CHRONOS_REQUIRE_MINIMIND();
  EXPECT_THROW(minimind().decode({1, 6400}), InvalidArgument);
  EXPECT_THROW(minimind().decode({-1}), InvalidArgument);
  EXPECT_THROW(minimind().id_to_token(7000), InvalidArgument);
  EXPECT_FALSE(minimind().contains(6400));
}

TEST(MiniMindTokenizer, RoundTripsVariedUnicode) {
  CHRONOS_REQUIRE_MINIMIND();
  const char* const texts[] = {
      "plain ASCII with punctuation!?", "中文，标点符号。", "日本語 한국어 العربية עברית हिन्दी ไทย",
      "emoji 😀👍🏽👨‍👩‍👧🇫🇷", "combining e\u0301 a\u0308 Z\u0351\u0352", "controls \x01\x02\x1b[0m\x7f tab\t cr\r lf\n",
      "\xef\xbb\xbf BOM and \xe2\x80\x8b zero width", "math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∑∫√", "   \n\n\t  ", "",
      "<|im_start|>mixed<think>added</think><|im_end|>"};
  for (const char* text : texts) EXPECT_EQ(minimind().decode(minimind().encode(text)), text) << text;
}

TEST(MiniMindTokenizer, InvalidUtf8IsEncodedByBytes) {
  CHRONOS_REQUIRE_MINIMIND();
  // Stray continuation, truncated sequences, overlong form, surrogate, > U+10FFFF, a lone 0xFF.
  const std::string texts[] = {"a\x80z", "\xe4\xb8", "x\xf0\x9f\x98", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
                               std::string("nul\0byte", 8)};
  for (const std::string& text : texts) {
    const std::vector<TokenId> ids = minimind().encode(text);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(minimind().decode(ids), text);
  }
  // Random byte strings: never a crash, always the same bytes back.
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    EXPECT_EQ(minimind().decode(minimind().encode(bytes)), bytes);
  }
}

TEST(MiniMindTokenizer, AddedTokensCanBeTreatedAsText) {
  CHRONOS_REQUIRE_MINIMIND();
  const std::vector<TokenId> plain = minimind().encode("<|im_end|>", /*match_added_tokens=*/false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(minimind().decode(plain), "<|im_end|>");
}

TEST(MiniMindTokenizer, SaveAndReloadEncodesTheSame) {
  CHRONOS_REQUIRE_MINIMIND();
  testing::TempDir dir;
  minimind().save(dir.file("tokenizer.json"));
  const Tokenizer again = Tokenizer::from_file(dir.path());  // a folder works too
  EXPECT_EQ(again.vocab_size(), minimind().vocab_size());
  EXPECT_EQ(again.merge_count(), minimind().merge_count());
  for (const auto& c : testing::hf_reference()["encodings"]) {
    const std::string text = c["text"];
    EXPECT_EQ(again.encode(text), minimind().encode(text)) << text;
  }
  EXPECT_EQ(again.to_json(), minimind().to_json());
}

TEST(MiniMindTokenizer, ConcurrentEncodingGivesTheSameIds) {
  CHRONOS_REQUIRE_MINIMIND();
  std::string text;
  for (const auto& c : testing::hf_reference()["encodings"]) text += c["text"].get<std::string>();
  const std::vector<TokenId> expected = minimind().encode(text);
  std::vector<std::vector<TokenId>> got(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] {
      for (int r = 0; r < 5; ++r) got[i] = minimind().encode(text);
    });
  for (auto& t : threads) t.join();
  for (const auto& ids : got) EXPECT_EQ(ids, expected);
}

TEST(SmallTokenizer, MergesByRankAndMatchesAddedTokens) {
  const Tokenizer t = Tokenizer::from_json(testing::small_tokenizer_json(), "small");
  EXPECT_EQ(t.vocab_size(), 263);
  EXPECT_EQ(t.encode(" the"), (std::vector<TokenId>{258}));
  EXPECT_EQ(t.encode("the"), (std::vector<TokenId>{'t', 257}));
  // Leftmost added token first; text between is BPE'd on its own.
  EXPECT_EQ(t.encode("a<s> the<x>"), (std::vector<TokenId>{'a', 261, 258, 262}));
  EXPECT_EQ(t.decode(t.encode("a<s> the<x>"), true), "a the<x>");
  // Ids 259 and 260 are holes in the id space.
  EXPECT_FALSE(t.contains(259));
  EXPECT_THROW(t.decode({259}), InvalidArgument);
}

TEST(SmallTokenizer, HeapOrderIsHfOrder) {
  // With merges "a a" (rank 0) and "aa a" (rank 1), "aaaa" becomes "aa aa" (leftmost pair first,
  // rank-0 pairs before rank-1 ones), not "aaa a".
  nlohmann::json doc = testing::small_tokenizer_json();
  doc["model"]["vocab"]["aa"] = 300;
  doc["model"]["vocab"]["aaa"] = 301;
  doc["model"]["merges"] = nlohmann::json::array({nlohmann::json::array({"a", "a"}), nlohmann::json::array({"aa", "a"})});
  const Tokenizer t = Tokenizer::from_json(doc, "heap");
  EXPECT_EQ(t.encode("aaaa"), (std::vector<TokenId>{300, 300}));
  EXPECT_EQ(t.encode("aaa"), (std::vector<TokenId>{301}));
  EXPECT_EQ(t.encode("aaaaa"), (std::vector<TokenId>{300, 301}));
}

TEST(SmallTokenizer, AddPrefixSpaceAppliesPerSegment) {
  nlohmann::json doc = testing::small_tokenizer_json();
  doc["pre_tokenizer"]["add_prefix_space"] = true;
  const Tokenizer t = Tokenizer::from_json(doc, "prefix");
  EXPECT_EQ(t.encode("the"), (std::vector<TokenId>{258}));
  EXPECT_EQ(t.encode("the<s>the"), (std::vector<TokenId>{258, 261, 258}));
  EXPECT_EQ(t.encode(" the"), (std::vector<TokenId>{258}));
  EXPECT_TRUE(t.encode("").empty());
}

}  // namespace
}  // namespace chronos
