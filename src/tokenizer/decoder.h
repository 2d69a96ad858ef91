// Private to the tokenizer: the decoder section of tokenizer.json (ByteLevel, Replace, ByteFallback,
// Fuse, Strip, Metaspace and Sequences of them), turning token strings back into text the way HF's
// decode_chain does. ByteLevel alone (the common case) decodes through per-token bytes instead.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tokenizer/json_reader.h"
#include "tokenizer/regex.h"

namespace chronos::tokenizer_detail {

class Decoder {
 public:
  Decoder() = default;
  // `section` is the JSON value (null: none; tokens are then joined with spaces, as HF does).
  Decoder(const nlohmann::json& section, const JsonReader& reader);

  bool empty() const { return steps_.empty(); }
  // True when the decoder is exactly one ByteLevel step.
  bool byte_level_only() const { return steps_.size() == 1 && steps_[0].kind == Step::Kind::byte_level; }
  // The text of `tokens` (token strings as tokenizer.json spells them).
  std::string decode(std::vector<std::string> tokens) const;
  const nlohmann::ordered_json& json() const { return json_; }

 private:
  struct Step {
    enum class Kind { byte_level, replace, byte_fallback, fuse, strip, metaspace } kind = Kind::byte_level;
    Pattern pattern;          // Replace
    std::string content;      // Replace: the replacement; Strip, Metaspace: the character
    size_t start = 0, stop = 0;  // Strip
    bool prepend_never = false;  // Metaspace: prepend_scheme "never"
  };
  void add(const nlohmann::json& section, const JsonReader& reader, const std::string& where);

  std::vector<Step> steps_;
  nlohmann::ordered_json json_;
};

}  // namespace chronos::tokenizer_detail
