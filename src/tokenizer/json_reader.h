// Private to the tokenizer: reading the sections of tokenizer.json with errors that name the file
// and the JSON path of the value at fault ("FILE: pre_tokenizer.pretokenizers[0].pattern ...").
// What changes how text becomes ids is implemented exactly or refused, never ignored.
#pragma once

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"

namespace chronos::tokenizer_detail {

class JsonReader {
 public:
  explicit JsonReader(std::string source) : source_(std::move(source)) {}

  const std::string& source() const { return source_; }

  [[noreturn]] void fail(const std::string& what) const { throw FormatError(cat(source_, ": ", what)); }

  // Refuses keys outside `known`: an option Chronos does not know could change the output.
  void only_keys(const nlohmann::json& object, std::initializer_list<const char*> known, const std::string& where) const {
    for (auto it = object.begin(); it != object.end(); ++it) {
      bool ok = false;
      for (const char* k : known) ok = ok || it.key() == k;
      if (!ok) fail(cat(where, " has the key '", it.key(), "', which Chronos does not implement"));
    }
  }

  bool flag(const nlohmann::json& object, const char* key, bool fallback, const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(cat(where, ".", key, " must be true or false (got ", describe_json(*it), ")"));
    return it->get<bool>();
  }

  // A required boolean (HF has no default for it).
  bool required_flag(const nlohmann::json& object, const char* key, const std::string& where) const {
    if (!object.contains(key)) fail(cat(where, ".", key, " is missing"));
    return flag(object, key, false, where);
  }

  std::string string(const nlohmann::json& object, const char* key, const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end() || !it->is_string()) fail(cat(where, ".", key, " must be a string"));
    return it->get<std::string>();
  }

  int64_t integer(const nlohmann::json& object, const char* key, int64_t min, int64_t max, const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end() || !it->is_number_integer()) fail(cat(where, ".", key, " must be an integer"));
    const int64_t v = it->get<int64_t>();
    if (v < min || v > max) fail(cat(where, ".", key, " is ", v, "; expected ", min, "..", max));
    return v;
  }

  const nlohmann::json& array(const nlohmann::json& object, const char* key, const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end() || !it->is_array()) fail(cat(where, ".", key, " must be a list"));
    return *it;
  }

  // For a {"type": "Sequence", KEY: [...]} section, calls add(item, "WHERE.KEY[i]") for each item and
  // returns true; returns false for any other type.
  template <class Add>
  bool sequence(const nlohmann::json& section, const std::string& type, const char* key, const std::string& where, Add add) const {
    if (type != "Sequence") return false;
    only_keys(section, {"type", key}, where);
    const nlohmann::json& list = array(section, key, where);
    for (size_t i = 0; i < list.size(); ++i) add(list[i], cat(where, ".", key, "[", i, "]"));
    return true;
  }

  std::string type_of(const nlohmann::json& section, const std::string& where) const {
    if (!section.is_object()) fail(cat(where, " must be an object or null (got ", describe_json(section), ")"));
    const auto it = section.find("type");
    if (it == section.end() || !it->is_string()) fail(cat(where, " has no \"type\""));
    return it->get<std::string>();
  }

 private:
  std::string source_;
};

// A section as tokenizer.json writes it: "type" first in every object, then the other keys.
inline nlohmann::ordered_json type_first(const nlohmann::json& value) {
  if (value.is_array()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& item : value) out.push_back(type_first(item));
    return out;
  }
  if (!value.is_object()) return nlohmann::ordered_json::parse(value.dump());
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  if (value.contains("type")) out["type"] = type_first(value["type"]);
  for (auto it = value.begin(); it != value.end(); ++it)
    if (it.key() != "type") out[it.key()] = type_first(it.value());
  return out;
}

}  // namespace chronos::tokenizer_detail
