// Generated ids as text while they come: the tokens are decoded incrementally (always whole UTF-8
// characters; added tokens such as <think> or <|im_end|> left out unless shown; ids the tokenizer
// lacks, from a model vocabulary padded beyond it, left out always), and text is released
// only once it can no longer be the start
// of one of GenerationOptions::stop_strings. A completed stop string ends the generation; the text
// before it is kept, the stop string and whatever followed it in the same token are dropped.
// chronos-generate prints what take() returns; a server sends it as the next streamed delta.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chronos/runtime/generation.h"
#include "chronos/tokenizer/stream_decoder.h"
#include "chronos/tokenizer/tokenizer.h"

namespace chronos {

class TextStream {
 public:
  // Reads options.stop_ids (their ids are not decoded) and options.stop_strings. With
  // `show_added_tokens` the added tokens (special or not) are part of the text. `tokenizer` must
  // outlive the stream.
  TextStream(const Tokenizer& tokenizer, const GenerationOptions& options, bool show_added_tokens = false);

  // For generate()'s TokenCallback: false once a stop string is complete.
  bool push(int64_t token);
  // After generation ended: releases the held-back text (nothing when a stop string ended it).
  void finish();

  // Text released since the previous take().
  std::string take();
  // All text released so far.
  const std::string& text() const { return text_; }
  bool stopped_by_string() const { return stopped_; }
  // "stop_string" when a stop string ended the run, else the result's own reason.
  std::string stop_reason(const GenerationResult& result) const { return stopped_ ? "stop_string" : result.stop_reason; }

 private:
  void add(const std::string& piece);
  void release(size_t bytes);

  const Tokenizer& tokenizer_;
  bool show_added_;
  StreamDecoder decoder_;
  std::vector<int64_t> stop_ids_;
  std::vector<std::string> stop_strings_;
  std::string held_;  // decoded text that may still become a stop string
  std::string text_;
  size_t taken_ = 0;  // bytes of text_ already handed out by take()
  bool stopped_ = false;
};

}  // namespace chronos
