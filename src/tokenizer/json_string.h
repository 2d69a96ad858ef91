// Private to the tokenizer: a string as JSON text the way both Python's json.dumps(ensure_ascii=False)
// and JavaScript's JSON.stringify write it (the chat templates' tojson): quotes, backslashes and
// control characters escaped (\b \f \n \r \t, others \u00XX), everything else as is.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace chronos::tokenizer_detail {

inline void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace chronos::tokenizer_detail
