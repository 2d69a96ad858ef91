// Private to the tokenizer: the post_processor section of tokenizer.json. TemplateProcessing adds
// special tokens around a sequence (Llama's BOS) when asked to; ByteLevel trims the spaces of
// byte-level tokens out of their offsets; Sequence chains them.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/json_reader.h"

namespace chronos::tokenizer_detail {

class PostProcessor {
 public:
  // One token of the encoding being finished.
  struct Token {
    int32_t id;
    std::pair<uint32_t, uint32_t> offsets;  // byte offsets in the input
    bool special_added;                     // added by the template (offsets (0, 0))
    std::string value = {};                 // the matched text of an added token that took white space
                                            // (lstrip/rstrip); empty: the token as the vocabulary spells it
  };

  PostProcessor() = default;
  // `section` is the JSON value (null: none). `id_of` looks a token up (for the template's checks).
  template <class IdOf>
  PostProcessor(const nlohmann::json& section, const JsonReader& reader, IdOf id_of) {
    if (section.is_null()) return;
    json_ = type_first(section);
    add(section, reader, "post_processor", [&](const std::string& t) { return id_of(t); });
  }

  bool empty() const { return steps_.empty(); }
  // Applies the steps to `tokens`; `token_string(i)` spells token i (for the ByteLevel trim), and
  // special tokens are added only when `add_special_tokens`.
  template <class TokenString>
  void apply(std::vector<Token>& tokens, bool add_special_tokens, TokenString token_string) const;
  const nlohmann::ordered_json& json() const { return json_; }

 private:
  struct Step {
    enum class Kind { template_single, byte_level } kind = Kind::byte_level;
    bool trim_offsets = true, add_prefix_space = true;  // ByteLevel
    // TemplateProcessing "single": each piece is the sequence (empty ids) or special ids.
    std::vector<std::vector<int32_t>> pieces;
  };
  using IdLookup = std::function<int64_t(const std::string&)>;
  void add(const nlohmann::json& section, const JsonReader& reader, const std::string& where, const IdLookup& id_of);
  void trim(std::vector<Token>& tokens, bool add_prefix_space, const std::function<std::string(size_t)>& token_string) const;

  std::vector<Step> steps_;
  nlohmann::ordered_json json_;
};

template <class TokenString>
void PostProcessor::apply(std::vector<Token>& tokens, bool add_special_tokens, TokenString token_string) const {
  for (const Step& step : steps_) {
    if (step.kind == Step::Kind::byte_level) {
      if (step.trim_offsets)
        trim(tokens, step.add_prefix_space,
             [&](size_t i) { return tokens[i].value.empty() ? std::string(token_string(tokens[i].id)) : tokens[i].value; });
      continue;
    }
    if (!add_special_tokens) continue;
    std::vector<Token> out;
    out.reserve(tokens.size() + 4);
    for (const std::vector<int32_t>& piece : step.pieces) {
      if (piece.empty()) {
        out.insert(out.end(), tokens.begin(), tokens.end());
      } else {
        for (int32_t id : piece) out.push_back({id, {0, 0}, true});
      }
    }
    tokens = std::move(out);
  }
}

}  // namespace chronos::tokenizer_detail
