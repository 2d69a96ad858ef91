#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <cstdio>

#include "chronos/core/error.h"
#include "chronos/tokenizer/byte_level.h"
#include "tokenizer/unicode.h"

namespace chronos::tokenizer_detail {
namespace {

struct Symbol {
  TokenId id;
  int32_t prev;
  int32_t next;
  int32_t len;  // 0: merged into its left neighbour
};

struct Candidate {
  int32_t rank;
  int32_t pos;
  TokenId id;
};

// std::*_heap keep the largest on top; "larger" here is the lower rank, then the lower position.
struct LaterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

}  // namespace

BpeModel::BpeModel(const BpeVocabulary& spec, bool byte_mode, const std::string& source)
    : byte_mode_(byte_mode),
      byte_fallback_(spec.byte_fallback),
      fuse_unk_(spec.fuse_unk),
      ignore_merges_(spec.ignore_merges),
      merge_count_(spec.merges.size()) {
  StringIdMap by_string;
  for (const auto& [token, id] : spec.vocab) {
    by_string.insert(token, id);
    if (!byte_mode_) {
      word_ids_.insert(token, id);
      continue;
    }
    std::string bytes;
    if (symbols_to_bytes(token, bytes)) word_ids_.insert(bytes, id);
  }
  if (byte_mode_)
    for (int b = 0; b < 256; ++b) {
      const char byte = static_cast<char>(b);
      const int32_t* id = word_ids_.find(std::string_view(&byte, 1));
      byte_symbol_[b] = id ? *id : -1;
    }
  if (byte_fallback_)
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      const int32_t* id = by_string.find(name);
      fallback_ids_[b] = id ? *id : -1;
    }
  // The prefix and suffix in the form units are looked up in.
  auto raw = [&](const std::optional<std::string>& text, const char* key) {
    if (!text || text->empty()) return std::string();
    if (!byte_mode_) return *text;
    std::string bytes;
    if (!symbols_to_bytes(*text, bytes))
      throw FormatError(cat(source, ": model.", key, " '", *text, "' is not written in the byte-level alphabet of this vocabulary"));
    return bytes;
  };
  prefix_ = raw(spec.continuing_subword_prefix, "continuing_subword_prefix");
  suffix_ = raw(spec.end_of_word_suffix, "end_of_word_suffix");
  if (spec.unk_token) {
    const int32_t* id = by_string.find(*spec.unk_token);
    if (!id) throw FormatError(cat(source, ": model.unk_token '", *spec.unk_token, "' is not in the vocabulary"));
    unk_id_ = *id;
  }
  // HF's merged token drops the prefix's length from the right part, whether or not it starts with it.
  const size_t prefix_length = spec.continuing_subword_prefix ? spec.continuing_subword_prefix->size() : 0;
  merges_.reserve(spec.merges.size());
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    // Named references, not a structured binding: lambdas may capture those only from C++20.
    const std::string& left = spec.merges[rank].first;
    const std::string& right = spec.merges[rank].second;
    auto lookup = [&](const std::string& token) {
      const int32_t* id = by_string.find(token);
      if (!id)
        throw FormatError(cat(source, ": merge ", rank + 1, " ('", left, "', '", right, "') uses '", token,
                              "', which is not in the vocabulary"));
      return *id;
    };
    const TokenId a = lookup(left), b = lookup(right), merged = lookup(left + right.substr(std::min(prefix_length, right.size())));
    merges_.put(a, b, {static_cast<int32_t>(rank), merged});
  }
}

TokenId BpeModel::unit_id(std::string_view key) const {
  if (byte_mode_ && key.size() == 1) return byte_symbol_[static_cast<unsigned char>(key[0])];
  const int32_t* id = word_ids_.find(key);
  return id ? *id : -1;
}

void BpeModel::encode_word(std::string_view word, std::vector<TokenId>& out, std::vector<uint32_t>* lengths) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const int32_t* id = word_ids_.find(word)) {
      out.push_back(*id);
      if (lengths) lengths->push_back(static_cast<uint32_t>(word.size()));
      return;
    }
  }
  // Scratch space reused across calls: the merge loop allocates nothing once warm.
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  thread_local std::string key;
  symbols.clear();
  heap.clear();

  auto push_symbol = [&](TokenId id, int32_t len) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, len});
    if (index > 0) symbols[index - 1].next = index;
  };
  // Units without a token: byte fallback when the file asks for it, else the unknown token (fused
  // when asked), else nothing at all (HF's rule).
  int32_t pending_unk = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(word.data());
  const bool affixes = !prefix_.empty() || !suffix_.empty();
  for (size_t i = 0; i < word.size();) {
    size_t n = 1;
    if (!byte_mode_) {
      char32_t cp;
      bool ok;
      n = utf8_step(p + i, word.size() - i, cp, ok);
    }
    std::string_view unit = word.substr(i, n);
    if (affixes) {
      key.clear();
      if (i > 0) key += prefix_;
      key.append(unit);
      if (i + n == word.size()) key += suffix_;
      unit = key;
    }
    const TokenId id = unit_id(unit);
    i += n;
    if (id >= 0) {
      if (pending_unk) push_symbol(unk_id_, pending_unk);
      pending_unk = 0;
      push_symbol(id, static_cast<int32_t>(n));
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : unit) all = all && fallback_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : unit) push_symbol(fallback_ids_[b], 1);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk && !fuse_unk_) {
        push_symbol(unk_id_, pending_unk);
        pending_unk = 0;
      }
      pending_unk += static_cast<int32_t>(n);
    }
  }
  if (pending_unk) push_symbol(unk_id_, pending_unk);

  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    if (const PairMap::Value* m = merges_.find(symbols[i].id, symbols[i + 1].id))
      heap.push_back({m->rank, static_cast<int32_t>(i), m->id});
  std::make_heap(heap.begin(), heap.end(), LaterCandidate{});

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), LaterCandidate{});
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    const int32_t right_pos = left.next;
    const Symbol right = symbols[right_pos];
    // A stale entry: the pair at this position changed since it was queued.
    const PairMap::Value* current = merges_.find(left.id, right.id);
    if (!current || current->id != top.id) continue;

    left.id = top.id;
    left.len += right.len;
    left.next = right.next;
    symbols[right_pos].len = 0;
    if (right.next >= 0) symbols[right.next].prev = top.pos;

    if (left.prev >= 0)
      if (const PairMap::Value* m = merges_.find(symbols[left.prev].id, left.id)) {
        heap.push_back({m->rank, left.prev, m->id});
        std::push_heap(heap.begin(), heap.end(), LaterCandidate{});
      }
    if (left.next >= 0)
      if (const PairMap::Value* m = merges_.find(left.id, symbols[left.next].id)) {
        heap.push_back({m->rank, top.pos, m->id});
        std::push_heap(heap.begin(), heap.end(), LaterCandidate{});
      }
  }
  for (const Symbol& s : symbols)
    if (s.len != 0) {
      out.push_back(s.id);
      if (lengths) lengths->push_back(static_cast<uint32_t>(s.len));
    }
}

}  // namespace chronos::tokenizer_detail
