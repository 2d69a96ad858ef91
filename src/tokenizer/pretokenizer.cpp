#include "chronos/tokenizer/pretokenizer.h"

#include "tokenizer/unicode.h"

namespace chronos {
namespace {

using tokenizer_detail::ascii_class;
using tokenizer_detail::CharClass;
using tokenizer_detail::utf8_step;

struct Char {
  size_t len;
  CharClass cls;
};

inline Char char_at(const unsigned char* p, size_t n) {
  if (p[0] < 0x80) return {1, ascii_class(p[0])};
  char32_t cp;
  bool ok;
  const size_t len = utf8_step(p, n, cp, ok);
  return {len, ok ? tokenizer_detail::char_class(cp) : CharClass::other};
}

// Length of the contraction at p ('s 't 're 've 'm 'll 'd, case-sensitive as in the regex), or 0.
inline size_t contraction(const unsigned char* p, size_t n) {
  if (n < 2 || p[0] != '\'') return 0;
  switch (p[1]) {
    case 's': case 't': case 'm': case 'd': return 2;
    case 'r': case 'v': return n >= 3 && p[2] == 'e' ? 3 : 0;
    case 'l': return n >= 3 && p[2] == 'l' ? 3 : 0;
    default: return 0;
  }
}

}  // namespace

// The regex alternatives tried in order at each position, as a leftmost-first regex engine would:
//   's|'t|'re|'ve|'m|'ll|'d |  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ |  \s+(?!\S) |  \s+
// Every character is matched by one of them, so the pieces tile the text.
void split_gpt2(std::string_view text, std::vector<std::string_view>& pieces) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (const size_t c = contraction(p + i, n - i)) {
      pieces.emplace_back(text.data() + i, c);
      i += c;
      continue;
    }
    const Char first = char_at(p + i, n - i);
    size_t j = i;  // where the run of one class starts (after an optional single space)
    CharClass run = first.cls;
    if (p[i] == ' ' && i + 1 < n) {
      const Char next = char_at(p + i + 1, n - i - 1);
      if (next.cls != CharClass::space) {
        run = next.cls;
        j = i + 1;
      }
    }
    if (run != CharClass::space) {
      while (j < n) {
        const Char c = char_at(p + j, n - j);
        if (c.cls != run) break;
        j += c.len;
      }
      pieces.emplace_back(text.data() + i, j - i);
      i = j;
      continue;
    }
    // White space: the whole run when it ends the text; otherwise all but its last character (which
    // then prefixes the next piece), or the single character when the run is only one long.
    size_t end = i, last = i;
    while (end < n) {
      const Char c = char_at(p + end, n - end);
      if (c.cls != CharClass::space) break;
      last = end;
      end += c.len;
    }
    const size_t stop = (end == n || last == i) ? end : last;
    pieces.emplace_back(text.data() + i, stop - i);
    i = stop;
  }
}

void ByteLevelPreTokenizer::split(std::string_view segment, std::vector<std::string_view>& pieces) const {
  if (segment.empty()) return;
  if (use_regex) {
    split_gpt2(segment, pieces);
  } else {
    pieces.push_back(segment);
  }
}

}  // namespace chronos
