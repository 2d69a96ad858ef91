#include "chronos/tokenizer/chat_template.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"
#include "tokenizer/json_string.h"

namespace chronos {
namespace {

using nlohmann::ordered_json;

const char* const kTurnStart = "<|im_start|>";
const char* const kTurnEnd = "<|im_end|>\n";

// Python's str.strip/lstrip/rstrip with '\n' as the only character to remove.
std::string lstrip_newlines(const std::string& s) {
  const size_t b = s.find_first_not_of('\n');
  return b == std::string::npos ? std::string() : s.substr(b);
}
std::string rstrip_newlines(const std::string& s) {
  const size_t e = s.find_last_not_of('\n');
  return e == std::string::npos ? std::string() : s.substr(0, e + 1);
}
std::string strip_newlines(const std::string& s) { return lstrip_newlines(rstrip_newlines(s)); }

// Python's s.split(sep)[0] and s.split(sep)[-1].
std::string before_first(const std::string& s, const std::string& sep) {
  const size_t p = s.find(sep);
  return p == std::string::npos ? s : s.substr(0, p);
}
std::string after_last(const std::string& s, const std::string& sep) {
  const size_t p = s.rfind(sep);
  return p == std::string::npos ? s : s.substr(p + sep.size());
}

// Python's float repr: the shortest digits that read back to the same double, in positional
// notation for 1e-4 <= |v| < 1e16, in scientific notation ("1e-05", "1e+16") otherwise.
void append_python_float(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v < 0 ? "-Infinity" : "Infinity";
    return;
  }
  char buf[40];
  for (int precision = 0; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  // buf is "[-]d[.ddd]e[+-]xx": split into sign, digits and exponent.
  std::string text(buf);
  std::string sign;
  if (text[0] == '-') {
    sign = "-";
    text.erase(0, 1);
  }
  const size_t e = text.find('e');
  const int exponent = std::atoi(text.c_str() + e + 1);
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (text[i] != '.') digits.push_back(text[i]);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int point = exponent + 1;  // digits are 0.d1d2... x 10^point
  out += sign;
  if (point <= -4 || point > 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ex[16];
    std::snprintf(ex, sizeof ex, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += ex;
  } else if (point <= 0) {
    out += "0." + std::string(static_cast<size_t>(-point), '0') + digits;
  } else if (static_cast<size_t>(point) < digits.size()) {
    out += digits.substr(0, point) + "." + digits.substr(point);
  } else {
    out += digits + std::string(point - digits.size(), '0') + ".0";
  }
}

void append_python_json(std::string& out, const ordered_json& v) {
  switch (v.type()) {
    case ordered_json::value_t::null: out += "null"; break;
    case ordered_json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case ordered_json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); break;
    case ordered_json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); break;
    case ordered_json::value_t::number_float: append_python_float(out, v.get<double>()); break;
    case ordered_json::value_t::string: tokenizer_detail::append_json_string(out, v.get_ref<const std::string&>()); break;
    case ordered_json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += ", ";
        first = false;
        append_python_json(out, item);
      }
      out.push_back(']');
      break;
    }
    case ordered_json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        tokenizer_detail::append_json_string(out, it.key());
        out += ": ";
        append_python_json(out, it.value());
      }
      out.push_back('}');
      break;
    }
    default: throw InvalidArgument("python_json_dumps: binary values have no JSON text");
  }
}

void render_assistant(std::string& out, const ChatMessage& m) {
  std::string content = m.content;
  std::string reasoning;
  if (m.reasoning_content) {
    reasoning = *m.reasoning_content;
  } else if (content.find("</think>") != std::string::npos) {
    reasoning = lstrip_newlines(after_last(rstrip_newlines(before_first(content, "</think>")), "<think>"));
    content = lstrip_newlines(after_last(content, "</think>"));
  }
  out += kTurnStart;
  out += "assistant\n<think>\n" + strip_newlines(reasoning) + "\n</think>\n\n" + lstrip_newlines(content);
  for (size_t i = 0; i < m.tool_calls.size(); ++i) {
    // A newline separates a call from the text (or the call) before it; the text tested is the
    // content before its leading newlines were dropped, as in the Jinja template.
    if (i > 0 || !content.empty()) out += "\n";
    const ToolCall& call = m.tool_calls[i];
    out += "<tool_call>\n{\"name\": \"" + call.name + "\", \"arguments\": ";
    if (call.arguments.is_string()) out += call.arguments.get<std::string>();
    else append_python_json(out, call.arguments);
    out += "}\n</tool_call>";
  }
  out += kTurnEnd;
}

std::optional<ordered_json> optional_field(const ordered_json& message, const char* key, size_t index) {
  const auto it = message.find(key);
  if (it == message.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) {
    const std::string& text = it->get_ref<const std::string&>();
    if (text.empty()) return std::nullopt;  // the data files use "" for "absent"
    if (std::string(key) == "reasoning_content") return *it;
    try {
      return parse_ordered_json(text, key);
    } catch (const FormatError& e) {
      throw InvalidArgument(cat("message ", index, ": ", key, " is a string but not valid JSON (", e.what(), ")"));
    }
  }
  return *it;
}

}  // namespace

std::string python_json_dumps(const ordered_json& value) {
  std::string out;
  append_python_json(out, value);
  return out;
}

std::string render_chat(const std::vector<ChatMessage>& messages, const std::vector<ordered_json>& tools,
                        const ChatTemplateOptions& options) {
  std::string out;
  const bool system_first = !messages.empty() && messages[0].role == "system";
  if (!tools.empty()) {
    out += kTurnStart;
    out += "system\n";
    if (system_first) out += messages[0].content + "\n\n";
    out += "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
           "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    for (const auto& tool : tools) out += "\n" + python_json_dumps(tool);
    out += "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
           "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
           "<args-json-object>}\n</tool_call>";
    out += kTurnEnd;
  } else if (system_first) {
    out += kTurnStart;
    out += "system\n" + messages[0].content + kTurnEnd;
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i > 0)) {
      out += kTurnStart + m.role + "\n" + m.content + kTurnEnd;
    } else if (m.role == "assistant") {
      render_assistant(out, m);
    } else if (m.role == "tool") {
      // Consecutive tool results share one user turn.
      if (i == 0 || messages[i - 1].role != "tool") out += std::string(kTurnStart) + "user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (i + 1 == messages.size() || messages[i + 1].role != "tool") out += kTurnEnd;
    } else if (m.role != "system") {
      throw InvalidArgument(cat("chat message ", i, " has role '", m.role, "'; expected system, user, assistant or tool"));
    }
  }
  if (options.add_generation_prompt) {
    out += kTurnStart;
    out += options.open_thinking ? "assistant\n<think>\n" : "assistant\n<think>\n\n</think>\n\n";
  }
  return out;
}

ChatConversation parse_conversation(const ordered_json& messages) {
  if (!messages.is_array()) throw InvalidArgument("a conversation must be a JSON array of messages");
  ChatConversation conversation;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ordered_json& m = messages[i];
    if (!m.is_object()) throw InvalidArgument(cat("message ", i, " is not a JSON object"));
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) throw InvalidArgument(cat("message ", i, " has no \"role\" string"));
    ChatMessage message;
    message.role = role->get<std::string>();
    const auto content = m.find("content");
    // Non-text content renders as '' in the Jinja template; the same here.
    if (content != m.end() && content->is_string()) message.content = content->get<std::string>();
    if (auto reasoning = optional_field(m, "reasoning_content", i); reasoning && reasoning->is_string())
      message.reasoning_content = reasoning->get<std::string>();
    if (auto calls = optional_field(m, "tool_calls", i)) {
      if (!calls->is_array()) throw InvalidArgument(cat("message ", i, ": tool_calls must be a list"));
      for (const auto& item : *calls) {
        const ordered_json& fn = item.is_object() && item.contains("function") && item["function"].is_object() ? item["function"] : item;
        if (!fn.is_object()) throw InvalidArgument(cat("message ", i, ": each tool call must be an object"));
        ToolCall call;
        if (fn.contains("name") && fn["name"].is_string()) call.name = fn["name"].get<std::string>();
        call.arguments = fn.contains("arguments") ? fn["arguments"] : ordered_json::object();
        message.tool_calls.push_back(std::move(call));
      }
    }
    if (auto tools = optional_field(m, "tools", i)) {
      if (!tools->is_array()) throw InvalidArgument(cat("message ", i, ": tools must be a list of function schemas"));
      for (const auto& tool : *tools) conversation.tools.push_back(tool);
    }
    conversation.messages.push_back(std::move(message));
  }
  return conversation;
}

const std::string& chat_template_jinja() {
  // Equivalent to render_chat; tests/data/tokenizer/make_reference.mjs checks that it renders the
  // same text as MiniMind's template on every conversation of the fixture.
  static const std::string text =
      "{%- if tools %}\n"
      "{{- '<|im_start|>system\\n' }}\n"
      "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}\n"
      "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
      "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}\n"
      "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}\n"
      "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within "
      "<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\": "
      "<args-json-object>}\\n</tool_call><|im_end|>\\n' }}\n"
      "{%- elif messages[0].role == 'system' %}\n"
      "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n"
      "{%- endif %}\n"
      "{%- for message in messages %}\n"
      "{%- if message.content is string %}{%- set content = message.content %}{%- else %}{%- set content = '' %}{%- endif %}\n"
      "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}\n"
      "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}\n"
      "{%- elif message.role == 'assistant' %}\n"
      "{%- set reasoning = '' %}\n"
      "{%- if message.reasoning_content is string %}\n"
      "{%- set reasoning = message.reasoning_content %}\n"
      "{%- elif '</think>' in content %}\n"
      "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}\n"
      "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}\n"
      "{%- endif %}\n"
      "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}\n"
      "{%- if message.tool_calls %}\n"
      "{%- for call in message.tool_calls %}\n"
      "{%- if content or not loop.first %}{{- '\\n' }}{%- endif %}\n"
      "{%- if call.function %}{%- set call = call.function %}{%- endif %}\n"
      "{{- '<tool_call>\\n{\"name\": \"' }}{{- call.name }}{{- '\", \"arguments\": ' }}\n"
      "{%- if call.arguments is string %}{{- call.arguments }}{%- else %}{{- call.arguments | tojson }}{%- endif %}\n"
      "{{- '}\\n</tool_call>' }}\n"
      "{%- endfor %}\n"
      "{%- endif %}\n"
      "{{- '<|im_end|>\\n' }}\n"
      "{%- elif message.role == 'tool' %}\n"
      "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}\n"
      "{{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' }}\n"
      "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}\n"
      "{%- endif %}\n"
      "{%- endfor %}\n"
      "{%- if add_generation_prompt %}\n"
      "{{- '<|im_start|>assistant\\n' }}\n"
      "{%- if open_thinking is defined and open_thinking is true %}{{- '<think>\\n' }}{%- else %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}\n"
      "{%- endif %}\n";
  return text;
}

}  // namespace chronos
