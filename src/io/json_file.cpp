#include "chronos/io/json_file.h"

#include "chronos/core/error.h"
#include "chronos/io/atomic_file.h"
#include "chronos/io/regular_file.h"

namespace chronos {

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_regular_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // Turn the byte position into line:column so the message points at the fault.
    size_t line = 1, column = 1;
    const size_t end = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    if (auto pos = what.find("syntax error"); pos != std::string::npos) what = what.substr(pos);
    throw FormatError(cat(path, ":", line, ":", column, ": invalid JSON: ", what));
  }
}

void write_json_file(const std::string& path, const nlohmann::json& value) {
  write_file_atomic(path, value.dump(2) + "\n");
}

}  // namespace chronos
