// Parsing JSON text from outside with errors that name the source, line and column. All JSON the
// library reads goes through parse_json: its nesting is bounded before nlohmann parses it, so no
// later recursive walk (dump, conversion, rendering) can exhaust the stack.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace chronos {

// The deepest nesting of arrays and objects accepted. Real configs, tokenizers and chat messages
// nest fewer than 10 levels; 100k levels of `[` would overflow the stack of any recursive walk.
inline constexpr int kMaxJsonDepth = 128;

// Parses JSON text. `source` names it in messages and `first_line` is the line the text starts on
// (a JSONL record passes its line number). Throws FormatError "source:line:col: ..." when the text
// is malformed or nests deeper than kMaxJsonDepth.
nlohmann::json parse_json(std::string_view text, const std::string& source, size_t first_line = 1);
nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& source, size_t first_line = 1);

// A short description of a value for error messages: scalars as JSON up to 40 characters,
// containers by size ("an array of 3 elements"). User values are never echoed whole.
std::string describe_json(const nlohmann::json& value);
std::string describe_json(const nlohmann::ordered_json& value);

}  // namespace chronos
