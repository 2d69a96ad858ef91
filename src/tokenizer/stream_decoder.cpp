#include "chronos/tokenizer/stream_decoder.h"

#include "chronos/tokenizer/utf8.h"

namespace chronos {

std::string StreamDecoder::push(TokenId id) {
  if (!tokenizer_->decodes_by_token()) return push_windowed(id);
  const std::string& bytes = tokenizer_->token_bytes(id);
  if (!(skip_special_ && tokenizer_->is_special(id))) pending_ += bytes;
  return release();
}

std::string StreamDecoder::push(const std::vector<TokenId>& ids) {
  if (!tokenizer_->decodes_by_token()) {
    std::string out;
    for (TokenId id : ids) out += push_windowed(id);
    return out;
  }
  for (TokenId id : ids) {
    const std::string& bytes = tokenizer_->token_bytes(id);
    if (!(skip_special_ && tokenizer_->is_special(id))) pending_ += bytes;
  }
  return release();
}

std::string StreamDecoder::release() {
  const size_t keep = utf8_incomplete_tail(pending_);
  std::string out = to_valid_utf8(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::push_windowed(TokenId id) {
  if (!tokenizer_->contains(id)) tokenizer_->token_bytes(id);  // throws InvalidArgument naming the id
  ids_.push_back(id);
  const std::string text = tokenizer_->decode(ids_, skip_special_);
  // Held back while the window's text ends in an incomplete character (U+FFFD) or adds nothing.
  const bool incomplete = text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0;
  if (text.size() <= prefix_.size() || incomplete || text.compare(0, prefix_.size(), prefix_) != 0) return "";
  std::string fresh = text.substr(prefix_.size());
  const size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tokenizer_->decode(ids_, skip_special_);
  prefix_index_ = new_prefix_index;
  return fresh;
}

std::string StreamDecoder::flush() {
  if (!tokenizer_->decodes_by_token()) {
    const std::string text = tokenizer_->decode(ids_, skip_special_);
    std::string rest = text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0 ? text.substr(prefix_.size()) : "";
    reset();
    return to_valid_utf8(rest);
  }
  std::string out = to_valid_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace chronos
