// BPE tokenizer that reads and writes HF tokenizer.json and encodes exactly as the HF tokenizers
// library does (docs/tokenizer.md): added tokens are cut out of the input (leftmost, then longest;
// lstrip/rstrip/single_word honoured), the rest goes through the normalizer (NFC, NFKC, Replace,
// Prepend, ...), added tokens of normalized form, the pre-tokenizer (Split regexes, ByteLevel,
// Metaspace, Digits, Punctuation, ...) and the BPE model (byte-level, or by character with
// byte_fallback), then, when asked, the post-processor's special tokens (Llama's BOS).
//
// Any byte string encodes, valid UTF-8 or not; with a byte-level model decode() gives the bytes back
// exactly. A Tokenizer is immutable; copies share their data and every const method may be called
// from several threads at once.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chronos/tokenizer/pretokenizer.h"

namespace chronos {

using TokenId = int32_t;

// An added token of tokenizer.json, matched verbatim in the input before any BPE.
struct AddedToken {
  TokenId id = 0;
  std::string content;
  bool special = false;      // dropped by decode(..., skip_special = true)
  bool normalized = false;   // HF matches normalized=false tokens in the input, normalized ones after the normalizer
  bool single_word = false;  // matched only between non-word characters
  bool lstrip = false;       // takes the white space before it into its match
  bool rstrip = false;       // takes the white space after it into its match
};

// The model section of tokenizer.json (type BPE); tokens as the file writes them (the byte-level
// form "Ġthe" under a ByteLevel pre-tokenizer, "▁the" in SentencePiece-style files).
struct BpeVocabulary {
  std::vector<std::pair<std::string, TokenId>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order, best first
  std::optional<std::string> unk_token;  // emitted for a unit (byte or character) missing from the vocab
  bool fuse_unk = false;                 // consecutive unknown units become one unk token
  bool ignore_merges = false;            // a pre-token that is itself in the vocab stays whole
  bool byte_fallback = false;            // a missing character becomes its bytes' "<0xXX>" tokens
  std::optional<std::string> continuing_subword_prefix;  // before every unit but a word's first ("##")
  std::optional<std::string> end_of_word_suffix;         // after a word's last unit ("</w>")
};

struct EncodeOptions {
  bool add_special_tokens = false;  // the post-processor's tokens (e.g. Llama's BOS), as HF's add_special_tokens
  bool match_added_tokens = true;   // false: added tokens in the text are plain text
};

// Ids and, for each, the input bytes [start, end) it stands for (HF's offsets; a token inside a
// multi-byte character covers the whole character; added special tokens have (0, 0)).
struct Encoding {
  std::vector<TokenId> ids;
  std::vector<std::pair<size_t, size_t>> offsets;
};

// Byte offsets into `text` as character offsets (code points; an invalid byte counts as one), the
// offsets HF's Python and Node bindings return.
std::vector<std::pair<size_t, size_t>> to_char_offsets(std::string_view text, const std::vector<std::pair<size_t, size_t>>& byte_offsets);

class Tokenizer {
 public:
  // Reads a tokenizer.json, or the tokenizer.json inside a folder. Throws IoError when it is missing,
  // FormatError "FILE: ..." naming the JSON path when it is malformed or uses a feature Chronos does
  // not implement (a WordPiece or Unigram model, an unknown normalizer, dropout, ...): never ignored.
  static Tokenizer from_file(const std::string& path);
  // Same checks on parsed JSON; `source` names it in error messages.
  static Tokenizer from_json(const nlohmann::json& json, const std::string& source = "tokenizer.json");

  // Builds a tokenizer from its parts (the trainer's output); throws FormatError naming `source`
  // when they are inconsistent (merges of unknown tokens, duplicate ids, ...).
  Tokenizer(BpeVocabulary model, std::vector<AddedToken> added_tokens, ByteLevelPreTokenizer pre_tokenizer,
            const std::string& source = "tokenizer");

  // The HF tokenizer.json document (include <nlohmann/json.hpp> to use it); save() writes it atomically.
  nlohmann::ordered_json to_json() const;
  void save(const std::string& path) const;

  // Token ids of `text`. With match_added_tokens false, added tokens in the text are plain text
  // (for untrusted input that must not inject "<|im_end|>"); with add_special_tokens, the
  // post-processor's special tokens are added (HF's default; chat templates write them themselves).
  std::vector<TokenId> encode(std::string_view text, bool match_added_tokens = true, bool add_special_tokens = false) const;
  // Appends the ids of `text` to `ids` (no post-processor tokens).
  void encode_into(std::string_view text, std::vector<TokenId>& ids, bool match_added_tokens = true) const;
  // Ids with their byte offsets into `text`.
  Encoding encode_with_offsets(std::string_view text, const EncodeOptions& options = {}) const;

  // The text of the ids, through the file's decoder. With a ByteLevel decoder these are the bytes
  // the ids stand for, concatenated (exactly the encoded input; not necessarily valid UTF-8 when the
  // ids split a character: see to_valid_utf8 and StreamDecoder). Special tokens are left out when
  // skip_special. Throws InvalidArgument for an id that is not in the vocabulary.
  std::string decode(const std::vector<TokenId>& ids, bool skip_special = false) const;
  std::string decode(const TokenId* ids, size_t count, bool skip_special = false) const;

  // Largest id + 1 (vocabulary and added tokens together, as HF's get_vocab_size(true)).
  int64_t vocab_size() const;
  // The id of a token given as it appears in tokenizer.json (as the vocabulary writes it, or an added token's content).
  std::optional<TokenId> token_to_id(std::string_view token) const;
  // The token of an id as tokenizer.json writes it; throws InvalidArgument for an unknown id.
  const std::string& id_to_token(TokenId id) const;
  // What one id decodes to on its own; throws InvalidArgument for an unknown id.
  const std::string& token_bytes(TokenId id) const;
  // True when decode() is the concatenation of token_bytes() (a ByteLevel decoder); otherwise the
  // decoder looks at neighbours (Llama's leading-space strip, byte-fallback groups).
  bool decodes_by_token() const;
  bool contains(TokenId id) const;
  bool is_special(TokenId id) const;
  // An added token (special or not: <think>, <tool_call>, <|im_end|>, ...).
  bool is_added(TokenId id) const;

  const std::vector<AddedToken>& added_tokens() const;
  const ByteLevelPreTokenizer& pre_tokenizer() const;
  size_t merge_count() const;
  // Where the tokenizer came from (a path, or what the constructor was given).
  const std::string& source() const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  const Impl& impl() const { return *impl_; }
  std::shared_ptr<const Impl> impl_;
};

}  // namespace chronos
