// UTF-8 helpers for tokenizer output: byte-level BPE tokens may end in the middle of a character.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace chronos {

bool is_valid_utf8(std::string_view bytes);

// Replaces each maximal ill-formed subsequence with U+FFFD (the rule of the Unicode standard §3.9
// that Rust's String::from_utf8_lossy and so HF's decode follow); valid text comes back unchanged.
std::string to_valid_utf8(std::string_view bytes);

// Number of trailing bytes (0..3) that are the start of a well-formed character still missing its
// last bytes: a stream decoder holds these back until the next token completes them.
size_t utf8_incomplete_tail(std::string_view bytes);

}  // namespace chronos
