// libFuzzer target: any byte string given as a chat template must either parse or raise a
// chronos::Error, and a template that parses must render a fixed conversation or raise one: no
// crash, no hang (loops run over the context's finite lists; range() is bounded).
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "chronos/core/error.h"
#include "chronos/tokenizer/jinja_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(R"({
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true,
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi 🙂"},
                 {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
                 {"role": "tool", "content": "{\"ok\": true}"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})");
  const std::string source(reinterpret_cast<const char*>(data), size);
  std::optional<chronos::JinjaTemplate> tpl;
  try {
    tpl.emplace(source, "fuzz");
    (void)tpl->render(context);
  } catch (const chronos::Error&) {
  }
  return 0;
}
