#include "chronos/tokenizer/bpe_trainer.h"

#include <algorithm>
#include <array>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "chronos/core/error.h"
#include "chronos/tokenizer/byte_level.h"
#include "chronos/tokenizer/utf8.h"
#include "tokenizer/added_token_matcher.h"

namespace chronos {
namespace {

constexpr int64_t kMaxVocab = int64_t(1) << 24;

uint64_t pack(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

struct HeapEntry {
  int64_t count;
  int32_t left;
  int32_t right;
};

// Top of the queue: the highest count; among equal counts the smaller left id, then right id.
struct Lower {
  bool operator()(const HeapEntry& x, const HeapEntry& y) const {
    if (x.count != y.count) return x.count < y.count;
    if (x.left != y.left) return x.left > y.left;
    return x.right > y.right;
  }
};

}  // namespace

struct BpeTrainer::State {
  tokenizer_detail::AddedTokenMatcher added;
  std::unordered_map<std::string, int64_t> words;
  int64_t bytes = 0;
};

void BpeTrainerConfig::validate() const {
  const int64_t floor = static_cast<int64_t>(added_tokens.size()) + 256;
  if (vocab_size < floor)
    throw ConfigError(cat("vocab_size must be at least ", floor, " (", added_tokens.size(), " added tokens + 256 byte symbols) (got ", vocab_size, ")"));
  if (vocab_size > kMaxVocab) throw ConfigError(cat("vocab_size must be <= ", kMaxVocab, " (got ", vocab_size, ")"));
  if (min_frequency < 0) throw ConfigError(cat("min_frequency must be >= 0 (got ", min_frequency, ")"));
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < added_tokens.size(); ++i) {
    const std::string& content = added_tokens[i].content;
    if (content.empty()) throw ConfigError(cat("added_tokens[", i, "] is empty"));
    if (!is_valid_utf8(content)) throw ConfigError(cat("added_tokens[", i, "] is not valid UTF-8"));
    if (!seen.insert(content).second) throw ConfigError(cat("added_tokens[", i, "] '", content, "' appears twice"));
    std::string bytes;
    if (symbols_to_bytes(content, bytes) && bytes.size() == 1)
      throw ConfigError(cat("added_tokens[", i, "] '", content, "' is spelled like a byte symbol"));
  }
}

BpeTrainer::BpeTrainer(BpeTrainerConfig config) : config_(std::move(config)), state_(std::make_unique<State>()) {
  config_.validate();
  for (size_t i = 0; i < config_.added_tokens.size(); ++i) {
    config_.added_tokens[i].id = static_cast<TokenId>(i);
    state_->added.add(config_.added_tokens[i].content, static_cast<TokenId>(i));
  }
}

BpeTrainer::~BpeTrainer() = default;

void BpeTrainer::add_text(std::string_view text) {
  state_->bytes += static_cast<int64_t>(text.size());
  std::vector<std::string_view> pieces;
  std::string prefixed;
  auto count_segment = [&](std::string_view segment) {
    if (segment.empty()) return;
    if (config_.pre_tokenizer.needs_prefix_space(segment)) {
      prefixed = " ";
      prefixed.append(segment);
      segment = prefixed;
    }
    pieces.clear();
    config_.pre_tokenizer.split(segment, pieces);
    for (std::string_view piece : pieces) ++state_->words[std::string(piece)];
  };
  std::vector<tokenizer_detail::AddedTokenMatch> matches;
  state_->added.find_all(text, matches);
  size_t pos = 0;
  for (const auto& m : matches) {
    count_segment(text.substr(pos, m.start - pos));
    pos = m.end;
  }
  count_segment(text.substr(pos));
}

int64_t BpeTrainer::distinct_words() const { return static_cast<int64_t>(state_->words.size()); }
int64_t BpeTrainer::bytes_seen() const { return state_->bytes; }

Tokenizer BpeTrainer::train(const Progress& progress) const {
  const int32_t n_added = static_cast<int32_t>(config_.added_tokens.size());
  const int64_t target = config_.vocab_size - n_added - 256;
  const int64_t min_count = std::max<int64_t>(config_.min_frequency, 1);

  // Token table: added tokens, then the byte symbols in the order of their stand-in characters.
  std::vector<std::string> bytes_of;    // raw bytes per id (empty for added tokens)
  std::vector<std::string> spelling;    // tokenizer.json form per id
  std::unordered_set<std::string> taken;
  for (const AddedToken& t : config_.added_tokens) {
    bytes_of.emplace_back();
    spelling.push_back(t.content);
    taken.insert(t.content);
  }
  std::array<int, 256> order;
  for (int b = 0; b < 256; ++b) order[b] = b;
  std::sort(order.begin(), order.end(), [](int x, int y) { return byte_to_symbol(uint8_t(x)) < byte_to_symbol(uint8_t(y)); });
  std::array<int32_t, 256> byte_id;
  for (int rank = 0; rank < 256; ++rank) {
    const int b = order[rank];
    byte_id[b] = n_added + rank;
    bytes_of.emplace_back(1, static_cast<char>(b));
    spelling.push_back(bytes_to_symbols(bytes_of.back()));
    taken.insert(spelling.back());
  }

  // Words as symbol sequences, their counts, and where each pair occurs.
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> word_count;
  words.reserve(state_->words.size());
  for (const auto& [text, count] : state_->words) {
    std::vector<int32_t> symbols;
    symbols.reserve(text.size());
    for (unsigned char c : text) symbols.push_back(byte_id[c]);
    words.push_back(std::move(symbols));
    word_count.push_back(count);
  }
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;
  for (uint32_t w = 0; w < words.size(); ++w)
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t key = pack(words[w][i], words[w][i + 1]);
      pair_count[key] += word_count[w];
      auto& list = where[key];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, Lower> heap;
  for (const auto& [key, count] : pair_count) heap.push({count, int32_t(key >> 32), int32_t(key & 0xFFFFFFFFu)});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<uint32_t> visited(words.size(), 0);
  uint32_t stamp = 0;
  std::vector<uint64_t> grown;
  auto change = [&](int32_t a, int32_t b, int64_t delta, uint32_t w) {
    const uint64_t key = pack(a, b);
    pair_count[key] += delta;
    if (delta > 0) {
      where[key].push_back(w);
      grown.push_back(key);
    }
  };

  while (static_cast<int64_t>(merges.size()) < target && !heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    const uint64_t key = pack(top.left, top.right);
    const auto found = pair_count.find(key);
    const int64_t current = found == pair_count.end() ? 0 : found->second;
    if (current != top.count) {  // counts only fall after a pair is queued: requeue at its true count
      if (current >= min_count) heap.push({current, top.left, top.right});
      continue;
    }
    if (current < min_count) break;
    std::string merged = bytes_of[top.left] + bytes_of[top.right];
    std::string merged_spelling = bytes_to_symbols(merged);
    if (taken.count(merged_spelling)) {  // spelled like an added token: never a merge result
      pair_count.erase(key);
      where.erase(key);
      continue;
    }
    const int32_t id = static_cast<int32_t>(bytes_of.size());
    bytes_of.push_back(std::move(merged));
    taken.insert(merged_spelling);
    spelling.push_back(std::move(merged_spelling));
    merges.emplace_back(top.left, top.right);

    std::vector<uint32_t> list = std::move(where[key]);
    where.erase(key);
    ++stamp;
    grown.clear();
    for (uint32_t w : list) {
      if (visited[w] == stamp) continue;
      visited[w] = stamp;
      std::vector<int32_t>& s = words[w];
      const int64_t c = word_count[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        if (s[i] != top.left || s[i + 1] != top.right) continue;
        if (i > 0) {
          change(s[i - 1], top.left, -c, w);
          change(s[i - 1], id, c, w);
        }
        if (i + 2 < s.size()) {
          change(top.right, s[i + 2], -c, w);
          change(id, s[i + 2], c, w);
        }
        s[i] = id;
        s.erase(s.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      }
    }
    pair_count.erase(key);
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (uint64_t g : grown) {
      const int64_t count = pair_count[g];
      if (count >= min_count) heap.push({count, int32_t(g >> 32), int32_t(g & 0xFFFFFFFFu)});
    }
    if (progress && (merges.size() % 256 == 0 || static_cast<int64_t>(merges.size()) == target))
      progress(static_cast<int64_t>(merges.size()), target);
  }

  BpeVocabulary model;
  model.vocab.reserve(spelling.size());
  for (size_t id = 0; id < spelling.size(); ++id) model.vocab.emplace_back(spelling[id], static_cast<TokenId>(id));
  model.merges.reserve(merges.size());
  for (const auto& [a, b] : merges) model.merges.emplace_back(spelling[a], spelling[b]);
  std::vector<AddedToken> added = config_.added_tokens;
  for (AddedToken& t : added) t.normalized = false;
  return Tokenizer(std::move(model), std::move(added), config_.pre_tokenizer, "trained tokenizer");
}

}  // namespace chronos
