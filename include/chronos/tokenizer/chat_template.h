// The Chronos/MiniMind chat template (docs/tokenizer.md "Chat template"), rendered in C++ (no Jinja):
//   system (first message)  <|im_start|>system\n{content}<|im_end|>\n
//   user, later system      <|im_start|>{role}\n{content}<|im_end|>\n
//   assistant               <|im_start|>assistant\n<think>\n{R}\n</think>\n\n{C}[tool calls]<|im_end|>\n
//   tool (runs merge)       <|im_start|>user\n<tool_response>\n{content}\n</tool_response>...<|im_end|>\n
// The think block is always emitted. R is reasoning_content (newlines trimmed) or, without it, the
// part of the content before "</think>"; C is the rest with leading newlines removed. With tools the
// system turn lists them in <tools></tools> with fixed instructions. The output is character for
// character what tokenizer_config.json's Jinja template renders in HF transformers.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace chronos {

struct ToolCall {
  std::string name;
  // A string is written verbatim; anything else as JSON the way Python's json.dumps writes it
  // (", " and ": " separators, keys in insertion order, non-ASCII unescaped).
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
};

struct ChatMessage {
  std::string role;  // system | user | assistant | tool
  std::string content;
  std::optional<std::string> reasoning_content;  // assistant only; absent: taken from <think>..</think> in content
  std::vector<ToolCall> tool_calls;               // assistant only
};

struct ChatTemplateOptions {
  bool add_generation_prompt = false;  // append "<|im_start|>assistant\n" and an empty think block
  bool open_thinking = false;          // with the generation prompt: only "<think>\n", the model thinks
};

// Renders the conversation. `tools` (function schemas) add the tools system turn when not empty.
// Throws InvalidArgument naming the message for a role outside system/user/assistant/tool.
std::string render_chat(const std::vector<ChatMessage>& messages, const std::vector<nlohmann::ordered_json>& tools = {},
                        const ChatTemplateOptions& options = {});

// A conversation as the data files hold it: [{"role": ..., "content": ..., "reasoning_content": ...,
// "tool_calls": ..., "tools": ...}, ...]. An empty string means absent; tool_calls and tools
// may be JSON text. Tool calls may be {"name", "arguments"} or {"function": {"name", "arguments"}}.
// The tools of the first message (when it is a system message) go to `tools`.
struct ChatConversation {
  std::vector<ChatMessage> messages;
  std::vector<nlohmann::ordered_json> tools;
};
// Throws InvalidArgument naming the message and field at fault.
ChatConversation parse_conversation(const nlohmann::ordered_json& messages);

// A Jinja template that renders exactly like render_chat in HF transformers (variables: messages,
// tools, add_generation_prompt, open_thinking); stored in tokenizer_config.json for other tools.
const std::string& chat_template_jinja();

// Python's json.dumps(value, ensure_ascii=False): what the Jinja tojson filter writes.
std::string python_json_dumps(const nlohmann::ordered_json& value);

}  // namespace chronos
