#include "chronos/tokenizer/utf8.h"

#include "tokenizer/unicode.h"

namespace chronos {
namespace {

using tokenizer_detail::utf8_step;

// Length of the well-formed prefix of a character starting at p[0..n): how many bytes a decoder
// can consume before it knows the sequence is broken (0 for a byte that never starts one). Equals
// the full length when the character is complete.
size_t valid_prefix(const unsigned char* p, size_t n, size_t& needed) {
  const unsigned char b0 = p[0];
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    needed = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    needed = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    needed = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    needed = 1;
    return b0 < 0x80 ? 1 : 0;
  }
  size_t i = 1;
  if (i < n && p[i] >= lo && p[i] <= hi) ++i;
  else return 1;
  while (i < needed && i < n && (p[i] & 0xC0) == 0x80) ++i;
  return i;
}

}  // namespace

bool is_valid_utf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < bytes.size();) {
    char32_t cp;
    bool ok;
    i += utf8_step(p + i, bytes.size() - i, cp, ok);
    if (!ok) return false;
  }
  return true;
}

std::string to_valid_utf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    size_t needed;
    const size_t got = valid_prefix(p + i, bytes.size() - i, needed);
    if (got == needed) {
      out.append(bytes.data() + i, got);
      i += got;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal subpart (at least one byte)
      i += got == 0 ? 1 : got;
    }
  }
  return out;
}

size_t utf8_incomplete_tail(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  for (size_t s = n > 3 ? n - 3 : 0; s < n; ++s) {
    size_t needed;
    const size_t got = valid_prefix(p + s, n - s, needed);
    if (got == n - s && got < needed) return n - s;
  }
  return 0;
}

}  // namespace chronos
