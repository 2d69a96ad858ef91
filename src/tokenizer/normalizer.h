// Private to the tokenizer: the normalizer section of tokenizer.json (NFC, NFD, NFKC, NFKD,
// Lowercase, Strip, Replace, Prepend and Sequences of them), applied to text with its alignment.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tokenizer/json_reader.h"
#include "tokenizer/normalized_text.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode_normalize.h"

namespace chronos::tokenizer_detail {

class Normalizer {
 public:
  Normalizer() = default;
  // `section` is the JSON value (null: none). Throws FormatError naming the JSON path of a type or
  // option Chronos does not implement.
  Normalizer(const nlohmann::json& section, const JsonReader& reader);

  bool empty() const { return steps_.empty(); }
  void apply(NormalizedText& text) const;
  // The section as read, for writing the file back.
  const nlohmann::ordered_json& json() const { return json_; }

 private:
  struct Step {
    enum class Kind { normal_form, lowercase, strip, replace, prepend } kind = Kind::normal_form;
    NormalForm form = NormalForm::nfc;
    bool left = false, right = false;  // Strip
    Pattern pattern;                   // Replace
    std::string content;               // Replace: the replacement; Prepend: the prefix
  };
  void add(const nlohmann::json& section, const JsonReader& reader, const std::string& where);

  std::vector<Step> steps_;
  nlohmann::ordered_json json_;
};

// Rust's char::is_whitespace (Unicode White_Space).
bool is_unicode_space(char32_t c);

}  // namespace chronos::tokenizer_detail
