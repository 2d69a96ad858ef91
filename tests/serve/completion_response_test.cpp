#include "chronos/serve/completion_response.h"

#include <gtest/gtest.h>

#include "chronos/serve/api_error.h"

namespace chronos {
namespace {

using json = nlohmann::json;

TEST(CompletionResponse, IdentityHasTheEndpointsPrefixAndIsFresh) {
  const ResponseIdentity a = new_identity(Endpoint::chat, "m"), b = new_identity(Endpoint::chat, "m");
  EXPECT_EQ(a.id.rfind("chatcmpl-", 0), 0u);
  EXPECT_NE(a.id, b.id);
  EXPECT_EQ(new_identity(Endpoint::completion, "m").id.rfind("cmpl-", 0), 0u);
  EXPECT_GT(a.created, 1700000000);
}

TEST(CompletionResponse, FinishReasons) {
  EXPECT_EQ(finish_reason("stop_id"), "stop");
  EXPECT_EQ(finish_reason("stop_string"), "stop");
  EXPECT_EQ(finish_reason("max_new_tokens"), "length");
  EXPECT_EQ(finish_reason("context"), "length");
}

TEST(CompletionResponse, WholeChatAndTextCompletions) {
  const ResponseIdentity chat = new_identity(Endpoint::chat, "m");
  const json c = completion_json(chat, "hello", "stop", Usage{3, 2});
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["model"], "m");
  EXPECT_EQ(c["choices"][0]["message"], (json{{"role", "assistant"}, {"content", "hello"}}));
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"], (json{{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}));
  const json t = completion_json(new_identity(Endpoint::completion, "m"), "hello", "length", Usage{1, 1});
  EXPECT_EQ(t["object"], "text_completion");
  EXPECT_EQ(t["choices"][0]["text"], "hello");
}

TEST(CompletionResponse, ChunksCarryRoleFirstThenDeltasThenTheFinish) {
  const ResponseIdentity id = new_identity(Endpoint::chat, "m");
  const json first = chunk_json(id, "", true);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], (json{{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(chunk_json(id, "hé", false)["choices"][0]["delta"], (json{{"content", "hé"}}));
  const json last = chunk_json(id, "", false, "length");
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  const json usage = usage_chunk_json(id, Usage{4, 5});
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 9);
  EXPECT_EQ(chunk_json(new_identity(Endpoint::completion, "m"), "x", false)["choices"][0]["text"], "x");
}

TEST(CompletionResponse, ServerSentEventsAreOneLineEach) {
  const std::string event = sse_event(json{{"text", "a\nb"}});
  EXPECT_EQ(event, "data: {\"text\":\"a\\nb\"}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
}

TEST(ApiError, BodiesFollowOpenAi) {
  const ApiError e = ApiError::bad_request("bad 'x'", "invalid_x");
  EXPECT_EQ(e.status(), 400);
  EXPECT_EQ(e.body(), (json{{"error", {{"message", "bad 'x'"}, {"type", "invalid_request_error"}, {"code", "invalid_x"}}}}));
  EXPECT_EQ(ApiError::unauthorized("k").status(), 401);
  EXPECT_EQ(ApiError::not_found("k").status(), 404);
  EXPECT_EQ(ApiError::too_large("k").status(), 413);
  EXPECT_EQ(ApiError::too_many_requests("k").status(), 429);
  EXPECT_EQ(ApiError::internal("k").status(), 500);
  EXPECT_EQ(ApiError::unavailable("k").status(), 503);
  EXPECT_TRUE(ApiError(400, "t", "", "m").body()["error"]["code"].is_null());
}

}  // namespace
}  // namespace chronos
