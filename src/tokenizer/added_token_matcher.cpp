#include "tokenizer/added_token_matcher.h"

#include <utf8proc.h>

#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace chronos::tokenizer_detail {
namespace {

// Rust regex's Unicode \w: letters, marks, decimal and letter numbers, connector punctuation and the
// joiners.
bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  if (c == 0x200C || c == 0x200D) return true;
  const int k = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_ME) || k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL ||
         k == UTF8PROC_CATEGORY_PC;
}

// The character that ends just before `at`, or 0 at the start.
char32_t char_before(std::string_view text, size_t at, size_t& length) {
  length = 0;
  if (at == 0) return 0;
  size_t start = at - 1;
  while (start > 0 && at - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  char32_t cp;
  bool ok;
  const size_t n = utf8_step(reinterpret_cast<const unsigned char*>(text.data()) + start, text.size() - start, cp, ok);
  if (!ok || start + n != at) {
    length = 1;
    return 0xFFFD;
  }
  length = n;
  return cp;
}

char32_t char_at(std::string_view text, size_t at, size_t& length) {
  char32_t cp;
  bool ok;
  length = utf8_step(reinterpret_cast<const unsigned char*>(text.data()) + at, text.size() - at, cp, ok);
  return ok ? cp : 0xFFFD;
}

}  // namespace

std::pair<int32_t, size_t> AddedTokenMatcher::longest_at(std::string_view text, size_t s) const {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  int32_t node = 0, best_node = -1;
  size_t best = 0;
  for (size_t q = s; q < text.size(); ++q) {
    node = find_child(node, p[q]);
    if (node < 0) break;
    if (nodes_[node].token >= 0) {
      best = q + 1 - s;
      best_node = node;
    }
  }
  return {best_node, best};
}

void AddedTokenMatcher::find_all(std::string_view text, std::vector<AddedTokenMatch>& out) const {
  if (empty_) return;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t accepted_end = 0;  // end of the previous accepted match: lstrip never reaches before it
  size_t s = 0;
  while (s < text.size()) {
    if (!first_byte_[p[s]]) {
      ++s;
      continue;
    }
    const auto [node_index, length] = longest_at(text, s);
    if (node_index < 0) {
      ++s;
      continue;
    }
    size_t start = s, end = s + length;
    s = end;  // a match that is discarded below still consumes its span
    if (plain_) {
      out.push_back({start, end, nodes_[node_index].token});
      accepted_end = end;
      continue;
    }
    const Node& node = nodes_[node_index];
    if (node.single_word) {
      size_t n = 0;
      const char32_t before = char_before(text, start, n);
      const char32_t after = end < text.size() ? char_at(text, end, n) : 0;
      if ((start > 0 && is_word_char(before)) || (end < text.size() && is_word_char(after))) continue;
    }
    if (node.lstrip)
      while (start > accepted_end) {
        size_t n = 0;
        const char32_t c = char_before(text, start, n);
        if (!is_unicode_space(c) || start - n < accepted_end) break;
        start -= n;
      }
    if (node.rstrip)
      while (end < text.size()) {
        size_t n = 0;
        const char32_t c = char_at(text, end, n);
        if (!is_unicode_space(c)) break;
        end += n;
      }
    out.push_back({start, end, node.token});
    accepted_end = end;
    s = end;
  }
}

}  // namespace chronos::tokenizer_detail
