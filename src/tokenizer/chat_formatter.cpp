#include "chronos/tokenizer/chat_formatter.h"

#include <filesystem>

#include "chronos/core/error.h"
#include "chronos/tokenizer/chat_template.h"
#include "chronos/tokenizer/jinja_template.h"

namespace fs = std::filesystem;

namespace chronos {

ChatFormatter::ChatFormatter() : description_("the built-in Chronos chat template") {}

ChatFormatter::ChatFormatter(const TokenizerConfig& config, const std::string& source) : ChatFormatter() {
  config_ = config;
  if (config.chat_template.empty()) return;
  jinja_ = std::make_shared<const JinjaTemplate>(config.chat_template, cat(source, " chat_template"));
  description_ = cat("the chat_template of ", source);
}

ChatFormatter ChatFormatter::for_tokenizer(const std::string& tokenizer_path) {
  const fs::path dir = fs::is_directory(tokenizer_path) ? fs::path(tokenizer_path) : fs::path(tokenizer_path).parent_path();
  const fs::path config = (dir.empty() ? fs::path(".") : dir) / "tokenizer_config.json";
  if (!fs::exists(config)) return ChatFormatter();
  return ChatFormatter(TokenizerConfig::load(config.string()), config.string());
}

std::string ChatFormatter::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                  const nlohmann::ordered_json& tools, const nlohmann::ordered_json& extra) const {
  if (!messages.is_array()) throw InvalidArgument("the messages of a chat must be a JSON list");
  if (!tools.is_null() && !tools.is_array()) throw InvalidArgument("the tools of a chat must be a JSON list");
  if (!extra.is_object()) throw InvalidArgument("extra chat template variables must be a JSON object");
  if (!jinja_) {
    ChatConversation conversation = parse_conversation(messages);
    if (tools.is_array())
      for (const auto& t : tools) conversation.tools.push_back(t);
    ChatTemplateOptions options;
    options.add_generation_prompt = add_generation_prompt;
    if (const auto it = extra.find("enable_thinking"); it != extra.end() && it->is_boolean()) options.open_thinking = it->get<bool>();
    return render_chat(conversation.messages, conversation.tools, options);
  }
  // What transformers passes: the named special tokens, then the call's own variables.
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  const std::pair<const char*, const std::string*> tokens[] = {
      {"bos_token", &config_.bos_token}, {"eos_token", &config_.eos_token}, {"unk_token", &config_.unk_token}, {"pad_token", &config_.pad_token}};
  for (const auto& [key, value] : tokens)
    if (!value->empty()) context[key] = *value;
  context["messages"] = messages;
  if (tools.is_array()) context["tools"] = tools;
  context["add_generation_prompt"] = add_generation_prompt;
  for (auto it = extra.begin(); it != extra.end(); ++it) context[it.key()] = it.value();
  return jinja_->render(context);
}

}  // namespace chronos
