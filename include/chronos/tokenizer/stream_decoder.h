// Incremental decoding for generation: feed ids one at a time and get text as soon as it is whole.
// A byte-level token can end inside a multi-byte UTF-8 character (an emoji is often 2-4 tokens);
// the decoder holds those bytes back until the character is complete, so what it returns is always
// valid UTF-8. Bytes that can never become a character are emitted as U+FFFD straight away, so the
// concatenated output equals to_valid_utf8(tokenizer.decode(all ids)). For decoders that look at
// neighbouring tokens (Llama's byte fallback and leading-space strip) it decodes a short window of
// recent ids and emits what the window adds, as HF's DecodeStream does.
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
  void reset() {
    pending_.clear();
    ids_.clear();
    prefix_.clear();
    prefix_index_ = 0;
  }
  // Bytes held back waiting for the rest of a character (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string release();
  std::string push_windowed(TokenId id);
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
  // Windowed mode: the recent ids, the text they decoded to when last emitted, and where the
  // previous window began.
  std::vector<TokenId> ids_;
  std::string prefix_;
  size_t prefix_index_ = 0;
};

}  // namespace chronos
