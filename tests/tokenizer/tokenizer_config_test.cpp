#include "chronos/tokenizer/tokenizer_config.h"

#include <gtest/gtest.h>

#include "chronos/core/error.h"
#include "chronos/tokenizer/chat_template.h"
#include "support/temp_dir.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace chronos {
namespace {

TEST(TokenizerConfig, ReadsMiniMind) {
  CHRONOS_REQUIRE_MINIMIND();
  const TokenizerConfig c = TokenizerConfig::load(testing::minimind_dir());
  EXPECT_EQ(c.bos_token, "<|im_start|>");
  EXPECT_EQ(c.eos_token, "<|im_end|>");
  EXPECT_EQ(c.pad_token, "<|endoftext|>");
  EXPECT_EQ(c.unk_token, "<|endoftext|>");
  EXPECT_FALSE(c.add_bos_token);
  EXPECT_FALSE(c.add_eos_token);
  EXPECT_NE(c.chat_template.find("<think>"), std::string::npos);
  EXPECT_EQ(c.model_max_length, 131072);
  EXPECT_EQ(c.extra["tokenizer_class"], "PreTrainedTokenizerFast");
  EXPECT_NO_THROW(c.validate(testing::minimind()));
  EXPECT_EQ(TokenizerConfig::id_of(testing::minimind(), c.eos_token, "eos_token"), 2);
}

TEST(TokenizerConfig, ChronosDefaultRoundTrips) {
  CHRONOS_REQUIRE_MINIMIND();
  testing::TempDir dir;
  const TokenizerConfig c = TokenizerConfig::chronos_default();
  c.save(dir.file("tokenizer_config.json"), testing::minimind());
  const TokenizerConfig back = TokenizerConfig::load(dir.file("tokenizer_config.json"));
  EXPECT_EQ(back.bos_token, c.bos_token);
  EXPECT_EQ(back.pad_token, c.pad_token);
  EXPECT_EQ(back.chat_template, chat_template_jinja());
  EXPECT_EQ(back.extra["add_prefix_space"], false);
  EXPECT_EQ(back.extra["added_tokens_decoder"]["25"]["content"], "<think>");
  EXPECT_EQ(back.extra["added_tokens_decoder"]["25"]["special"], false);
  EXPECT_EQ(back.extra["added_tokens_decoder"]["1"]["special"], true);
  EXPECT_EQ(back.extra["additional_special_tokens"].size(), 20u);  // ids 1..20, as MiniMind lists them
}

TEST(TokenizerConfig, TokenObjectsAndNulls) {
  const auto c = TokenizerConfig::from_json(
      nlohmann::json::parse(R"({"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": null,
                                 "chat_template": [{"name": "default", "template": "T"}, {"name": "tool_use", "template": "U"}],
                                 "model_max_length": 1e30, "custom": 7})"),
      "inline");
  EXPECT_EQ(c.bos_token, "<s>");
  EXPECT_EQ(c.eos_token, "");
  EXPECT_EQ(c.chat_template, "T");
  EXPECT_EQ(c.model_max_length, INT64_MAX);
  const auto doc = c.to_json();
  EXPECT_EQ(doc["custom"], 7);
  EXPECT_TRUE(doc["eos_token"].is_null());
  EXPECT_TRUE(doc["chat_template"].is_array());  // the named list is kept as it was
}

TEST(TokenizerConfig, ErrorsNameTheFileAndKey) {
  EXPECT_THROW(TokenizerConfig::from_json(nlohmann::json::parse(R"({"add_bos_token": "yes"})"), "cfg.json"), FormatError);
  try {
    TokenizerConfig::from_json(nlohmann::json::parse(R"({"bos_token": 5})"), "cfg.json");
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.json: bos_token must be"), std::string::npos) << e.what();
  }
  testing::TempDir dir;
  EXPECT_THROW(TokenizerConfig::load(dir.path()), IoError);
  // A token the tokenizer does not have.
  const Tokenizer small = Tokenizer::from_json(testing::small_tokenizer_json(), "small.json");
  TokenizerConfig c = TokenizerConfig::chronos_default();
  try {
    c.validate(small);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("bos_token '<|im_start|>' is not a token of small.json"), std::string::npos) << e.what();
  }
  c.bos_token = "<s>";
  c.eos_token = c.pad_token = c.unk_token = "";
  EXPECT_NO_THROW(c.validate(small));
}

}  // namespace
}  // namespace chronos
