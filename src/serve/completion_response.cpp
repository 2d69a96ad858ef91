#include "chronos/serve/completion_response.h"

#include <chrono>
#include <cstdio>
#include <random>

namespace chronos {

using json = nlohmann::json;

ResponseIdentity new_identity(Endpoint endpoint, const std::string& model) {
  thread_local std::mt19937_64 random(std::random_device{}());
  char hex[25];
  std::snprintf(hex, sizeof hex, "%016llx%08llx", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random() & 0xffffffffu));
  ResponseIdentity identity;
  identity.endpoint = endpoint;
  identity.id = std::string(endpoint == Endpoint::chat ? "chatcmpl-" : "cmpl-") + hex;
  identity.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  identity.model = model;
  return identity;
}

std::string finish_reason(const std::string& stop_reason) {
  return stop_reason == "max_new_tokens" || stop_reason == "context" ? "length" : "stop";
}

json usage_json(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

namespace {

json envelope(const ResponseIdentity& identity, const char* object) {
  return {{"id", identity.id}, {"object", object}, {"created", identity.created}, {"model", identity.model},
          {"system_fingerprint", "chronos"}};
}

}  // namespace

json completion_json(const ResponseIdentity& identity, const std::string& text, const std::string& finish, const Usage& usage) {
  const bool chat = identity.endpoint == Endpoint::chat;
  json out = envelope(identity, chat ? "chat.completion" : "text_completion");
  json choice = {{"index", 0}, {"finish_reason", finish}, {"logprobs", nullptr}};
  if (chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
  out["choices"] = json::array({choice});
  out["usage"] = usage_json(usage);
  return out;
}

json chunk_json(const ResponseIdentity& identity, const std::string& delta, bool first, const std::string& finish) {
  const bool chat = identity.endpoint == Endpoint::chat;
  json out = envelope(identity, chat ? "chat.completion.chunk" : "text_completion");
  json choice = {{"index", 0}, {"finish_reason", finish.empty() ? json(nullptr) : json(finish)}, {"logprobs", nullptr}};
  if (chat) {
    choice["delta"] = json::object();
    if (first) choice["delta"]["role"] = "assistant";
    if (!delta.empty() || first) choice["delta"]["content"] = delta;
  } else {
    choice["text"] = delta;
  }
  out["choices"] = json::array({choice});
  return out;
}

json usage_chunk_json(const ResponseIdentity& identity, const Usage& usage) {
  json out = envelope(identity, identity.endpoint == Endpoint::chat ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  return out;
}

std::string sse_event(const json& data) {
  // dump() escapes control characters, so an event is one line whatever the text holds; invalid
  // UTF-8 (never produced: the text stream releases whole characters) would be replaced.
  return "data: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

const std::string& sse_done() {
  static const std::string done = "data: [DONE]\n\n";
  return done;
}

}  // namespace chronos
