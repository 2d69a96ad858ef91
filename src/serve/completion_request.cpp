#include "chronos/serve/completion_request.h"

#include <cmath>
#include <limits>

#include "chronos/serve/api_error.h"

namespace chronos {
namespace {

using json = nlohmann::json;

[[noreturn]] void field_error(const std::string& field, const std::string& rule, const json& got) {
  std::string shown = got.dump();
  if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
  throw ApiError::bad_request(cat("'", field, "' must be ", rule, " (got ", shown, ")"), "invalid_" + field);
}

// A present, non-null field; nullptr when absent or null (OpenAI clients send null for "unset").
const json* field(const json& object, const char* name) {
  const auto it = object.find(name);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& object, const char* name, double fallback, double lo, double hi, const std::string& rule) {
  const json* value = field(object, name);
  if (!value) return fallback;
  if (!value->is_number()) field_error(name, rule, *value);
  const double v = value->get<double>();
  if (!(v >= lo && v <= hi)) field_error(name, rule, *value);
  return v;
}

std::optional<int64_t> integer(const json& object, const char* name, int64_t lo, int64_t hi, const std::string& rule) {
  const json* value = field(object, name);
  if (!value) return std::nullopt;
  if (!value->is_number_integer()) {
    // 3.0 is an integer to a JavaScript client.
    if (!value->is_number_float() || std::trunc(value->get<double>()) != value->get<double>()) field_error(name, rule, *value);
  }
  const double v = value->get<double>();
  if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi))) field_error(name, rule, *value);
  return value->is_number_unsigned() ? static_cast<int64_t>(value->get<uint64_t>()) : static_cast<int64_t>(v);
}

bool boolean(const json& object, const char* name, bool fallback) {
  const json* value = field(object, name);
  if (!value) return fallback;
  if (!value->is_boolean()) field_error(name, "true or false", *value);
  return value->get<bool>();
}

// A message's content as text: a string, or a list of {"type": "text", "text"} parts joined.
std::string content_text(const json& content, const std::string& where) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) field_error(where, "a string or a list of text parts", content);
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string at = cat(where, "[", i, "]");
    if (!part.is_object()) field_error(at, "an object {\"type\": \"text\", \"text\": ...}", part);
    const json* type = field(part, "type");
    if (!type || *type != "text")
      throw ApiError::bad_request(cat("'", at, ".type' must be \"text\": this model reads text only"), "unsupported_content");
    const json* piece = field(part, "text");
    if (!piece || !piece->is_string()) field_error(at + ".text", "a string", piece ? *piece : json(nullptr));
    text += piece->get<std::string>();
  }
  return text;
}

nlohmann::ordered_json parse_messages(const json& request) {
  const json* messages = field(request, "messages");
  if (!messages) throw ApiError::bad_request("'messages' is required", "invalid_messages");
  if (!messages->is_array() || messages->empty()) field_error("messages", "a non-empty list of messages", *messages);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string at = cat("messages[", i, "]");
    if (!m.is_object()) field_error(at, "an object with 'role' and 'content'", m);
    const json* role = field(m, "role");
    if (!role || !role->is_string() || role->get<std::string>().empty())
      field_error(at + ".role", "a non-empty string", role ? *role : json(nullptr));
    nlohmann::ordered_json message = nlohmann::ordered_json::parse(m.dump());  // keeps tool_calls, name, ...
    message["content"] = content_text(m.contains("content") ? m["content"] : json(nullptr), at + ".content");
    out.push_back(std::move(message));
  }
  return out;
}

void parse_prompt(const json& request, CompletionRequest& out) {
  const json* prompt = field(request, "prompt");
  if (!prompt) throw ApiError::bad_request("'prompt' is required", "invalid_prompt");
  // One prompt: a string, a list of token ids, or a list holding one of those.
  const json* one = prompt;
  if (prompt->is_array() && prompt->size() == 1 && ((*prompt)[0].is_string() || (*prompt)[0].is_array())) one = &(*prompt)[0];
  if (one->is_string()) {
    out.prompt = one->get<std::string>();
    if (out.prompt.empty()) field_error("prompt", "a non-empty string or list of token ids", *prompt);
    return;
  }
  if (one->is_array() && !one->empty()) {
    for (const json& id : *one) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0) field_error("prompt", "a string or a list of token ids (integers >= 0)", *prompt);
      out.prompt_ids.push_back(id.get<int64_t>());
    }
    return;
  }
  field_error("prompt", "a non-empty string or list of token ids (one prompt: n = 1)", *prompt);
}

std::vector<std::string> parse_stop(const json& request) {
  const json* stop = field(request, "stop");
  if (!stop) return {};
  std::vector<std::string> out;
  if (stop->is_string()) {
    out.push_back(stop->get<std::string>());
  } else if (stop->is_array() && stop->size() <= 16) {
    for (const json& s : *stop) {
      if (!s.is_string()) field_error("stop", "a string or a list of at most 16 strings", *stop);
      out.push_back(s.get<std::string>());
    }
  } else {
    field_error("stop", "a string or a list of at most 16 strings", *stop);
  }
  for (const std::string& s : out)
    if (s.empty()) field_error("stop", "made of non-empty strings", *stop);
  return out;
}

}  // namespace

json parse_json_object(const std::string& body) {
  json request;
  try {
    request = json::parse(body);
  } catch (const json::parse_error& e) {
    throw ApiError::bad_request(cat("the body is not valid JSON (byte ", e.byte, ")"), "invalid_json");
  } catch (const json::exception&) {  // e.g. out_of_range: a number beyond double (found by the fuzzer)
    throw ApiError::bad_request("the body is not valid JSON (a number out of range)", "invalid_json");
  }
  if (!request.is_object()) throw ApiError::bad_request("the body must be a JSON object", "invalid_json");
  return request;
}

CompletionRequest parse_completion_request(const std::string& body, Endpoint endpoint, const SamplingOptions& defaults) {
  const json request = parse_json_object(body);
  CompletionRequest out;
  out.endpoint = endpoint;
  if (const json* model = field(request, "model")) {
    if (!model->is_string()) field_error("model", "a string", *model);
    out.model = model->get<std::string>();
  }
  if (endpoint == Endpoint::chat) {
    out.messages = parse_messages(request);
    if (const json* tools = field(request, "tools")) {
      if (!tools->is_array()) field_error("tools", "a list of tool definitions", *tools);
      out.tools = nlohmann::ordered_json::parse(tools->dump());
    }
    if (const json* kwargs = field(request, "chat_template_kwargs")) {
      if (!kwargs->is_object()) field_error("chat_template_kwargs", "an object", *kwargs);
      out.template_kwargs = nlohmann::ordered_json::parse(kwargs->dump());
    }
  } else {
    parse_prompt(request, out);
  }
  integer(request, "n", 1, 1, "1 (one choice per request)");
  if (boolean(request, "logprobs", false) || field(request, "top_logprobs"))
    throw ApiError::bad_request("'logprobs' is not supported by this server", "unsupported_logprobs");
  if (endpoint == Endpoint::completion && boolean(request, "echo", false))
    throw ApiError::bad_request("'echo' is not supported by this server", "unsupported_echo");
  out.stream = boolean(request, "stream", false);
  if (const json* options = field(request, "stream_options")) {
    if (!options->is_object()) field_error("stream_options", "an object", *options);
    out.include_usage = boolean(*options, "include_usage", false);
  }
  constexpr int64_t most_tokens = int64_t{1} << 31;
  out.max_tokens = integer(request, "max_completion_tokens", 1, most_tokens, "an integer >= 1");
  if (!out.max_tokens) out.max_tokens = integer(request, "max_tokens", 1, most_tokens, "an integer >= 1");

  SamplingOptions& s = out.sampling;
  s = defaults;
  const double temperature = number(request, "temperature", defaults.greedy ? 0 : defaults.temperature, 0, 2, "a number in [0, 2]");
  s.greedy = temperature == 0;
  if (!s.greedy) s.temperature = temperature;
  s.top_p = number(request, "top_p", defaults.top_p, 0, 1, "a number in (0, 1]");
  if (s.top_p == 0) field_error("top_p", "a number in (0, 1]", request["top_p"]);
  s.top_k = integer(request, "top_k", 0, int64_t{1} << 24, "an integer >= 0 (0 = off)").value_or(defaults.top_k);
  s.min_p = number(request, "min_p", defaults.min_p, 0, 0.999999, "a number in [0, 1)");
  s.repetition_penalty = number(request, "repetition_penalty", defaults.repetition_penalty, 1e-6, 1e3, "a number in (0, 1000]");
  s.frequency_penalty = number(request, "frequency_penalty", defaults.frequency_penalty, -2, 2, "a number in [-2, 2]");
  s.presence_penalty = number(request, "presence_penalty", defaults.presence_penalty, -2, 2, "a number in [-2, 2]");
  if (const json* seed = field(request, "seed")) {
    if (!seed->is_number_integer()) field_error("seed", "an integer", *seed);
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : static_cast<uint64_t>(seed->get<int64_t>());
    out.seeded = true;
  }
  out.stop = parse_stop(request);
  return out;
}

}  // namespace chronos
