// The added tokens of the Chronos vocabulary, shared with MiniMind (docs/tokenizer.md "Added tokens"): ids 0..35,
// registered before any merge. Ids 0..20 are special (dropped by skip-special decoding); the tool,
// think and buffer tokens 21..35 decode as text.
#pragma once

#include <vector>

#include "chronos/tokenizer/tokenizer.h"

namespace chronos {

inline constexpr const char* kEndOfText = "<|endoftext|>";  // id 0: pad and unk
inline constexpr const char* kImStart = "<|im_start|>";     // id 1: BOS
inline constexpr const char* kImEnd = "<|im_end|>";         // id 2: EOS
inline constexpr const char* kThinkOpen = "<think>";        // id 25
inline constexpr const char* kThinkClose = "</think>";      // id 26

// The 36 added tokens with their ids and special flags.
std::vector<AddedToken> chronos_added_tokens();

}  // namespace chronos
