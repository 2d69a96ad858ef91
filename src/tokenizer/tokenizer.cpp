#include "chronos/tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <unordered_set>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"

namespace chronos {
namespace {

using tokenizer_detail::hash_bytes;
using tokenizer_detail::WordCache;

// Ids must stay far below INT32_MAX and the per-id tables small; no real vocabulary comes close.
constexpr int64_t kMaxTokenId = (int64_t(1) << 24) - 1;
// Longer pre-tokens (long runs of spaces or symbols) are merged directly rather than cached.
constexpr size_t kMaxCachedWord = 128;

std::atomic<uint64_t> next_serial{1};

// The calling thread's word cache, emptied when it last served another tokenizer.
WordCache& word_cache(uint64_t serial) {
  thread_local WordCache cache;
  thread_local uint64_t owner = 0;
  if (owner != serial) {
    cache.clear();
    owner = serial;
  }
  return cache;
}

}  // namespace

void Tokenizer::Impl::build() {
  serial = next_serial.fetch_add(1);
  int64_t max_id = -1;
  for (const auto& [token, id] : spec.vocab) {
    if (id < 0 || id > kMaxTokenId) throw FormatError(cat(source, ": vocabulary id ", id, " of '", token, "' is out of range [0, ", kMaxTokenId, "]"));
    max_id = std::max<int64_t>(max_id, id);
  }
  for (const AddedToken& t : added) {
    if (t.id < 0 || t.id > kMaxTokenId) throw FormatError(cat(source, ": added token '", t.content, "' has id ", t.id, ", out of range [0, ", kMaxTokenId, "]"));
    max_id = std::max<int64_t>(max_id, t.id);
  }
  const size_t size = static_cast<size_t>(max_id + 1);
  token_string.assign(size, std::string());
  token_bytes.assign(size, std::string());
  flags.assign(size, 0);

  for (const auto& [token, id] : spec.vocab) {
    if (flags[id] & kPresent)
      throw FormatError(cat(source, ": vocabulary id ", id, " is used by both '", token_string[id], "' and '", token, "'"));
    flags[id] = kPresent;
    token_string[id] = token;
    if (!string_to_id.insert(token, id)) throw FormatError(cat(source, ": vocabulary token '", token, "' appears twice"));
  }
  bpe = tokenizer_detail::BpeModel(spec, source);

  std::unordered_set<std::string> contents, special_contents;
  std::unordered_set<TokenId> added_ids;
  for (const AddedToken& t : added) {
    if (t.content.empty()) throw FormatError(cat(source, ": added token ", t.id, " has empty content"));
    if (!contents.insert(t.content).second) throw FormatError(cat(source, ": added token '", t.content, "' appears twice"));
    if (!added_ids.insert(t.id).second) throw FormatError(cat(source, ": added token id ", t.id, " is used twice"));
    if ((flags[t.id] & kPresent) && token_string[t.id] != t.content)
      throw FormatError(cat(source, ": added token '", t.content, "' has id ", t.id, ", which the vocabulary gives to '", token_string[t.id], "'"));
    flags[t.id] |= kPresent;
    token_string[t.id] = t.content;
    (t.normalized ? normalized_tokens : raw_tokens).add(t.content, t.id);
    if (t.special) special_contents.insert(t.content);
  }
  // Added tokens take precedence over a vocabulary entry with the same text (HF looks them up first).
  tokenizer_detail::StringIdMap lookup;
  for (const AddedToken& t : added) lookup.insert(t.content, t.id);
  for (const auto& [token, id] : spec.vocab) lookup.insert(token, id);
  string_to_id = std::move(lookup);

  for (size_t id = 0; id < size; ++id) {
    if (!(flags[id] & kPresent)) continue;
    token_bytes[id] = byte_level_decode_token(token_string[id]);
    // HF decides "special" by the token's text, so a vocabulary entry spelled like one is special too.
    if (special_contents.count(token_string[id])) flags[id] |= kSpecial;
  }
  int missing = 0, first_missing = -1;
  for (int b = 0; b < 256; ++b)
    if (bpe.byte_symbol(static_cast<unsigned char>(b)) < 0) {
      ++missing;
      if (first_missing < 0) first_missing = b;
    }
  if (missing && !spec.unk_token)
    log::warn(cat(source, ": ", missing, " of the 256 byte symbols are missing from the vocabulary (the first is byte ",
                  first_missing, ") and there is no unk_token: such bytes are dropped when encoding, as HF does"));
}

void Tokenizer::Impl::encode_segment(std::string_view segment, std::vector<TokenId>& out) const {
  if (segment.empty()) return;
  std::string prefixed;
  if (pre_tokenizer.needs_prefix_space(segment)) {
    prefixed.reserve(segment.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(segment);
    segment = prefixed;
  }
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  pre_tokenizer.split(segment, pieces);
  WordCache& cache = word_cache(serial);
  for (std::string_view piece : pieces) {
    if (piece.size() == 1) {
      const TokenId id = bpe.byte_symbol(static_cast<unsigned char>(piece[0]));
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
    }
    if (piece.size() > kMaxCachedWord) {
      bpe.encode_word(piece, out);
      continue;
    }
    const uint64_t h = hash_bytes(piece);
    size_t count = 0;
    if (const int32_t* ids = cache.find(piece, h, count)) {
      out.insert(out.end(), ids, ids + count);
      continue;
    }
    const size_t before = out.size();
    bpe.encode_word(piece, out);
    cache.insert(piece, h, out.data() + before, out.size() - before);
  }
}

void Tokenizer::Impl::check_id(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= flags.size() || !(flags[id] & kPresent))
    throw InvalidArgument(cat("token id ", id, " is not in the vocabulary of ", source, " (size ", flags.size(), ")"));
}

Tokenizer::Tokenizer(BpeVocabulary model, std::vector<AddedToken> added_tokens, ByteLevelPreTokenizer pre_tokenizer,
                     const std::string& source) {
  auto impl = std::make_shared<Impl>();
  impl->source = source;
  impl->spec = std::move(model);
  impl->added = std::move(added_tokens);
  std::sort(impl->added.begin(), impl->added.end(), [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  impl->pre_tokenizer = pre_tokenizer;
  impl->decoder_json = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  impl->post_processor_json = nullptr;
  impl->build();
  impl_ = std::move(impl);
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool match_added_tokens) const {
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  encode_into(text, ids, match_added_tokens);
  return ids;
}

void Tokenizer::encode_into(std::string_view text, std::vector<TokenId>& ids, bool match_added_tokens) const {
  const Impl& m = impl();
  if (!match_added_tokens || (m.raw_tokens.empty() && m.normalized_tokens.empty())) {
    m.encode_segment(text, ids);
    return;
  }
  // Second pass: normalized added tokens inside a gap left by the first pass.
  auto encode_gap = [&](std::string_view gap) {
    size_t pos = 0, start, length;
    TokenId id;
    while (!m.normalized_tokens.empty() && m.normalized_tokens.find(gap, pos, start, length, id)) {
      m.encode_segment(gap.substr(pos, start - pos), ids);
      ids.push_back(id);
      pos = start + length;
    }
    m.encode_segment(gap.substr(pos), ids);
  };
  size_t pos = 0, start, length;
  TokenId id;
  while (!m.raw_tokens.empty() && m.raw_tokens.find(text, pos, start, length, id)) {
    encode_gap(text.substr(pos, start - pos));
    ids.push_back(id);
    pos = start + length;
  }
  encode_gap(text.substr(pos));
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool skip_special) const {
  return decode(ids.data(), ids.size(), skip_special);
}

std::string Tokenizer::decode(const TokenId* ids, size_t count, bool skip_special) const {
  const Impl& m = impl();
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    m.check_id(ids[i]);
    if (skip_special && (m.flags[ids[i]] & Impl::kSpecial)) continue;
    out += m.token_bytes[ids[i]];
  }
  return out;
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl().flags.size()); }

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const {
  if (const int32_t* id = impl().string_to_id.find(token)) return *id;
  return std::nullopt;
}

const std::string& Tokenizer::id_to_token(TokenId id) const {
  impl().check_id(id);
  return impl().token_string[id];
}

const std::string& Tokenizer::token_bytes(TokenId id) const {
  impl().check_id(id);
  return impl().token_bytes[id];
}

bool Tokenizer::contains(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < impl().flags.size() && (impl().flags[id] & Impl::kPresent);
}

bool Tokenizer::is_special(TokenId id) const { return contains(id) && (impl().flags[id] & Impl::kSpecial); }

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl().added; }
const ByteLevelPreTokenizer& Tokenizer::pre_tokenizer() const { return impl().pre_tokenizer; }
size_t Tokenizer::merge_count() const { return impl().bpe.merge_count(); }
const std::string& Tokenizer::source() const { return impl().source; }

}  // namespace chronos
