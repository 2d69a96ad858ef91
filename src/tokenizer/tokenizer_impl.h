// Private to the tokenizer: what a Tokenizer holds (shared, immutable once built).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "chronos/tokenizer/tokenizer.h"
#include "tokenizer/added_token_matcher.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/hash_tables.h"

namespace chronos {

struct Tokenizer::Impl {
  std::string source;
  uint64_t serial = 0;  // tells the per-thread word caches of different tokenizers apart
  ByteLevelPreTokenizer pre_tokenizer;
  BpeVocabulary spec;  // as given, for to_json()
  std::vector<AddedToken> added;
  tokenizer_detail::BpeModel bpe;
  tokenizer_detail::AddedTokenMatcher raw_tokens;         // normalized = false: matched first
  tokenizer_detail::AddedTokenMatcher normalized_tokens;  // normalized = true: matched in the gaps
  std::vector<std::string> token_string;                  // by id, as tokenizer.json writes it
  std::vector<std::string> token_bytes;                   // by id, what decode() emits
  std::vector<uint8_t> flags;                             // by id: kPresent | kSpecial
  tokenizer_detail::StringIdMap string_to_id;             // added tokens shadow the vocabulary
  nlohmann::ordered_json decoder_json;                    // kept as read, written back by to_json()
  nlohmann::ordered_json post_processor_json;

  static constexpr uint8_t kPresent = 1, kSpecial = 2;

  // Fills every derived field from spec/added/pre_tokenizer; throws FormatError naming `source`.
  void build();
  void encode_segment(std::string_view segment, std::vector<TokenId>& out) const;
  void check_id(TokenId id) const;
};

}  // namespace chronos
