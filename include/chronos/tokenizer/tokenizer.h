// Byte-level BPE tokenizer that reads and writes HF tokenizer.json and encodes exactly as the HF
// tokenizers library does: added tokens are matched verbatim first (leftmost, then longest), the
// text between them goes through the ByteLevel pre-tokenizer (GPT-2 split) and BPE merges by rank.
// No normalizer and no post-processor: encode() never adds BOS/EOS by itself.
//
// Any byte string encodes, valid UTF-8 or not (ill-formed bytes are BPE'd as bytes), and decode()
// gives the bytes back exactly. A Tokenizer is immutable; copies share their data and every const
// method may be called from several threads at once.
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
  bool special = false;     // dropped by decode(..., skip_special = true)
  bool normalized = false;  // HF matches normalized=false tokens first, then normalized ones in the gaps
};

// The model section of tokenizer.json (type BPE); tokens in their byte-level form ("Ġthe").
struct BpeVocabulary {
  std::vector<std::pair<std::string, TokenId>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order, best first
  std::optional<std::string> unk_token;  // emitted for a byte whose symbol is missing from the vocab
  bool fuse_unk = false;                 // consecutive unknown bytes become one unk token
  bool ignore_merges = false;            // a pre-token that is itself in the vocab stays whole
};

class Tokenizer {
 public:
  // Reads a tokenizer.json, or the tokenizer.json inside a folder. Throws IoError when it is missing,
  // FormatError "FILE: ..." when it is malformed or uses a feature Chronos does not implement (another
  // model type, a normalizer, a post-processor other than ByteLevel, dropout, ...): never ignored.
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
  // (for untrusted input that must not inject "<|im_end|>").
  std::vector<TokenId> encode(std::string_view text, bool match_added_tokens = true) const;
  // Appends the ids of `text` to `ids`.
  void encode_into(std::string_view text, std::vector<TokenId>& ids, bool match_added_tokens = true) const;

  // The bytes the ids stand for, concatenated (exactly the encoded input; not necessarily valid
  // UTF-8 when the ids split a character: see to_valid_utf8 and StreamDecoder). Special tokens are
  // left out when skip_special. Throws InvalidArgument for an id that is not in the vocabulary.
  std::string decode(const std::vector<TokenId>& ids, bool skip_special = false) const;
  std::string decode(const TokenId* ids, size_t count, bool skip_special = false) const;

  // Largest id + 1 (vocabulary and added tokens together, as HF's get_vocab_size(true)).
  int64_t vocab_size() const;
  // The id of a token given as it appears in tokenizer.json (byte-level form, or an added token's content).
  std::optional<TokenId> token_to_id(std::string_view token) const;
  // The token of an id as tokenizer.json writes it; throws InvalidArgument for an unknown id.
  const std::string& id_to_token(TokenId id) const;
  // The bytes one id decodes to; throws InvalidArgument for an unknown id.
  const std::string& token_bytes(TokenId id) const;
  bool contains(TokenId id) const;
  bool is_special(TokenId id) const;

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
