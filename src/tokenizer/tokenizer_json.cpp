// Reading and writing HF tokenizer.json. Everything that changes how text becomes ids is either
// implemented exactly or refused with a FormatError naming the file and the JSON path of the feature.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <unordered_map>

#include "chronos/core/error.h"
#include "chronos/io/atomic_file.h"
#include "chronos/io/json_file.h"
#include "chronos/tokenizer/tokenizer.h"
#include "tokenizer/json_reader.h"
#include "tokenizer/tokenizer_impl.h"

namespace chronos {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

using tokenizer_detail::JsonReader;

BpeVocabulary read_model(const json& section, const JsonReader& r) {
  if (!section.is_object()) r.fail("model must be an object");
  const auto type = section.find("type");
  if (type != section.end() && (!type->is_string() || type->get<std::string>() != "BPE"))
    r.fail(cat("model.type ", describe_json(*type), " is not supported (Chronos implements only BPE)"));
  r.only_keys(section, {"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
                        "byte_fallback", "ignore_merges", "vocab", "merges"},
              "model");
  if (const auto d = section.find("dropout"); d != section.end() && !d->is_null()) {
    if (!d->is_number()) r.fail(cat("model.dropout must be a number or null (got ", describe_json(*d), ")"));
    if (d->get<double>() != 0.0) r.fail(cat("model.dropout is ", describe_json(*d), "; BPE dropout is not supported"));
  }
  BpeVocabulary spec;
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = section.find(key);
    if (it == section.end() || it->is_null()) continue;
    if (!it->is_string()) r.fail(cat("model.", key, " must be a string or null (got ", describe_json(*it), ")"));
    // HF treats an empty string as no prefix/suffix only for the suffix; a "" prefix drops 0 bytes either way.
    if (!it->get<std::string>().empty()) (key == std::string("continuing_subword_prefix") ? spec.continuing_subword_prefix : spec.end_of_word_suffix) = it->get<std::string>();
  }
  spec.byte_fallback = r.flag(section, "byte_fallback", false, "model");
  spec.fuse_unk = r.flag(section, "fuse_unk", false, "model");
  spec.ignore_merges = r.flag(section, "ignore_merges", false, "model");
  if (const auto u = section.find("unk_token"); u != section.end() && !u->is_null()) {
    if (!u->is_string()) r.fail(cat("model.unk_token must be a string or null (got ", describe_json(*u), ")"));
    spec.unk_token = u->get<std::string>();
  }

  const auto vocab = section.find("vocab");
  if (vocab == section.end() || !vocab->is_object()) r.fail("model.vocab is missing or not an object");
  spec.vocab.reserve(vocab->size());
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it->is_number_integer()) r.fail(cat("model.vocab['", it.key(), "'] must be an integer id (got ", describe_json(*it), ")"));
    const int64_t id = it->get<int64_t>();
    if (id < 0 || id > INT32_MAX) r.fail(cat("model.vocab['", it.key(), "'] = ", id, " is not a valid id"));
    spec.vocab.emplace_back(it.key(), static_cast<TokenId>(id));
  }
  std::sort(spec.vocab.begin(), spec.vocab.end(), [](const auto& a, const auto& b) { return a.second < b.second; });

  const auto merges = section.find("merges");
  if (merges == section.end() || !merges->is_array()) r.fail("model.merges is missing or not an array");
  spec.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const json& m = (*merges)[i];
    if (m.is_string()) {
      // The older "a b" form: exactly one space, as HF requires; "#version" lines are comments.
      const std::string& s = m.get_ref<const std::string&>();
      if (s.rfind("#version", 0) == 0) continue;
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        r.fail(cat("model.merges[", i, "] = ", describe_json(m), " is not two tokens separated by one space"));
      spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      r.fail(cat("model.merges[", i, "] must be \"a b\" or [\"a\", \"b\"] (got ", describe_json(m), ")"));
    }
  }
  return spec;
}

std::vector<AddedToken> read_added_tokens(const json& section, const JsonReader& r) {
  std::vector<AddedToken> tokens;
  if (section.is_null()) return tokens;
  if (!section.is_array()) r.fail("added_tokens must be an array");
  for (size_t i = 0; i < section.size(); ++i) {
    const json& t = section[i];
    const std::string where = cat("added_tokens[", i, "]");
    if (!t.is_object()) r.fail(cat(where, " must be an object"));
    r.only_keys(t, {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"}, where);
    const auto id = t.find("id");
    const auto content = t.find("content");
    if (id == t.end() || !id->is_number_integer() || id->get<int64_t>() < 0 || id->get<int64_t>() > INT32_MAX)
      r.fail(cat(where, ".id is missing or not a valid id"));
    if (content == t.end() || !content->is_string()) r.fail(cat(where, ".content is missing or not a string"));
    AddedToken token;
    token.id = static_cast<TokenId>(id->get<int64_t>());
    token.content = content->get<std::string>();
    token.single_word = r.flag(t, "single_word", false, where);
    token.lstrip = r.flag(t, "lstrip", false, where);
    token.rstrip = r.flag(t, "rstrip", false, where);
    token.special = r.flag(t, "special", false, where);
    token.normalized = r.flag(t, "normalized", !token.special, where);  // HF's default
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// HF ignores the ids the file gives added tokens and assigns its own: the vocabulary's id for a token
// the vocabulary has, else the next id from the vocabulary's entry count, in file order. A file whose
// ids differ would encode differently in HF, so it is refused rather than guessed at.
void check_added_token_ids(const BpeVocabulary& spec, const std::vector<AddedToken>& added, const JsonReader& r) {
  std::unordered_map<std::string, TokenId> vocab;
  vocab.reserve(spec.vocab.size());
  for (const auto& [token, id] : spec.vocab) vocab.emplace(token, id);
  std::unordered_map<std::string, TokenId> assigned;
  int64_t next_id = static_cast<int64_t>(spec.vocab.size());
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& t = added[i];
    if (t.content.empty() || assigned.count(t.content)) continue;
    const auto in_vocab = vocab.find(t.content);
    const int64_t id = in_vocab != vocab.end() ? in_vocab->second : next_id++;
    assigned.emplace(t.content, static_cast<TokenId>(id));
    if (id != t.id)
      r.fail(cat("added_tokens[", i, "].id is ", t.id, " but HF tokenizers gives '", t.content, "' the id ", id,
                 " (the vocabulary's id, or the next one after its ", spec.vocab.size(), " entries, in file order)"));
  }
}

}  // namespace

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "tokenizer.json").string();
  if (!std::filesystem::exists(file)) throw IoError(cat(file, ": tokenizer file does not exist"));
  return from_json(read_json_file(file), file);
}

Tokenizer Tokenizer::from_json(const json& doc, const std::string& source) {
  const JsonReader r(source);
  if (!doc.is_object()) r.fail("expected a JSON object (an HF tokenizer.json)");
  r.only_keys(doc, {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder", "model"},
              "the file");
  if (!doc.contains("model")) r.fail("has no \"model\" section");
  // The model first: a WordPiece or Unigram file is best told as such, not by its other sections.
  BpeVocabulary spec = read_model(doc["model"], r);
  for (const char* key : {"truncation", "padding"})
    if (doc.contains(key) && !doc[key].is_null())
      r.fail(cat(key, " is set; Chronos does not ", key == std::string("padding") ? "pad" : "truncate", " inside the tokenizer (do it on the ids)"));

  auto impl = std::make_shared<Impl>();
  impl->source = source;
  impl->normalizer = tokenizer_detail::Normalizer(doc.value("normalizer", json()), r);
  const json pre = doc.value("pre_tokenizer", json());
  impl->pre_steps = tokenizer_detail::PreTokenizerSteps(pre, r);
  if (pre.is_object() && pre.value("type", "") == "ByteLevel") {
    impl->pre_tokenizer.add_prefix_space = r.flag(pre, "add_prefix_space", true, "pre_tokenizer");
    impl->pre_tokenizer.trim_offsets = r.flag(pre, "trim_offsets", true, "pre_tokenizer");
    impl->pre_tokenizer.use_regex = r.flag(pre, "use_regex", true, "pre_tokenizer");
    impl->fast_path = impl->normalizer.empty() && impl->pre_tokenizer.use_regex;
  } else {
    impl->pre_tokenizer.add_prefix_space = false;
  }
  impl->decoder = tokenizer_detail::Decoder(doc.value("decoder", json()), r);
  impl->spec = std::move(spec);
  impl->added = read_added_tokens(doc.value("added_tokens", json()), r);
  const std::vector<AddedToken> file_order = impl->added;
  std::sort(impl->added.begin(), impl->added.end(), [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  impl->build();
  check_added_token_ids(impl->spec, file_order, r);
  // The template's tokens must be tokens of this vocabulary (checked once the lookup exists).
  const Impl& built = *impl;
  impl->post = tokenizer_detail::PostProcessor(doc.value("post_processor", json()), r, [&](const std::string& token) -> int64_t {
    if (const int32_t* id = built.string_to_id.find(token)) return *id;
    return -1;
  });
  return Tokenizer(std::shared_ptr<const Impl>(std::move(impl)));
}

ordered_json Tokenizer::to_json() const {
  const Impl& m = impl();
  ordered_json added = ordered_json::array();
  for (const AddedToken& t : m.added)
    added.push_back({{"id", t.id}, {"content", t.content}, {"single_word", t.single_word}, {"lstrip", t.lstrip}, {"rstrip", t.rstrip},
                     {"normalized", t.normalized}, {"special", t.special}});
  ordered_json vocab = ordered_json::object();
  for (const auto& [token, id] : m.spec.vocab) vocab[token] = id;
  ordered_json merges = ordered_json::array();
  for (const auto& [a, b] : m.spec.merges) merges.push_back({a, b});

  ordered_json model = {{"type", "BPE"},
                        {"dropout", nullptr},
                        {"unk_token", m.spec.unk_token ? ordered_json(*m.spec.unk_token) : ordered_json(nullptr)},
                        {"continuing_subword_prefix", m.spec.continuing_subword_prefix ? ordered_json(*m.spec.continuing_subword_prefix) : ordered_json(nullptr)},
                        {"end_of_word_suffix", m.spec.end_of_word_suffix ? ordered_json(*m.spec.end_of_word_suffix) : ordered_json(nullptr)},
                        {"fuse_unk", m.spec.fuse_unk},
                        {"byte_fallback", m.spec.byte_fallback},
                        {"ignore_merges", m.spec.ignore_merges}};
  model["vocab"] = std::move(vocab);
  model["merges"] = std::move(merges);

  ordered_json doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;
  doc["added_tokens"] = std::move(added);
  doc["normalizer"] = m.normalizer.json();
  doc["pre_tokenizer"] = m.pre_steps.json();
  doc["post_processor"] = m.post.json();
  doc["decoder"] = m.decoder.json();
  doc["model"] = std::move(model);
  return doc;
}

void Tokenizer::save(const std::string& path) const { write_file_atomic(path, to_json().dump(2) + "\n"); }

}  // namespace chronos
