// Text for tokenizer training from a JSONL corpus (one JSON object per non-blank line).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace chronos {

struct TrainingCorpusOptions {
  std::string text_field;  // "": detect the field (see record_text)
  int64_t max_lines = 0;   // records to read; 0: all
};

struct TrainingCorpusStats {
  int64_t records = 0;  // non-blank lines read
  int64_t texts = 0;    // records that gave text
  int64_t skipped = 0;  // records without text
  int64_t bytes = 0;    // bytes of text handed on
};

// The text of one record. With a field name: that field when it is a non-empty string. Otherwise
// (as the reference's pretrain data reader): the first non-empty of text|content|story|passage|document|article;
// else a pair instruction+output, instruction+response, prompt+response, prompt+completion,
// input+output, question+answer, query+answer (trimmed, joined by "\n"); else the non-empty contents
// of "conversations" or "messages" joined by "\n" (the reference's tokenizer recipe); else nullopt.
std::optional<std::string> record_text(const nlohmann::json& record, const std::string& text_field = "");

// Reads `path` and hands the text of each record to `on_text`. Throws IoError when the file cannot
// be read and FormatError "FILE:LINE: ..." for a line that is not a JSON object.
TrainingCorpusStats read_training_corpus(const std::string& path, const TrainingCorpusOptions& options,
                                         const std::function<void(std::string_view)>& on_text);

}  // namespace chronos
