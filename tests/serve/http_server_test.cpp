// Protocol tests: chronos-serve's transport started in-process on a free loopback port, spoken to
// with cpp-httplib's client.
#include "chronos-serve/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <thread>

#include "serve/serve_fixture.h"

namespace chronos {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct RunningServer {
  std::unique_ptr<tools::HttpServer> server;
  std::thread thread;
  int port = 0;

  explicit RunningServer(tools::HttpOptions options) {
    options.host = "127.0.0.1";
    options.port = 0;
    server = std::make_unique<tools::HttpServer>(options);
    port = server->bind();
    thread = std::thread([this] { server->serve(); });
  }
  ~RunningServer() {
    server->stop();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    return c;
  }
};

const std::string kChat = R"({"messages": [{"role": "user", "content": "hello"}], "temperature": 0, "max_tokens": 6)";

struct HttpTest : ::testing::Test {
  testing::ServeModel tiny{/*context=*/4096};
  std::shared_ptr<OpenAiService> service(SchedulerConfig scheduling = {1, 4}) {
    ServiceConfig config;
    config.model_id = "tiny";
    return std::make_shared<OpenAiService>(*tiny.model, tiny.tokenizer, tiny.chat, config, scheduling);
  }
};

void expect_error(const httplib::Result& res, int status, const std::string& type) {
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, status) << res->body;
  const json body = json::parse(res->body);
  EXPECT_EQ(body["error"]["type"], type) << res->body;
  EXPECT_TRUE(body["error"]["message"].is_string());
  EXPECT_TRUE(body["error"].contains("code"));
}

TEST_F(HttpTest, HealthIs503UntilTheModelIsThere) {
  RunningServer s({});
  auto c = s.client();
  auto res = c.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(json::parse(res->body)["status"], "loading model");
  expect_error(c.Post("/v1/chat/completions", kChat + "}", "application/json"), 503, "unavailable_error");
  s.server->set_service(service());
  res = c.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpTest, ChatModelsTokenizeAndTheWebUi) {
  RunningServer s({});
  s.server->set_service(service());
  auto c = s.client();
  auto res = c.Post("/v1/chat/completions", kChat + "}", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  const json body = json::parse(res->body);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["usage"]["completion_tokens"], 6);
  res = c.Get("/v1/models");
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["data"][0]["id"], "tiny");
  res = c.Post("/tokenize", R"({"content": "hello"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_FALSE(json::parse(res->body)["tokens"].empty());
  res = c.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("IO monitor"), std::string::npos);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/html"), std::string::npos);
  res = c.Get("/monitor");
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["generated_tokens_total"], 6);
  res = c.Get("/props");
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["model"], "tiny");
}

TEST_F(HttpTest, StreamsServerSentEvents) {
  RunningServer s({});
  s.server->set_service(service());
  auto c = s.client();
  auto res = c.Post("/v1/chat/completions", httplib::Headers{}, kChat + R"(, "stream": true})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const std::string& received = res->body;
  ASSERT_GE(received.size(), 10u);
  EXPECT_EQ(received.rfind("data: ", 0), 0u);
  EXPECT_EQ(received.substr(received.size() - 14), "data: [DONE]\n\n");
  EXPECT_NE(received.find("\"finish_reason\":\"length\""), std::string::npos);
}

TEST_F(HttpTest, BadRequestsGetOpenAiErrors) {
  tools::HttpOptions options;
  options.max_body_bytes = 4096;
  RunningServer s(options);
  s.server->set_service(service());
  auto c = s.client();
  expect_error(c.Post("/v1/chat/completions", "{\"messages\": [", "application/json"), 400, "invalid_request_error");
  expect_error(c.Post("/v1/chat/completions", R"({"messages": 5})", "application/json"), 400, "invalid_request_error");
  expect_error(c.Post("/v1/completions", R"({"prompt": "x", "n": 3})", "application/json"), 400, "invalid_request_error");
  expect_error(c.Get("/v1/nothing"), 404, "not_found_error");
  expect_error(c.Get("/metrics"), 404, "not_found_error");  // off without --metrics
  expect_error(c.Post("/v1/completions", std::string(8192, 'x'), "application/json"), 413, "invalid_request_error");
  // Still serving.
  auto res = c.Post("/v1/chat/completions", kChat + "}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpTest, TheApiKeyGuardsTheApiButNotTheUiOrHealth) {
  tools::HttpOptions options;
  options.api_key = "sesame";
  options.metrics = true;
  RunningServer s(options);
  s.server->set_service(service());
  auto c = s.client();
  expect_error(c.Get("/v1/models"), 401, "authentication_error");
  expect_error(c.Get("/v1/models", httplib::Headers{{"Authorization", "Bearer wrong"}}), 401, "authentication_error");
  expect_error(c.Get("/metrics"), 401, "authentication_error");
  auto res = c.Get("/v1/models", httplib::Headers{{"Authorization", "Bearer sesame"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = c.Get("/metrics", httplib::Headers{{"Authorization", "Bearer sesame"}});
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("chronos_requests_processing"), std::string::npos);
  res = c.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = c.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpTest, CorsHeadersOnlyWhenAsked) {
  {
    RunningServer s({});
    s.server->set_service(service());
    auto res = s.client().Get("/v1/models", httplib::Headers{{"Origin", "http://example.com"}});
    ASSERT_TRUE(res);
    EXPECT_FALSE(res->has_header("Access-Control-Allow-Origin"));
  }
  tools::HttpOptions options;
  options.cors_origin = "http://example.com";
  RunningServer s(options);
  s.server->set_service(service());
  auto c = s.client();
  auto res = c.Options("/v1/chat/completions", httplib::Headers{{"Origin", "http://example.com"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204);
  EXPECT_EQ(res->get_header_value("Access-Control-Allow-Origin"), "http://example.com");
  res = c.Get("/v1/models");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Access-Control-Allow-Origin"), "http://example.com");
}

TEST_F(HttpTest, AClientThatGoesAwayFreesItsSlot) {
  RunningServer s({});
  const std::shared_ptr<OpenAiService> svc = service({1, 0});
  s.server->set_service(svc);
  // A long stream read until its first content chunk, then the connection is dropped.
  {
    auto c = s.client();
    std::string seen;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = R"({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 100000, "stream": true})";
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* data, size_t length, uint64_t, uint64_t) {
      seen.append(data, length);
      return seen.find("\"content\":\"") == std::string::npos || seen.find("role") == std::string::npos ||
             std::count(seen.begin(), seen.end(), '\n') < 4;  // false: close after the role chunk and one delta
    };
    c.send(req);
  }
  // The slot frees (the run is cancelled) and a new request is served, not refused.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (svc->counts().cancelled < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(svc->counts().cancelled, 1);
  EXPECT_EQ(svc->counts().processing, 0);
  auto res = s.client().Post("/v1/chat/completions", kChat + "}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

TEST_F(HttpTest, AFullServerAnswers429) {
  RunningServer s({});
  const std::shared_ptr<OpenAiService> svc = service({1, 0});
  s.server->set_service(svc);
  std::thread busy([&] {
    auto c = s.client();
    c.Post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4000, "temperature": 0})",
           "application/json");
  });
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (svc->counts().processing < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  expect_error(s.client().Post("/v1/chat/completions", kChat + "}", "application/json"), 429, "rate_limit_error");
  svc->shutdown();  // ends the busy request (cancelled)
  busy.join();
}

}  // namespace
}  // namespace chronos
