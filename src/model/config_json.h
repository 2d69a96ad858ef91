// Reading and writing ModelConfig fields from config.json objects, shared by the Chronos reader
// (config.cpp) and the Hugging Face family readers (hf_config.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <string>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"

namespace chronos {
namespace config_json {

struct Reader {
  const nlohmann::json& json;
  const std::string& source;
  std::set<std::string>& seen;

  [[noreturn]] void wrong(const char* key, const char* expected) const {
    throw ConfigError(cat(source, ": key '", key, "' must be ", expected, " (got ", describe_json(json.at(key)), ")"));
  }
  // An integer (or a float with an integral value, as some exporters write) that fits int64_t;
  // checked before converting, so 1e300 or 2^64 - 1 cannot wrap.
  int64_t integer(const char* key, const nlohmann::json& v, const char* expected) const {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      wrong(key, "an integer below 2^63");
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::floor(d) == d && std::fabs(d) < 9.0e18) return static_cast<int64_t>(d);
    }
    wrong(key, expected);
  }
  const nlohmann::json* find(const char* key) {
    auto it = json.find(key);
    if (it == json.end()) return nullptr;
    seen.insert(key);
    return &*it;
  }
  void operator()(const char* key, int64_t& field) {
    const auto* v = find(key);
    if (!v) return;
    if (v->is_null() && std::string(key) == "num_key_value_heads") return field = 0, void();
    field = integer(key, *v, "an integer");
  }
  void operator()(const char* key, double& field) {
    const auto* v = find(key);
    if (!v) return;
    if (!v->is_number()) wrong(key, "a number");
    field = v->get<double>();
  }
  void operator()(const char* key, bool& field) {
    const auto* v = find(key);
    if (!v) return;
    if (!v->is_boolean()) wrong(key, "true or false");
    field = v->get<bool>();
  }
  void operator()(const char* key, std::string& field) {
    const auto* v = find(key);
    if (!v) return;
    if (!v->is_string()) wrong(key, "a string");
    field = v->get<std::string>();
  }
  void operator()(const char* key, std::optional<std::string>& field) {
    const auto* v = find(key);
    if (!v || v->is_null()) return field.reset(), void();
    if (!v->is_string()) wrong(key, "a string or null");
    field = v->get<std::string>();
  }
  void operator()(const char* key, std::optional<int64_t>& field) {
    const auto* v = find(key);
    if (!v || v->is_null()) return field.reset(), void();
    field = integer(key, *v, "an integer or null");
  }
};

struct Writer {
  nlohmann::json& json;
  template <typename T>
  void operator()(const char* key, const T& field) { json[key] = field; }
  template <typename T>
  void operator()(const char* key, const std::optional<T>& field) {
    json[key] = field ? nlohmann::json(*field) : nlohmann::json(nullptr);
  }
};

[[noreturn]] inline void broken(const std::string& field, const std::string& value, const std::string& rule) {
  throw ConfigError(cat(field, " ", rule, " (got ", value, ")"));
}

}  // namespace config_json
}  // namespace chronos
