// Private to the tokenizer: UTF-8 stepping and the character classes of the GPT-2 split regex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace chronos::tokenizer_detail {

// The classes the split regex distinguishes: \p{L}, \p{N}, \s, and everything else (invalid bytes too).
enum class CharClass : uint8_t { other, letter, number, space };

struct CodePointRange {
  char32_t first;
  char32_t last;
  CharClass cls;
};

// Generated tables (unicode_tables.cpp): sorted, disjoint; code points outside them are `other`.
extern const CodePointRange kCodePointRanges[];
extern const size_t kCodePointRangeCount;

// Class of a code point (two-stage table built once; constant time).
CharClass char_class(char32_t cp);

// Class of an ASCII byte without a table walk (the splitter's fast path); equals char_class(c).
constexpr CharClass ascii_class(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::letter;
  if (c >= '0' && c <= '9') return CharClass::number;
  if (c == ' ' || (c >= '\t' && c <= '\r')) return CharClass::space;
  return CharClass::other;
}

// One step of UTF-8 decoding at p[0..n), n >= 1. Returns the length of the well-formed character
// there (1..4) and its code point; a byte that does not start a well-formed character (stray
// continuation, overlong form, surrogate, > U+10FFFF, truncated) returns 1 with ok = false.
inline size_t utf8_step(const unsigned char* p, size_t n, char32_t& cp, bool& ok) {
  const unsigned char b0 = p[0];
  ok = true;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  auto cont = [&](size_t i) { return i < n && (p[i] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (cont(1)) {
      cp = (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
      return 2;
    }
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    // E0 needs A0..BF (no overlong), ED needs 80..9F (no surrogates).
    const unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
    if (n > 2 && p[1] >= lo && p[1] <= hi && cont(2)) {
      cp = (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
      return 3;
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    // F0 needs 90..BF (no overlong), F4 needs 80..8F (<= U+10FFFF).
    const unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (n > 3 && p[1] >= lo && p[1] <= hi && cont(2) && cont(3)) {
      cp = (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
      return 4;
    }
  }
  ok = false;
  cp = 0xFFFD;
  return 1;
}

// Calls f(code point, ok, start, length) for each character of `s`; a byte that does not start a
// well-formed character is a character of its own with ok false (see utf8_step).
template <class F>
void for_each_char(std::string_view s, F f) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    bool ok;
    const size_t n = utf8_step(p + i, s.size() - i, cp, ok);
    f(cp, ok, i, n);
    i += n;
  }
}

// Appends the UTF-8 encoding of cp (a valid scalar value).
template <typename String>
void append_utf8(String& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace chronos::tokenizer_detail
