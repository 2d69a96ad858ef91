// Private to the tokenizer: text on its way through normalizers and pre-tokenizers, with, for every
// byte, the byte range of the input it stands for (HF's NormalizedString alignments). Token offsets
// come from it. While nothing has changed the text, the alignment is implicit (each byte stands for
// the character around it), so the common case costs no per-byte table.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chronos::tokenizer_detail {

// One character of a rewritten text and how it relates to the old text, as HF's transform takes it:
// change 0 replaces the next old character (taking its alignment), +1 inserts (taking the alignment
// of the old byte before the cursor), -n replaces the next old character and removes n more.
// A `c` of kRawByte + b stands for the invalid UTF-8 byte b, carried through unchanged.
struct CharChange {
  char32_t c;
  int change;
};
constexpr char32_t kRawByte = 0x110000;

class NormalizedText {
 public:
  NormalizedText() = default;
  // Input bytes [base, base + text.size()), unchanged.
  NormalizedText(std::string_view text, uint32_t base) : text_(text), base_(base) {}

  const std::string& text() const { return text_; }
  size_t size() const { return text_.size(); }
  bool empty() const { return text_.empty(); }

  // The input range that normalized bytes [start, end) stand for (start < end <= size()): the first
  // byte's start and the last byte's end.
  std::pair<uint32_t, uint32_t> original(size_t start, size_t end) const {
    return {align_start(start), align_end(end - 1)};
  }
  // Where in the input this text begins (HF's offsets_original().0); the base when empty.
  uint32_t original_start() const { return text_.empty() ? base_ : align_start(0); }

  // Normalized bytes [start, end) as a text of their own (start and end on character boundaries).
  NormalizedText slice(size_t start, size_t end) const;

  // Rewrites the whole text from `dest` (HF's transform over the full range).
  void transform(const std::vector<CharChange>& dest);
  // `prefix` before the text, aligned with the first character (nothing when the text is empty).
  void prepend(std::string_view prefix);
  // Each [start, end) of `matches` (sorted, disjoint) replaced by `content`, whose characters take the
  // alignment of the last byte of the match (of the byte before an empty match).
  void replace(const std::vector<std::pair<size_t, size_t>>& matches, std::string_view content);
  // Keeps the bytes [start, end) (character boundaries), with their alignments.
  void keep(size_t start, size_t end);

 private:
  uint32_t align_start(size_t i) const;
  uint32_t align_end(size_t i) const;
  void materialize();  // implicit alignment -> explicit table

  std::string text_;
  uint32_t base_ = 0;
  bool explicit_ = false;
  std::vector<std::pair<uint32_t, uint32_t>> align_;  // per byte, when explicit_
};

// UTF-8 of one code point, or the raw byte of kRawByte + b, appended.
void append_char(std::string& out, char32_t cp);

}  // namespace chronos::tokenizer_detail
