#include "chronos/tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <unordered_set>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

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
  bpe = tokenizer_detail::BpeModel(spec, pre_steps.byte_level(), source);

  std::unordered_set<std::string> contents, special_contents;
  std::unordered_set<TokenId> added_ids;
  for (const AddedToken& t : added) {
    if (t.content.empty()) throw FormatError(cat(source, ": added token ", t.id, " has empty content"));
    if (!contents.insert(t.content).second) throw FormatError(cat(source, ": added token '", t.content, "' appears twice"));
    if (!added_ids.insert(t.id).second) throw FormatError(cat(source, ": added token id ", t.id, " is used twice"));
    if ((flags[t.id] & kPresent) && token_string[t.id] != t.content)
      throw FormatError(cat(source, ": added token '", t.content, "' has id ", t.id, ", which the vocabulary gives to '", token_string[t.id], "'"));
    flags[t.id] |= kPresent | kAdded;
    token_string[t.id] = t.content;
    (t.normalized ? normalized_tokens : raw_tokens).add(t.content, t.id, t.single_word, t.lstrip, t.rstrip);
    if (t.special) special_contents.insert(t.content);
  }
  // Added tokens take precedence over a vocabulary entry with the same text (HF looks them up first).
  tokenizer_detail::StringIdMap lookup;
  for (const AddedToken& t : added) lookup.insert(t.content, t.id);
  for (const auto& [token, id] : spec.vocab) lookup.insert(token, id);
  string_to_id = std::move(lookup);

  for (size_t id = 0; id < size; ++id) {
    if (!(flags[id] & kPresent)) continue;
    token_bytes[id] = decoder.byte_level_only() ? byte_level_decode_token(token_string[id]) : decoder.decode({token_string[id]});
    // HF decides "special" by the token's text, so a vocabulary entry spelled like one is special too.
    if (special_contents.count(token_string[id])) flags[id] |= kSpecial;
  }
  int missing = 0, first_missing = -1;
  for (int b = 0; b < 256 && pre_steps.byte_level(); ++b)
    if (bpe.byte_symbol(static_cast<unsigned char>(b)) < 0) {
      ++missing;
      if (first_missing < 0) first_missing = b;
    }
  if (missing && !spec.unk_token)
    log::warn(cat(source, ": ", missing, " of the 256 byte symbols are missing from the vocabulary (the first is byte ",
                  first_missing, ") and there is no unk_token: such bytes are dropped when encoding, as HF does"));
}

void Tokenizer::Impl::encode_piece_cached(std::string_view piece, std::vector<TokenId>& out) const {
  if (piece.size() == 1 && pre_steps.byte_level()) {
    const TokenId id = bpe.byte_symbol(static_cast<unsigned char>(piece[0]));
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (piece.size() > kMaxCachedWord) {
    bpe.encode_word(piece, out);
    return;
  }
  WordCache& cache = word_cache(serial);
  const uint64_t h = hash_bytes(piece);
  size_t count = 0;
  if (const int32_t* ids = cache.find(piece, h, count)) {
    out.insert(out.end(), ids, ids + count);
    return;
  }
  const size_t before = out.size();
  bpe.encode_word(piece, out);
  cache.insert(piece, h, out.data() + before, out.size() - before);
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
  for (std::string_view piece : pieces) encode_piece_cached(piece, out);
}

std::string Tokenizer::Impl::matched_value(std::string_view text, const tokenizer_detail::AddedTokenMatch& m) const {
  const std::string_view matched = text.substr(m.start, m.end - m.start);
  return matched == token_string[m.id] ? std::string() : std::string(matched);
}

void Tokenizer::Impl::encode_tokens(std::string_view text, bool match_added, bool with_offsets, std::vector<Sink>& out) const {
  using tokenizer_detail::AddedTokenMatch;
  using tokenizer_detail::NormalizedText;
  std::vector<TokenId> ids;
  std::vector<uint32_t> lengths;
  std::vector<NormalizedText> pieces;
  auto model = [&](const NormalizedText& piece) {
    ids.clear();
    lengths.clear();
    if (!with_offsets) {
      encode_piece_cached(piece.text(), ids);
      for (TokenId id : ids) out.push_back({id, {0, 0}, false});
      return;
    }
    bpe.encode_word(piece.text(), ids, &lengths);
    size_t pos = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
      const size_t end = std::min(pos + lengths[k], piece.size());
      out.push_back({ids[k], end > pos ? piece.original(pos, end) : std::pair<uint32_t, uint32_t>{0, 0}, false});
      pos = end;
    }
  };
  auto pre_tokenize = [&](NormalizedText part) {
    if (part.empty()) return;
    if (pre_steps.empty()) {
      model(part);
      return;
    }
    pieces.clear();
    pre_steps.split(std::move(part), pieces);
    for (const NormalizedText& piece : pieces) model(piece);
  };
  std::vector<AddedTokenMatch> normalized_matches;
  auto gap = [&](size_t start, size_t end) {
    if (end <= start) return;
    NormalizedText part(text.substr(start, end - start), static_cast<uint32_t>(start));
    normalizer.apply(part);
    normalized_matches.clear();
    if (match_added) normalized_tokens.find_all(part.text(), normalized_matches);
    size_t pos = 0;
    for (const AddedTokenMatch& m : normalized_matches) {
      pre_tokenize(part.slice(pos, m.start));
      out.push_back({m.id, with_offsets ? part.original(m.start, m.end) : std::pair<uint32_t, uint32_t>{0, 0}, false,
                     matched_value(part.text(), m)});
      pos = m.end;
    }
    pre_tokenize(pos == 0 ? std::move(part) : part.slice(pos, part.size()));
  };
  std::vector<AddedTokenMatch> raw_matches;
  if (match_added) raw_tokens.find_all(text, raw_matches);
  size_t pos = 0;
  for (const AddedTokenMatch& m : raw_matches) {
    gap(pos, m.start);
    out.push_back({m.id, {static_cast<uint32_t>(m.start), static_cast<uint32_t>(m.end)}, false, matched_value(text, m)});
    pos = m.end;
  }
  gap(pos, text.size());
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
  const tokenizer_detail::JsonReader reader(source);
  impl->pre_steps = tokenizer_detail::PreTokenizerSteps({{"type", "ByteLevel"},
                                                         {"add_prefix_space", pre_tokenizer.add_prefix_space},
                                                         {"trim_offsets", pre_tokenizer.trim_offsets},
                                                         {"use_regex", pre_tokenizer.use_regex}},
                                                        reader);
  impl->decoder = tokenizer_detail::Decoder(
      {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}, reader);
  impl->fast_path = pre_tokenizer.use_regex;
  impl->build();
  impl_ = std::move(impl);
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool match_added_tokens, bool add_special_tokens) const {
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens && !impl().post.empty()) {
    EncodeOptions options;
    options.match_added_tokens = match_added_tokens;
    options.add_special_tokens = true;
    return encode_with_offsets(text, options).ids;
  }
  encode_into(text, ids, match_added_tokens);
  return ids;
}

void Tokenizer::encode_into(std::string_view text, std::vector<TokenId>& ids, bool match_added_tokens) const {
  const Impl& m = impl();
  if (!m.fast_path) {
    thread_local std::vector<Impl::Sink> tokens;
    tokens.clear();
    m.encode_tokens(text, match_added_tokens, /*with_offsets=*/false, tokens);
    for (const Impl::Sink& t : tokens) ids.push_back(t.id);
    return;
  }
  if (!match_added_tokens || (m.raw_tokens.empty() && m.normalized_tokens.empty())) {
    m.encode_segment(text, ids);
    return;
  }
  // Without a normalizer both kinds of added tokens are found in the input itself: the raw ones
  // first, the normalized ones in the gaps between them.
  std::vector<tokenizer_detail::AddedTokenMatch> raw, normalized;
  m.raw_tokens.find_all(text, raw);
  auto encode_gap = [&](size_t start, size_t end) {
    const std::string_view gap = text.substr(start, end - start);
    normalized.clear();
    m.normalized_tokens.find_all(gap, normalized);
    size_t pos = 0;
    for (const auto& match : normalized) {
      m.encode_segment(gap.substr(pos, match.start - pos), ids);
      ids.push_back(match.id);
      pos = match.end;
    }
    m.encode_segment(gap.substr(pos), ids);
  };
  size_t pos = 0;
  for (const auto& match : raw) {
    encode_gap(pos, match.start);
    ids.push_back(match.id);
    pos = match.end;
  }
  encode_gap(pos, text.size());
}

Encoding Tokenizer::encode_with_offsets(std::string_view text, const EncodeOptions& options) const {
  const Impl& m = impl();
  std::vector<Impl::Sink> tokens;
  m.encode_tokens(text, options.match_added_tokens, /*with_offsets=*/true, tokens);
  m.post.apply(tokens, options.add_special_tokens, [&](TokenId id) -> const std::string& { return m.token_string[id]; });
  Encoding encoding;
  encoding.ids.reserve(tokens.size());
  encoding.offsets.reserve(tokens.size());
  for (const Impl::Sink& t : tokens) {
    encoding.ids.push_back(t.id);
    encoding.offsets.emplace_back(t.offsets.first, t.offsets.second);
  }
  return encoding;
}

std::vector<std::pair<size_t, size_t>> to_char_offsets(std::string_view text, const std::vector<std::pair<size_t, size_t>>& byte_offsets) {
  // The character index of every byte (HF's BytesToCharOffsetConverter); an invalid byte is a character.
  std::vector<size_t> char_of(text.size());
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++chars) {
    char32_t cp;
    bool ok;
    const size_t n = tokenizer_detail::utf8_step(reinterpret_cast<const unsigned char*>(text.data()) + i, text.size() - i, cp, ok);
    for (size_t k = 0; k < n; ++k) char_of[i + k] = chars;
    i += n;
  }
  std::vector<std::pair<size_t, size_t>> out;
  out.reserve(byte_offsets.size());
  for (const auto& [start, end] : byte_offsets) {
    if (start < text.size() && end < text.size()) {
      out.emplace_back(char_of[start], char_of[end]);
    } else if (start < text.size() && end == text.size() && end > 0) {
      out.emplace_back(char_of[start], char_of[end - 1] + 1);
    } else {
      out.emplace_back(start, end);
    }
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool skip_special) const {
  return decode(ids.data(), ids.size(), skip_special);
}

std::string Tokenizer::decode(const TokenId* ids, size_t count, bool skip_special) const {
  const Impl& m = impl();
  if (decodes_by_token()) {
    std::string out;
    for (size_t i = 0; i < count; ++i) {
      m.check_id(ids[i]);
      if (skip_special && (m.flags[ids[i]] & Impl::kSpecial)) continue;
      out += m.token_bytes[ids[i]];
    }
    return out;
  }
  std::vector<std::string> tokens;
  tokens.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    m.check_id(ids[i]);
    if (skip_special && (m.flags[ids[i]] & Impl::kSpecial)) continue;
    tokens.push_back(m.token_string[ids[i]]);
  }
  return m.decoder.decode(std::move(tokens));
}

bool Tokenizer::decodes_by_token() const { return impl().decoder.byte_level_only(); }

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
bool Tokenizer::is_added(TokenId id) const { return contains(id) && (impl().flags[id] & Impl::kAdded); }

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl().added; }
const ByteLevelPreTokenizer& Tokenizer::pre_tokenizer() const { return impl().pre_tokenizer; }
size_t Tokenizer::merge_count() const { return impl().bpe.merge_count(); }
const std::string& Tokenizer::source() const { return impl().source; }

}  // namespace chronos
