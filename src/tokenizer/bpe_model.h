// Private to the tokenizer: the BPE merge loop of HF tokenizers' BPE model, on raw bytes.
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
  BpeModel(const BpeVocabulary& spec, const std::string& source);

  // Appends the ids of one pre-token (raw bytes) to `out`: its bytes as symbols, then merges by
  // lowest rank, leftmost first, exactly HF's heap order, including its handling of stale entries.
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;

  // The id of the single-byte symbol for `byte`, or -1 when the vocabulary lacks it.
  TokenId byte_symbol(unsigned char byte) const { return byte_symbol_[byte]; }
  size_t merge_count() const { return merge_count_; }

 private:
  static std::array<TokenId, 256> filled(TokenId value) {
    std::array<TokenId, 256> a;
    a.fill(value);
    return a;
  }
  std::array<TokenId, 256> byte_symbol_ = filled(-1);
  PairMap merges_;
  StringIdMap word_ids_;  // raw bytes of every vocabulary token that has a byte-level form
  TokenId unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  size_t merge_count_ = 0;
};

}  // namespace chronos::tokenizer_detail
