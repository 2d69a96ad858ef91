// Private to the chat-template engine: run-time values with the semantics of @huggingface/jinja
// (which follows JavaScript where Jinja and JavaScript differ: numbers are doubles, true prints as
// "true", strings trim JavaScript's white space), so output matches the reference byte for byte.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace chronos::jinja {

struct Value;
using ValuePtr = std::shared_ptr<Value>;
class Environment;

enum class Type { Undefined, Null, Boolean, Integer, Float, String, Array, Tuple, Object, KeywordArguments, Namespace, Function };

// Insertion-ordered string-keyed map (objects, keyword arguments, namespaces).
class OrderedMap {
 public:
  const ValuePtr* find(const std::string& key) const {
    const auto it = index_.find(key);
    return it == index_.end() ? nullptr : &items_[it->second].second;
  }
  void set(const std::string& key, ValuePtr value) {
    const auto it = index_.find(key);
    if (it != index_.end()) {
      items_[it->second].second = std::move(value);
      return;
    }
    index_.emplace(key, items_.size());
    items_.emplace_back(key, std::move(value));
  }
  bool erase(const std::string& key);
  size_t size() const { return items_.size(); }
  const std::vector<std::pair<std::string, ValuePtr>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, ValuePtr>> items_;
  std::unordered_map<std::string, size_t> index_;
};

using Function = std::function<ValuePtr(std::vector<ValuePtr>& args, Environment& caller)>;

struct Value {
  Type type = Type::Undefined;
  bool boolean = false;
  double number = 0;  // Integer and Float (JavaScript numbers)
  std::string string;
  std::vector<ValuePtr> items;  // Array, Tuple
  OrderedMap map;               // Object, KeywordArguments, Namespace
  Function function;

  bool is_array() const { return type == Type::Array || type == Type::Tuple; }
  bool is_object() const { return type == Type::Object || type == Type::KeywordArguments; }
  bool is_number() const { return type == Type::Integer || type == Type::Float; }
};

ValuePtr make_undefined();
ValuePtr make_null();
ValuePtr make_boolean(bool b);
ValuePtr make_integer(double v);
ValuePtr make_float(double v);
ValuePtr make_string(std::string s);
ValuePtr make_array(std::vector<ValuePtr> items, Type type = Type::Array);
ValuePtr make_object(OrderedMap map, Type type = Type::Object);
ValuePtr make_function(Function f);

// A JSON document as run-time values, as JavaScript would see it after JSON.parse: integral numbers
// are integers, and object keys that are array indices come first, in ascending order.
ValuePtr from_json(const nlohmann::ordered_json& json);

// What the value adds to the output (null and undefined add nothing: the caller skips them).
std::string to_output(const Value& v);
// String(value) in JavaScript for the + and ~ operators.
std::string to_js_string(const Value& v);
// JavaScript's Number.prototype.toString.
std::string js_number(double v);

struct JsonOptions {
  int indent = 0;  // 0: one line
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool custom_separators = false;
  std::string item_separator, key_separator;
};
// The tojson filter: Python's json.dumps layout (", " and ": " by default); undefined is null when
// `undefined_as_null`, "undefined" otherwise (how objects print). Throws for functions.
std::string to_json_text(const Value& v, const JsonOptions& options, bool undefined_as_null, int depth = 0);

bool truthy(const Value& v);
const char* type_name(Type type);

// UTF-16 length (JavaScript's String.length).
double utf16_length(const std::string& s);
// The code points of `s` as strings (JavaScript's Array.from(string)).
std::vector<std::string> code_points(const std::string& s);
std::string js_upper(const std::string& s);
std::string js_lower(const std::string& s);

}  // namespace chronos::jinja
