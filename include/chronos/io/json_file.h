// Reading and writing JSON files; errors name the file, line and column.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "chronos/io/json_text.h"

namespace chronos {

// Parses a JSON file (bounded nesting, see parse_json); throws IoError when missing/unreadable,
// FormatError "file:line:col: ..." when malformed.
nlohmann::json read_json_file(const std::string& path);

// Writes JSON with 2-space indent and a trailing newline, atomically.
void write_json_file(const std::string& path, const nlohmann::json& value);

}  // namespace chronos
