#include "tokenizer/bpe_model.h"

#include <algorithm>

#include "chronos/core/error.h"
#include "chronos/tokenizer/byte_level.h"

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

BpeModel::BpeModel(const BpeVocabulary& spec, const std::string& source)
    : fuse_unk_(spec.fuse_unk), ignore_merges_(spec.ignore_merges), merge_count_(spec.merges.size()) {
  StringIdMap by_string;
  for (const auto& [token, id] : spec.vocab) {
    by_string.insert(token, id);
    std::string bytes;
    if (symbols_to_bytes(token, bytes)) word_ids_.insert(bytes, id);
  }
  for (int b = 0; b < 256; ++b) {
    const char byte = static_cast<char>(b);
    const int32_t* id = word_ids_.find(std::string_view(&byte, 1));
    byte_symbol_[b] = id ? *id : -1;
  }
  if (spec.unk_token) {
    const int32_t* id = by_string.find(*spec.unk_token);
    if (!id) throw FormatError(cat(source, ": model.unk_token '", *spec.unk_token, "' is not in the vocabulary"));
    unk_id_ = *id;
  }
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
    const TokenId a = lookup(left), b = lookup(right), merged = lookup(left + right);
    merges_.put(a, b, {static_cast<int32_t>(rank), merged});
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const int32_t* id = word_ids_.find(word)) {
      out.push_back(*id);
      return;
    }
  }
  // Scratch space reused across calls: the merge loop allocates nothing once warm.
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  symbols.clear();
  heap.clear();

  auto push_symbol = [&](TokenId id, int32_t len) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, len});
    if (index > 0) symbols[index - 1].next = index;
  };
  // Bytes without a symbol become unk (fused when asked) or, with no unk token, vanish: HF's rule.
  int32_t pending_unk = 0;
  for (unsigned char byte : word) {
    const TokenId id = byte_symbol_[byte];
    if (id >= 0) {
      if (pending_unk) push_symbol(unk_id_, pending_unk);
      pending_unk = 0;
      push_symbol(id, 1);
    } else if (unk_id_ >= 0) {
      if (pending_unk && !fuse_unk_) {
        push_symbol(unk_id_, pending_unk);
        pending_unk = 0;
      }
      ++pending_unk;
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
    if (s.len != 0) out.push_back(s.id);
}

}  // namespace chronos::tokenizer_detail
