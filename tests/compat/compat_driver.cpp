// What the compat scripts (tests/compat/*.cjs) run on the Chronos side, printing JSON for them to
// compare with the reference packages. Not installed.
//   compat_driver chat TEMPLATE_FILE CONTEXTS_JSON   one rendering per context, {"error": ...} on failure
//   compat_driver encode TOKENIZER TEXTS_JSONL OUT_JSONL
//       per text (a JSON string per line): ids and character offsets without and with the
//       post-processor's special tokens, and the decoding of the latter with and without them
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <string>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/io/regular_file.h"
#include "chronos/tokenizer/jinja_template.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/tokenizer/utf8.h"

namespace {

int chat(const std::string& template_path, const std::string& contexts_path) {
  const chronos::JinjaTemplate tpl(chronos::read_regular_file(template_path), template_path);
  const nlohmann::ordered_json contexts = chronos::parse_ordered_json(chronos::read_regular_file(contexts_path), contexts_path);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& context : contexts) {
    try {
      out.push_back(tpl.render(context));
    } catch (const chronos::Error& e) {
      out.push_back({{"error", e.what()}});
    }
  }
  std::cout << out.dump() << "\n";
  return 0;
}

nlohmann::json offsets_json(const std::vector<std::pair<size_t, size_t>>& offsets) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [start, end] : offsets) out.push_back({start, end});
  return out;
}

int encode(const std::string& tokenizer_path, const std::string& texts_path, const std::string& out_path) {
  const chronos::Tokenizer tokenizer = chronos::Tokenizer::from_file(tokenizer_path);
  std::ifstream texts(texts_path);
  if (!texts) throw chronos::IoError(texts_path + ": cannot open");
  std::ofstream out(out_path);
  std::string line;
  size_t line_number = 0;
  while (std::getline(texts, line)) {
    ++line_number;
    if (line.empty()) continue;
    const std::string text = chronos::parse_json(line, texts_path, line_number).get<std::string>();
    chronos::EncodeOptions plain, special;
    special.add_special_tokens = true;
    const chronos::Encoding a = tokenizer.encode_with_offsets(text, plain);
    const chronos::Encoding b = tokenizer.encode_with_offsets(text, special);
    nlohmann::json record = {{"ids", a.ids},
                             {"offsets", offsets_json(chronos::to_char_offsets(text, a.offsets))},
                             {"ids_special", b.ids},
                             {"offsets_special", offsets_json(chronos::to_char_offsets(text, b.offsets))},
                             {"decoded", chronos::to_valid_utf8(tokenizer.decode(b.ids, false))},
                             {"decoded_skip", chronos::to_valid_utf8(tokenizer.decode(b.ids, true))}};
    out << record.dump() << "\n";
  }
  if (!out.flush()) throw chronos::IoError(out_path + ": cannot write");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "chat" && argc == 4) return chat(argv[2], argv[3]);
    if (mode == "encode" && argc == 5) return encode(argv[2], argv[3], argv[4]);
    std::cerr << "usage: compat_driver chat TEMPLATE_FILE CONTEXTS_JSON | encode TOKENIZER TEXTS_JSONL OUT_JSONL\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "compat_driver: " << e.what() << "\n";
    return 1;
  }
}
