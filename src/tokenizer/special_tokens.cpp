#include "chronos/tokenizer/special_tokens.h"

#include <string>

namespace chronos {

std::vector<AddedToken> chronos_added_tokens() {
  static const char* const kContents[] = {
      "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
      "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
      "<|image_pad|>", "<|video_pad|>", "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>", "<tts_pad>",
      "<tts_text_bos>", "<tts_text_eod>", "<tts_text_bos_single>", "<tool_call>", "</tool_call>", "<tool_response>",
      "</tool_response>", "<think>", "</think>", "<|buffer1|>", "<|buffer2|>", "<|buffer3|>", "<|buffer4|>",
      "<|buffer5|>", "<|buffer6|>", "<|buffer7|>", "<|buffer8|>", "<|buffer9|>"};
  constexpr TokenId kLastSpecial = 20;
  std::vector<AddedToken> tokens;
  for (TokenId id = 0; id < static_cast<TokenId>(std::size(kContents)); ++id) {
    AddedToken t;
    t.id = id;
    t.content = kContents[id];
    t.special = id <= kLastSpecial;
    t.normalized = false;
    tokens.push_back(std::move(t));
  }
  return tokens;
}

}  // namespace chronos
