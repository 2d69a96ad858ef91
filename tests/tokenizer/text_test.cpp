// The byte-level alphabet, UTF-8 helpers, character classes and the GPT-2 split.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "chronos/tokenizer/byte_level.h"
#include "chronos/tokenizer/pretokenizer.h"
#include "chronos/tokenizer/utf8.h"
#include "tokenizer/unicode.h"

namespace chronos {
namespace {

using tokenizer_detail::CharClass;

TEST(ByteLevel, IsABijectionOntoPrintableCharacters) {
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const char32_t c = byte_to_symbol(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(c).second);
    EXPECT_GT(c, U' ');
  }
  EXPECT_EQ(byte_to_symbol(' '), U'Ġ');
  EXPECT_EQ(byte_to_symbol('\n'), U'Ċ');
  EXPECT_EQ(byte_to_symbol('a'), U'a');
  EXPECT_EQ(byte_to_symbol(0xAD), U'Ń');  // soft hyphen is not printable
  EXPECT_EQ(bytes_to_symbols("a b\n"), "aĠbĊ");
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string back;
  ASSERT_TRUE(symbols_to_bytes(bytes_to_symbols(all), back));
  EXPECT_EQ(back, all);
}

TEST(ByteLevel, NonStandInsAreRejectedOrKeptAsText) {
  std::string out = "x";
  EXPECT_FALSE(symbols_to_bytes("a b", out));  // a plain space is not a stand-in
  EXPECT_FALSE(symbols_to_bytes("中", out));
  EXPECT_EQ(out, "x");
  EXPECT_EQ(byte_level_decode_token("ĠhelloĊ"), " hello\n");
  EXPECT_EQ(byte_level_decode_token("<|im_start|>"), "<|im_start|>");
  EXPECT_EQ(byte_level_decode_token("has space"), "has space");  // HF's fallback: the token's own text
}

TEST(Utf8, Validity) {
  EXPECT_TRUE(is_valid_utf8("plain 中文 😀"));
  EXPECT_TRUE(is_valid_utf8(""));
  for (const char* bad : {"\x80", "\xc3", "\xc0\xaf", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf8", "\xe4\xb8"})
    EXPECT_FALSE(is_valid_utf8(bad)) << bad;
}

TEST(Utf8, LossyConversionReplacesMaximalSubparts) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(to_valid_utf8("ok 中"), "ok 中");
  EXPECT_EQ(to_valid_utf8("a\x80z"), "a" + fffd + "z");
  EXPECT_EQ(to_valid_utf8("\xe4\xb8"), fffd);            // truncated: one replacement
  EXPECT_EQ(to_valid_utf8("\xe4\xb8z"), fffd + "z");
  EXPECT_EQ(to_valid_utf8("\xc0\xaf"), fffd + fffd);     // overlong: each byte
  EXPECT_EQ(to_valid_utf8("\xed\xa0\x80"), fffd + fffd + fffd);  // surrogate: each byte
  EXPECT_EQ(to_valid_utf8("\xf0\x9f\x98"), fffd);
  EXPECT_EQ(to_valid_utf8("\xf0\x9f\x98\x80"), "😀");
}

TEST(Utf8, IncompleteTail) {
  EXPECT_EQ(utf8_incomplete_tail(""), 0u);
  EXPECT_EQ(utf8_incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xe4"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a\xe4\xb8"), 2u);
  EXPECT_EQ(utf8_incomplete_tail("a\xe4\xb8\xad"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\xf0\x9f\x98"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("\xe4\x41"), 0u);  // broken, not incomplete
  EXPECT_EQ(utf8_incomplete_tail("\x80"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\xed\xa0"), 0u);  // would be a surrogate
}

TEST(CharClasses, AsciiFastPathAgreesWithTheTable) {
  for (int c = 0; c < 128; ++c)
    EXPECT_EQ(tokenizer_detail::ascii_class(static_cast<unsigned char>(c)), tokenizer_detail::char_class(static_cast<char32_t>(c))) << c;
}

TEST(CharClasses, UnicodeExamples) {
  using tokenizer_detail::char_class;
  EXPECT_EQ(char_class(U'é'), CharClass::letter);
  EXPECT_EQ(char_class(U'中'), CharClass::letter);
  EXPECT_EQ(char_class(U'ǅ'), CharClass::letter);     // titlecase
  EXPECT_EQ(char_class(0x2EBF0), CharClass::letter);  // CJK extension I (Unicode 15.1)
  EXPECT_EQ(char_class(U'٣'), CharClass::number);
  EXPECT_EQ(char_class(U'½'), CharClass::number);
  EXPECT_EQ(char_class(U'Ⅻ'), CharClass::number);
  EXPECT_EQ(char_class(0x85), CharClass::space);
  EXPECT_EQ(char_class(0xA0), CharClass::space);
  EXPECT_EQ(char_class(0x3000), CharClass::space);
  EXPECT_EQ(char_class(0x200B), CharClass::other);  // zero width space is not white space
  EXPECT_EQ(char_class(0xFEFF), CharClass::other);
  EXPECT_EQ(char_class(0x1C), CharClass::other);
  EXPECT_EQ(char_class(0x301), CharClass::other);   // combining mark
  EXPECT_EQ(char_class(U'😀'), CharClass::other);
  EXPECT_EQ(char_class(0x110000), CharClass::other);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string_view> pieces;
  split_gpt2(text, pieces);
  return {pieces.begin(), pieces.end()};
}

TEST(Gpt2Split, Alternatives) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(split("it's they're I'M"), (V{"it", "'s", " they", "'re", " I", "'", "M"}));
  EXPECT_EQ(split("abc123 456!?"), (V{"abc", "123", " 456", "!?"}));
  EXPECT_EQ(split("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(split("a \n\nb"), (V{"a", " \n", "\n", "b"}));  // the run leaves its last character
  EXPECT_EQ(split("a\tb"), (V{"a", "\t", "b"}));
  EXPECT_EQ(split("end   "), (V{"end", "   "}));
  EXPECT_EQ(split(" ?!x"), (V{" ?!", "x"}));
  EXPECT_EQ(split("'sx"), (V{"'s", "x"}));
  EXPECT_EQ(split("?'s"), (V{"?'", "s"}));  // an other-run swallows the apostrophe
  EXPECT_EQ(split("中文 字"), (V{"中文", " 字"}));
  EXPECT_EQ(split("e\xcc\x81"), (V{"e", "\xcc\x81"}));  // a combining mark is not a letter
  EXPECT_TRUE(split("").empty());
}

TEST(Gpt2Split, AnyBytesTileTheInput) {
  std::mt19937 rng(11);
  const char alphabet[] = {'a', 'Z', '1', ' ', '\n', '\'', 's', '!', '\x80', '\xe4', '\xb8', '\xad', '\xf0', '\xff', '\t'};
  for (int i = 0; i < 2000; ++i) {
    std::string text(rng() % 40, ' ');
    for (char& c : text) c = alphabet[rng() % sizeof(alphabet)];
    std::string joined;
    for (const std::string& p : split(text)) {
      EXPECT_FALSE(p.empty());
      joined += p;
    }
    EXPECT_EQ(joined, text);
  }
}

TEST(Gpt2Split, WithoutRegexASegmentIsOnePiece) {
  ByteLevelPreTokenizer pre;
  pre.use_regex = false;
  std::vector<std::string_view> pieces;
  pre.split("one two  three", pieces);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0], "one two  three");
  pre.add_prefix_space = true;
  EXPECT_TRUE(pre.needs_prefix_space("x"));
  EXPECT_FALSE(pre.needs_prefix_space(" x"));
}

}  // namespace
}  // namespace chronos
