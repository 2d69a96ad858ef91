// libFuzzer target: any byte string as the body of POST /v1/chat/completions (first byte even) or
// /v1/completions (odd) must either parse into a request whose sampling options validate, or be
// refused with an ApiError 400. Nothing else: a request body never crashes the server.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "chronos/serve/api_error.h"
#include "chronos/serve/completion_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const chronos::Endpoint endpoint = data[0] % 2 == 0 ? chronos::Endpoint::chat : chronos::Endpoint::completion;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  chronos::CompletionRequest request;
  try {
    request = chronos::parse_completion_request(body, endpoint, chronos::SamplingOptions{});
  } catch (const chronos::ApiError& e) {
    if (e.status() != 400 || e.body()["error"]["message"].get<std::string>().empty()) std::abort();
    return 0;
  }
  try {
    request.sampling.validate();
  } catch (const chronos::Error&) {
    std::abort();  // accepted sampling settings the sampler refuses
  }
  if (endpoint == chronos::Endpoint::chat) {
    if (!request.messages.is_array() || request.messages.empty()) std::abort();
    for (const auto& m : request.messages)
      if (!m["content"].is_string() || !m["role"].is_string()) std::abort();
  } else if (request.prompt.empty() == request.prompt_ids.empty()) {
    std::abort();  // exactly one form of prompt
  }
  if (request.max_tokens && *request.max_tokens < 1) std::abort();
  for (const std::string& stop : request.stop)
    if (stop.empty()) std::abort();
  return 0;
}
