// A request to POST /v1/chat/completions or /v1/completions, parsed and checked field by field
// (OpenAI's request schema with llama.cpp's sampling extensions; docs/serve.md "Requests"). Unknown
// fields are ignored, as OpenAI clients send many; a known field of the wrong type or out of range
// is an ApiError 400 naming it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chronos/runtime/sampler.h"

namespace chronos {

enum class Endpoint { chat, completion };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::chat;
  std::string model;                                     // echoed in the response ("" when absent)
  nlohmann::ordered_json messages;                       // chat: [{"role", "content"}...], content as text
  nlohmann::ordered_json tools;                          // chat: null or the function list for the template
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();  // chat_template_kwargs
  std::string prompt;                                    // completion: the prompt text
  std::vector<int64_t> prompt_ids;                       // completion: the prompt as token ids instead
  bool stream = false;
  bool include_usage = false;                            // stream_options.include_usage
  std::optional<int64_t> max_tokens;                     // max_tokens or max_completion_tokens
  SamplingOptions sampling;
  bool seeded = false;                                   // seed given (else the service draws one)
  std::vector<std::string> stop;                         // stop strings (string or list)
};

// Parses a request body. `defaults` are the sampling settings of fields the request leaves out;
// temperature 0 means greedy. Throws ApiError 400 for malformed JSON (with its byte position), a
// body that is not an object, a missing or wrong field, or n != 1.
CompletionRequest parse_completion_request(const std::string& body, Endpoint endpoint, const SamplingOptions& defaults);

// The body as a JSON object, ApiError 400 otherwise (shared by every POST endpoint).
nlohmann::json parse_json_object(const std::string& body);

}  // namespace chronos
