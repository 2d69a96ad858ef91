// libFuzzer target: any byte string given as a conversation (the JSON list of messages the data
// files and the chat API carry) must either render with the chat template, with and without the
// generation prompt, or raise a chronos::Error. Nothing else.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"
#include "chronos/tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const chronos::ChatConversation conversation =
        chronos::parse_conversation(chronos::parse_ordered_json(text, "messages"));
    chronos::ChatTemplateOptions options;
    (void)chronos::render_chat(conversation.messages, conversation.tools, options);
    options.add_generation_prompt = true;
    options.open_thinking = size % 2 == 0;
    (void)chronos::render_chat(conversation.messages, conversation.tools, options);
  } catch (const chronos::Error&) {
  }
  return 0;
}
