// Private to the tokenizer: finds added tokens in text, leftmost match first and, among matches
// that start there, the longest (the aho-corasick LeftmostLongest rule HF uses).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "chronos/tokenizer/tokenizer.h"

namespace chronos::tokenizer_detail {

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() { nodes_.emplace_back(); }

  void add(std::string_view content, TokenId id) {
    int32_t node = 0;
    for (unsigned char c : content) {
      int32_t child = find_child(node, c);
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.push_back({c, child});
        nodes_.emplace_back();
      }
      node = child;
    }
    nodes_[node].token = id;
    first_byte_[static_cast<unsigned char>(content[0])] = true;
    empty_ = false;
  }

  bool empty() const { return empty_; }

  // The first match at or after `from`; false when there is none.
  bool find(std::string_view text, size_t from, size_t& start, size_t& length, TokenId& id) const {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    for (size_t s = from; s < text.size(); ++s) {
      if (!first_byte_[p[s]]) continue;
      int32_t node = 0;
      size_t best = 0;
      for (size_t q = s; q < text.size(); ++q) {
        node = find_child(node, p[q]);
        if (node < 0) break;
        if (nodes_[node].token >= 0) {
          best = q + 1 - s;
          id = nodes_[node].token;
        }
      }
      if (best) {
        start = s;
        length = best;
        return true;
      }
    }
    return false;
  }

 private:
  struct Node {
    TokenId token = -1;
    std::vector<std::pair<unsigned char, int32_t>> children;
  };
  int32_t find_child(int32_t node, unsigned char c) const {
    for (const auto& [byte, child] : nodes_[node].children)
      if (byte == c) return child;
    return -1;
  }
  std::vector<Node> nodes_;
  std::array<bool, 256> first_byte_{};
  bool empty_ = true;
};

}  // namespace chronos::tokenizer_detail
