#include "tokenizer/unicode_normalize.h"

#include <utf8proc.h>

#include <algorithm>

#include "tokenizer/unicode.h"

namespace chronos::tokenizer_detail {
namespace {

struct Item {
  char32_t c;
  int change;
  int ccc;
};

int combining_class(char32_t c) {
  if (c < 0x300 || c >= kRawByte) return 0;
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

// Below U+00A0 nothing decomposes, nothing combines and every class is 0.
bool inert(char32_t c) { return c < 0xA0 || c >= kRawByte; }

// Can c be the second character of a primary composite? Only marks and a few scripts' vowel signs
// and jamo, none of them below U+0300 or among the ideographs and Hangul syllables.
bool may_compose_second(char32_t c) {
  if (c < 0x300 || c >= kRawByte) return false;
  if (c >= 0x3400 && c <= 0xA4CF) return false;
  if (c >= 0xAC00 && c <= 0xD7A3) return false;
  return true;
}

// The primary composite of (a, b), or 0.
char32_t compose(char32_t a, char32_t b) {
  if (!may_compose_second(b) || a >= kRawByte) return 0;
  utf8proc_int32_t buffer[2] = {static_cast<utf8proc_int32_t>(a), static_cast<utf8proc_int32_t>(b)};
  const utf8proc_ssize_t n = utf8proc_normalize_utf32(buffer, 2, static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
  return n == 1 ? static_cast<char32_t>(buffer[0]) : 0;
}

// Full decomposition, each character with its change (0 for the first, +1 for the rest).
void decompose(std::string_view text, bool compat, std::vector<Item>& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  const auto options = static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0));
  utf8proc_int32_t buffer[32];
  while (i < text.size()) {
    char32_t cp;
    bool ok;
    const size_t n = utf8_step(p + i, text.size() - i, cp, ok);
    i += n;
    if (!ok) {
      out.push_back({kRawByte + p[i - n], 0, 0});
      continue;
    }
    if (inert(cp)) {
      out.push_back({cp, 0, 0});
      continue;
    }
    int boundclass = 0;
    const utf8proc_ssize_t count = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buffer, 32, options, &boundclass);
    if (count <= 0 || count > 32) {
      out.push_back({cp, 0, combining_class(cp)});
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < count; ++k) {
      const auto c = static_cast<char32_t>(buffer[k]);
      out.push_back({c, k == 0 ? 0 : 1, combining_class(c)});
    }
  }
  // Canonical ordering: each run of non-starters sorted by class, stably; changes move along.
  size_t k = 0;
  while (k < out.size()) {
    if (out[k].ccc == 0) {
      ++k;
      continue;
    }
    size_t end = k;
    while (end < out.size() && out[end].ccc != 0) ++end;
    std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(k), out.begin() + static_cast<std::ptrdiff_t>(end),
                     [](const Item& a, const Item& b) { return a.ccc < b.ccc; });
    k = end;
  }
}

// Canonical composition over the decomposed stream, with HF's bookkeeping of changes: marks that
// are blocked or do not compose wait in `pending` and follow their starter.
void recompose(const std::vector<Item>& in, std::vector<CharChange>& out) {
  bool have_starter = false;
  Item starter{};
  int last_ccc = -1;  // class of the last character left pending; -1: none
  std::vector<Item> pending;
  auto flush = [&] {
    if (have_starter) out.push_back({starter.c, starter.change});
    for (const Item& p : pending) out.push_back({p.c, p.change});
    pending.clear();
    have_starter = false;
    last_ccc = -1;
  };
  for (const Item& item : in) {
    if (!have_starter) {
      if (item.ccc != 0) {
        out.push_back({item.c, item.change});
        continue;
      }
      starter = item;
      have_starter = true;
      continue;
    }
    const bool blocked = last_ccc >= 0 && last_ccc >= item.ccc;
    if (!blocked) {
      if (const char32_t c = compose(starter.c, item.c)) {
        starter = {c, starter.change + item.change - 1, 0};
        continue;
      }
    }
    if (item.ccc == 0) {
      flush();
      starter = item;
      have_starter = true;
      continue;
    }
    last_ccc = item.ccc;
    pending.push_back(item);
  }
  flush();
}

}  // namespace

bool normalize(std::string_view text, NormalForm form, std::vector<CharChange>& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  bool all_inert = true;
  for (size_t i = 0; i < text.size() && all_inert; ++i) all_inert = p[i] < 0x80;
  if (all_inert) return false;
  std::vector<Item> decomposed;
  decomposed.reserve(text.size());
  decompose(text, form == NormalForm::nfkc || form == NormalForm::nfkd, decomposed);
  std::vector<CharChange> result;
  result.reserve(decomposed.size());
  if (form == NormalForm::nfc || form == NormalForm::nfkc) {
    recompose(decomposed, result);
  } else {
    for (const Item& item : decomposed) result.push_back({item.c, item.change});
  }
  // Unchanged text leaves the alignment as it is.
  size_t i = 0, k = 0;
  bool same = true;
  while (same && i < text.size() && k < result.size()) {
    char32_t cp;
    bool ok;
    const size_t n = utf8_step(p + i, text.size() - i, cp, ok);
    const char32_t expected = ok ? cp : kRawByte + p[i];
    same = result[k].c == expected && result[k].change == 0;
    i += n;
    ++k;
  }
  if (same && i == text.size() && k == result.size()) return false;
  out = std::move(result);
  return true;
}

}  // namespace chronos::tokenizer_detail
