// The response bodies of the completion endpoints, as OpenAI shapes them: a whole
// chat.completion / text_completion object, the chunks of a stream (chat.completion.chunk, or
// text_completion for /v1/completions) and their server-sent-event framing. docs/serve.md "Streaming".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "chronos/serve/completion_request.h"

namespace chronos {

// What every object of one response repeats.
struct ResponseIdentity {
  Endpoint endpoint = Endpoint::chat;
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// A fresh identity: a random id with the endpoint's prefix, the current time.
ResponseIdentity new_identity(Endpoint endpoint, const std::string& model);

// OpenAI's finish_reason for a stop reason of the decode loop or the text stream: "stop" for a
// stop id or string, "length" for the token budget or the context.
std::string finish_reason(const std::string& stop_reason);

nlohmann::json usage_json(const Usage& usage);

// The whole response of a non-streamed request.
nlohmann::json completion_json(const ResponseIdentity& identity, const std::string& text, const std::string& finish,
                               const Usage& usage);

// One chunk of a stream: the first one carries the assistant role (chat), every one a text delta,
// the last one the finish_reason (non-empty `finish`).
nlohmann::json chunk_json(const ResponseIdentity& identity, const std::string& delta, bool first, const std::string& finish = "");
// The usage chunk of stream_options.include_usage: no choices.
nlohmann::json usage_chunk_json(const ResponseIdentity& identity, const Usage& usage);

// "data: <json>\n\n"
std::string sse_event(const nlohmann::json& data);
// "data: [DONE]\n\n"
const std::string& sse_done();

}  // namespace chronos
