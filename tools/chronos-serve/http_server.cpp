#include "chronos-serve/http_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/serve/api_error.h"
#include "chronos-serve/web_ui.h"

namespace chronos::tools {
namespace {

using json = nlohmann::json;

// Text that JSON cannot hold (never produced: replies are whole UTF-8 characters) is replaced, not thrown.
std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& error) { send_json(res, error.status(), error.body()); }

// "a.b.c.d" or "::1" and a port, as getpeername / getsockname give them.
std::optional<std::pair<std::string, int>> address_of(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(address);
    if (!inet_ntop(AF_INET, &a.sin_addr, text, sizeof text)) return std::nullopt;
    return std::make_pair(std::string(text), static_cast<int>(ntohs(a.sin_port)));
  }
  if (address.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(address);
    if (!inet_ntop(AF_INET6, &a.sin6_addr, text, sizeof text)) return std::nullopt;
    return std::make_pair(std::string(text), static_cast<int>(ntohs(a.sin6_port)));
  }
  return std::nullopt;
}

// The socket of the request's connection: cpp-httplib 0.11 does not hand it to handlers, so it is
// found among the process's descriptors by its two addresses. -1 when not found.
int connection_socket(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    struct stat info;
    if (fstat(static_cast<int>(fd), &info) != 0 || !S_ISSOCK(info.st_mode)) continue;
    sockaddr_storage peer{}, local{};
    socklen_t peer_len = sizeof peer, local_len = sizeof local;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) continue;
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &local_len) != 0) continue;
    const auto p = address_of(peer), l = address_of(local);
    if (p && l && p->second == req.remote_port && l->second == req.local_port && p->first == req.remote_addr) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

// Whether the client closed its side (or the connection broke).
bool peer_gone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

constexpr double kPollSeconds = 0.05;  // how often a waiting request looks for a closed connection

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  httplib::Server server;
  int listen_socket = -1;  // the socket cpp-httplib bound last (its options hook records it)
  std::mutex mutex;
  std::shared_ptr<OpenAiService> service;

  std::shared_ptr<OpenAiService> current() {
    std::lock_guard<std::mutex> lock(mutex);
    return service;
  }

  // Runs `handler` with the service, mapping ApiError (and anything else) onto the response.
  template <typename Handler>
  void answer(httplib::Response& res, Handler&& handler) {
    try {
      const std::shared_ptr<OpenAiService> s = current();
      if (!s) throw ApiError::unavailable("the model is loading");
      handler(*s);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      log::error(cat("request failed: ", e.what()));
      send_error(res, ApiError::internal(e.what()));
    }
  }

  void complete(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
    answer(res, [&](OpenAiService& s) {
      std::shared_ptr<CompletionStream> stream = s.complete(req.body, endpoint);
      const int fd = connection_socket(req);
      if (!stream->streaming()) {
        bool gone = false;
        while (!stream->wait(kPollSeconds)) {
          if (!gone && peer_gone(fd)) {
            gone = true;
            stream->cancel();
            log::info(cat(stream->identity().id, ": the client went away; generation cancelled"));
          }
        }
        send_json(res, 200, stream->body());
        return;
      }
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Accel-Buffering", "no");
      res.set_chunked_content_provider(
          "text/event-stream",
          [stream, fd](size_t, httplib::DataSink& sink) {
            // The connection is looked at before every write too: a write to a closed one may
            // still succeed, and the run must stop before its next token.
            while (!stream->wait(kPollSeconds) || peer_gone(fd)) {
              if (peer_gone(fd)) {
                stream->cancel();
                return false;
              }
            }
            const std::optional<std::string> events = stream->next_events();
            if (!events) {
              sink.done();
              return true;
            }
            if (!sink.write(events->data(), events->size())) {
              stream->cancel();
              return false;
            }
            return true;
          },
          [stream](bool success) {
            if (!success) stream->cancel();
          });
    });
  }

  bool needs_key(const std::string& path) const {
    return !options.api_key.empty() && path != "/" && path != "/health" && path != "/index.html" && path != "/favicon.ico";
  }

  void routes() {
    server.set_socket_options([this](int sock) {
      httplib::default_socket_options(sock);
      listen_socket = sock;
    });
    server.set_payload_max_length(options.max_body_bytes);
    server.set_keep_alive_timeout(2);
    const int threads = options.threads;
    server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };

    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!options.cors_origin.empty()) {
        res.set_header("Access-Control-Allow-Origin", options.cors_origin);
        res.set_header("Vary", "Origin");
        if (req.method == "OPTIONS") {
          res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
          res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
          res.set_header("Access-Control-Max-Age", "600");
          res.status = 204;
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      if (needs_key(req.path)) {
        const std::string bearer = "Bearer " + options.api_key;
        if (req.get_header_value("Authorization") != bearer && req.get_header_value("X-Api-Key") != options.api_key) {
          send_error(res, ApiError::unauthorized(req.has_header("Authorization") ? "invalid API key"
                                                                                 : "missing API key (Authorization: Bearer KEY)"));
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Statuses cpp-httplib sets itself (404 no route, 413 body too large, 400 unparsable request)
    // get OpenAI's error body too.
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 404) send_error(res, ApiError::not_found(cat("no route for ", req.method, " ", req.path)));
      else if (res.status == 413) send_error(res, ApiError::too_large("the request body is larger than --max-body-bytes"));
      else if (res.status == 405) send_error(res, ApiError(405, "invalid_request_error", "method_not_allowed", "method not allowed"));
      else send_error(res, ApiError(res.status, "invalid_request_error", "bad_request", cat("bad request (HTTP ", res.status, ")")));
    });
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
      send_error(res, api_error_from(error));
    });

    server.Get("/", [](const httplib::Request&, httplib::Response& res) {
      const std::string_view page = web_ui_page();
      res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
    });
    server.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (current()) send_json(res, 200, {{"status", "ok"}});
      else send_json(res, 503, {{"status", "loading model"}, {"error", ApiError::unavailable("the model is loading").body()["error"]}});
    });
    server.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      answer(res, [&](OpenAiService& s) { send_json(res, 200, s.models()); });
    });
    server.Get("/models", [this](const httplib::Request&, httplib::Response& res) {
      answer(res, [&](OpenAiService& s) { send_json(res, 200, s.models()); });
    });
    server.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { complete(req, res, Endpoint::chat); });
    server.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { complete(req, res, Endpoint::completion); });
    server.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
      answer(res, [&](OpenAiService& s) { send_json(res, 200, s.tokenize(req.body)); });
    });
    server.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
      answer(res, [&](OpenAiService& s) { send_json(res, 200, s.detokenize(req.body)); });
    });
    server.Get("/props", [this](const httplib::Request&, httplib::Response& res) {
      answer(res, [&](OpenAiService& s) { send_json(res, 200, s.properties()); });
    });
    server.Get("/monitor", [this](const httplib::Request&, httplib::Response& res) {
      answer(res, [&](OpenAiService& s) { send_json(res, 200, s.monitor()); });
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      if (!options.metrics) return send_error(res, ApiError::not_found("metrics are off (start chronos-serve with --metrics)"));
      answer(res, [&](OpenAiService& s) { res.set_content(s.metrics_text(), "text/plain; version=0.0.4"); });
    });
  }
};

HttpServer::HttpServer(HttpOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  if (impl_->options.threads < 2) throw ConfigError(cat("http threads must be >= 2 (got ", impl_->options.threads, ")"));
  impl_->routes();
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  const HttpOptions& o = impl_->options;
  const int port = o.port == 0 ? impl_->server.bind_to_any_port(o.host) : (impl_->server.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port < 0) throw IoError(cat("cannot listen on ", o.host, ":", o.port, " (in use, or not an address of this machine)"));
  // cpp-httplib 0.11 listens with a backlog of 5: a burst of new connections (16 clients at once)
  // overflows it, and the kernel's SYN cookies then reset some of them mid-request. Listening again
  // on the bound socket raises the backlog to the system's limit.
  if (impl_->listen_socket >= 0 && ::listen(impl_->listen_socket, SOMAXCONN) != 0)
    throw IoError(cat("cannot raise the listen backlog on ", o.host, ":", port, ": ", std::strerror(errno)));
  return port;
}

void HttpServer::serve() { impl_->server.listen_after_bind(); }

void HttpServer::stop() {
  // Generations end first (as cancelled), so that no connection thread waits on one while the
  // server joins them.
  if (const std::shared_ptr<OpenAiService> service = impl_->current()) service->shutdown();
  impl_->server.stop();
}

void HttpServer::set_service(std::shared_ptr<OpenAiService> service) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->service = std::move(service);
}

}  // namespace chronos::tools
