#include "chronos/serve/openai_service.h"

#include <gtest/gtest.h>

#include "chronos/runtime/text_stream.h"
#include "serve/serve_fixture.h"

namespace chronos {
namespace {

using json = nlohmann::json;

// The data objects of a stream's events, [DONE] as the string "[DONE]".
std::vector<json> events_of(CompletionStream& stream) {
  std::string all;
  while (const auto events = stream.next_events()) all += *events;
  std::vector<json> out;
  size_t at = 0;
  while (at < all.size()) {
    const size_t end = all.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "an event without its blank line";
    if (end == std::string::npos) break;
    const std::string event = all.substr(at, end - at);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    const std::string data = event.substr(6);
    out.push_back(data == "[DONE]" ? json("[DONE]") : json::parse(data));
    at = end + 2;
  }
  return out;
}

struct ServiceTest : ::testing::Test {
  testing::ServeModel tiny;
  std::unique_ptr<OpenAiService> service;
  void SetUp() override { start({1, 8}); }
  void start(SchedulerConfig scheduling, int64_t default_max_tokens = 16) {
    service.reset();
    ServiceConfig config;
    config.model_id = "tiny";
    config.default_max_tokens = default_max_tokens;
    service = std::make_unique<OpenAiService>(*tiny.model, tiny.tokenizer, tiny.chat, config, scheduling);
  }
  // What generate() makes of the chat with one user message, greedy.
  std::string direct_reply(const std::string& user, int64_t max_tokens, std::vector<std::string> stops = {}) {
    const std::string text = tiny.chat.render(nlohmann::ordered_json::array({{{"role", "user"}, {"content", user}}}), true);
    const std::vector<TokenId> ids = tiny.tokenizer.encode(text, true, false);
    GenerationOptions o;
    o.max_new_tokens = max_tokens;
    o.sampling.greedy = true;
    o.stop_ids = {tiny.model->config().eos_token_id};
    o.stop_strings = std::move(stops);
    TextStream stream(tiny.tokenizer, o);
    generate(*tiny.model, std::vector<int64_t>(ids.begin(), ids.end()), o, [&](int64_t t) { return stream.push(t); });
    stream.finish();
    std::string reply = stream.text();
    reply.erase(0, std::min(reply.size(), reply.find_first_not_of(" \t\r\n")));
    return reply;
  }
  // {"messages": [user turn] + extra fields}; `extra` starts with a comma.
  static std::string chat_body(const std::string& user, const std::string& extra) {
    std::string body = json{{"messages", json::array({json{{"role", "user"}, {"content", user}}})}}.dump();
    body.pop_back();
    return body + extra + "}";
  }
};

TEST_F(ServiceTest, AChatReplyIsWhatGenerateMakesOfTheTemplatedPrompt) {
  const json body = service->complete(chat_body("hello there", R"(, "temperature": 0, "max_tokens": 12)"), Endpoint::chat)->body();
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["model"], "tiny");
  EXPECT_EQ(body["choices"][0]["message"]["content"], direct_reply("hello there", 12));
  EXPECT_EQ(body["usage"]["completion_tokens"], 12);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
}

TEST_F(ServiceTest, AStreamHoldsRoleDeltasFinishUsageAndDone) {
  const auto stream = service->complete(
      chat_body("hello there", R"(, "temperature": 0, "max_tokens": 10, "stream": true, "stream_options": {"include_usage": true})"),
      Endpoint::chat);
  const std::vector<json> events = events_of(*stream);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(events.back(), "[DONE]");
  const json& usage = events[events.size() - 2];
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 10);
  const json& finish = events[events.size() - 3];
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "length");
  std::string text;
  for (size_t i = 1; i + 3 < events.size(); ++i) {
    EXPECT_EQ(events[i]["object"], "chat.completion.chunk");
    EXPECT_EQ(events[i]["id"], events.front()["id"]);
    EXPECT_TRUE(events[i]["choices"][0]["finish_reason"].is_null());
    text += events[i]["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, direct_reply("hello there", 10));
}

TEST_F(ServiceTest, AStopStringEndsTheReplyBeforeIt) {
  const std::string full = direct_reply("tell me", 16);
  ASSERT_GE(full.size(), 6u) << full;
  // A stop string from the middle of the unstopped reply (whole characters: the stream's text is).
  size_t cut = full.size() / 2;
  while (cut > 0 && (static_cast<unsigned char>(full[cut]) & 0xC0) == 0x80) --cut;
  size_t end = cut + 1;
  while (end < full.size() && (static_cast<unsigned char>(full[end]) & 0xC0) == 0x80) ++end;
  const std::string stop = full.substr(cut, end - cut);
  const json body =
      service->complete(chat_body("tell me", R"(, "temperature": 0, "max_tokens": 16, "stop": )" + json(stop).dump()), Endpoint::chat)->body();
  EXPECT_EQ(body["choices"][0]["message"]["content"], full.substr(0, full.find(stop)));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
}

TEST_F(ServiceTest, SeededSamplingRepeatsAndTextCompletionsWork) {
  const std::string request = R"({"prompt": "Once upon", "max_tokens": 8, "temperature": 1.0, "seed": 7})";
  const json a = service->complete(request, Endpoint::completion)->body();
  const json b = service->complete(request, Endpoint::completion)->body();
  EXPECT_EQ(a["object"], "text_completion");
  EXPECT_EQ(a["choices"][0]["text"], b["choices"][0]["text"]);
  EXPECT_EQ(a["usage"]["completion_tokens"], 8);
  const json ids = service->complete(R"({"prompt": [5, 6, 7], "max_tokens": 2, "temperature": 0})", Endpoint::completion)->body();
  EXPECT_EQ(ids["usage"]["prompt_tokens"], 3);
}

TEST_F(ServiceTest, TheDefaultMaxTokensAppliesAndRequestsAreCounted) {
  const json body = service->complete(chat_body("hi", R"(, "temperature": 0)"), Endpoint::chat)->body();
  EXPECT_LE(body["usage"]["completion_tokens"].get<int64_t>(), 16);
  const std::string metrics = service->metrics_text();
  EXPECT_NE(metrics.find("chronos_requests_total 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("chronos_generated_tokens_total " + std::to_string(body["usage"]["completion_tokens"].get<int64_t>())),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("# TYPE chronos_requests_processing gauge"), std::string::npos);
}

TEST_F(ServiceTest, APromptBeyondTheContextIsA400) {
  std::string user;
  for (int i = 0; i < 400; ++i) user += "word ";
  try {
    service->complete(chat_body(user, ""), Endpoint::chat);
    FAIL() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "context_length_exceeded");
  }
  try {
    service->complete(R"({"prompt": [1, 999999]})", Endpoint::completion);
    FAIL() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
  }
}

TEST_F(ServiceTest, TokenizeAndDetokenizeRoundTrip) {
  const json tokens = service->tokenize(R"({"content": "hello world"})")["tokens"];
  ASSERT_FALSE(tokens.empty());
  EXPECT_EQ(service->detokenize(json{{"tokens", tokens}}.dump())["content"], "hello world");
  const json pieces = service->tokenize(R"({"content": "hello world", "with_pieces": true})")["tokens"];
  EXPECT_EQ(pieces[0]["id"], tokens[0]);
  EXPECT_EQ(pieces[0]["piece"], "hello");
  EXPECT_THROW(service->tokenize(R"({"content": 5})"), ApiError);
  EXPECT_THROW(service->detokenize(R"({"tokens": [-1]})"), ApiError);
  EXPECT_THROW(service->detokenize(R"({"tokens": "x"})"), ApiError);
}

TEST_F(ServiceTest, ModelsPropertiesAndMonitorDescribeTheModel) {
  const json models = service->models();
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  const json props = service->properties();
  EXPECT_GT(props["parameters"].get<int64_t>(), 0);
  EXPECT_EQ(props["config"]["num_experts"], tiny.model->config().num_experts);
  EXPECT_EQ(props["slots"]["parallel"], 1);
  const json monitor = service->monitor();
  EXPECT_FALSE(monitor["offload"]);
  EXPECT_EQ(monitor["layers"], tiny.model->config().num_hidden_layers);
  ASSERT_EQ(monitor["states"].size(), static_cast<size_t>(tiny.model->config().num_hidden_layers));
  EXPECT_EQ(monitor["states"][0], std::string(static_cast<size_t>(tiny.model->config().num_experts), 'h'));
  EXPECT_DOUBLE_EQ(monitor["hit_rate"].get<double>(), 1.0);
}

TEST_F(ServiceTest, ACancelledStreamEndsAndTheServiceGoesOn) {
  const auto stream = service->complete(chat_body("hi", R"(, "max_tokens": 200, "stream": true)"), Endpoint::chat);
  stream->cancel();
  while (stream->next_events()) {
  }
  const json after = service->complete(chat_body("hi", R"(, "temperature": 0, "max_tokens": 3)"), Endpoint::chat)->body();
  EXPECT_EQ(after["usage"]["completion_tokens"], 3);
  EXPECT_EQ(service->counts().cancelled, 1);
}

}  // namespace
}  // namespace chronos
