// Incremental decoding for generation: feed ids one at a time and get text as soon as it is whole.
// A byte-level token can end inside a multi-byte UTF-8 character (an emoji is often 2-4 tokens);
// the decoder holds those bytes back until the character is complete, so what it returns is always
// valid UTF-8. Bytes that can never become a character are emitted as U+FFFD straight away, so the
// concatenated output equals to_valid_utf8(tokenizer.decode(all ids)).
#pragma once

#include <string>
#include <vector>

#include "chronos/tokenizer/tokenizer.h"

namespace chronos {

class StreamDecoder {
 public:
  // `tokenizer` must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(&tokenizer), skip_special_(skip_special) {}

  // The text completed by this id (possibly empty). Throws InvalidArgument for an unknown id.
  std::string push(TokenId id);
  std::string push(const std::vector<TokenId>& ids);
  // Ends the stream: what is still held back, as U+FFFD; the decoder is then empty again.
  std::string flush();
  void reset() { pending_.clear(); }
  // Bytes held back waiting for the rest of a character (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string release();
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace chronos
