#include "chronos/io/json_text.h"

#include "chronos/core/error.h"

namespace chronos {
namespace {

// "source:line:col" for byte `offset` of `text`.
std::string position(std::string_view text, size_t offset, const std::string& source, size_t first_line) {
  size_t line = first_line, column = 1;
  const size_t end = std::min(offset, text.size());
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return cat(source, ":", line, ":", column);
}

// Refuses nesting deeper than kMaxJsonDepth before the parser sees the text. Brackets inside
// strings do not count; the parser itself reports any other malformation.
void check_nesting(std::string_view text, const std::string& source, size_t first_line) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw FormatError(cat(position(text, i, source, first_line), ": JSON nests deeper than ", kMaxJsonDepth,
                              " levels"));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

template <typename Json>
Json parse_checked(std::string_view text, const std::string& source, size_t first_line) {
  check_nesting(text, source, first_line);
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based: the character the parser stopped at.
    std::string what = e.what();
    if (auto pos = what.find("syntax error"); pos != std::string::npos) what = what.substr(pos);
    throw FormatError(cat(position(text, e.byte == 0 ? 0 : e.byte - 1, source, first_line), ": invalid JSON: ", what));
  } catch (const nlohmann::json::exception& e) {
    // out_of_range 406: a number too large for a double ("1e999"); it carries no position.
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    throw FormatError(cat(source, ": invalid JSON: ", what));
  }
}

template <typename Json>
std::string describe(const Json& value) {
  if (value.is_array()) return cat("an array of ", value.size(), value.size() == 1 ? " element" : " elements");
  if (value.is_object()) return cat("an object with ", value.size(), value.size() == 1 ? " key" : " keys");
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& source, size_t first_line) {
  return parse_checked<nlohmann::json>(text, source, first_line);
}

nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& source, size_t first_line) {
  return parse_checked<nlohmann::ordered_json>(text, source, first_line);
}

std::string describe_json(const nlohmann::json& value) { return describe(value); }
std::string describe_json(const nlohmann::ordered_json& value) { return describe(value); }

}  // namespace chronos
