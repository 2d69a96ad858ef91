#include "chronos/tokenizer/tokenizer_config.h"

#include <filesystem>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/tokenizer/chat_template.h"
#include "chronos/tokenizer/special_tokens.h"

namespace chronos {
namespace {

using nlohmann::json;

const char* const kTokenFields[] = {"bos_token", "eos_token", "pad_token", "unk_token"};

// The field of a token key; works on const and non-const configs alike.
template <typename Config>
auto token_field(Config& c, const std::string& key) -> decltype(&c.bos_token) {
  if (key == "bos_token") return &c.bos_token;
  if (key == "eos_token") return &c.eos_token;
  if (key == "pad_token") return &c.pad_token;
  return &c.unk_token;
}

}  // namespace

TokenizerConfig TokenizerConfig::chronos_default() {
  TokenizerConfig c;
  c.bos_token = kImStart;
  c.eos_token = kImEnd;
  c.pad_token = kEndOfText;
  c.unk_token = kEndOfText;
  c.chat_template = chat_template_jinja();
  return c;
}

TokenizerConfig TokenizerConfig::load(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "tokenizer_config.json").string();
  if (!std::filesystem::exists(file)) throw IoError(cat(file, ": tokenizer config does not exist"));
  return from_json(read_json_file(file), file);
}

TokenizerConfig TokenizerConfig::from_json(const json& doc, const std::string& source) {
  if (!doc.is_object()) throw FormatError(cat(source, ": expected a JSON object"));
  TokenizerConfig c;
  c.extra = json::object();
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    auto wrong = [&](const char* expected) {
      return FormatError(cat(source, ": ", key, " must be ", expected, " (got ", describe_json(v), ")"));
    };
    if (key == "bos_token" || key == "eos_token" || key == "pad_token" || key == "unk_token") {
      // HF writes a token either as text or as an AddedToken object {"content": ...}.
      std::string* field = token_field(c, key);
      if (v.is_string()) *field = v.get<std::string>();
      else if (v.is_object() && v.contains("content") && v["content"].is_string()) *field = v["content"].get<std::string>();
      else if (!v.is_null()) throw wrong("a token string, an AddedToken object or null");
    } else if (key == "add_bos_token" || key == "add_eos_token") {
      if (!v.is_boolean()) throw wrong("true or false");
      (key == "add_bos_token" ? c.add_bos_token : c.add_eos_token) = v.get<bool>();
    } else if (key == "chat_template") {
      if (v.is_string()) {
        c.chat_template = v.get<std::string>();
      } else if (v.is_array()) {
        // The list form names templates; the one called "default" is the chat template.
        for (const auto& t : v)
          if (t.is_object() && t.value("name", "") == "default" && t.contains("template") && t["template"].is_string())
            c.chat_template = t["template"].get<std::string>();
        c.extra[key] = v;
      } else if (!v.is_null()) {
        throw wrong("a string or a list of named templates");
      }
    } else if (key == "model_max_length") {
      if (!v.is_number()) throw wrong("a number");
      // HF writes a huge float for "no limit"; clamp to int64.
      const double d = v.get<double>();
      c.model_max_length = d >= 9.2e18 ? INT64_MAX : static_cast<int64_t>(d);
    } else {
      // Includes added_tokens_decoder and additional_special_tokens, which to_json(tokenizer) rewrites.
      c.extra[key] = v;
    }
  }
  return c;
}

json TokenizerConfig::to_json(const Tokenizer* tokenizer) const {
  json doc = extra.is_object() ? extra : json::object();
  doc["add_bos_token"] = add_bos_token;
  doc["add_eos_token"] = add_eos_token;
  for (const char* key : kTokenFields) {
    const std::string& value = *token_field(*this, key);
    doc[key] = value.empty() ? json(nullptr) : json(value);
  }
  if (!chat_template.empty() && !(doc.contains("chat_template") && doc["chat_template"].is_array())) doc["chat_template"] = chat_template;
  doc["model_max_length"] = model_max_length;
  if (!doc.contains("tokenizer_class")) doc["tokenizer_class"] = "PreTrainedTokenizerFast";
  if (!doc.contains("clean_up_tokenization_spaces")) doc["clean_up_tokenization_spaces"] = false;
  if (tokenizer) {
    doc["add_prefix_space"] = tokenizer->pre_tokenizer().add_prefix_space;
    json decoder = json::object();
    json additional = json::array();
    for (const AddedToken& t : tokenizer->added_tokens()) {
      decoder[std::to_string(t.id)] = {{"content", t.content}, {"lstrip", false},        {"normalized", t.normalized},
                                       {"rstrip", false},      {"single_word", false}, {"special", t.special}};
      if (t.special && t.content != pad_token && t.content != unk_token) additional.push_back(t.content);
    }
    doc["added_tokens_decoder"] = std::move(decoder);
    doc["additional_special_tokens"] = std::move(additional);
  }
  return doc;
}

void TokenizerConfig::save(const std::string& path, const Tokenizer& tokenizer) const {
  validate(tokenizer);
  write_json_file(path, to_json(&tokenizer));
}

std::optional<TokenId> TokenizerConfig::id_of(const Tokenizer& tokenizer, const std::string& token, const char* field) {
  if (token.empty()) return std::nullopt;
  const auto id = tokenizer.token_to_id(token);
  if (!id) throw ConfigError(cat(field, " '", token, "' is not a token of ", tokenizer.source()));
  return id;
}

void TokenizerConfig::validate(const Tokenizer& tokenizer) const {
  for (const char* key : kTokenFields) id_of(tokenizer, *token_field(*this, key), key);
}

}  // namespace chronos
