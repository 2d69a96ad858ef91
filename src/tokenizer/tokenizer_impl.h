// Private to the tokenizer: what a Tokenizer holds (shared, immutable once built) and its encode
// pipeline: added tokens cut out of the raw text, the normalizer, added tokens of normalized form,
// the pre-tokenizer, the BPE model per piece, then the post-processor.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "chronos/tokenizer/tokenizer.h"
#include "tokenizer/added_token_matcher.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/hash_tables.h"
#include "tokenizer/normalized_text.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer_steps.h"

namespace chronos {

struct Tokenizer::Impl {
  std::string source;
  uint64_t serial = 0;  // tells the per-thread word caches of different tokenizers apart
  ByteLevelPreTokenizer pre_tokenizer;  // the settings when the pre-tokenizer is one ByteLevel step
  tokenizer_detail::Normalizer normalizer;
  tokenizer_detail::PreTokenizerSteps pre_steps;
  tokenizer_detail::PostProcessor post;
  tokenizer_detail::Decoder decoder;
  // No normalizer and exactly ByteLevel(use_regex) before the model: ids come straight from
  // string views of the input (the MiniMind/GPT-2 layout).
  bool fast_path = false;
  BpeVocabulary spec;  // as given, for to_json()
  std::vector<AddedToken> added;
  tokenizer_detail::BpeModel bpe;
  tokenizer_detail::AddedTokenMatcher raw_tokens;         // normalized = false: matched in the input
  tokenizer_detail::AddedTokenMatcher normalized_tokens;  // normalized = true: matched after the normalizer
  std::vector<std::string> token_string;                  // by id, as tokenizer.json writes it
  std::vector<std::string> token_bytes;                   // by id, what the id decodes to on its own
  std::vector<uint8_t> flags;                             // by id: kPresent | kSpecial | kAdded
  tokenizer_detail::StringIdMap string_to_id;             // added tokens shadow the vocabulary

  static constexpr uint8_t kPresent = 1, kSpecial = 2, kAdded = 4;

  // Fills every derived field from spec/added/pre_steps/decoder; throws FormatError naming `source`.
  void build();
  void check_id(TokenId id) const;

  // One token as the pipeline produces it: its id and the input bytes it stands for.
  using Sink = tokenizer_detail::PostProcessor::Token;
  // The tokens of `text` before post-processing. Offsets are computed only when `with_offsets`.
  void encode_tokens(std::string_view text, bool match_added, bool with_offsets, std::vector<Sink>& out) const;
  // The ids of a segment between added tokens, MiniMind's layout (fast_path).
  void encode_segment(std::string_view segment, std::vector<TokenId>& out) const;
  // The text an added-token match covers when it differs from the token (white space it took).
  std::string matched_value(std::string_view text, const tokenizer_detail::AddedTokenMatch& m) const;
  // The ids of one piece, through the per-thread word cache.
  void encode_piece_cached(std::string_view piece, std::vector<TokenId>& out) const;
};

}  // namespace chronos
