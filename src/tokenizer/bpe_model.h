// Private to the tokenizer: HF tokenizers' BPE model. In byte mode (a ByteLevel pre-tokenizer) a
// word's units are its bytes, looked up as the vocabulary's byte-level tokens decoded to raw bytes;
// in character mode they are its UTF-8 characters, looked up as written, with byte_fallback
// ("<0x0A>" per byte) and the unknown token for characters the vocabulary lacks.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "chronos/tokenizer/tokenizer.h"
#include "tokenizer/hash_tables.h"

namespace chronos::tokenizer_detail {

class BpeModel {
 public:
  BpeModel() = default;
  // Resolves the merges against the vocabulary; throws FormatError "source: ..." for a merge that
  // names a token (or makes one) that is not in the vocabulary, or an unk_token that is not in it.
  BpeModel(const BpeVocabulary& spec, bool byte_mode, const std::string& source);

  // Appends the ids of one pre-token to `out`: its units as symbols (with the continuing-subword
  // prefix and end-of-word suffix), then merges by lowest rank, leftmost first, exactly HF's heap
  // order, including its handling of stale entries. With `lengths`, also the byte length in `word`
  // of each token appended (for offsets).
  void encode_word(std::string_view word, std::vector<TokenId>& out, std::vector<uint32_t>* lengths = nullptr) const;

  // The id of the single-byte symbol for `byte`, or -1 when the vocabulary lacks it.
  TokenId byte_symbol(unsigned char byte) const { return byte_symbol_[byte]; }
  size_t merge_count() const { return merge_count_; }

 private:
  static std::array<TokenId, 256> filled(TokenId value) {
    std::array<TokenId, 256> a;
    a.fill(value);
    return a;
  }
  // The id of unit `key` (with prefix and suffix applied), or -1.
  TokenId unit_id(std::string_view key) const;

  bool byte_mode_ = true;
  std::array<TokenId, 256> byte_symbol_ = filled(-1);    // byte mode: the single-byte tokens
  std::array<TokenId, 256> fallback_ids_ = filled(-1);   // character mode: "<0xXX>" tokens
  bool byte_fallback_ = false;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix (raw form)
  PairMap merges_;
  StringIdMap word_ids_;  // byte mode: raw bytes of every byte-level token; character mode: every token
  TokenId unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  size_t merge_count_ = 0;
};

}  // namespace chronos::tokenizer_detail
