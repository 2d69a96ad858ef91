#include "chronos/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include "chronos/core/error.h"

namespace chronos {
namespace {

using nlohmann::ordered_json;

ChatMessage msg(std::string role, std::string content) { return ChatMessage{std::move(role), std::move(content), std::nullopt, {}}; }

TEST(ChatTemplate, SpecExample) {
  EXPECT_EQ(render_chat({msg("user", "what is lookahead prefetch"), msg("assistant", "router cache expert")}),
            "<|im_start|>user\nwhat is lookahead prefetch<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
            "router cache expert<|im_end|>\n");
}

TEST(ChatTemplate, SystemFirstAndLater) {
  EXPECT_EQ(render_chat({msg("system", "S"), msg("user", "u"), msg("system", "late")}),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>system\nlate<|im_end|>\n");
}

TEST(ChatTemplate, GenerationPrompt) {
  ChatTemplateOptions options;
  options.add_generation_prompt = true;
  EXPECT_EQ(render_chat({msg("user", "hi")}, {}, options),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  options.open_thinking = true;
  EXPECT_EQ(render_chat({msg("user", "hi")}, {}, options), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n");
  EXPECT_EQ(render_chat({}, {}, options), "<|im_start|>assistant\n<think>\n");
  options.add_generation_prompt = false;  // open_thinking alone adds nothing
  EXPECT_EQ(render_chat({msg("user", "hi")}, {}, options), "<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplate, ReasoningContentIsTrimmedOfNewlines) {
  ChatMessage a = msg("assistant", "\n\nanswer\n");
  a.reasoning_content = "\n\nthink hard\n\n";
  EXPECT_EQ(render_chat({a}), "<|im_start|>assistant\n<think>\nthink hard\n</think>\n\nanswer\n<|im_end|>\n");
  a.reasoning_content = "";  // present but empty: an empty think block, content not split
  a.content = "x</think>y";
  EXPECT_EQ(render_chat({a}), "<|im_start|>assistant\n<think>\n\n</think>\n\nx</think>y<|im_end|>\n");
}

TEST(ChatTemplate, ThinkBlockInsideContentIsSplit) {
  EXPECT_EQ(render_chat({msg("assistant", "<think>\nstep 1\n</think>\n\nresult")}),
            "<|im_start|>assistant\n<think>\nstep 1\n</think>\n\nresult<|im_end|>\n");
  // Without an opening tag everything before </think> is reasoning.
  EXPECT_EQ(render_chat({msg("assistant", "plan\n</think>done")}), "<|im_start|>assistant\n<think>\nplan\n</think>\n\ndone<|im_end|>\n");
  // Python's split: reasoning before the first </think>, content after the last.
  EXPECT_EQ(render_chat({msg("assistant", "a</think>b</think>c")}), "<|im_start|>assistant\n<think>\na\n</think>\n\nc<|im_end|>\n");
}

TEST(ChatTemplate, ToolCallsAndResponses) {
  ChatMessage call = msg("assistant", "");
  call.tool_calls.push_back({"get_weather", ordered_json::parse(R"({"city": "Köln", "days": 2})")});
  call.tool_calls.push_back({"raw", "{\"already\": \"text\"}"});
  const std::string text = render_chat({msg("user", "w?"), call, msg("tool", "r1"), msg("tool", "r2"), msg("assistant", "ok")});
  EXPECT_EQ(text,
            "<|im_start|>user\nw?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\n"
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Köln\", \"days\": 2}}\n</tool_call>\n"
            "<tool_call>\n{\"name\": \"raw\", \"arguments\": {\"already\": \"text\"}}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nok<|im_end|>\n");
  // After text, a newline separates the first call.
  ChatMessage after = msg("assistant", "Checking.");
  after.tool_calls.push_back({"f", ordered_json::object()});
  EXPECT_EQ(render_chat({after}), "<|im_start|>assistant\n<think>\n\n</think>\n\nChecking.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call><|im_end|>\n");
}

TEST(ChatTemplate, ToolsGoInTheSystemTurn) {
  const std::vector<ordered_json> tools = {ordered_json::parse(R"({"name": "f", "parameters": {"b": 1, "a": [true, null]}})")};
  const std::string header =
      "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
      "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
      "{\"name\": \"f\", \"parameters\": {\"b\": 1, \"a\": [true, null]}}\n</tools>\n\n"
      "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
      "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n";
  EXPECT_EQ(render_chat({msg("system", "Be brief."), msg("user", "u")}, tools),
            "<|im_start|>system\nBe brief.\n\n" + header + "<|im_start|>user\nu<|im_end|>\n");
  EXPECT_EQ(render_chat({msg("user", "u")}, tools), "<|im_start|>system\n" + header + "<|im_start|>user\nu<|im_end|>\n");
}

TEST(ChatTemplate, UnknownRoleIsRefused) {
  try {
    render_chat({msg("user", "a"), msg("narrator", "b")});
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("message 1 has role 'narrator'"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, PythonJsonDumps) {
  EXPECT_EQ(python_json_dumps(ordered_json::parse(R"({"z": 1, "a": [1, -2, true, false, null], "s": "é\n\t\"\\\u0001"})")),
            "{\"z\": 1, \"a\": [1, -2, true, false, null], \"s\": \"é\\n\\t\\\"\\\\\\u0001\"}");
  EXPECT_EQ(python_json_dumps(1.0), "1.0");
  EXPECT_EQ(python_json_dumps(2.5), "2.5");
  EXPECT_EQ(python_json_dumps(0.1), "0.1");
  EXPECT_EQ(python_json_dumps(-0.0), "-0.0");
  EXPECT_EQ(python_json_dumps(1e-05), "1e-05");
  EXPECT_EQ(python_json_dumps(0.0001), "0.0001");
  EXPECT_EQ(python_json_dumps(1e16), "1e+16");
  EXPECT_EQ(python_json_dumps(1e15), "1000000000000000.0");
  EXPECT_EQ(python_json_dumps(123456.789), "123456.789");
  EXPECT_EQ(python_json_dumps(1.5e300), "1.5e+300");
  EXPECT_EQ(python_json_dumps(ordered_json::array()), "[]");
  EXPECT_EQ(python_json_dumps(ordered_json::object()), "{}");
}

TEST(ChatTemplate, ParseConversationFromData) {
  // The fixture format: empty strings mean absent, tool_calls/tools may be JSON text.
  const auto data = ordered_json::parse(R"([
    {"role": "system", "content": "S", "tools": "[{\"name\": \"f\"}]", "reasoning_content": "", "tool_calls": ""},
    {"role": "user", "content": "u", "reasoning_content": "", "tools": "", "tool_calls": ""},
    {"role": "assistant", "content": "a", "reasoning_content": "", "tool_calls": "[{\"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1}}}]"},
    {"role": "assistant", "content": null, "reasoning_content": "why"}
  ])");
  const ChatConversation c = parse_conversation(data);
  ASSERT_EQ(c.messages.size(), 4u);
  ASSERT_EQ(c.tools.size(), 1u);
  EXPECT_EQ(c.tools[0]["name"], "f");
  EXPECT_FALSE(c.messages[1].reasoning_content.has_value());
  ASSERT_EQ(c.messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(c.messages[2].tool_calls[0].name, "f");
  EXPECT_EQ(c.messages[2].tool_calls[0].arguments, ordered_json::parse(R"({"x": 1})"));
  EXPECT_EQ(c.messages[3].content, "");
  EXPECT_EQ(c.messages[3].reasoning_content, "why");

  EXPECT_THROW(parse_conversation(ordered_json::parse(R"({"role": "user"})")), InvalidArgument);
  EXPECT_THROW(parse_conversation(ordered_json::parse(R"([{"content": "no role"}])")), InvalidArgument);
  EXPECT_THROW(parse_conversation(ordered_json::parse(R"([{"role": "assistant", "tool_calls": "[oops"}])")), InvalidArgument);
}

TEST(ChatTemplate, JinjaTwinIsStored) {
  const std::string& jinja = chat_template_jinja();
  for (const char* part : {"<think>\\n\\n</think>\\n\\n", "reasoning_content", "tool_response", "open_thinking", "add_generation_prompt"})
    EXPECT_NE(jinja.find(part), std::string::npos) << part;
}

}  // namespace
}  // namespace chronos
