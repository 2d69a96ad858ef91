// How a model turns a conversation into prompt text: the Jinja chat_template of its
// tokenizer_config.json when it has one, rendered as transformers' apply_chat_template renders it
// (messages, tools, add_generation_prompt and the named special tokens as variables); the built-in
// Chronos template (render_chat) otherwise. docs/tokenizer.md "Chat templates".
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "chronos/tokenizer/tokenizer_config.h"

namespace chronos {

class JinjaTemplate;

class ChatFormatter {
 public:
  // The built-in Chronos template.
  ChatFormatter();
  // The config's chat_template when it has one (FormatError "SOURCE:LINE: ..." when it does not
  // parse), the built-in template otherwise. `source` names the config in messages.
  ChatFormatter(const TokenizerConfig& config, const std::string& source);
  // For a tokenizer.json (or a folder holding one): the tokenizer_config.json beside it, if any.
  static ChatFormatter for_tokenizer(const std::string& tokenizer_path);

  // `messages`: [{"role", "content", ...}, ...]; `tools`: null or a list of function schemas;
  // `extra`: more template variables (e.g. {"enable_thinking": false}). Throws InvalidArgument for a
  // conversation the template refuses, FormatError when the template fails on it.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& tools = nullptr,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  // "the chat_template of FILE" or "the built-in Chronos chat template", for messages.
  const std::string& description() const { return description_; }

 private:
  std::shared_ptr<const JinjaTemplate> jinja_;
  TokenizerConfig config_;
  std::string description_;
};

}  // namespace chronos
