// The ByteLevel pre-tokenizer of HF tokenizers: optionally a leading space, then the GPT-2 split
// regex (contractions 's 't 're 've 'm 'll 'd; optional space + letters; optional space + digits;
// optional space + other symbols; white-space runs that leave their last character to the next piece).
// The character classes (\p{L}, \p{N}, \s) are those of HF tokenizers, code point for code point.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace chronos {

struct ByteLevelPreTokenizer {
  bool add_prefix_space = false;  // prepend " " to a segment that does not start with one
  bool use_regex = true;          // false: a whole segment is one piece
  bool trim_offsets = true;       // affects only character offsets (not computed here); kept for the file

  // Appends the pieces of `segment` to `pieces` (views into `segment`). When add_prefix_space applies,
  // the caller must pass the segment with its space already prepended (see needs_prefix_space).
  void split(std::string_view segment, std::vector<std::string_view>& pieces) const;
  bool needs_prefix_space(std::string_view segment) const {
    return add_prefix_space && (segment.empty() || segment.front() != ' ');
  }
};

// The GPT-2 split alone. Bytes that are not well-formed UTF-8 count as "other symbols", one byte
// each, so any byte string splits and the pieces always concatenate back to the input.
void split_gpt2(std::string_view text, std::vector<std::string_view>& pieces);

}  // namespace chronos
