#include "tokenizer/jinja/interpreter.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <set>
#include <stdexcept>

#include "chronos/core/error.h"
#include "tokenizer/jinja/lexer.h"

namespace chronos::jinja {
namespace {

// Raised by values and built-ins; evaluate() adds the template name and line.
struct EvalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// raise_exception(message): the template refuses its input.
struct RaiseSignal : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct BreakSignal {};
struct ContinueSignal {};

[[noreturn]] void fail(const std::string& what) { throw EvalError(what); }

bool is_nullish(const Value& v) { return v.type == Type::Null || v.type == Type::Undefined; }
bool is_reference(const Value& v) {
  return v.is_array() || v.is_object() || v.type == Type::Namespace || v.type == Type::Function;
}
bool numeric_like(const Value& v) { return v.is_number() || v.type == Type::Boolean; }
double numeric(const Value& v) { return v.type == Type::Boolean ? (v.boolean ? 1 : 0) : v.number; }

// JavaScript's Number(string).
double js_to_number(const std::string& s) {
  const std::string t = js_trim_end(js_trim_start(s));
  if (t.empty()) return 0;
  if (t == "Infinity" || t == "+Infinity") return INFINITY;
  if (t == "-Infinity") return -INFINITY;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    char* end = nullptr;
    const double v = static_cast<double>(std::strtoull(t.c_str() + 2, &end, 16));
    return *end ? NAN : v;
  }
  for (char c : t)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) return NAN;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  return *end ? NAN : v;
}

double primitive_number(const Value& v) {
  switch (v.type) {
    case Type::Boolean: return v.boolean ? 1 : 0;
    case Type::String: return js_to_number(v.string);
    default: return v.number;
  }
}

// JavaScript's == on the underlying values (objects and lists by identity).
bool loose_equal(const Value& a, const Value& b) {
  if (is_nullish(a) || is_nullish(b)) return is_nullish(a) && is_nullish(b);
  if (is_reference(a) || is_reference(b)) return &a == &b;
  if (a.type == Type::String && b.type == Type::String) return a.string == b.string;
  return primitive_number(a) == primitive_number(b);
}

// JavaScript's === on the underlying values.
bool strict_equal(const Value& a, const Value& b) {
  if (is_reference(a) || is_reference(b)) return &a == &b;
  if (a.is_number() && b.is_number()) return a.number == b.number;
  if (a.type != b.type) return false;
  switch (a.type) {
    case Type::Boolean: return a.boolean == b.boolean;
    case Type::String: return a.string == b.string;
    default: return true;  // null === null, undefined === undefined
  }
}

// Array.prototype.join's view of one element's underlying value.
std::string join_piece(const Value& v) { return is_nullish(v) ? std::string() : to_js_string(v); }

int compare_values(const Value& a, const Value& b, bool case_sensitive) {
  if (a.type == Type::Null && b.type == Type::Null) return 0;
  if (a.type == Type::Null || b.type == Type::Null) fail(cat("cannot compare ", type_name(a.type), " with ", type_name(b.type)));
  if (a.type == Type::Undefined && b.type == Type::Undefined) return 0;
  if (a.type == Type::Undefined || b.type == Type::Undefined)
    fail(cat("cannot compare ", type_name(a.type), " with ", type_name(b.type)));
  if (numeric_like(a) && numeric_like(b)) {
    const double x = numeric(a), y = numeric(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.type != b.type) fail(cat("cannot compare ", type_name(a.type), " with ", type_name(b.type)));
  if (a.type != Type::String) fail(cat("cannot compare values of type ", type_name(a.type)));
  const std::string x = case_sensitive ? a.string : js_lower(a.string), y = case_sensitive ? b.string : js_lower(b.string);
  return x < y ? -1 : x > y ? 1 : 0;
}

// Python-style slice of n items (JavaScript port semantics of the reference).
std::vector<size_t> slice_indices(size_t length, const Value& start_v, const Value& stop_v, const Value& step_v) {
  const double n = static_cast<double>(length);
  const double step = step_v.type == Type::Undefined ? 1 : step_v.number;
  if (step == 0) fail("slice step cannot be zero");
  double start, stop;
  if (step > 0) {
    start = start_v.type == Type::Undefined ? 0 : start_v.number;
    start = start < 0 ? std::max(n + start, 0.0) : std::min(start, n);
    stop = stop_v.type == Type::Undefined ? n : stop_v.number;
    stop = stop < 0 ? std::max(n + stop, 0.0) : std::min(stop, n);
  } else {
    start = start_v.type == Type::Undefined ? n - 1 : start_v.number;
    start = start < 0 ? std::max(n + start, -1.0) : std::min(start, n - 1);
    stop = stop_v.type == Type::Undefined ? -1 : stop_v.number;
    stop = stop < -1 ? std::max(n + stop, -1.0) : std::min(stop, n - 1);
  }
  std::vector<size_t> out;
  const double direction = step > 0 ? 1 : -1;
  for (double i = start; direction * i < direction * stop; i += step) out.push_back(static_cast<size_t>(i));
  return out;
}

// Element `index` (negative counts from the end), or null.
const ValuePtr* element_at(const std::vector<ValuePtr>& items, double index) {
  const double n = static_cast<double>(items.size());
  const double i = index < 0 ? n + index : index;
  if (i < 0 || i >= n || std::fmod(i, 1.0) != 0) return nullptr;
  return &items[static_cast<size_t>(i)];
}

// "a.b.0" through objects and lists; undefined when a step is missing.
ValuePtr attribute_path(const ValuePtr& item, const std::string& path) {
  ValuePtr value = item;
  size_t from = 0;
  while (true) {
    const size_t dot = path.find('.', from);
    const std::string part = path.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
    if (value->is_object() || value->type == Type::Namespace) {
      const ValuePtr* found = value->map.find(part);
      value = found ? *found : make_undefined();
    } else if (value->is_array()) {
      char* end = nullptr;
      const long index = std::strtol(part.c_str(), &end, 10);
      if (end == part.c_str() || index < 0 || static_cast<size_t>(index) >= value->items.size()) return make_undefined();
      value = value->items[static_cast<size_t>(index)];
    } else {
      return make_undefined();
    }
    if (dot == std::string::npos) return value;
    from = dot + 1;
  }
}

// JavaScript's parseInt(s, 10) / parseFloat(s); NaN when no number starts the text.
double js_parse_int(const std::string& s) {
  const std::string t = js_trim_start(s);
  size_t i = 0;
  bool negative = false;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) negative = t[i++] == '-';
  const size_t digits_from = i;
  double v = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) v = v * 10 + (t[i++] - '0');
  if (i == digits_from) return NAN;
  return negative ? -v : v;
}

double js_parse_float(const std::string& s) {
  const std::string t = js_trim_start(s);
  if (t.compare(0, 8, "Infinity") == 0 || t.compare(0, 9, "+Infinity") == 0) return INFINITY;
  if (t.compare(0, 9, "-Infinity") == 0) return -INFINITY;
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  const size_t mantissa = i;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
  if (i < t.size() && t[i] == '.') ++i;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
  if (i == mantissa || (i == mantissa + 1 && t[mantissa] == '.')) return NAN;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    size_t j = i + 1;
    if (j < t.size() && (t[j] == '+' || t[j] == '-')) ++j;
    if (j < t.size() && std::isdigit(static_cast<unsigned char>(t[j]))) {
      while (j < t.size() && std::isdigit(static_cast<unsigned char>(t[j]))) ++j;
      i = j;
    }
  }
  return std::strtod(t.substr(0, i).c_str(), nullptr);
}

// Python's str.replace(old, new, count) as the reference implements it (matches between code points).
std::string replace_all(const std::string& text, const std::string& old_value, const std::string& new_value, double count) {
  if (count == 0) return text;
  double remaining = count < 0 || std::isnan(count) ? INFINITY : count;
  std::string out;
  if (old_value.empty()) {
    const std::vector<std::string> chars = code_points(text);
    for (const std::string& c : chars) {
      if (remaining > 0) {
        out += new_value;
        --remaining;
      }
      out += c;
    }
    if (remaining > 0) out += new_value;
    return out;
  }
  size_t from = 0;
  while (remaining > 0) {
    const size_t at = text.find(old_value, from);
    if (at == std::string::npos) break;
    out.append(text, from, at - from);
    out += new_value;
    from = at + old_value.size();
    --remaining;
  }
  out.append(text, from, std::string::npos);
  return out;
}

// Python's str.title() as the reference approximates it: upper-case an ASCII word character that
// follows a non-word character.
std::string title_case(const std::string& s) {
  std::string out = s;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (size_t i = 0; i < out.size(); ++i)
    if (word(out[i]) && (i == 0 || !word(out[i - 1]))) out[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[i])));
  return out;
}

std::string strftime_now(const std::string& format) {
  static const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                  "July",    "August",   "September", "October", "November", "December"};
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  auto pad2 = [](int v) { return v < 10 ? "0" + std::to_string(v) : std::to_string(v); };
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out.push_back(format[i]);
      continue;
    }
    const char f = format[i + 1];
    switch (f) {
      case 'Y': out += std::to_string(local.tm_year + 1900); break;
      case 'm': out += pad2(local.tm_mon + 1); break;
      case 'd': out += pad2(local.tm_mday); break;
      case 'b': out += std::string(kMonths[local.tm_mon]).substr(0, 3); break;
      case 'B': out += kMonths[local.tm_mon]; break;
      case 'H': out += pad2(local.tm_hour); break;
      case 'M': out += pad2(local.tm_min); break;
      case '%': out += "%"; break;
      default: out.push_back('%'); out.push_back(f); break;
    }
    ++i;
  }
  return out;
}

// Splits a call's arguments into positional ones and the trailing keyword arguments, if any.
OrderedMap take_keywords(std::vector<ValuePtr>& args) {
  if (!args.empty() && args.back()->type == Type::KeywordArguments) {
    OrderedMap kwargs = args.back()->map;
    args.pop_back();
    return kwargs;
  }
  return {};
}

ValuePtr arg_or(const std::vector<ValuePtr>& args, size_t i, const OrderedMap& kwargs, const char* name, ValuePtr fallback) {
  if (i < args.size()) return args[i];
  if (const ValuePtr* v = kwargs.find(name)) return *v;
  return fallback;
}

ValuePtr string_method(const ValuePtr& self, const std::string& name) {
  const std::string s = self->string;
  if (name == "length") return make_integer(utf16_length(s));
  if (name == "upper") return make_function([s](auto&, auto&) { return make_string(js_upper(s)); });
  if (name == "lower") return make_function([s](auto&, auto&) { return make_string(js_lower(s)); });
  if (name == "strip") return make_function([s](auto&, auto&) { return make_string(js_trim_end(js_trim_start(s))); });
  if (name == "lstrip") return make_function([s](auto&, auto&) { return make_string(js_trim_start(s)); });
  if (name == "rstrip") return make_function([s](auto&, auto&) { return make_string(js_trim_end(s)); });
  if (name == "title") return make_function([s](auto&, auto&) { return make_string(title_case(s)); });
  if (name == "capitalize")
    return make_function([s](auto&, auto&) {
      const std::vector<std::string> chars = code_points(s);
      if (chars.empty()) return make_string("");
      return make_string(js_upper(chars[0]) + s.substr(chars[0].size()));
    });
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return make_function([s, start, name](std::vector<ValuePtr>& args, Environment&) {
      if (args.empty()) fail(cat(name, "() needs an argument"));
      auto test = [&](const std::string& p) {
        return p.size() <= s.size() && (start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0);
      };
      if (args[0]->type == Type::String) return make_boolean(test(args[0]->string));
      if (args[0]->is_array()) {
        for (const ValuePtr& item : args[0]->items) {
          if (item->type != Type::String) fail(cat(name, "() takes strings"));
          if (test(item->string)) return make_boolean(true);
        }
        return make_boolean(false);
      }
      fail(cat(name, "() takes a string or a tuple of strings"));
    });
  }
  if (name == "split")
    return make_function([s](std::vector<ValuePtr>& args, Environment&) {
      const ValuePtr sep = args.size() > 0 ? args[0] : make_null();
      const ValuePtr max_v = args.size() > 1 ? args[1] : make_integer(-1);
      if (sep->type != Type::String && sep->type != Type::Null) fail("split(): the separator must be a string or none");
      if (max_v->type != Type::Integer) fail("split(): maxsplit must be an integer");
      const double maxsplit = max_v->number;
      std::vector<ValuePtr> parts;
      if (sep->type == Type::Null) {
        const std::string text = js_trim_start(s);
        size_t i = 0;
        while (i < text.size()) {
          while (size_t n = js_space_at(text, i)) i += n;
          if (i >= text.size()) break;
          size_t j = i;
          while (j < text.size() && !js_space_at(text, j)) ++j;
          if (maxsplit != -1 && static_cast<double>(parts.size()) >= maxsplit) {
            parts.push_back(make_string(text.substr(i)));
            break;
          }
          parts.push_back(make_string(text.substr(i, j - i)));
          i = j;
        }
      } else {
        if (sep->string.empty()) fail("split(): empty separator");
        std::vector<std::string> pieces;
        size_t from = 0;
        while (true) {
          const size_t at = s.find(sep->string, from);
          if (at == std::string::npos) break;
          pieces.push_back(s.substr(from, at - from));
          from = at + sep->string.size();
        }
        pieces.push_back(s.substr(from));
        if (maxsplit != -1 && static_cast<double>(pieces.size()) > maxsplit) {
          const size_t keep = static_cast<size_t>(std::max(0.0, maxsplit));
          std::string rest;
          for (size_t k = keep; k < pieces.size(); ++k) rest += (k > keep ? sep->string : "") + pieces[k];
          pieces.resize(keep);
          pieces.push_back(rest);
        }
        for (std::string& p : pieces) parts.push_back(make_string(std::move(p)));
      }
      return make_array(std::move(parts));
    });
  if (name == "replace")
    return make_function([s](std::vector<ValuePtr>& args, Environment&) {
      if (args.size() < 2) fail("replace() needs two arguments");
      if (args[0]->type != Type::String || args[1]->type != Type::String) fail("replace() takes strings");
      ValuePtr count = make_null();
      if (args.size() > 2) {
        if (args[2]->type == Type::KeywordArguments) {
          const ValuePtr* c = args[2]->map.find("count");
          count = c ? *c : make_null();
        } else {
          count = args[2];
        }
      }
      if (count->type != Type::Integer && count->type != Type::Null) fail("replace(): count must be an integer or none");
      return make_string(replace_all(s, args[0]->string, args[1]->string, count->type == Type::Null ? -1 : count->number));
    });
  return nullptr;
}

ValuePtr object_method(const ValuePtr& self, const std::string& name) {
  if (name == "get")
    return make_function([self](std::vector<ValuePtr>& args, Environment&) {
      if (args.empty() || args[0]->type != Type::String) fail("get(): the key must be a string");
      if (const ValuePtr* v = self->map.find(args[0]->string)) return *v;
      return args.size() > 1 ? args[1] : make_null();
    });
  auto pairs = [self] {
    std::vector<ValuePtr> out;
    for (const auto& [k, v] : self->map.items()) out.push_back(make_array({make_string(k), v}));
    return make_array(std::move(out));
  };
  if (name == "items") return make_function([pairs](auto&, auto&) { return pairs(); });
  if (name == "keys")
    return make_function([self](auto&, auto&) {
      std::vector<ValuePtr> out;
      for (const auto& kv : self->map.items()) out.push_back(make_string(kv.first));
      return make_array(std::move(out));
    });
  if (name == "values")
    return make_function([self](auto&, auto&) {
      std::vector<ValuePtr> out;
      for (const auto& kv : self->map.items()) out.push_back(kv.second);
      return make_array(std::move(out));
    });
  if (name == "dictsort")
    return make_function([self](std::vector<ValuePtr>& args, Environment&) {
      const OrderedMap kwargs = take_keywords(args);
      const ValuePtr case_sensitive = arg_or(args, 0, kwargs, "case_sensitive", make_boolean(false));
      const ValuePtr by = arg_or(args, 1, kwargs, "by", make_string("key"));
      const ValuePtr reverse = arg_or(args, 2, kwargs, "reverse", make_boolean(false));
      if (case_sensitive->type != Type::Boolean || reverse->type != Type::Boolean) fail("dictsort(): flags must be booleans");
      if (by->type != Type::String || (by->string != "key" && by->string != "value")) fail("dictsort(): by must be 'key' or 'value'");
      std::vector<ValuePtr> items;
      for (const auto& [k, v] : self->map.items()) items.push_back(make_array({make_string(k), v}));
      const size_t index = by->string == "key" ? 0 : 1;
      std::stable_sort(items.begin(), items.end(), [&](const ValuePtr& a, const ValuePtr& b) {
        const int r = compare_values(*a->items[index], *b->items[index], case_sensitive->boolean);
        return reverse->boolean ? r > 0 : r < 0;
      });
      return make_array(std::move(items));
    });
  return nullptr;
}

bool run_test(const std::string& name, const Value& v) {
  if (name == "boolean") return v.type == Type::Boolean;
  if (name == "callable") return v.type == Type::Function;
  if (name == "odd" || name == "even") {
    if (v.type != Type::Integer) fail(cat("the test '", name, "' needs an integer, not ", type_name(v.type)));
    const bool odd = std::fmod(v.number, 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "false") return v.type == Type::Boolean && !v.boolean;
  if (name == "true") return v.type == Type::Boolean && v.boolean;
  if (name == "none") return v.type == Type::Null;
  if (name == "string") return v.type == Type::String;
  if (name == "number") return v.is_number();
  if (name == "integer") return v.type == Type::Integer;
  if (name == "iterable") return v.type == Type::Array || v.type == Type::String;
  if (name == "mapping") return v.is_object();
  if (name == "sequence") return v.is_array() || v.is_object() || v.type == Type::String;
  if (name == "lower") return v.type == Type::String && v.string == js_lower(v.string);
  if (name == "upper") return v.type == Type::String && v.string == js_upper(v.string);
  if (name == "defined") return v.type != Type::Undefined;
  if (name == "undefined") return v.type == Type::Undefined;
  if (name == "equalto" || name == "eq") fail(cat("the test '", name, "' needs an argument, which is not supported"));
  fail(cat("unknown test '", name, "'"));
}

std::vector<std::string> collect_identifiers(const Node& node) {
  std::vector<std::string> out;
  std::vector<const Node*> stack{&node};
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (n->kind == NodeKind::Identifier) out.push_back(n->text);
    for (const NodePtr* child : {&n->a, &n->b, &n->c})
      if (*child) stack.push_back(child->get());
    for (const auto* list : {&n->args, &n->body, &n->alternate})
      for (const NodePtr& child : *list)
        if (child) stack.push_back(child.get());
  }
  return out;
}

class Interpreter {
 public:
  explicit Interpreter(const std::string& name) : name_(name) {}

  ValuePtr evaluate(const Node* node, Environment& env) {
    if (!node) return make_undefined();
    try {
      return dispatch(*node, env);
    } catch (const EvalError& e) {
      throw FormatError(cat(name_, ":", node->line, ": ", e.what()));
    } catch (const RaiseSignal& e) {
      throw InvalidArgument(cat(name_, ":", node->line, ": the template refused its input: ", e.what()));
    }
  }

  std::string block(const std::vector<NodePtr>& statements, Environment& env) {
    std::string out;
    for (const NodePtr& s : statements) {
      const ValuePtr v = evaluate(s.get(), env);
      if (!is_nullish(*v)) out += to_output(*v);
    }
    return out;
  }

 private:
  ValuePtr dispatch(const Node& n, Environment& env) {
    switch (n.kind) {
      case NodeKind::Program: return make_string(block(n.body, env));
      case NodeKind::Set: return set_statement(n, env);
      case NodeKind::If: return make_string(block(truthy(*evaluate(n.a.get(), env)) ? n.body : n.alternate, env));
      case NodeKind::For: return for_statement(n, env);
      case NodeKind::Macro:
        env.set(n.text, macro_function(n.text, n.args, n.body, nullptr));
        return make_null();
      case NodeKind::CallBlock: return call_block(n, env);
      case NodeKind::FilterBlock: return apply_filter(make_string(block(n.body, env)), *n.a, env);
      case NodeKind::Break: throw BreakSignal{};
      case NodeKind::Continue: throw ContinueSignal{};
      case NodeKind::Comment: return make_null();
      case NodeKind::IntegerLiteral: return make_integer(n.number);
      case NodeKind::FloatLiteral: return make_float(n.number);
      case NodeKind::StringLiteral: return make_string(n.text);
      case NodeKind::ArrayLiteral:
      case NodeKind::TupleLiteral: {
        std::vector<ValuePtr> items;
        for (const NodePtr& item : n.args) items.push_back(evaluate(item.get(), env));
        return make_array(std::move(items), n.kind == NodeKind::TupleLiteral ? Type::Tuple : Type::Array);
      }
      case NodeKind::ObjectLiteral: {
        OrderedMap map;
        for (size_t i = 0; i < n.args.size(); ++i) {
          const ValuePtr key = evaluate(n.args[i].get(), env);
          if (key->type != Type::String) fail(cat("mapping keys must be strings, not ", type_name(key->type)));
          map.set(key->string, evaluate(n.body[i].get(), env));
        }
        return make_object(std::move(map));
      }
      case NodeKind::Identifier: return env.lookup(n.text);
      case NodeKind::Call: return call(n, env);
      case NodeKind::Member: return member(n, env);
      case NodeKind::Unary: return unary(n, env);
      case NodeKind::Binary: return binary(n, env);
      case NodeKind::Filter: return apply_filter(evaluate(n.a.get(), env), *n.b, env);
      case NodeKind::Test: {
        const bool result = run_test(n.text, *evaluate(n.a.get(), env));
        return make_boolean(n.negate ? !result : result);
      }
      case NodeKind::Select:
        return truthy(*evaluate(n.b.get(), env)) ? evaluate(n.a.get(), env) : make_undefined();
      case NodeKind::Ternary:
        return truthy(*evaluate(n.a.get(), env)) ? evaluate(n.b.get(), env) : evaluate(n.c.get(), env);
      case NodeKind::Slice: fail("a slice is only allowed inside []");
      case NodeKind::KeywordArgument:
      case NodeKind::Spread:
      case NodeKind::KeywordSpread: fail("argument syntax outside an argument list");
    }
    fail("unknown syntax");
  }

  std::pair<std::vector<ValuePtr>, OrderedMap> arguments(const std::vector<NodePtr>& args, Environment& env) {
    std::vector<ValuePtr> positional;
    OrderedMap keywords;
    for (const NodePtr& a : args) {
      if (a->kind == NodeKind::Spread) {
        const ValuePtr v = evaluate(a->a.get(), env);
        if (!v->is_array()) fail(cat("cannot unpack ", type_name(v->type), " with *"));
        positional.insert(positional.end(), v->items.begin(), v->items.end());
      } else if (a->kind != NodeKind::KeywordArgument && a->kind != NodeKind::KeywordSpread) {
        positional.push_back(evaluate(a.get(), env));
      }
    }
    auto add = [&](const std::string& key, ValuePtr value) {
      if (keywords.find(key)) fail(cat("the keyword argument '", key, "' is given twice"));
      keywords.set(key, std::move(value));
    };
    for (const NodePtr& a : args) {
      if (a->kind == NodeKind::KeywordArgument) {
        add(a->text, evaluate(a->a.get(), env));
      } else if (a->kind == NodeKind::KeywordSpread) {
        const ValuePtr v = evaluate(a->a.get(), env);
        if (!v->is_object()) fail(cat("the argument after ** must be a mapping, not ", type_name(v->type)));
        for (const auto& [k, value] : v->map.items()) add(k, value);
      }
    }
    return {std::move(positional), std::move(keywords)};
  }

  ValuePtr call(const Node& n, Environment& env) {
    auto [args, kwargs] = arguments(n.args, env);
    if (kwargs.size() > 0) args.push_back(make_object(std::move(kwargs), Type::KeywordArguments));
    const ValuePtr fn = evaluate(n.a.get(), env);
    if (fn->type != Type::Function) {
      const std::string what = n.a->kind == NodeKind::Identifier ? cat("'", n.a->text, "' (", type_name(fn->type), ")") : type_name(fn->type);
      fail(cat("cannot call ", what, "; it is not a function"));
    }
    return fn->function(args, env);
  }

  ValuePtr member(const Node& n, Environment& env) {
    const ValuePtr object = evaluate(n.a.get(), env);
    ValuePtr property;
    if (n.computed) {
      if (n.b->kind == NodeKind::Slice) return slice(object, *n.b, env);
      property = evaluate(n.b.get(), env);
    } else if (n.b->kind == NodeKind::IntegerLiteral) {
      property = make_integer(n.b->number);
    } else {
      property = make_string(n.b->text);
    }
    ValuePtr value;
    if (object->is_object() || object->type == Type::Namespace) {
      if (property->type != Type::String) fail(cat("a mapping is indexed by strings, not ", type_name(property->type)));
      if (const ValuePtr* v = object->map.find(property->string)) {
        value = *v;
      } else if (object->is_object()) {
        value = object_method(object, property->string);
      }
    } else if (object->is_array() || object->type == Type::String) {
      if (property->type == Type::Integer) {
        if (object->type == Type::String) {
          const std::vector<std::string> chars = code_points(object->string);
          std::vector<ValuePtr> items;
          for (const std::string& c : chars) items.push_back(make_string(c));
          if (const ValuePtr* v = element_at(items, property->number)) value = *v;
        } else if (const ValuePtr* v = element_at(object->items, property->number)) {
          value = *v;
        }
      } else if (property->type == Type::String) {
        if (object->type == Type::String) {
          value = string_method(object, property->string);
        } else if (property->string == "length") {
          value = make_integer(static_cast<double>(object->items.size()));
        }
      } else {
        fail(cat("a ", type_name(object->type), " is indexed by integers or names, not ", type_name(property->type)));
      }
    } else if (property->type != Type::String) {
      fail(cat("cannot index ", type_name(object->type), " with ", type_name(property->type)));
    }
    return value ? value : make_undefined();
  }

  ValuePtr slice(const ValuePtr& object, const Node& s, Environment& env) {
    if (!object->is_array() && object->type != Type::String) fail(cat("cannot slice ", type_name(object->type)));
    const ValuePtr start = evaluate(s.a.get(), env), stop = evaluate(s.b.get(), env), step = evaluate(s.c.get(), env);
    for (const ValuePtr& v : {start, stop, step})
      if (v->type != Type::Integer && v->type != Type::Undefined) fail("slice bounds must be integers");
    if (object->is_array()) {
      std::vector<ValuePtr> out;
      for (size_t i : slice_indices(object->items.size(), *start, *stop, *step)) out.push_back(object->items[i]);
      return make_array(std::move(out));
    }
    const std::vector<std::string> chars = code_points(object->string);
    std::string out;
    for (size_t i : slice_indices(chars.size(), *start, *stop, *step)) out += chars[i];
    return make_string(std::move(out));
  }

  ValuePtr unary(const Node& n, Environment& env) {
    const ValuePtr v = evaluate(n.a.get(), env);
    if (n.text == "not") return make_boolean(!truthy(*v));
    const double sign = n.text == "-" ? -1 : 1;
    if (!numeric_like(*v)) fail(cat("unary ", n.text, " does not apply to ", type_name(v->type)));
    const double result = sign * numeric(*v);
    return v->type == Type::Float ? make_float(result) : make_integer(result);
  }

  ValuePtr binary(const Node& n, Environment& env) {
    const std::string& op = n.text;
    const ValuePtr left = evaluate(n.a.get(), env);
    if (op == "and") return truthy(*left) ? evaluate(n.b.get(), env) : left;
    if (op == "or") return truthy(*left) ? left : evaluate(n.b.get(), env);
    const ValuePtr right = evaluate(n.b.get(), env);
    if (op == "==") return make_boolean(loose_equal(*left, *right));
    if (op == "!=") return make_boolean(!loose_equal(*left, *right));
    const Value& l = *left;
    const Value& r = *right;
    if (l.type == Type::Undefined || r.type == Type::Undefined) {
      if (r.type == Type::Undefined && (op == "in" || op == "not in")) return make_boolean(op == "not in");
      fail(cat("cannot apply '", op, "' to an undefined value"));
    }
    if (l.type == Type::Null || r.type == Type::Null) fail(cat("cannot apply '", op, "' to none"));
    if (op == "~") return make_string(to_js_string(l) + to_js_string(r));
    if (op == "**" && numeric_like(l) && numeric_like(r)) {
      const double a = numeric(l), b = numeric(r);
      if (a == 0 && b < 0) fail("0.0 cannot be raised to a negative power");
      const double result = std::pow(a, b);
      if (!std::isfinite(result)) fail("the power is not a finite real number");
      return l.type == Type::Float || r.type == Type::Float || b < 0 ? make_float(result) : make_integer(result);
    }
    if (l.is_number() && r.is_number()) {
      const double a = l.number, b = r.number;
      const bool is_float = l.type == Type::Float || r.type == Type::Float;
      auto number = [&](double v) { return is_float ? make_float(v) : make_integer(v); };
      if (op == "+") return number(a + b);
      if (op == "-") return number(a - b);
      if (op == "*") return number(a * b);
      if (op == "/") return make_float(a / b);
      if (op == "//") return number(std::floor(a / b));
      if (op == "%") return number(std::fmod(a, b));
      if (op == "<") return make_boolean(a < b);
      if (op == ">") return make_boolean(a > b);
      if (op == "<=") return make_boolean(a <= b);
      if (op == ">=") return make_boolean(a >= b);
    } else if (l.is_array() && r.is_array()) {
      if (op == "+") {
        std::vector<ValuePtr> items = l.items;
        items.insert(items.end(), r.items.begin(), r.items.end());
        return make_array(std::move(items));
      }
    } else if (r.is_array()) {
      const bool member = std::any_of(r.items.begin(), r.items.end(), [&](const ValuePtr& x) { return strict_equal(*x, l); });
      if (op == "in") return make_boolean(member);
      if (op == "not in") return make_boolean(!member);
    }
    if ((l.type == Type::String || r.type == Type::String) && op == "+") return make_string(to_js_string(l) + to_js_string(r));
    if (l.type == Type::String && r.type == Type::String) {
      if (op == "in") return make_boolean(r.string.find(l.string) != std::string::npos);
      if (op == "not in") return make_boolean(r.string.find(l.string) == std::string::npos);
    }
    if (l.type == Type::String && r.is_object()) {
      if (op == "in") return make_boolean(r.map.find(l.string) != nullptr);
      if (op == "not in") return make_boolean(r.map.find(l.string) == nullptr);
    }
    fail(cat("the operator '", op, "' does not apply to ", type_name(l.type), " and ", type_name(r.type)));
  }

  ValuePtr set_statement(const Node& n, Environment& env) {
    const ValuePtr rhs = n.b ? evaluate(n.b.get(), env) : make_string(block(n.body, env));
    const Node& target = *n.a;
    if (target.kind == NodeKind::Identifier) {
      env.set(target.text, rhs);
    } else if (target.kind == NodeKind::TupleLiteral) {
      if (!rhs->is_array()) fail(cat("cannot unpack ", type_name(rhs->type), " in set"));
      if (rhs->items.size() != target.args.size())
        fail(cat("too ", target.args.size() > rhs->items.size() ? "few" : "many", " values to unpack in set"));
      for (size_t i = 0; i < target.args.size(); ++i) {
        if (target.args[i]->kind != NodeKind::Identifier) fail("set can only unpack into names");
        env.set(target.args[i]->text, rhs->items[i]);
      }
    } else if (target.kind == NodeKind::Member) {
      const ValuePtr object = evaluate(target.a.get(), env);
      if (object->type != Type::Namespace) fail(cat("cannot set an attribute of ", type_name(object->type), "; only of a namespace()"));
      if (target.b->kind != NodeKind::Identifier) fail("set ns.name needs a plain name");
      object->map.set(target.b->text, rhs);
    } else {
      fail("set needs a name, names, or ns.name on the left");
    }
    return make_null();
  }

  ValuePtr for_statement(const Node& n, Environment& env) {
    Environment scope(&env);
    const Node* test = nullptr;
    ValuePtr iterable;
    if (n.b->kind == NodeKind::Select) {
      iterable = evaluate(n.b->a.get(), scope);
      test = n.b->b.get();
    } else {
      iterable = evaluate(n.b.get(), scope);
    }
    if (iterable->is_object()) {
      std::vector<ValuePtr> keys;
      for (const auto& kv : iterable->map.items()) keys.push_back(make_string(kv.first));
      iterable = make_array(std::move(keys));
    }
    if (!iterable->is_array()) fail(cat("for needs a list or a mapping to iterate over, not ", type_name(iterable->type)));
    const Node& var = *n.a;
    auto bind = [&](Environment& into, const ValuePtr& current) {
      if (var.kind == NodeKind::Identifier) {
        into.set(var.text, current);
        return;
      }
      if (!current->is_array()) fail(cat("cannot unpack ", type_name(current->type), " into the loop variables"));
      if (current->items.size() != var.args.size())
        fail(cat("too ", var.args.size() > current->items.size() ? "few" : "many", " values to unpack into the loop variables"));
      for (size_t j = 0; j < var.args.size(); ++j) {
        if (var.args[j]->kind != NodeKind::Identifier) fail("loop variables must be names");
        into.set(var.args[j]->text, current->items[j]);
      }
    };
    std::vector<ValuePtr> items;
    for (const ValuePtr& current : iterable->items) {
      if (test) {
        Environment loop_scope(&scope);
        bind(loop_scope, current);
        if (!truthy(*evaluate(test, loop_scope))) continue;
      }
      items.push_back(current);
    }
    std::string result;
    bool no_iteration = true;
    const double count = static_cast<double>(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      const double k = static_cast<double>(i);
      OrderedMap loop;
      loop.set("index", make_integer(k + 1));
      loop.set("index0", make_integer(k));
      loop.set("revindex", make_integer(count - k));
      loop.set("revindex0", make_integer(count - k - 1));
      loop.set("first", make_boolean(i == 0));
      loop.set("last", make_boolean(i + 1 == items.size()));
      loop.set("length", make_integer(count));
      loop.set("previtem", i > 0 ? items[i - 1] : make_undefined());
      loop.set("nextitem", i + 1 < items.size() ? items[i + 1] : make_undefined());
      scope.set("loop", make_object(std::move(loop)));
      bind(scope, items[i]);
      try {
        result += block(n.body, scope);
      } catch (const ContinueSignal&) {
        continue;
      } catch (const BreakSignal&) {
        break;
      }
      no_iteration = false;
    }
    if (no_iteration) result += block(n.alternate, scope);
    return make_string(std::move(result));
  }

  // A macro (or a call block's caller): parameters bound from positional, then keyword arguments,
  // then defaults; `kwargs` and `varargs` collect the rest when the body uses them.
  ValuePtr macro_function(const std::string& display, const std::vector<NodePtr>& params, const std::vector<NodePtr>& body,
                          Environment* parent) {
    bool wants_kwargs = false, wants_varargs = false;
    for (const NodePtr& s : body)
      for (const std::string& id : collect_identifiers(*s)) {
        wants_kwargs = wants_kwargs || id == "kwargs";
        wants_varargs = wants_varargs || id == "varargs";
      }
    return make_function([this, display, &params, &body, parent, wants_kwargs, wants_varargs](std::vector<ValuePtr>& args,
                                                                                                Environment& caller) {
      // Each call recurses through the evaluator: a macro that calls itself without end is refused.
      if (call_depth_ >= kMaxCallDepth) fail(cat("macro ", display, ": calls nest deeper than ", kMaxCallDepth, " (endless recursion?)"));
      ++call_depth_;
      struct Leave {
        int& depth;
        ~Leave() { --depth; }
      } leave{call_depth_};
      Environment scope(parent ? parent : &caller);
      std::vector<ValuePtr> positional = args;
      OrderedMap keywords = take_keywords(positional);
      std::vector<std::pair<std::string, const Node*>> pending;
      for (size_t i = 0; i < params.size(); ++i) {
        const Node& p = *params[i];
        const std::string& name = p.text;
        ValuePtr value = i < positional.size() ? positional[i] : nullptr;
        if (!value)
          if (const ValuePtr* kw = keywords.find(name)) {
            value = *kw;
            keywords.erase(name);
          }
        if (!value && p.kind == NodeKind::KeywordArgument) pending.emplace_back(name, p.a.get());
        scope.set(name, value ? value : make_undefined());
      }
      if (wants_kwargs) {
        scope.set("kwargs", make_object(keywords));
      } else if (keywords.size() > 0) {
        fail(cat("macro ", display, " takes no keyword argument '", keywords.items().front().first, "'"));
      }
      if (wants_varargs) {
        std::vector<ValuePtr> rest;
        for (size_t i = params.size(); i < positional.size(); ++i) rest.push_back(positional[i]);
        scope.set("varargs", make_array(std::move(rest)));
      } else if (positional.size() > params.size()) {
        fail(cat("macro ", display, " takes at most ", params.size(), " argument(s)"));
      }
      for (const auto& [name, default_value] : pending) scope.set(name, evaluate(default_value, scope));
      return make_string(block(body, scope));
    });
  }

  ValuePtr call_block(const Node& n, Environment& env) {
    const ValuePtr caller = macro_function("None", n.args, n.body, &env);
    auto [args, kwargs] = arguments(n.a->args, env);
    args.push_back(make_object(std::move(kwargs), Type::KeywordArguments));
    const ValuePtr fn = evaluate(n.a->a.get(), env);
    if (fn->type != Type::Function) fail(cat("cannot call ", type_name(fn->type), "; it is not a function"));
    Environment with_caller(&env);
    with_caller.set("caller", caller);
    return fn->function(args, with_caller);
  }

  ValuePtr apply_filter(const ValuePtr& operand, const Node& filter, Environment& env) {
    if (filter.kind == NodeKind::Identifier) return plain_filter(operand, filter.text);
    if (filter.kind != NodeKind::Call || filter.a->kind != NodeKind::Identifier) fail("a filter must be a name or a call");
    return call_filter(operand, filter.a->text, filter.args, env);
  }

  ValuePtr plain_filter(const ValuePtr& operand, const std::string& name) {
    const Value& v = *operand;
    if (name == "safe") return operand;
    if (name == "tojson") return make_string(json(v, JsonOptions{}));
    if (v.is_array()) {
      if (name == "list") return operand;
      if (name == "first") return v.items.empty() ? make_undefined() : v.items.front();
      if (name == "last") return v.items.empty() ? make_undefined() : v.items.back();
      if (name == "length") return make_integer(static_cast<double>(v.items.size()));
      if (name == "reverse") return make_array(std::vector<ValuePtr>(v.items.rbegin(), v.items.rend()));
      if (name == "sort") return sorted(v.items, false, false, nullptr);
      if (name == "join") {
        std::string out;
        for (const ValuePtr& item : v.items) out += join_piece(*item);
        return make_string(out);
      }
      if (name == "string") return make_string(to_json_text(v, JsonOptions{}, false));
      if (name == "unique") {
        std::vector<ValuePtr> out;
        for (const ValuePtr& item : v.items)
          if (std::none_of(out.begin(), out.end(), [&](const ValuePtr& seen) { return strict_equal(*seen, *item); }))
            out.push_back(item);
        return make_array(std::move(out));
      }
      fail(cat("unknown filter '", name, "' for a list"));
    }
    if (v.type == Type::String) {
      if (name == "length") return make_integer(utf16_length(v.string));
      if (name == "upper") return make_string(js_upper(v.string));
      if (name == "lower") return make_string(js_lower(v.string));
      if (name == "title") return make_string(title_case(v.string));
      if (name == "capitalize") {
        const std::vector<std::string> chars = code_points(v.string);
        return make_string(chars.empty() ? "" : js_upper(chars[0]) + v.string.substr(chars[0].size()));
      }
      if (name == "trim") return make_string(js_trim_end(js_trim_start(v.string)));
      if (name == "indent") return make_string(indent(v.string, 4, false, false));
      if (name == "join" || name == "string") return operand;
      if (name == "int") {
        const double x = js_parse_int(v.string);
        return make_integer(std::isnan(x) ? 0 : x);
      }
      if (name == "float") {
        const double x = js_parse_float(v.string);
        return make_float(std::isnan(x) ? 0 : x);
      }
      fail(cat("unknown filter '", name, "' for a string"));
    }
    if (v.is_number()) {
      if (name == "abs") return v.type == Type::Integer ? make_integer(std::fabs(v.number)) : make_float(std::fabs(v.number));
      if (name == "int") return make_integer(std::floor(v.number));
      if (name == "float") return make_float(v.number);
      if (name == "string") return make_string(to_output(v));
      fail(cat("unknown filter '", name, "' for a number"));
    }
    if (v.is_object()) {
      if (name == "length") return make_integer(static_cast<double>(v.map.size()));
      if (const ValuePtr method = object_method(operand, name)) {
        std::vector<ValuePtr> none;
        return method->function(none, *dummy_env());
      }
      fail(cat("unknown filter '", name, "' for a mapping"));
    }
    if (v.type == Type::Boolean) {
      if (name == "bool") return make_boolean(v.boolean);
      if (name == "int") return make_integer(v.boolean ? 1 : 0);
      if (name == "float") return make_float(v.boolean ? 1 : 0);
      if (name == "string") return make_string(v.boolean ? "true" : "false");
      fail(cat("unknown filter '", name, "' for a boolean"));
    }
    fail(cat("the filter '", name, "' does not apply to ", type_name(v.type)));
  }

  ValuePtr call_filter(const ValuePtr& operand, const std::string& name, const std::vector<NodePtr>& arg_nodes, Environment& env) {
    const Value& v = *operand;
    if (name == "tojson") {
      auto [args, kwargs] = arguments(arg_nodes, env);
      JsonOptions o;
      if (const ValuePtr* indent_v = kwargs.find("indent")) {
        if ((*indent_v)->type != Type::Integer && (*indent_v)->type != Type::Null) fail("tojson(): indent must be an integer");
        if ((*indent_v)->type == Type::Integer) o.indent = static_cast<int>((*indent_v)->number);
      }
      if (const ValuePtr* a = kwargs.find("ensure_ascii")) {
        if ((*a)->type != Type::Boolean) fail("tojson(): ensure_ascii must be a boolean");
        o.ensure_ascii = (*a)->boolean;
      }
      if (const ValuePtr* s = kwargs.find("sort_keys")) {
        if ((*s)->type != Type::Boolean) fail("tojson(): sort_keys must be a boolean");
        o.sort_keys = (*s)->boolean;
      }
      if (const ValuePtr* sep = kwargs.find("separators"); sep && (*sep)->type != Type::Null) {
        if (!(*sep)->is_array() || (*sep)->items.size() != 2 || (*sep)->items[0]->type != Type::String ||
            (*sep)->items[1]->type != Type::String)
          fail("tojson(): separators must be two strings");
        o.custom_separators = true;
        o.item_separator = (*sep)->items[0]->string;
        o.key_separator = (*sep)->items[1]->string;
      }
      return make_string(json(v, o));
    }
    if (name == "join") {
      std::vector<std::string> parts;
      if (v.type == Type::String) {
        parts = code_points(v.string);
      } else if (v.is_array()) {
        for (const ValuePtr& item : v.items) parts.push_back(join_piece(*item));
      } else {
        fail(cat("the filter 'join' does not apply to ", type_name(v.type)));
      }
      auto [args, kwargs] = arguments(arg_nodes, env);
      const ValuePtr sep = arg_or(args, 0, kwargs, "separator", make_string(""));
      if (sep->type != Type::String) fail("join(): the separator must be a string");
      std::string out;
      for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep->string : "") + parts[i];
      return make_string(out);
    }
    if (name == "int" || name == "float") {
      auto [args, kwargs] = arguments(arg_nodes, env);
      const ValuePtr fallback = arg_or(args, 0, kwargs, "default", name == "int" ? make_integer(0) : make_float(0));
      if (v.type == Type::String) {
        const double x = name == "int" ? js_parse_int(v.string) : js_parse_float(v.string);
        if (std::isnan(x)) return fallback;
        return name == "int" ? make_integer(x) : make_float(x);
      }
      if (v.is_number()) return operand;
      if (v.type == Type::Boolean) return name == "int" ? make_integer(v.boolean ? 1 : 0) : make_float(v.boolean ? 1 : 0);
      fail(cat("the filter '", name, "' does not apply to ", type_name(v.type)));
    }
    if (name == "default") {
      auto [args, kwargs] = arguments(arg_nodes, env);
      const ValuePtr fallback = args.size() > 0 ? args[0] : make_string("");
      const ValuePtr boolean = arg_or(args, 1, kwargs, "boolean", make_boolean(false));
      if (boolean->type != Type::Boolean) fail("default(): the boolean flag must be true or false");
      if (v.type == Type::Undefined || (boolean->boolean && !truthy(v))) return fallback;
      return operand;
    }
    if (v.is_array()) {
      if (name == "sort") {
        auto [args, kwargs] = arguments(arg_nodes, env);
        const ValuePtr reverse = arg_or(args, 0, kwargs, "reverse", make_boolean(false));
        const ValuePtr case_sensitive = arg_or(args, 1, kwargs, "case_sensitive", make_boolean(false));
        const ValuePtr attribute = arg_or(args, 2, kwargs, "attribute", make_null());
        if (reverse->type != Type::Boolean || case_sensitive->type != Type::Boolean) fail("sort(): flags must be booleans");
        if (attribute->type != Type::String && attribute->type != Type::Integer && attribute->type != Type::Null)
          fail("sort(): attribute must be a string, an integer or none");
        return sorted(v.items, reverse->boolean, case_sensitive->boolean, attribute->type == Type::Null ? nullptr : attribute.get());
      }
      if (name == "selectattr" || name == "rejectattr") {
        const bool select = name == "selectattr";
        for (const ValuePtr& item : v.items)
          if (!item->is_object() && item->type != Type::Namespace) fail(cat(name, " applies to a list of mappings"));
        for (const NodePtr& a : arg_nodes)
          if (a->kind != NodeKind::StringLiteral) fail(cat("the arguments of ", name, " must be strings"));
        if (arg_nodes.empty()) fail(cat(name, " needs an attribute name"));
        const std::string attr = arg_nodes[0]->text;
        const std::string test = arg_nodes.size() > 1 ? arg_nodes[1]->text : "";
        std::vector<ValuePtr> out;
        for (const ValuePtr& item : v.items) {
          const ValuePtr* a = item->map.find(attr);
          const bool result = a ? (test.empty() ? truthy(**a) : run_test(test, **a)) : false;
          if (result == select) out.push_back(item);
        }
        return make_array(std::move(out));
      }
      if (name == "map") {
        auto [args, kwargs] = arguments(arg_nodes, env);
        const ValuePtr* attr = kwargs.find("attribute");
        if (!attr) fail("map() is supported only with attribute=");
        if ((*attr)->type != Type::String) fail("map(): attribute must be a string");
        const ValuePtr* fallback = kwargs.find("default");
        std::vector<ValuePtr> out;
        for (const ValuePtr& item : v.items) {
          if (!item->is_object() && item->type != Type::Namespace) fail("map(attribute=...) applies to a list of mappings");
          const ValuePtr value = attribute_path(item, (*attr)->string);
          out.push_back(value->type == Type::Undefined && fallback ? *fallback : value);
        }
        return make_array(std::move(out));
      }
      fail(cat("unknown filter '", name, "' for a list"));
    }
    if (v.type == Type::String) {
      if (name == "indent") {
        auto [args, kwargs] = arguments(arg_nodes, env);
        const ValuePtr width = arg_or(args, 0, kwargs, "width", make_integer(4));
        if (width->type != Type::Integer) fail("indent(): width must be an integer");
        const ValuePtr first = arg_or(args, 1, kwargs, "first", make_boolean(false));
        const ValuePtr blank = arg_or(args, 2, kwargs, "blank", make_boolean(false));
        return make_string(indent(v.string, static_cast<int>(width->number), truthy(*first), truthy(*blank)));
      }
      if (name == "replace") {
        auto [args, kwargs] = arguments(arg_nodes, env);
        args.push_back(make_object(std::move(kwargs), Type::KeywordArguments));
        return string_method(operand, "replace")->function(args, env);
      }
      fail(cat("unknown filter '", name, "' for a string"));
    }
    if (v.is_object()) {
      if (const ValuePtr method = object_method(operand, name)) {
        auto [args, kwargs] = arguments(arg_nodes, env);
        if (kwargs.size() > 0) args.push_back(make_object(std::move(kwargs), Type::KeywordArguments));
        return method->function(args, env);
      }
      fail(cat("unknown filter '", name, "' for a mapping"));
    }
    fail(cat("the filter '", name, "' does not apply to ", type_name(v.type)));
  }

  static std::string json(const Value& v, const JsonOptions& o) {
    try {
      return to_json_text(v, o, /*undefined_as_null=*/true);
    } catch (const std::runtime_error& e) {
      fail(e.what());
    }
  }

  static std::string indent(const std::string& text, int width, bool first, bool blank) {
    const std::string pad(static_cast<size_t>(std::max(0, width)), ' ');
    std::string out;
    size_t from = 0, line = 0;
    while (true) {
      const size_t nl = text.find('\n', from);
      const std::string part = text.substr(from, nl == std::string::npos ? std::string::npos : nl - from);
      if (line > 0) out += "\n";
      out += ((!first && line == 0) || (!blank && part.empty())) ? part : pad + part;
      if (nl == std::string::npos) break;
      from = nl + 1;
      ++line;
    }
    return out;
  }

  static ValuePtr sorted(std::vector<ValuePtr> items, bool reverse, bool case_sensitive, const Value* attribute) {
    auto key = [&](const ValuePtr& item) {
      if (!attribute) return item;
      return attribute_path(item, attribute->type == Type::Integer ? js_number(attribute->number) : attribute->string);
    };
    std::stable_sort(items.begin(), items.end(), [&](const ValuePtr& a, const ValuePtr& b) {
      const int r = compare_values(*key(a), *key(b), case_sensitive);
      return reverse ? r > 0 : r < 0;
    });
    return make_array(std::move(items));
  }

  static Environment* dummy_env() {
    thread_local Environment env;
    return &env;
  }

  static constexpr int kMaxCallDepth = 64;
  const std::string& name_;
  int call_depth_ = 0;
};

}  // namespace

ValuePtr Environment::lookup(const std::string& name) const {
  for (const Environment* e = this; e; e = e->parent_) {
    const auto it = e->variables_.find(name);
    if (it != e->variables_.end()) return it->second;
  }
  return make_undefined();
}

void add_globals(Environment& env) {
  env.set("true", make_boolean(true));
  env.set("false", make_boolean(false));
  env.set("none", make_null());
  env.set("True", make_boolean(true));
  env.set("False", make_boolean(false));
  env.set("None", make_null());
  env.set("namespace", make_function([](std::vector<ValuePtr>& args, Environment&) {
            std::vector<ValuePtr> positional = args;
            const OrderedMap kwargs = take_keywords(positional);
            if (positional.size() > 1) fail(cat("namespace() takes at most one argument, got ", positional.size()));
            OrderedMap entries;
            if (positional.size() == 1) {
              const Value& source = *positional[0];
              if (source.is_object()) {
                for (const auto& [k, v] : source.map.items()) entries.set(k, v);
              } else if (source.is_array()) {
                for (const ValuePtr& pair : source.items) {
                  if (!pair->is_array() || pair->items.size() != 2 || pair->items[0]->type != Type::String)
                    fail("namespace() takes a mapping or [key, value] pairs with string keys");
                  entries.set(pair->items[0]->string, pair->items[1]);
                }
              } else {
                fail(cat("namespace() cannot take ", type_name(source.type)));
              }
            }
            for (const auto& [k, v] : kwargs.items()) entries.set(k, v);
            return make_object(std::move(entries), Type::Namespace);
          }));
  env.set("raise_exception", make_function([](std::vector<ValuePtr>& args, Environment&) -> ValuePtr {
            throw RaiseSignal(args.empty() ? std::string() : to_js_string(*args[0]));
          }));
  env.set("range", make_function([](std::vector<ValuePtr>& args, Environment&) {
            std::vector<ValuePtr> positional = args;
            take_keywords(positional);
            if (positional.empty() || positional.size() > 3) fail("range() takes one to three numbers");
            for (const ValuePtr& a : positional)
              if (!a->is_number()) fail("range() takes numbers");
            double start = 0, stop = positional[0]->number, step = 1;
            if (positional.size() > 1) {
              start = positional[0]->number;
              stop = positional[1]->number;
            }
            if (positional.size() > 2) step = positional[2]->number;
            if (step == 0) fail("range() step must not be zero");
            if (std::fabs((stop - start) / step) > 1e7) fail("range() is too long");
            std::vector<ValuePtr> out;
            for (double i = start; step > 0 ? i < stop : i > stop; i += step)
              out.push_back(std::fmod(i, 1.0) == 0 ? make_integer(i) : make_float(i));
            return make_array(std::move(out));
          }));
  env.set("strftime_now", make_function([](std::vector<ValuePtr>& args, Environment&) {
            if (args.empty() || args[0]->type != Type::String) fail("strftime_now() takes a format string");
            return make_string(strftime_now(args[0]->string));
          }));
}

std::string render(const Node& program, Environment& env, const std::string& name) {
  Interpreter interpreter(name);
  try {
    return interpreter.block(program.body, env);
  } catch (const BreakSignal&) {
    throw FormatError(cat(name, ": {% break %} outside a loop"));
  } catch (const ContinueSignal&) {
    throw FormatError(cat(name, ": {% continue %} outside a loop"));
  }
}

}  // namespace chronos::jinja
