// libFuzzer target: any byte string given as tokenizer.json must either load or raise a
// chronos::Error; a tokenizer that loads must encode any text (here the input itself and a fixed
// sample) to ids inside its vocabulary with offsets inside the text, with and without the
// post-processor's tokens, and decode them again, at once and streamed, without failing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"
#include "chronos/tokenizer/stream_decoder.h"
#include "chronos/tokenizer/tokenizer.h"

namespace {

void check_round(const chronos::Tokenizer& tokenizer, const std::string& text) {
  const std::vector<chronos::TokenId> ids = tokenizer.encode(text);
  for (const chronos::TokenId id : ids)
    if (id < 0 || id >= tokenizer.vocab_size()) std::abort();
  (void)tokenizer.decode(ids);
  chronos::EncodeOptions options;
  options.add_special_tokens = true;
  const chronos::Encoding encoding = tokenizer.encode_with_offsets(text, options);
  if (encoding.ids.size() != encoding.offsets.size()) std::abort();
  for (const auto& [start, end] : encoding.offsets)
    if (start > end || end > text.size()) std::abort();
  (void)chronos::to_char_offsets(text, encoding.offsets);
  chronos::StreamDecoder stream(tokenizer, /*skip_special=*/true);
  for (const chronos::TokenId id : encoding.ids) (void)stream.push(id);
  (void)stream.flush();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::optional<chronos::Tokenizer> tokenizer;
  try {
    tokenizer.emplace(chronos::Tokenizer::from_json(chronos::parse_json(text, "tokenizer.json"), "tokenizer.json"));
  } catch (const chronos::Error&) {
    return 0;
  }
  check_round(*tokenizer, "Hello, world! <s> the théâtre 東京 \xF0\x9F\x98\x80 \xff\xfe  \n\t x<x>y");
  check_round(*tokenizer, text);
  return 0;
}
