#include "chronos/runtime/text_stream.h"

#include <algorithm>
#include <cstdint>

namespace chronos {

TextStream::TextStream(const Tokenizer& tokenizer, const GenerationOptions& options, bool show_added_tokens)
    : tokenizer_(tokenizer),
      show_added_(show_added_tokens),
      decoder_(tokenizer, /*skip_special=*/!show_added_tokens),
      stop_ids_(options.stop_ids),
      stop_strings_(options.stop_strings) {
  options.validate();
}

bool TextStream::push(int64_t token) {
  if (stopped_) return false;
  if (std::find(stop_ids_.begin(), stop_ids_.end(), token) != stop_ids_.end()) return true;
  // Ids of the model's padded vocabulary that the tokenizer lacks (Qwen's embedding has ~270 more
  // rows than its tokenizer) decode to nothing, as transformers' decode skips them.
  if (token < 0 || token > INT32_MAX || !tokenizer_.contains(static_cast<TokenId>(token))) return true;
  if (!show_added_ && tokenizer_.is_added(static_cast<TokenId>(token))) return true;
  add(decoder_.push(static_cast<TokenId>(token)));
  return !stopped_;
}

void TextStream::finish() {
  if (stopped_) return;
  add(decoder_.flush());
  if (!stopped_) release(held_.size());
}

std::string TextStream::take() {
  std::string fresh = text_.substr(taken_);
  taken_ = text_.size();
  return fresh;
}

void TextStream::add(const std::string& piece) {
  held_ += piece;
  // The earliest complete stop string wins, wherever it starts.
  size_t first = std::string::npos;
  for (const std::string& stop : stop_strings_) first = std::min(first, held_.find(stop));
  if (first != std::string::npos) {
    release(first);
    held_.clear();
    stopped_ = true;
    return;
  }
  size_t hold = 0;  // the longest suffix of held_ that begins some stop string
  for (const std::string& stop : stop_strings_)
    for (size_t n = std::min(stop.size() - 1, held_.size()); n > hold; --n)
      if (held_.compare(held_.size() - n, n, stop, 0, n) == 0) {
        hold = n;
        break;
      }
  release(held_.size() - hold);
}

void TextStream::release(size_t bytes) {
  text_.append(held_, 0, bytes);
  held_.erase(0, bytes);
}

}  // namespace chronos
