#include "tokenizer/normalized_text.h"

#include "tokenizer/unicode.h"

namespace chronos::tokenizer_detail {
namespace {

// Length of the character (or lone invalid byte) starting at text[i].
size_t char_length(const std::string& text, size_t i) {
  char32_t cp;
  bool ok;
  return utf8_step(reinterpret_cast<const unsigned char*>(text.data()) + i, text.size() - i, cp, ok);
}

// Start of the character holding byte i: back over at most three continuation bytes, accepting
// the lead byte only when its character really covers byte i.
size_t char_start(const std::string& text, size_t i) {
  for (size_t back = 1; back <= 3 && back <= i; ++back) {
    const unsigned char b = static_cast<unsigned char>(text[i - back]);
    if ((b & 0xC0) == 0x80) continue;
    if (b >= 0xC0 && i - back + char_length(text, i - back) > i) return i - back;
    break;
  }
  return i;
}

}  // namespace

void append_char(std::string& out, char32_t cp) {
  if (cp >= kRawByte) {
    out.push_back(static_cast<char>(cp - kRawByte));
  } else {
    append_utf8(out, cp);
  }
}

uint32_t NormalizedText::align_start(size_t i) const {
  if (explicit_) return align_[i].first;
  return base_ + static_cast<uint32_t>(char_start(text_, i));
}

uint32_t NormalizedText::align_end(size_t i) const {
  if (explicit_) return align_[i].second;
  const size_t start = char_start(text_, i);
  return base_ + static_cast<uint32_t>(start + char_length(text_, start));
}

void NormalizedText::materialize() {
  if (explicit_) return;
  align_.resize(text_.size());
  size_t i = 0;
  while (i < text_.size()) {
    const size_t n = char_length(text_, i);
    for (size_t k = 0; k < n; ++k) align_[i + k] = {base_ + static_cast<uint32_t>(i), base_ + static_cast<uint32_t>(i + n)};
    i += n;
  }
  explicit_ = true;
}

NormalizedText NormalizedText::slice(size_t start, size_t end) const {
  NormalizedText out;
  out.text_ = text_.substr(start, end - start);
  if (!explicit_) {
    out.base_ = base_ + static_cast<uint32_t>(start);
    return out;
  }
  out.explicit_ = true;
  out.align_.assign(align_.begin() + static_cast<std::ptrdiff_t>(start), align_.begin() + static_cast<std::ptrdiff_t>(end));
  out.base_ = start < end ? align_[start].first : (start < align_.size() ? align_[start].first : base_);
  return out;
}

void NormalizedText::transform(const std::vector<CharChange>& dest) {
  materialize();
  const size_t to = text_.size();
  size_t offset = 0;
  std::string text;
  std::vector<std::pair<uint32_t, uint32_t>> align;
  text.reserve(to);
  align.reserve(to);
  for (const CharChange& d : dest) {
    std::pair<uint32_t, uint32_t> a;
    if (d.change > 0) {
      a = offset == 0 ? std::pair<uint32_t, uint32_t>{0, 0} : align_[offset - 1];
    } else {
      a = offset < align_.size() ? align_[offset] : (offset == 0 ? std::pair<uint32_t, uint32_t>{0, 0} : align_[offset - 1]);
      if (offset < to) offset += char_length(text_, offset);
      for (int r = 0; r < -d.change && offset < to; ++r) offset += char_length(text_, offset);
    }
    const size_t before = text.size();
    append_char(text, d.c);
    align.insert(align.end(), text.size() - before, a);
  }
  text_ = std::move(text);
  align_ = std::move(align);
}

void NormalizedText::prepend(std::string_view prefix) {
  if (text_.empty() || prefix.empty()) return;
  materialize();
  const std::pair<uint32_t, uint32_t> first = align_[0];
  text_.insert(0, prefix);
  align_.insert(align_.begin(), prefix.size(), first);
}

void NormalizedText::replace(const std::vector<std::pair<size_t, size_t>>& matches, std::string_view content) {
  if (matches.empty()) return;
  materialize();
  std::string text;
  std::vector<std::pair<uint32_t, uint32_t>> align;
  text.reserve(text_.size());
  align.reserve(text_.size());
  size_t copied = 0;
  for (const auto& [start, end] : matches) {
    text.append(text_, copied, start - copied);
    align.insert(align.end(), align_.begin() + static_cast<std::ptrdiff_t>(copied), align_.begin() + static_cast<std::ptrdiff_t>(start));
    const std::pair<uint32_t, uint32_t> a = end == 0 ? std::pair<uint32_t, uint32_t>{0, 0} : align_[end - 1];
    text.append(content);
    align.insert(align.end(), content.size(), a);
    copied = end;
  }
  text.append(text_, copied, std::string::npos);
  align.insert(align.end(), align_.begin() + static_cast<std::ptrdiff_t>(copied), align_.end());
  text_ = std::move(text);
  align_ = std::move(align);
}

void NormalizedText::keep(size_t start, size_t end) {
  if (start == 0 && end == text_.size()) return;
  if (explicit_) {
    align_.erase(align_.begin() + static_cast<std::ptrdiff_t>(end), align_.end());
    align_.erase(align_.begin(), align_.begin() + static_cast<std::ptrdiff_t>(start));
  } else {
    base_ += static_cast<uint32_t>(start);
  }
  text_ = text_.substr(start, end - start);
}

}  // namespace chronos::tokenizer_detail
