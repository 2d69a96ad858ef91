// Private to the tokenizer: Unicode normalization (NFC, NFD, NFKC, NFKD) as HF tokenizers does it,
// including which input character each output character is aligned with: a character that
// decomposes yields change 0 then +1 per extra character, canonical reordering moves the changes
// with their characters, and a composition of k and c gets change(k) + change(c) - 1. Character
// data comes from utf8proc (a newer Unicode than HF's 9.0; they differ only for later characters).
#pragma once

#include <string_view>
#include <vector>

#include "tokenizer/normalized_text.h"

namespace chronos::tokenizer_detail {

enum class NormalForm { nfc, nfd, nfkc, nfkd };

// The (character, change) sequence of `text` in normal form `form`; false (and `out` untouched)
// when normalization changes nothing. Invalid UTF-8 bytes pass through as kRawByte + byte.
bool normalize(std::string_view text, NormalForm form, std::vector<CharChange>& out);

}  // namespace chronos::tokenizer_detail
