// Malformed and unsupported tokenizer.json files: one FormatError (or IoError) that names the file
// and what is wrong, never a silently different tokenizer.
#include <gtest/gtest.h>

#include <functional>

#include "chronos/core/error.h"
#include "chronos/tokenizer/tokenizer.h"
#include "support/temp_dir.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace chronos {
namespace {

using nlohmann::json;

// Loads the small tokenizer after `edit`, from a file, and returns the error message.
template <typename Expected = FormatError>
std::string load_error(const std::function<void(json&)>& edit) {
  json doc = testing::small_tokenizer_json();
  edit(doc);
  testing::TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  testing::write_bytes(path, doc.dump());
  try {
    Tokenizer::from_file(path);
  } catch (const Expected& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << "message does not name the file: " << what;
    return what;
  }
  ADD_FAILURE() << "no error";
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(TokenizerJson, TheSmallTokenizerLoads) { EXPECT_NO_THROW(Tokenizer::from_json(testing::small_tokenizer_json(), "small")); }

TEST(TokenizerJson, MissingFileIsAnIoError) {
  testing::TempDir dir;
  try {
    Tokenizer::from_file(dir.file("none.json"));
    FAIL() << "no error";
  } catch (const FormatError&) {
    FAIL() << "a missing file is not a format error";
  } catch (const IoError& e) {
    EXPECT_TRUE(contains(e.what(), dir.file("none.json"))) << e.what();
  }
  // A folder without tokenizer.json names the file it looked for.
  EXPECT_THROW(Tokenizer::from_file(dir.path()), IoError);
}

TEST(TokenizerJson, BadJsonNamesLineAndColumn) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("tokenizer.json"), "{\"version\": \"1.0\",\n \"model\": }\n");
  try {
    Tokenizer::from_file(dir.file("tokenizer.json"));
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_TRUE(contains(e.what(), dir.file("tokenizer.json") + ":2:")) << e.what();
  }
  testing::write_bytes(dir.file("array.json"), "[1, 2]");
  EXPECT_THROW(Tokenizer::from_file(dir.file("array.json")), FormatError);
}

TEST(TokenizerJson, MergesOfUnknownTokensAreRefused) {
  EXPECT_TRUE(contains(load_error([](json& d) { d["model"]["merges"].push_back(json::array({"Ġthe", "zz"})); }), "merge 4 ('Ġthe', 'zz') uses 'zz'"));
  // Both parts known, but the merged token is missing from the vocabulary.
  EXPECT_TRUE(contains(load_error([](json& d) { d["model"]["merges"].push_back(json::array({"a", "b"})); }), "uses 'ab', which is not in the vocabulary"));
  EXPECT_TRUE(contains(load_error([](json& d) { d["model"]["merges"] = json::array({"Ġ t h"}); }), "model.merges[0]"));
  EXPECT_TRUE(contains(load_error([](json& d) { d["model"]["merges"] = json::array({json::array({"Ġ"})}); }), "model.merges[0]"));
  EXPECT_TRUE(contains(load_error([](json& d) { d["model"]["merges"] = 3; }), "model.merges"));
}

TEST(TokenizerJson, BrokenVocabulariesAreRefused) {
  EXPECT_TRUE(contains(load_error([](json& d) { d["model"]["vocab"]["dup"] = 5; }), "vocabulary id 5 is used by both"));
  EXPECT_TRUE(contains(load_error([](json& d) { d["model"]["vocab"]["neg"] = -1; }), "model.vocab['neg']"));
  EXPECT_TRUE(contains(load_error([](json& d) { d["model"]["vocab"]["str"] = "7"; }), "must be an integer id"));
  EXPECT_TRUE(contains(load_error([](json& d) { d["model"].erase("vocab"); }), "model.vocab is missing"));
  EXPECT_TRUE(contains(load_error([](json& d) { d.erase("model"); }), "no \"model\""));
  EXPECT_TRUE(contains(load_error([](json& d) { d["model"]["unk_token"] = "<unk>"; }), "unk_token '<unk>' is not in the vocabulary"));
}

TEST(TokenizerJson, BrokenAddedTokensAreRefused) {
  EXPECT_TRUE(contains(load_error([](json& d) { d["added_tokens"][1]["id"] = 261; }), "id 261 is used twice"));
  EXPECT_TRUE(contains(load_error([](json& d) { d["added_tokens"][1]["content"] = "<s>"; }), "'<s>' appears twice"));
  EXPECT_TRUE(contains(load_error([](json& d) { d["added_tokens"][1]["id"] = 65; }), "which the vocabulary gives to 'A'"));
  EXPECT_TRUE(contains(load_error([](json& d) { d["added_tokens"][1]["content"] = ""; }), "empty content"));
  EXPECT_TRUE(contains(load_error([](json& d) { d["added_tokens"][1].erase("id"); }), "added_tokens[1].id"));
}

TEST(TokenizerJson, UnsupportedFeaturesAreRefusedByName) {
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
  };
  const Case cases[] = {
      {"model.type \"WordPiece\"", [](json& d) { d["model"]["type"] = "WordPiece"; }},
      {"model.type \"Unigram\"", [](json& d) { d["model"]["type"] = "Unigram"; }},
      {"normalizer.type 'BertNormalizer' is not supported", [](json& d) { d["normalizer"] = {{"type", "BertNormalizer"}}; }},
      {"normalizer.normalizers[0].type 'Precompiled'",
       [](json& d) { d["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "Precompiled"}}}}}; }},
      {"post_processor.type 'BertProcessing' is not supported", [](json& d) { d["post_processor"] = {{"type", "BertProcessing"}}; }},
      {"post_processor.single must be a list", [](json& d) { d["post_processor"] = {{"type", "TemplateProcessing"}, {"pair", json::array()}, {"special_tokens", json::object()}}; }},
      {"pre_tokenizer.type 'Whitespace' is not supported", [](json& d) { d["pre_tokenizer"] = {{"type", "Whitespace"}}; }},
      {"pre_tokenizer.pattern is missing", [](json& d) { d["pre_tokenizer"] = {{"type", "Split"}, {"behavior", "Isolated"}, {"invert", false}}; }},
      {"a ByteLevel step must be the last one",
       [](json& d) { d["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {d["pre_tokenizer"], {{"type", "Digits"}, {"individual_digits", true}}}}}; }},
      {"decoder.type 'WordPiece' is not supported", [](json& d) { d["decoder"] = {{"type", "WordPiece"}}; }},
      {"BPE dropout is not supported", [](json& d) { d["model"]["dropout"] = 0.1; }},
      {"continuing_subword_prefix '\xE2\x9C\x93' is not written in the byte-level alphabet",
       [](json& d) { d["model"]["continuing_subword_prefix"] = "\xE2\x9C\x93"; }},
      {"truncation is set", [](json& d) { d["truncation"] = {{"max_length", 8}}; }},
      {"padding is set", [](json& d) { d["padding"] = {{"pad_id", 0}}; }},
      {"the key 'split_special_tokens'", [](json& d) { d["split_special_tokens"] = true; }},
      {"pre_tokenizer has the key 'prepend_scheme'", [](json& d) { d["pre_tokenizer"]["prepend_scheme"] = "first"; }},
      {"model has the key 'max_token_length'", [](json& d) { d["model"]["max_token_length"] = 16; }},
  };
  for (const Case& c : cases) {
    const std::string what = load_error(c.edit);
    EXPECT_TRUE(contains(what, c.what)) << "expected '" << c.what << "' in: " << what;
  }
}

// What the first version refused and Chronos now implements (tokenizer_pipeline_test.cpp checks the
// results against HF): each loads.
TEST(TokenizerJson, ReaderOfRealFilesAcceptsTheirFeatures) {
  const std::function<void(json&)> edits[] = {
      [](json& d) { d["normalizer"] = {{"type", "NFC"}}; },
      [](json& d) { d["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array()}}; },
      [](json& d) { d["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {d["pre_tokenizer"]}}}; },
      [](json& d) { d["pre_tokenizer"] = nullptr; },
      [](json& d) { d["decoder"] = nullptr; },
      [](json& d) { d["model"]["byte_fallback"] = true; },
      [](json& d) { d["model"]["continuing_subword_prefix"] = "##"; },
      [](json& d) { d["model"]["end_of_word_suffix"] = "</w>"; },
      [](json& d) { d["added_tokens"][0]["lstrip"] = true; },
      [](json& d) { d["added_tokens"][0]["rstrip"] = true; },
      [](json& d) { d["added_tokens"][0]["single_word"] = true; },
  };
  for (const auto& edit : edits) {
    json doc = testing::small_tokenizer_json();
    edit(doc);
    EXPECT_NO_THROW(Tokenizer::from_json(doc, "t")) << doc.dump().substr(0, 200);
  }
}

TEST(TokenizerJson, HarmlessOptionsAreAccepted) {
  json doc = testing::small_tokenizer_json();
  doc["model"]["dropout"] = 0.0;
  doc["model"]["continuing_subword_prefix"] = "";
  doc["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  const Tokenizer t = Tokenizer::from_json(doc, "harmless");
  EXPECT_EQ(t.encode(" the"), (std::vector<TokenId>{258}));
  EXPECT_EQ(t.to_json()["post_processor"]["type"], "ByteLevel");
}

TEST(TokenizerJson, ToJsonIsTheHfLayout) {
  const Tokenizer t = Tokenizer::from_json(testing::small_tokenizer_json(), "small");
  const auto doc = t.to_json();
  EXPECT_EQ(doc["model"]["type"], "BPE");
  EXPECT_EQ(doc["model"]["merges"][2], nlohmann::ordered_json::array({"Ġt", "he"}));
  EXPECT_EQ(doc["model"]["vocab"]["Ġthe"], 258);
  EXPECT_EQ(doc["model"]["vocab"].begin().key(), "Ā");  // id order, as HF writes it (byte 0 is "Ā")
  EXPECT_EQ(doc["added_tokens"][0]["content"], "<s>");
  EXPECT_EQ(doc["pre_tokenizer"]["type"], "ByteLevel");
  EXPECT_TRUE(doc["normalizer"].is_null());
  // What to_json writes loads back to the same tokenizer.
  const Tokenizer again = Tokenizer::from_json(json::parse(doc.dump()), "again");
  EXPECT_EQ(again.to_json(), doc);
}

}  // namespace
}  // namespace chronos
