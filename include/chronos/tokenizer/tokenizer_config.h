// tokenizer_config.json, the HF transformers side file beside tokenizer.json: which tokens are
// BOS/EOS/PAD/UNK, whether BOS/EOS are added implicitly, and the chat template as Jinja text. Chronos
// renders chats in C++ (render_chat); the Jinja text is stored for other tools.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "chronos/tokenizer/tokenizer.h"

namespace chronos {

struct TokenizerConfig {
  std::string bos_token;         // "" when none
  std::string eos_token;         // "" when none
  std::string pad_token;         // "" when none
  std::string unk_token;         // "" when none
  bool add_bos_token = false;    // HF adds BOS itself when true; Chronos templates add it explicitly
  bool add_eos_token = false;    // same for EOS
  std::string chat_template;     // Jinja text; "" when none
  int64_t model_max_length = 131072;  // informative; the model config decides the context
  nlohmann::json extra = nlohmann::json::object();  // every other key, written back unchanged

  // The Chronos/MiniMind choice: BOS <|im_start|>, EOS <|im_end|>, PAD/UNK <|endoftext|>, the C++
  // chat template's Jinja twin.
  static TokenizerConfig chronos_default();
  // Reads a tokenizer_config.json (or the one in a folder): IoError when missing, FormatError naming
  // the file and key when a known key has the wrong type.
  static TokenizerConfig load(const std::string& path);
  static TokenizerConfig from_json(const nlohmann::json& json, const std::string& source = "tokenizer_config.json");

  // The document; with a tokenizer, also added_tokens_decoder and additional_special_tokens as HF writes them.
  nlohmann::json to_json(const Tokenizer* tokenizer = nullptr) const;
  void save(const std::string& path, const Tokenizer& tokenizer) const;

  // Every named token must be a token of `tokenizer`: ConfigError "bos_token '<s>' is not a token of FILE".
  void validate(const Tokenizer& tokenizer) const;

  // Id of a named token ("" gives nullopt); throws ConfigError when the tokenizer lacks it.
  static std::optional<TokenId> id_of(const Tokenizer& tokenizer, const std::string& token, const char* field);
};

}  // namespace chronos
