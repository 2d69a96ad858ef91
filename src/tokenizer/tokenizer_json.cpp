// Reading and writing HF tokenizer.json. Everything that changes how text becomes ids is either
// implemented exactly or refused with a FormatError naming the file and the feature.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <initializer_list>

#include "chronos/core/error.h"
#include "chronos/io/atomic_file.h"
#include "chronos/io/json_file.h"
#include "chronos/tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace chronos {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail(const std::string& what) const { throw FormatError(cat(source_, ": ", what)); }

  // Refuses keys outside `known`: an option we do not know could change the output.
  void only_keys(const json& object, std::initializer_list<const char*> known, const std::string& where) const {
    for (auto it = object.begin(); it != object.end(); ++it) {
      const bool ok = std::any_of(known.begin(), known.end(), [&](const char* k) { return it.key() == k; });
      if (!ok) fail(cat(where, " has the key '", it.key(), "', which Chronos does not implement"));
    }
  }

  bool flag(const json& object, const char* key, bool fallback, const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(cat(where, ".", key, " must be true or false (got ", describe_json(*it), ")"));
    return it->get<bool>();
  }

  std::string type_of(const json& section, const std::string& where) const {
    if (!section.is_object()) fail(cat(where, " must be an object or null (got ", describe_json(section), ")"));
    const auto it = section.find("type");
    if (it == section.end() || !it->is_string()) fail(cat(where, " has no \"type\""));
    return it->get<std::string>();
  }

  ByteLevelPreTokenizer pre_tokenizer(const json& section) const {
    if (section.is_null()) fail("pre_tokenizer is null; Chronos implements only the ByteLevel pre-tokenizer");
    const std::string type = type_of(section, "pre_tokenizer");
    if (type != "ByteLevel") fail(cat("pre_tokenizer '", type, "' is not supported (Chronos implements only ByteLevel)"));
    only_keys(section, {"type", "add_prefix_space", "trim_offsets", "use_regex"}, "pre_tokenizer");
    ByteLevelPreTokenizer pre;
    pre.add_prefix_space = flag(section, "add_prefix_space", true, "pre_tokenizer");
    pre.trim_offsets = flag(section, "trim_offsets", true, "pre_tokenizer");
    pre.use_regex = flag(section, "use_regex", true, "pre_tokenizer");
    return pre;
  }

  // The ByteLevel decoder and post-processor have options that only touch offsets: checked, kept.
  void byte_level_options(const json& section, const std::string& where) const {
    only_keys(section, {"type", "add_prefix_space", "trim_offsets", "use_regex"}, where);
    for (const char* key : {"add_prefix_space", "trim_offsets", "use_regex"}) flag(section, key, true, where);
  }

  BpeVocabulary model(const json& section) const {
    if (!section.is_object()) fail("model must be an object");
    const auto type = section.find("type");
    if (type != section.end() && (!type->is_string() || type->get<std::string>() != "BPE"))
      fail(cat("model type ", describe_json(*type), " is not supported (Chronos implements only BPE)"));
    only_keys(section, {"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
                        "byte_fallback", "ignore_merges", "vocab", "merges"},
              "model");
    if (const auto d = section.find("dropout"); d != section.end() && !d->is_null()) {
      if (!d->is_number()) fail(cat("model.dropout must be a number or null (got ", describe_json(*d), ")"));
      if (d->get<double>() != 0.0) fail(cat("model.dropout is ", describe_json(*d), "; BPE dropout is not supported"));
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const auto it = section.find(key);
      if (it != section.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
        fail(cat("model.", key, " is ", describe_json(*it), "; Chronos does not implement subword prefixes or suffixes"));
    }
    if (flag(section, "byte_fallback", false, "model")) fail("model.byte_fallback is true; Chronos does not implement byte fallback");

    BpeVocabulary spec;
    spec.fuse_unk = flag(section, "fuse_unk", false, "model");
    spec.ignore_merges = flag(section, "ignore_merges", false, "model");
    if (const auto u = section.find("unk_token"); u != section.end() && !u->is_null()) {
      if (!u->is_string()) fail(cat("model.unk_token must be a string or null (got ", describe_json(*u), ")"));
      spec.unk_token = u->get<std::string>();
    }

    const auto vocab = section.find("vocab");
    if (vocab == section.end() || !vocab->is_object()) fail("model.vocab is missing or not an object");
    spec.vocab.reserve(vocab->size());
    for (auto it = vocab->begin(); it != vocab->end(); ++it) {
      if (!it->is_number_integer()) fail(cat("model.vocab['", it.key(), "'] must be an integer id (got ", describe_json(*it), ")"));
      const int64_t id = it->get<int64_t>();
      if (id < 0 || id > INT32_MAX) fail(cat("model.vocab['", it.key(), "'] = ", id, " is not a valid id"));
      spec.vocab.emplace_back(it.key(), static_cast<TokenId>(id));
    }
    std::sort(spec.vocab.begin(), spec.vocab.end(), [](const auto& a, const auto& b) { return a.second < b.second; });

    const auto merges = section.find("merges");
    if (merges == section.end() || !merges->is_array()) fail("model.merges is missing or not an array");
    spec.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const json& m = (*merges)[i];
      if (m.is_string()) {
        // The older "a b" form: exactly one space, as HF requires.
        const std::string& s = m.get_ref<const std::string&>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          fail(cat("model.merges[", i, "] = ", describe_json(m), " is not two tokens separated by one space"));
        spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        fail(cat("model.merges[", i, "] must be \"a b\" or [\"a\", \"b\"] (got ", describe_json(m), ")"));
      }
    }
    return spec;
  }

  std::vector<AddedToken> added_tokens(const json& section) const {
    std::vector<AddedToken> tokens;
    if (section.is_null()) return tokens;
    if (!section.is_array()) fail("added_tokens must be an array");
    for (size_t i = 0; i < section.size(); ++i) {
      const json& t = section[i];
      const std::string where = cat("added_tokens[", i, "]");
      if (!t.is_object()) fail(cat(where, " must be an object"));
      only_keys(t, {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"}, where);
      const auto id = t.find("id");
      const auto content = t.find("content");
      if (id == t.end() || !id->is_number_integer() || id->get<int64_t>() < 0 || id->get<int64_t>() > INT32_MAX)
        fail(cat(where, ".id is missing or not a valid id"));
      if (content == t.end() || !content->is_string()) fail(cat(where, ".content is missing or not a string"));
      AddedToken token;
      token.id = static_cast<TokenId>(id->get<int64_t>());
      token.content = content->get<std::string>();
      for (const char* option : {"single_word", "lstrip", "rstrip"})
        if (flag(t, option, false, where))
          fail(cat("added token '", token.content, "' sets ", option, ", which Chronos does not implement"));
      token.special = flag(t, "special", false, where);
      token.normalized = flag(t, "normalized", !token.special, where);  // HF's default
      tokens.push_back(std::move(token));
    }
    return tokens;
  }

 private:
  const std::string& source_;
};

ordered_json byte_level_section() {
  return {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
}

}  // namespace

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "tokenizer.json").string();
  if (!std::filesystem::exists(file)) throw IoError(cat(file, ": tokenizer file does not exist"));
  return from_json(read_json_file(file), file);
}

Tokenizer Tokenizer::from_json(const json& doc, const std::string& source) {
  const Reader r(source);
  if (!doc.is_object()) r.fail("expected a JSON object (an HF tokenizer.json)");
  r.only_keys(doc, {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder", "model"},
              "the file");
  if (!doc.contains("model")) r.fail("has no \"model\" section");
  // The model first: a WordPiece or Unigram file is best told as such, not by its other sections.
  BpeVocabulary spec = r.model(doc["model"]);
  for (const char* key : {"truncation", "padding"})
    if (doc.contains(key) && !doc[key].is_null())
      r.fail(cat(key, " is set; Chronos does not ", key == std::string("padding") ? "pad" : "truncate", " inside the tokenizer (do it on the ids)"));
  if (doc.contains("normalizer") && !doc["normalizer"].is_null())
    r.fail(cat("normalizer '", r.type_of(doc["normalizer"], "normalizer"), "' is not supported (Chronos implements byte-level BPE without a normalizer)"));

  auto impl = std::make_shared<Impl>();
  impl->source = source;
  impl->pre_tokenizer = r.pre_tokenizer(doc.value("pre_tokenizer", json()));

  const json post = doc.value("post_processor", json());
  if (!post.is_null()) {
    const std::string type = r.type_of(post, "post_processor");
    if (type != "ByteLevel") r.fail(cat("post_processor '", type, "' is not supported (only null or ByteLevel; Chronos never adds tokens by itself)"));
    r.byte_level_options(post, "post_processor");
  }
  const json decoder = doc.value("decoder", json());
  if (decoder.is_null()) r.fail("decoder is null; Chronos implements only the ByteLevel decoder");
  const std::string decoder_type = r.type_of(decoder, "decoder");
  if (decoder_type != "ByteLevel") r.fail(cat("decoder '", decoder_type, "' is not supported (Chronos implements only ByteLevel)"));
  r.byte_level_options(decoder, "decoder");

  impl->spec = std::move(spec);
  impl->added = r.added_tokens(doc.value("added_tokens", json()));
  std::sort(impl->added.begin(), impl->added.end(), [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  impl->decoder_json = ordered_json::parse(decoder.dump());
  impl->post_processor_json = ordered_json::parse(post.dump());
  impl->build();
  return Tokenizer(std::shared_ptr<const Impl>(std::move(impl)));
}

ordered_json Tokenizer::to_json() const {
  const Impl& m = impl();
  ordered_json added = ordered_json::array();
  for (const AddedToken& t : m.added)
    added.push_back({{"id", t.id}, {"content", t.content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", t.normalized}, {"special", t.special}});
  ordered_json vocab = ordered_json::object();
  for (const auto& [token, id] : m.spec.vocab) vocab[token] = id;
  ordered_json merges = ordered_json::array();
  for (const auto& [a, b] : m.spec.merges) merges.push_back({a, b});

  ordered_json model = {{"type", "BPE"},
                        {"dropout", nullptr},
                        {"unk_token", m.spec.unk_token ? ordered_json(*m.spec.unk_token) : ordered_json(nullptr)},
                        {"continuing_subword_prefix", nullptr},
                        {"end_of_word_suffix", nullptr},
                        {"fuse_unk", m.spec.fuse_unk},
                        {"byte_fallback", false},
                        {"ignore_merges", m.spec.ignore_merges}};
  model["vocab"] = std::move(vocab);
  model["merges"] = std::move(merges);

  ordered_json doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;
  doc["added_tokens"] = std::move(added);
  doc["normalizer"] = nullptr;
  doc["pre_tokenizer"] = {{"type", "ByteLevel"},
                          {"add_prefix_space", m.pre_tokenizer.add_prefix_space},
                          {"trim_offsets", m.pre_tokenizer.trim_offsets},
                          {"use_regex", m.pre_tokenizer.use_regex}};
  doc["post_processor"] = m.post_processor_json;
  doc["decoder"] = m.decoder_json.is_null() ? byte_level_section() : m.decoder_json;
  doc["model"] = std::move(model);
  return doc;
}

void Tokenizer::save(const std::string& path) const { write_file_atomic(path, to_json().dump(2) + "\n"); }

}  // namespace chronos
