#include "chronos/tokenizer/training_corpus.h"

#include <fstream>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"
#include "chronos/io/regular_file.h"

namespace chronos {
namespace {

using nlohmann::json;

std::string trim(const std::string& s) {
  const char* space = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(space);
  if (b == std::string::npos) return std::string();
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

const std::string* text_of(const json& record, const char* key) {
  const auto it = record.find(key);
  if (it == record.end() || !it->is_string()) return nullptr;
  return &it->get_ref<const std::string&>();
}

}  // namespace

std::optional<std::string> record_text(const json& record, const std::string& text_field) {
  if (!record.is_object()) return std::nullopt;
  if (!text_field.empty()) {
    const std::string* text = text_of(record, text_field.c_str());
    if (text && !text->empty()) return *text;
    return std::nullopt;
  }
  for (const char* key : {"text", "content", "story", "passage", "document", "article"}) {
    const std::string* text = text_of(record, key);
    if (text && !text->empty()) return *text;
  }
  static const char* const kPairs[][2] = {{"instruction", "output"}, {"instruction", "response"}, {"prompt", "response"},
                                          {"prompt", "completion"},  {"input", "output"},         {"question", "answer"},
                                          {"query", "answer"}};
  for (const auto& pair : kPairs) {
    const std::string* first = text_of(record, pair[0]);
    const std::string* second = text_of(record, pair[1]);
    if (first && second) {
      const std::string a = trim(*first), b = trim(*second);
      if (!a.empty() || !b.empty()) return a + "\n" + b;
    }
  }
  for (const char* key : {"conversations", "messages"}) {
    const auto it = record.find(key);
    if (it == record.end() || !it->is_array()) continue;
    std::string joined;
    bool any = false;
    for (const auto& message : *it) {
      if (!message.is_object()) continue;
      const std::string* content = text_of(message, "content");
      if (!content || content->empty()) continue;
      if (any) joined += "\n";
      joined += *content;
      any = true;
    }
    if (any) return joined;
  }
  return std::nullopt;
}

TrainingCorpusStats read_training_corpus(const std::string& path, const TrainingCorpusOptions& options,
                                         const std::function<void(std::string_view)>& on_text) {
  require_regular_file(path);  // a FIFO would block the stream's open
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(cat(path, ": cannot open the corpus"));
  TrainingCorpusStats stats;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    if (options.max_lines > 0 && stats.records >= options.max_lines) break;
    ++stats.records;
    const json record = parse_json(line, path, static_cast<size_t>(line_number));
    if (!record.is_object()) throw FormatError(cat(path, ":", line_number, ": expected a JSON object, got ", record.type_name()));
    const auto text = record_text(record, options.text_field);
    if (!text) {
      ++stats.skipped;
      continue;
    }
    ++stats.texts;
    stats.bytes += static_cast<int64_t>(text->size());
    on_text(*text);
  }
  if (in.bad()) throw IoError(cat(path, ": read error after line ", line_number));
  return stats;
}

}  // namespace chronos
