// Jinja templates as Hugging Face chat templates use them (tokenizer_config.json "chat_template"),
// rendered exactly as @huggingface/jinja renders them (the engine of transformers.js): the same
// whitespace control (lstrip_blocks and trim_blocks on), statements (if/elif/else, for with loop.*,
// set with namespace(), macro, call, filter, break, continue), expressions, filters, tests and string
// and mapping methods. Where that engine follows JavaScript rather than Python (true renders as
// "true", strip() trims all white space), so does this one: docs/tokenizer.md "Chat templates".
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

namespace chronos {

class JinjaTemplate {
 public:
  // Parses `source`. Throws FormatError "NAME:LINE: ..." for syntax the engine does not accept.
  explicit JinjaTemplate(const std::string& source, const std::string& name = "chat_template");

  // Renders with the variables of `context`, a JSON object (messages, add_generation_prompt,
  // bos_token, tools, ...). Throws FormatError "NAME:LINE: ..." when the template fails on this
  // input (an unknown filter, a type error), InvalidArgument "NAME:LINE: ..." when it calls
  // raise_exception (it refuses the input, e.g. roles that do not alternate). Thread-safe.
  std::string render(const nlohmann::ordered_json& context) const;

  const std::string& name() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace chronos
