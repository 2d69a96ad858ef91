#include "chronos/runtime/text_stream.h"

#include <gtest/gtest.h>

#include "chronos/core/error.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace chronos {
namespace {

const Tokenizer& small_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::from_json(testing::small_tokenizer_json(), "small");
  return tokenizer;
}

std::vector<int64_t> ids_of(const std::string& text) {
  const std::vector<TokenId> ids = small_tokenizer().encode(text);
  return {ids.begin(), ids.end()};
}

GenerationOptions with_stops(std::vector<std::string> stops) {
  GenerationOptions options;
  options.stop_strings = std::move(stops);
  return options;
}

// Pushes the ids one by one like generate() does; returns the pieces take() handed out after each.
std::vector<std::string> stream_all(TextStream& stream, const std::vector<int64_t>& ids) {
  std::vector<std::string> pieces;
  for (int64_t id : ids) {
    const bool go_on = stream.push(id);
    pieces.push_back(stream.take());
    if (!go_on) return pieces;
  }
  stream.finish();
  pieces.push_back(stream.take());
  return pieces;
}

TEST(TextStream, WithoutStopStringsItIsTheDecodedText) {
  TextStream stream(small_tokenizer(), GenerationOptions{});
  const std::vector<int64_t> ids = ids_of("the cat ate the hat");
  const std::vector<std::string> pieces = stream_all(stream, ids);
  std::string joined;
  for (const std::string& p : pieces) joined += p;
  EXPECT_EQ(joined, "the cat ate the hat");
  EXPECT_EQ(stream.text(), joined);
  EXPECT_FALSE(stream.stopped_by_string());
  GenerationResult result;
  result.stop_reason = "max_new_tokens";
  EXPECT_EQ(stream.stop_reason(result), "max_new_tokens");
}

TEST(TextStream, AStopStringAcrossTokensEndsTheRunAndIsDropped) {
  TextStream stream(small_tokenizer(), with_stops({"STOP"}));
  const std::vector<int64_t> ids = ids_of("go on STOP and more");
  size_t pushed = 0;
  bool go_on = true;
  while (go_on && pushed < ids.size()) go_on = stream.push(ids[pushed++]);
  EXPECT_FALSE(go_on);
  EXPECT_LT(pushed, ids.size());  // it ended at the P, not at the end of the ids
  EXPECT_TRUE(stream.stopped_by_string());
  EXPECT_EQ(stream.text(), "go on ");
  EXPECT_FALSE(stream.push(ids[pushed]));  // nothing more is taken once stopped
  stream.finish();
  EXPECT_EQ(stream.text(), "go on ");
  EXPECT_EQ(stream.stop_reason(GenerationResult{}), "stop_string");
}

TEST(TextStream, APossibleStopStringIsHeldBackUntilDecided) {
  TextStream stream(small_tokenizer(), with_stops({"ST!"}));
  const std::vector<int64_t> ids = ids_of("a ST b");
  std::vector<std::string> pieces;
  for (int64_t id : ids) {
    ASSERT_TRUE(stream.push(id));
    pieces.push_back(stream.take());
  }
  // After "a S" and "a ST" the S and T are held back; the space after them releases both.
  EXPECT_EQ(pieces.at(2), "");
  EXPECT_EQ(pieces.at(3), "");
  EXPECT_EQ(pieces.at(4), "ST ");
  stream.finish();
  EXPECT_EQ(stream.text(), "a ST b");
  EXPECT_FALSE(stream.stopped_by_string());
}

TEST(TextStream, HeldBackTextIsReleasedAtTheEnd) {
  TextStream stream(small_tokenizer(), with_stops({"STOP"}));
  for (int64_t id : ids_of("ends in ST")) ASSERT_TRUE(stream.push(id));
  EXPECT_EQ(stream.text(), "ends in ");
  stream.finish();
  EXPECT_EQ(stream.take(), "ends in ST");
  EXPECT_EQ(stream.text(), "ends in ST");
}

TEST(TextStream, TheEarliestStopStringWins) {
  TextStream stream(small_tokenizer(), with_stops({"cd", "bcd"}));
  const std::vector<std::string> pieces = stream_all(stream, ids_of("abcdef"));
  EXPECT_TRUE(stream.stopped_by_string());
  EXPECT_EQ(stream.text(), "a");
}

TEST(TextStream, StopIdsAndSpecialTokensAddNoText) {
  GenerationOptions options;
  options.stop_ids = {262};  // <x>, not special: it would decode to text if it were not a stop id
  TextStream stream(small_tokenizer(), options);
  std::vector<int64_t> ids = ids_of("hi");
  ids.push_back(261);  // <s>: special, skipped
  ids.push_back(262);
  stream_all(stream, ids);
  EXPECT_EQ(stream.text(), "hi");
}

TEST(TextStream, AnEmptyStopStringIsRefusedByName) {
  try {
    TextStream stream(small_tokenizer(), with_stops({"ok", ""}));
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("generation.stop_strings"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace chronos
