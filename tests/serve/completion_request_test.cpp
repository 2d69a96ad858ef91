#include "chronos/serve/completion_request.h"

#include <gtest/gtest.h>

#include "chronos/serve/api_error.h"

namespace chronos {
namespace {

CompletionRequest chat(const std::string& body) { return parse_completion_request(body, Endpoint::chat, SamplingOptions{}); }
CompletionRequest completion(const std::string& body) {
  return parse_completion_request(body, Endpoint::completion, SamplingOptions{});
}

// The request is refused with 400 and a message holding `fragment`.
void expect_400(const std::string& body, const std::string& fragment, Endpoint endpoint = Endpoint::chat) {
  try {
    parse_completion_request(body, endpoint, SamplingOptions{});
    FAIL() << "accepted: " << body;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400) << body;
    EXPECT_EQ(e.type(), "invalid_request_error");
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

const std::string kUser = R"("messages": [{"role": "user", "content": "hi"}])";

TEST(CompletionRequest, ChatDefaultsComeFromTheServer) {
  SamplingOptions defaults;
  defaults.temperature = 0.5;
  defaults.top_k = 7;
  const CompletionRequest r = parse_completion_request("{" + kUser + "}", Endpoint::chat, defaults);
  EXPECT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0]["content"], "hi");
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_FALSE(r.seeded);
  EXPECT_DOUBLE_EQ(r.sampling.temperature, 0.5);
  EXPECT_EQ(r.sampling.top_k, 7);
  EXPECT_FALSE(r.sampling.greedy);
}

TEST(CompletionRequest, ReadsEverySamplingField) {
  const CompletionRequest r = chat("{" + kUser + R"(, "temperature": 0.3, "top_p": 0.9, "top_k": 12, "min_p": 0.05,
      "repetition_penalty": 1.1, "frequency_penalty": 0.5, "presence_penalty": -0.5, "seed": 42, "max_tokens": 9,
      "stop": ["\n\n", "END"], "stream": true, "stream_options": {"include_usage": true}, "n": 1, "user": "ignored"})");
  EXPECT_DOUBLE_EQ(r.sampling.temperature, 0.3);
  EXPECT_DOUBLE_EQ(r.sampling.top_p, 0.9);
  EXPECT_EQ(r.sampling.top_k, 12);
  EXPECT_DOUBLE_EQ(r.sampling.min_p, 0.05);
  EXPECT_DOUBLE_EQ(r.sampling.repetition_penalty, 1.1);
  EXPECT_DOUBLE_EQ(r.sampling.frequency_penalty, 0.5);
  EXPECT_DOUBLE_EQ(r.sampling.presence_penalty, -0.5);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_TRUE(r.seeded);
  EXPECT_EQ(*r.max_tokens, 9);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
}

TEST(CompletionRequest, TemperatureZeroIsGreedyAndNullIsUnset) {
  EXPECT_TRUE(chat("{" + kUser + R"(, "temperature": 0})").sampling.greedy);
  const CompletionRequest r = chat("{" + kUser + R"(, "temperature": null, "max_tokens": null, "stop": null})");
  EXPECT_FALSE(r.sampling.greedy);
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_TRUE(r.stop.empty());
}

TEST(CompletionRequest, MaxCompletionTokensWinsAndStopMayBeOneString) {
  const CompletionRequest r = chat("{" + kUser + R"(, "max_tokens": 5, "max_completion_tokens": 7, "stop": "x"})");
  EXPECT_EQ(*r.max_tokens, 7);
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
}

TEST(CompletionRequest, ContentPartsAreJoined) {
  const CompletionRequest r = chat(R"({"messages": [{"role": "system", "content": null},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]})");
  EXPECT_EQ(r.messages[0]["content"], "");
  EXPECT_EQ(r.messages[1]["content"], "ab");
}

TEST(CompletionRequest, CompletionPromptAsTextOrIds) {
  EXPECT_EQ(completion(R"({"prompt": "once"})").prompt, "once");
  EXPECT_EQ(completion(R"({"prompt": ["once"]})").prompt, "once");
  EXPECT_EQ(completion(R"({"prompt": [5, 6, 7]})").prompt_ids, (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(completion(R"({"prompt": [[5, 6]]})").prompt_ids, (std::vector<int64_t>{5, 6}));
}

TEST(CompletionRequest, EachBrokenRuleIsA400NamingTheField) {
  expect_400("{", "not valid JSON");
  expect_400("[1, 2]", "JSON object");
  expect_400(R"({"max_tokens": 1E842})", "not valid JSON");  // a number beyond double
  expect_400("{}", "'messages' is required");
  expect_400(R"({"messages": []})", "'messages'");
  expect_400(R"({"messages": "hi"})", "'messages'");
  expect_400(R"({"messages": [{"content": "hi"}]})", "'messages[0].role'");
  expect_400(R"({"messages": [{"role": "user", "content": 5}]})", "'messages[0].content'");
  expect_400(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "text only");
  expect_400("{" + kUser + R"(, "temperature": "hot"})", "'temperature'");
  expect_400("{" + kUser + R"(, "temperature": 2.5})", "'temperature'");
  expect_400("{" + kUser + R"(, "top_p": 0})", "'top_p'");
  expect_400("{" + kUser + R"(, "top_p": 1.5})", "'top_p'");
  expect_400("{" + kUser + R"(, "top_k": -1})", "'top_k'");
  expect_400("{" + kUser + R"(, "top_k": 1.5})", "'top_k'");
  expect_400("{" + kUser + R"(, "min_p": 1})", "'min_p'");
  expect_400("{" + kUser + R"(, "max_tokens": 0})", "'max_tokens'");
  expect_400("{" + kUser + R"(, "max_tokens": "ten"})", "'max_tokens'");
  expect_400("{" + kUser + R"(, "frequency_penalty": 3})", "'frequency_penalty'");
  expect_400("{" + kUser + R"(, "presence_penalty": -3})", "'presence_penalty'");
  expect_400("{" + kUser + R"(, "repetition_penalty": 0})", "'repetition_penalty'");
  expect_400("{" + kUser + R"(, "seed": "x"})", "'seed'");
  expect_400("{" + kUser + R"(, "stop": [""]})", "'stop'");
  expect_400("{" + kUser + R"(, "stop": [1]})", "'stop'");
  expect_400("{" + kUser + R"(, "n": 2})", "'n'");
  expect_400("{" + kUser + R"(, "stream": "yes"})", "'stream'");
  expect_400("{" + kUser + R"(, "stream_options": 1})", "'stream_options'");
  expect_400("{" + kUser + R"(, "logprobs": true})", "'logprobs'");
  expect_400("{" + kUser + R"(, "model": 3})", "'model'");
  expect_400(R"({"prompt": ""})", "'prompt'", Endpoint::completion);
  expect_400(R"({"prompt": ["a", "b"]})", "'prompt'", Endpoint::completion);
  expect_400(R"({"prompt": [1, -2]})", "'prompt'", Endpoint::completion);
  expect_400(R"({"messages": []})", "'prompt' is required", Endpoint::completion);
}

}  // namespace
}  // namespace chronos
