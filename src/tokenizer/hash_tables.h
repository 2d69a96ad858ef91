// Private to the tokenizer: small open-addressing hash tables for the hot paths (merge lookup, word
// cache, token lookup). std::unordered_map would allocate per node and, in C++17, needs a
// std::string to look up a string_view.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace chronos::tokenizer_detail {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// Hash of a byte string: 8 bytes per step, finished with a mixer.
inline uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = mix64(h ^ w) + 0x9E3779B97F4A7C15ULL;
  }
  uint64_t tail = 0;
  if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);
  return mix64(h ^ tail);
}

// Rebuilds an open-addressing table whose slots carry their `hash` and a `used` flag at a new
// power-of-two capacity (linear probing).
template <class Slot>
void rehash_slots(std::vector<Slot>& slots, size_t capacity) {
  std::vector<Slot> old;
  old.swap(slots);
  slots.assign(capacity, Slot{});
  for (const Slot& s : old) {
    if (!s.used) continue;
    size_t i = s.hash & (capacity - 1);
    while (slots[i].used) i = (i + 1) & (capacity - 1);
    slots[i] = s;
  }
}

inline size_t round_up_pow2(size_t n) {
  size_t p = 16;
  while (p < n) p <<= 1;
  return p;
}

// Fixed-content map from a pair of token ids to (rank, merged id); built once, then read-only.
class PairMap {
 public:
  struct Value {
    int32_t rank;
    int32_t id;
  };

  void reserve(size_t n) { rehash(round_up_pow2(n * 2)); }

  // Inserts or overwrites (HF builds its merge map the same way: a later duplicate wins).
  void put(int32_t a, int32_t b, Value v) {
    if ((size_ + 1) * 2 > slots_.size()) rehash(round_up_pow2((size_ + 1) * 4));
    const uint64_t key = pack(a, b);
    size_t i = mix64(key) & (slots_.size() - 1);
    while (slots_[i].used && slots_[i].key != key) i = (i + 1) & (slots_.size() - 1);
    if (!slots_[i].used) ++size_;
    slots_[i] = {key, v, true};
  }

  const Value* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(a, b);
    size_t i = mix64(key) & (slots_.size() - 1);
    while (slots_[i].used) {
      if (slots_[i].key == key) return &slots_[i].value;
      i = (i + 1) & (slots_.size() - 1);
    }
    return nullptr;
  }

  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key = 0;
    Value value{0, 0};
    bool used = false;
  };
  static uint64_t pack(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  void rehash(size_t capacity) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(capacity, Slot{});
    size_ = 0;
    for (const Slot& s : old)
      if (s.used) put(int32_t(s.key >> 32), int32_t(s.key & 0xFFFFFFFFu), s.value);
  }
  std::vector<Slot> slots_;
  size_t size_ = 0;
};

// Map from byte strings to ids; the keys live in one arena.
class StringIdMap {
 public:
  // Returns false (and keeps the old value) when the key is already present.
  bool insert(std::string_view key, int32_t id) {
    if ((size_ + 1) * 2 > slots_.size()) rehash(round_up_pow2((size_ + 1) * 4));
    const uint64_t h = hash_bytes(key);
    size_t i = h & (slots_.size() - 1);
    while (slots_[i].used) {
      if (slots_[i].hash == h && view(slots_[i]) == key) return false;
      i = (i + 1) & (slots_.size() - 1);
    }
    slots_[i] = {h, uint32_t(arena_.size()), uint32_t(key.size()), id, true};
    arena_.append(key.data(), key.size());
    ++size_;
    return true;
  }

  const int32_t* find(std::string_view key) const {
    if (slots_.empty()) return nullptr;
    const uint64_t h = hash_bytes(key);
    size_t i = h & (slots_.size() - 1);
    while (slots_[i].used) {
      if (slots_[i].hash == h && view(slots_[i]) == key) return &slots_[i].id;
      i = (i + 1) & (slots_.size() - 1);
    }
    return nullptr;
  }

  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0, length = 0;
    int32_t id = 0;
    bool used = false;
  };
  std::string_view view(const Slot& s) const { return std::string_view(arena_).substr(s.offset, s.length); }
  void rehash(size_t capacity) { rehash_slots(slots_, capacity); }
  std::vector<Slot> slots_;
  std::string arena_;
  size_t size_ = 0;
};

// Cache of BPE results per pre-token word: word bytes -> token ids. Cleared wholesale when full,
// which keeps memory bounded without per-entry bookkeeping.
class WordCache {
 public:
  explicit WordCache(size_t max_entries = 1 << 18) : max_entries_(max_entries) {}

  // The cached ids of `word` (with its hash `h`), or nullptr.
  const int32_t* find(std::string_view word, uint64_t h, size_t& count) const {
    if (slots_.empty()) return nullptr;
    size_t i = h & (slots_.size() - 1);
    while (slots_[i].used) {
      const Slot& s = slots_[i];
      if (s.hash == h && s.key_length == word.size() && std::memcmp(keys_.data() + s.key_offset, word.data(), word.size()) == 0) {
        count = s.value_count;
        return ids_.data() + s.value_offset;
      }
      i = (i + 1) & (slots_.size() - 1);
    }
    return nullptr;
  }

  void insert(std::string_view word, uint64_t h, const int32_t* ids, size_t count) {
    if (size_ >= max_entries_) clear();
    if ((size_ + 1) * 2 > slots_.size()) rehash(round_up_pow2((size_ + 1) * 4));
    size_t i = h & (slots_.size() - 1);
    while (slots_[i].used) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = {h, uint32_t(keys_.size()), uint32_t(word.size()), uint32_t(ids_.size()), uint32_t(count), true};
    keys_.append(word.data(), word.size());
    ids_.insert(ids_.end(), ids, ids + count);
    ++size_;
  }

  void clear() {
    slots_.clear();
    keys_.clear();
    ids_.clear();
    size_ = 0;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_offset = 0, key_length = 0, value_offset = 0, value_count = 0;
    bool used = false;
  };
  void rehash(size_t capacity) { rehash_slots(slots_, capacity); }
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t size_ = 0;
  size_t max_entries_;
};

}  // namespace chronos::tokenizer_detail
