#include "chronos/tokenizer/stream_decoder.h"

#include <gtest/gtest.h>

#include <random>

#include "chronos/core/error.h"
#include "chronos/tokenizer/utf8.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace chronos {
namespace {

// The small tokenizer has one id per byte (ids 0..255), so every split of a character is reachable.
const Tokenizer& bytes_tokenizer() {
  static const Tokenizer t = Tokenizer::from_json(testing::small_tokenizer_json(), "small");
  return t;
}

std::vector<TokenId> byte_ids(const std::string& bytes) {
  std::vector<TokenId> ids;
  for (unsigned char c : bytes) ids.push_back(c);
  return ids;
}

TEST(StreamDecoder, HoldsASplitCharacterUntilComplete) {
  StreamDecoder decoder(bytes_tokenizer());
  const std::string emoji = "😀";  // F0 9F 98 80
  EXPECT_EQ(decoder.push('a'), "a");
  EXPECT_EQ(decoder.push(0xF0), "");
  EXPECT_EQ(decoder.push(0x9F), "");
  EXPECT_EQ(decoder.pending_bytes(), 2u);
  EXPECT_EQ(decoder.push(0x98), "");
  EXPECT_EQ(decoder.push(0x80), emoji);
  EXPECT_EQ(decoder.pending_bytes(), 0u);
  EXPECT_EQ(decoder.push(byte_ids("中文")), "中文");
  EXPECT_EQ(decoder.flush(), "");
}

TEST(StreamDecoder, BrokenBytesBecomeReplacementCharactersAtOnce) {
  const std::string fffd = "\xEF\xBF\xBD";
  StreamDecoder decoder(bytes_tokenizer());
  EXPECT_EQ(decoder.push(0x80), fffd);        // can never start a character
  EXPECT_EQ(decoder.push(0xE4), "");
  EXPECT_EQ(decoder.push('x'), fffd + "x");  // the held byte will not be completed
  EXPECT_EQ(decoder.push(0xE4), "");
  EXPECT_EQ(decoder.push(0xB8), "");
  EXPECT_EQ(decoder.flush(), fffd);          // end of stream: one replacement for the subpart
  EXPECT_EQ(decoder.pending_bytes(), 0u);
}

TEST(StreamDecoder, ConcatenatedOutputEqualsLossyDecode) {
  std::mt19937 rng(3);
  const std::string pool = "aé中😀\x80\xff";
  for (int round = 0; round < 300; ++round) {
    std::vector<TokenId> ids;
    const int n = static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i) ids.push_back(static_cast<unsigned char>(pool[rng() % pool.size()]));
    StreamDecoder decoder(bytes_tokenizer());
    std::string streamed;
    for (TokenId id : ids) {
      const std::string piece = decoder.push(id);
      EXPECT_TRUE(is_valid_utf8(piece));
      streamed += piece;
    }
    streamed += decoder.flush();
    EXPECT_EQ(streamed, to_valid_utf8(bytes_tokenizer().decode(ids)));
  }
}

TEST(StreamDecoder, SkipsSpecialTokensWhenAsked) {
  StreamDecoder keep(bytes_tokenizer());
  StreamDecoder skip(bytes_tokenizer(), /*skip_special=*/true);
  const std::vector<TokenId> ids = {261, 'h', 'i', 262};  // <s> special, <x> not
  EXPECT_EQ(keep.push(ids), "<s>hi<x>");
  EXPECT_EQ(skip.push(ids), "hi<x>");
  EXPECT_THROW(skip.push(259), InvalidArgument);
}

TEST(StreamDecoder, MiniMindEmojiSplitAcrossTokens) {
  CHRONOS_REQUIRE_MINIMIND();
  const std::string text = "smile 😀👍🏽 中文 done";
  const std::vector<TokenId> ids = testing::minimind().encode(text);
  StreamDecoder decoder(testing::minimind());
  std::string streamed;
  int empty_pushes = 0;
  for (TokenId id : ids) {
    const std::string piece = decoder.push(id);
    EXPECT_TRUE(is_valid_utf8(piece));
    empty_pushes += piece.empty();
    streamed += piece;
  }
  EXPECT_GT(empty_pushes, 0) << "the emoji should span several tokens";
  EXPECT_EQ(streamed + decoder.flush(), text);
}

}  // namespace
}  // namespace chronos
