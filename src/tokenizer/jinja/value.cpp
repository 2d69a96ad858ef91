#include "tokenizer/jinja/value.h"

#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "tokenizer/json_string.h"
#include "tokenizer/unicode.h"

namespace chronos::jinja {
namespace {

using tokenizer_detail::append_json_string;

ValuePtr make(Type type) {
  auto v = std::make_shared<Value>();
  v->type = type;
  return v;
}

// A JavaScript "array index" key: the canonical decimal form of an integer below 2^32 - 1.
bool is_array_index(const std::string& key) {
  if (key.empty() || key.size() > 10) return false;
  if (key.size() > 1 && key[0] == '0') return false;
  uint64_t v = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v < 4294967295ull;
}

// ensure_ascii: every UTF-16 unit from U+007F up as \uXXXX (astral characters as surrogate pairs).
std::string ascii_safe(const std::string& json) {
  std::string out;
  tokenizer_detail::for_each_char(json, [&](char32_t cp, bool ok, size_t start, size_t n) {
    if (!ok || cp < 0x7F) {
      out.append(json, start, n);
      return;
    }
    auto unit = [&](unsigned v) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", v);
      out += buf;
    };
    if (cp >= 0x10000) {
      unit(0xD800 + ((cp - 0x10000) >> 10));
      unit(0xDC00 + ((cp - 0x10000) & 0x3FF));
    } else {
      unit(static_cast<unsigned>(cp));
    }
  });
  return out;
}

std::string float_output(double v) {
  if (v == 0 && std::signbit(v)) return "-0.0";
  if (std::isfinite(v) && std::fmod(v, 1.0) == 0 && std::fabs(v) < 1e21) {
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
  }
  return js_number(v);
}

std::string map_case(const std::string& s, bool upper) {
  std::string out;
  out.reserve(s.size());
  tokenizer_detail::for_each_char(s, [&](char32_t cp, bool ok, size_t start, size_t n) {
    if (!ok) {
      out.append(s, start, n);
      return;
    }
    const auto c = static_cast<utf8proc_int32_t>(cp);
    utf8proc_uint8_t buf[4];
    const utf8proc_ssize_t len = utf8proc_encode_char(upper ? utf8proc_toupper(c) : utf8proc_tolower(c), buf);
    out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
  });
  return out;
}

}  // namespace

bool OrderedMap::erase(const std::string& key) {
  const auto it = index_.find(key);
  if (it == index_.end()) return false;
  items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].first, i);
  return true;
}

ValuePtr make_undefined() {
  static const ValuePtr v = make(Type::Undefined);
  return v;
}
ValuePtr make_null() {
  static const ValuePtr v = make(Type::Null);
  return v;
}
ValuePtr make_boolean(bool b) {
  auto v = make(Type::Boolean);
  v->boolean = b;
  return v;
}
ValuePtr make_integer(double n) {
  auto v = make(Type::Integer);
  v->number = n;
  return v;
}
ValuePtr make_float(double n) {
  auto v = make(Type::Float);
  v->number = n;
  return v;
}
ValuePtr make_string(std::string s) {
  auto v = make(Type::String);
  v->string = std::move(s);
  return v;
}
ValuePtr make_array(std::vector<ValuePtr> items, Type type) {
  auto v = make(type);
  v->items = std::move(items);
  return v;
}
ValuePtr make_object(OrderedMap map, Type type) {
  auto v = make(type);
  v->map = std::move(map);
  return v;
}
ValuePtr make_function(Function f) {
  auto v = make(Type::Function);
  v->function = std::move(f);
  return v;
}

ValuePtr from_json(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null: return make_null();
    case nlohmann::ordered_json::value_t::boolean: return make_boolean(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return make_integer(static_cast<double>(json.get<int64_t>()));
    case nlohmann::ordered_json::value_t::number_unsigned: return make_integer(static_cast<double>(json.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: {
      const double v = json.get<double>();
      return std::isfinite(v) && std::fmod(v, 1.0) == 0 ? make_integer(v) : make_float(v);
    }
    case nlohmann::ordered_json::value_t::string: return make_string(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<ValuePtr> items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json(item));
      return make_array(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      std::vector<std::pair<uint64_t, std::string>> indices;
      for (auto it = json.begin(); it != json.end(); ++it)
        if (is_array_index(it.key())) indices.emplace_back(std::stoull(it.key()), it.key());
      std::sort(indices.begin(), indices.end());
      OrderedMap map;
      for (const auto& [n, key] : indices) map.set(key, from_json(json.at(key)));
      for (auto it = json.begin(); it != json.end(); ++it)
        if (!is_array_index(it.key())) map.set(it.key(), from_json(it.value()));
      return make_object(std::move(map));
    }
    default: return make_undefined();  // binary and discarded values do not occur in parsed JSON text
  }
}

std::string js_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return "0";
  std::string out = v < 0 ? "-" : "";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, std::fabs(v), std::chars_format::scientific);
  const std::string sci(buf, res.ptr);  // d.ddde+XX: the shortest digits that round-trip
  const size_t e = sci.find('e');
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (sci[i] != '.') digits.push_back(sci[i]);
  const int k = static_cast<int>(digits.size());
  const int n = std::stoi(sci.substr(e + 1)) + 1;  // value = 0.digits * 10^n
  if (k <= n && n <= 21) {
    out += digits + std::string(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  } else {
    const int exponent = n - 1;
    out += digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += exponent < 0 ? "e-" : "e+";
    out += std::to_string(std::abs(exponent));
  }
  return out;
}

std::string to_json_text(const Value& v, const JsonOptions& o, bool undefined_as_null, int depth) {
  std::string item_sep = ", ", key_sep = ": ";
  if (o.custom_separators) {
    item_sep = o.item_separator;
    key_sep = o.key_separator;
  } else if (o.indent > 0) {
    item_sep = ",";
  }
  switch (v.type) {
    case Type::Null: return "null";
    case Type::Undefined: return undefined_as_null ? "null" : "undefined";
    case Type::Integer:
    case Type::Float: return std::isfinite(v.number) ? js_number(v.number) : "null";
    case Type::Boolean: return v.boolean ? "true" : "false";
    case Type::String: {
      std::string out;
      append_json_string(out, v.string);
      return o.ensure_ascii ? ascii_safe(out) : out;
    }
    case Type::Array:
    case Type::Tuple:
    case Type::Object:
    case Type::KeywordArguments:
    case Type::Namespace: {
      const std::string unit(static_cast<size_t>(std::max(0, o.indent)), ' ');
      std::string base = "\n";
      for (int d = 0; d < depth; ++d) base += unit;
      const std::string child = base + unit;
      std::vector<std::string> core;
      if (v.is_array()) {
        for (const ValuePtr& item : v.items) core.push_back(to_json_text(*item, o, undefined_as_null, depth + 1));
        if (o.indent > 0 && !core.empty()) {
          std::string out = "[" + child;
          for (size_t i = 0; i < core.size(); ++i) out += (i ? item_sep + child : "") + core[i];
          return out + base + "]";
        }
        std::string out = "[";
        for (size_t i = 0; i < core.size(); ++i) out += (i ? item_sep : "") + core[i];
        return out + "]";
      }
      std::vector<std::pair<std::string, ValuePtr>> entries = v.map.items();
      if (o.sort_keys)
        std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [key, value] : entries) {
        std::string k;
        append_json_string(k, key);
        if (o.ensure_ascii) k = ascii_safe(k);
        std::string item = k + key_sep + to_json_text(*value, o, undefined_as_null, depth + 1);
        core.push_back(o.indent > 0 ? child + item : item);
      }
      std::string out = "{";
      for (size_t i = 0; i < core.size(); ++i) out += (i ? item_sep : "") + core[i];
      return out + (o.indent > 0 && !core.empty() ? base : "") + "}";
    }
    case Type::Function: throw std::runtime_error("a function cannot be converted to JSON");
  }
  return "null";
}

std::string to_output(const Value& v) {
  switch (v.type) {
    case Type::Undefined:
    case Type::Null: return "";
    case Type::Boolean: return v.boolean ? "true" : "false";
    case Type::Integer: return js_number(v.number);
    case Type::Float: return float_output(v.number);
    case Type::String: return v.string;
    case Type::Function: return "[function]";
    default: return to_json_text(v, JsonOptions{}, /*undefined_as_null=*/false);
  }
}

std::string to_js_string(const Value& v) {
  switch (v.type) {
    case Type::Undefined: return "undefined";
    case Type::Null: return "null";
    case Type::Integer:
    case Type::Float: return js_number(v.number);
    case Type::Array:
    case Type::Tuple: {
      std::string out;
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ",";
        const Value& item = *v.items[i];
        out += item.type == Type::Undefined ? "undefined" : item.type == Type::Null ? "null" : to_output(item);
      }
      return out;
    }
    case Type::Object:
    case Type::KeywordArguments:
    case Type::Namespace: return "[object Map]";
    default: return to_output(v);
  }
}

bool truthy(const Value& v) {
  switch (v.type) {
    case Type::Undefined:
    case Type::Null: return false;
    case Type::Boolean: return v.boolean;
    case Type::Integer:
    case Type::Float: return v.number != 0 && !std::isnan(v.number);
    case Type::String: return !v.string.empty();
    case Type::Array:
    case Type::Tuple: return !v.items.empty();
    case Type::Object:
    case Type::KeywordArguments: return v.map.size() > 0;
    case Type::Namespace:
    case Type::Function: return true;
  }
  return false;
}

const char* type_name(Type type) {
  switch (type) {
    case Type::Undefined: return "undefined";
    case Type::Null: return "none";
    case Type::Boolean: return "boolean";
    case Type::Integer: return "integer";
    case Type::Float: return "float";
    case Type::String: return "string";
    case Type::Array: return "list";
    case Type::Tuple: return "tuple";
    case Type::Object: return "mapping";
    case Type::KeywordArguments: return "keyword arguments";
    case Type::Namespace: return "namespace";
    case Type::Function: return "function";
  }
  return "value";
}

double utf16_length(const std::string& s) {
  double n = 0;
  tokenizer_detail::for_each_char(s, [&](char32_t cp, bool ok, size_t, size_t) { n += ok && cp >= 0x10000 ? 2 : 1; });
  return n;
}

std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  tokenizer_detail::for_each_char(s, [&](char32_t, bool, size_t start, size_t n) { out.push_back(s.substr(start, n)); });
  return out;
}

std::string js_upper(const std::string& s) { return map_case(s, true); }
std::string js_lower(const std::string& s) { return map_case(s, false); }

}  // namespace chronos::jinja
