// The tokenizer.json features beyond MiniMind's layout, against what HF tokenizers 0.23.2 gives for
// two small fixtures (tests/data/tokenizer/pipeline_*.json, recorded by make_pipeline_reference.cjs):
// a Llama-style SentencePiece file (Prepend/Replace normalizer, character BPE with byte_fallback,
// TemplateProcessing BOS, Replace/ByteFallback/Fuse/Strip decoder) and a Qwen-style byte-level one
// (NFC, Split regexes, lstrip/rstrip and single_word added tokens, ByteLevel offset trimming).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/tokenizer/stream_decoder.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/tokenizer/utf8.h"
#include "tokenizer/normalized_text.h"
#include "tokenizer/pre_tokenizer_steps.h"

namespace chronos {
namespace {

const std::string kDir = CHRONOS_SOURCE_DIR "/tests/data/tokenizer/";

std::vector<std::pair<size_t, size_t>> offsets_of(const nlohmann::json& list) {
  std::vector<std::pair<size_t, size_t>> out;
  for (const auto& pair : list) out.emplace_back(pair[0].get<size_t>(), pair[1].get<size_t>());
  return out;
}

class PipelineReference : public ::testing::TestWithParam<const char*> {};

TEST_P(PipelineReference, EncodesAndDecodesAsHf) {
  const std::string file = GetParam();
  const Tokenizer tokenizer = Tokenizer::from_file(kDir + file);
  const nlohmann::json reference = read_json_file(kDir + "pipeline_reference.json").at(file);
  ASSERT_FALSE(reference.empty());
  for (const auto& c : reference) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(text);
    EncodeOptions special;
    special.add_special_tokens = true;
    const Encoding plain = tokenizer.encode_with_offsets(text);
    const Encoding with_specials = tokenizer.encode_with_offsets(text, special);
    EXPECT_EQ(plain.ids, c["ids"].get<std::vector<TokenId>>());
    EXPECT_EQ(to_char_offsets(text, plain.offsets), offsets_of(c["offsets"]));
    EXPECT_EQ(with_specials.ids, c["ids_special"].get<std::vector<TokenId>>());
    EXPECT_EQ(to_char_offsets(text, with_specials.offsets), offsets_of(c["offsets_special"]));
    // The id-only paths agree with the offsets path.
    EXPECT_EQ(tokenizer.encode(text), plain.ids);
    EXPECT_EQ(tokenizer.encode(text, true, true), with_specials.ids);
    EXPECT_EQ(to_valid_utf8(tokenizer.decode(with_specials.ids, false)), c["decoded"].get<std::string>());
    EXPECT_EQ(to_valid_utf8(tokenizer.decode(with_specials.ids, true)), c["decoded_skip"].get<std::string>());
    // Streaming gives the same text as decoding all at once.
    StreamDecoder stream(tokenizer, /*skip_special=*/true);
    std::string streamed;
    for (TokenId id : with_specials.ids) streamed += stream.push(id);
    streamed += stream.flush();
    EXPECT_EQ(streamed, c["decoded_skip"].get<std::string>());
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PipelineReference, ::testing::Values("pipeline_sentencepiece.json", "pipeline_bytelevel.json"));

TEST(TokenizerPipeline, SavedFileLoadsToTheSameTokenizer) {
  for (const char* file : {"pipeline_sentencepiece.json", "pipeline_bytelevel.json"}) {
    const Tokenizer a = Tokenizer::from_file(kDir + file);
    const Tokenizer b = Tokenizer::from_json(nlohmann::json::parse(a.to_json().dump()), "round trip");
    for (const std::string text : {"héllo wörld <s> 123 cat", "  e\u0301 <tag>x", ""}) {
      EXPECT_EQ(a.encode(text), b.encode(text)) << file << ": " << text;
      EXPECT_EQ(a.encode(text, true, true), b.encode(text, true, true)) << file << ": " << text;
    }
  }
}

// HF's documented example: "-" in "the-final--countdown" under each behavior.
TEST(TokenizerPipeline, SplitBehaviors) {
  using tokenizer_detail::SplitBehavior;
  const tokenizer_detail::NormalizedText text("the-final--countdown", 0);
  std::vector<std::pair<size_t, size_t>> dashes;
  for (size_t i = 0; i < text.size(); ++i)
    if (text.text()[i] == '-') dashes.emplace_back(i, i + 1);
  const auto pieces = [&](SplitBehavior behavior, bool invert = false) {
    std::vector<tokenizer_detail::NormalizedText> out;
    tokenizer_detail::split_by_matches(text, dashes, behavior, invert, out);
    std::vector<std::string> strings;
    for (const auto& p : out) strings.push_back(p.text());
    return strings;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces(SplitBehavior::removed), (V{"the", "final", "countdown"}));
  EXPECT_EQ(pieces(SplitBehavior::isolated), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pieces(SplitBehavior::merged_with_previous), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(pieces(SplitBehavior::merged_with_next), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pieces(SplitBehavior::contiguous), (V{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(pieces(SplitBehavior::removed, /*invert=*/true), (V{"-", "-", "-"}));
}

nlohmann::json with(const std::string& file, const std::string& pointer, const nlohmann::json& value) {
  nlohmann::json doc = read_json_file(kDir + file);
  doc[nlohmann::json::json_pointer(pointer)] = value;
  return doc;
}

void expect_refused(const nlohmann::json& doc, const std::string& fragment) {
  try {
    Tokenizer::from_json(doc, "t.json");
    FAIL() << "accepted; expected: " << fragment;
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(TokenizerPipeline, UnsupportedFeaturesAreRefusedByJsonPath) {
  const char* sp = "pipeline_sentencepiece.json";
  const char* bl = "pipeline_bytelevel.json";
  expect_refused(with(sp, "/normalizer/normalizers/1", {{"type", "BertNormalizer"}}),
                 "t.json: normalizer.normalizers[1].type 'BertNormalizer' is not supported");
  expect_refused(with(bl, "/pre_tokenizer/pretokenizers/0/pattern", {{"Regex", "(unclosed"}}),
                 "t.json: pre_tokenizer.pretokenizers[0].pattern.Regex: the regex \"(unclosed\" does not compile");
  expect_refused(with(bl, "/pre_tokenizer/pretokenizers/0/behavior", "Sideways"), "pre_tokenizer.pretokenizers[0].behavior 'Sideways'");
  expect_refused(with(bl, "/pre_tokenizer/pretokenizers/3", {{"type", "Digits"}, {"individual_digits", true}}),
                 "a ByteLevel step must be the last one");
  expect_refused(with(sp, "/decoder/decoders/2", {{"type", "CTC"}}), "decoder.decoders[2].type 'CTC' is not supported");
  expect_refused(with(sp, "/post_processor", {{"type", "BertProcessing"}}), "post_processor.type 'BertProcessing' is not supported");
  expect_refused(with(sp, "/post_processor/single/0/SpecialToken/id", "<bos>"), "post_processor.single[0].SpecialToken '<bos>'");
  expect_refused(with(sp, "/model/type", "WordPiece"), "model.type \"WordPiece\" is not supported");
  expect_refused(with(bl, "/added_tokens/1/id", 300), "added_tokens[1].id is 300 but HF tokenizers gives '<tag>' the id 263");
}

TEST(TokenizerPipeline, ByteFallbackRoundTripsBytesTheVocabularyLacks) {
  const Tokenizer tokenizer = Tokenizer::from_file(kDir + "pipeline_sentencepiece.json");
  const std::string text = "hello 🙂 Ωmega";
  const std::vector<TokenId> ids = tokenizer.encode(text);
  EXPECT_EQ(tokenizer.decode(ids), text);
  EXPECT_FALSE(tokenizer.decodes_by_token());
  // Half a character's byte tokens decode to U+FFFD per byte, as HF's ByteFallback decoder does.
  const std::vector<TokenId> emoji = tokenizer.encode("🙂");
  ASSERT_EQ(emoji.size(), 5u);  // "▁" and four byte tokens
  EXPECT_EQ(tokenizer.decode({emoji[0], emoji[1], emoji[2]}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TokenizerPipeline, CharOffsetsCountCodePoints) {
  const std::string text = "aé😀b";  // 1 + 2 + 4 + 1 bytes
  EXPECT_EQ(to_char_offsets(text, {{0, 1}, {1, 3}, {3, 7}, {7, 8}, {0, 0}}),
            (std::vector<std::pair<size_t, size_t>>{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {0, 0}}));
}

}  // namespace
}  // namespace chronos
