// Private to the tokenizer: finds added tokens in text as HF's AddedVocabulary does: leftmost match
// first and, among matches that start there, the longest (aho-corasick LeftmostLongest); a
// single_word token only between non-word characters; lstrip/rstrip tokens take the white space
// before/after them into their match.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "chronos/tokenizer/tokenizer.h"

namespace chronos::tokenizer_detail {

struct AddedTokenMatch {
  size_t start, end;  // byte range, white space taken by lstrip/rstrip included
  TokenId id;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() { nodes_.emplace_back(); }

  void add(std::string_view content, TokenId id, bool single_word = false, bool lstrip = false, bool rstrip = false) {
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
    nodes_[node].single_word = single_word;
    nodes_[node].lstrip = lstrip;
    nodes_[node].rstrip = rstrip;
    plain_ = plain_ && !single_word && !lstrip && !rstrip;
    first_byte_[static_cast<unsigned char>(content[0])] = true;
    empty_ = false;
  }

  bool empty() const { return empty_; }

  // Every accepted match in `text`, left to right.
  void find_all(std::string_view text, std::vector<AddedTokenMatch>& out) const;

 private:
  struct Node {
    TokenId token = -1;
    bool single_word = false, lstrip = false, rstrip = false;
    std::vector<std::pair<unsigned char, int32_t>> children;
  };
  int32_t find_child(int32_t node, unsigned char c) const {
    for (const auto& [byte, child] : nodes_[node].children)
      if (byte == c) return child;
    return -1;
  }
  // The longest token starting at `s`: its node and length, or node -1.
  std::pair<int32_t, size_t> longest_at(std::string_view text, size_t s) const;

  std::vector<Node> nodes_;
  std::array<bool, 256> first_byte_{};
  bool empty_ = true;
  bool plain_ = true;  // no token uses single_word, lstrip or rstrip
};

}  // namespace chronos::tokenizer_detail
