#include "tokenizer/unicode.h"

#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace chronos::tokenizer_detail {
namespace {

// Two-stage lookup: the high bits pick a 256-entry block, identical blocks are shared (most of the
// code space is one "all other" block), so the table stays small and a lookup is two loads.
struct ClassTable {
  static constexpr char32_t kCodeSpace = 0x110000;
  std::vector<uint16_t> block_of;  // kCodeSpace / 256 entries
  std::vector<CharClass> blocks;   // 256 entries per distinct block

  ClassTable() {
    std::vector<CharClass> flat(kCodeSpace, CharClass::other);
    for (size_t i = 0; i < kCodePointRangeCount; ++i)
      for (char32_t cp = kCodePointRanges[i].first; cp <= kCodePointRanges[i].last; ++cp) flat[cp] = kCodePointRanges[i].cls;
    std::map<std::string, uint16_t> seen;
    block_of.resize(kCodeSpace / 256);
    for (size_t b = 0; b < block_of.size(); ++b) {
      std::string key(reinterpret_cast<const char*>(&flat[b * 256]), 256 * sizeof(CharClass));
      auto it = seen.find(key);
      if (it == seen.end()) {
        it = seen.emplace(key, static_cast<uint16_t>(blocks.size() / 256)).first;
        blocks.insert(blocks.end(), flat.begin() + b * 256, flat.begin() + (b + 1) * 256);
      }
      block_of[b] = it->second;
    }
  }
};

const ClassTable& table() {
  static const ClassTable instance;
  return instance;
}

}  // namespace

CharClass char_class(char32_t cp) {
  if (cp >= ClassTable::kCodeSpace) return CharClass::other;
  const ClassTable& t = table();
  return t.blocks[size_t(t.block_of[cp >> 8]) * 256 + (cp & 0xFF)];
}

}  // namespace chronos::tokenizer_detail
