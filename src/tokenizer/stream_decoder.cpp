#include "chronos/tokenizer/stream_decoder.h"

#include "chronos/tokenizer/utf8.h"

namespace chronos {

std::string StreamDecoder::push(TokenId id) {
  const std::string& bytes = tokenizer_->token_bytes(id);
  if (!(skip_special_ && tokenizer_->is_special(id))) pending_ += bytes;
  return release();
}

std::string StreamDecoder::push(const std::vector<TokenId>& ids) {
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

std::string StreamDecoder::flush() {
  std::string out = to_valid_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace chronos
