// Reading JSON files with errors that name the file, line and column.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace chronos {

// Parses a JSON file; throws IoError when missing/unreadable, FormatError "file:line:col: ..." when malformed.
nlohmann::json read_json_file(const std::string& path);

// Writes JSON with 2-space indent and a trailing newline, atomically.
void write_json_file(const std::string& path, const nlohmann::json& value);

}  // namespace chronos
