// chronos-serve's HTTP transport (cpp-httplib): routes onto OpenAiService calls, ApiError onto
// statuses with OpenAI's error body, streams as server-sent events, the API key, the body limit,
// CORS and the embedded web UI. No request logic here: that is chronos/serve/.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "chronos/serve/openai_service.h"

namespace chronos::tools {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                       // 0: any free port (bind() returns it)
  std::string api_key;                   // non-empty: /v1/*, /tokenize, /detokenize, /props, /monitor, /metrics need it
  size_t max_body_bytes = 4u << 20;      // larger bodies: 413
  bool metrics = false;                  // GET /metrics answers (else 404)
  std::string cors_origin;               // non-empty: Access-Control-Allow-Origin for it, preflight answered
  int threads = 16;                      // connection threads
};

class HttpServer {
 public:
  explicit HttpServer(HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port; returns the port (the one picked for port 0). IoError naming host:port when
  // it cannot.
  int bind();
  // Serves until stop(); requests before set_service() get 503 (/health: {"status": "loading model"}).
  void serve();
  // Ends every generation (cancelled) and stops serving, from any thread; serve() returns.
  void stop();
  // The service to answer with; the server holds it until destroyed or replaced.
  void set_service(std::shared_ptr<OpenAiService> service);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chronos::tools
