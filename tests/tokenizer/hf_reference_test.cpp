// Exactness against the reference implementations: every id list of tests/data/tokenizer/hf_reference.json
// (made by HF tokenizers from MiniMind's tokenizer.json, see make_reference.mjs) must come out the same.
#include <gtest/gtest.h>

#include <vector>

#include "chronos/tokenizer/chat_template.h"
#include "chronos/tokenizer/pretokenizer.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/tokenizer/utf8.h"
#include "chronos/io/json_file.h"
#include "support/temp_dir.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace chronos {
namespace {

using nlohmann::json;
using testing::hf_reference;
using testing::minimind;

std::vector<TokenId> ids_of(const json& list) { return list.get<std::vector<TokenId>>(); }

TEST(HfReference, EncodingsMatchHfTokenizers) {
  CHRONOS_REQUIRE_MINIMIND();
  const json& cases = hf_reference()["encodings"];
  ASSERT_GT(cases.size(), 250u);
  for (const json& c : cases) {
    const std::string text = c["text"];
    EXPECT_EQ(minimind().encode(text), ids_of(c["ids"])) << "text: " << c["text"].dump();
  }
}

TEST(HfReference, PiecesMatchHfPreTokenizer) {
  // The split alone, on text without added tokens (HF's pre-tokenizer does not know them).
  for (const json& c : hf_reference()["encodings"]) {
    std::vector<std::string_view> pieces;
    const std::string text = c["text"];
    split_gpt2(text, pieces);
    EXPECT_EQ(std::vector<std::string>(pieces.begin(), pieces.end()), c["pieces"].get<std::vector<std::string>>())
        << "text: " << c["text"].dump();
  }
}

TEST(HfReference, VariantsMatchHfTokenizers) {
  CHRONOS_REQUIRE_MINIMIND();
  const json base = read_json_file(testing::minimind_dir() + "/tokenizer.json");
  ASSERT_EQ(hf_reference()["variants"].size(), 6u);
  for (const json& variant : hf_reference()["variants"]) {
    json doc = base;
    doc.merge_patch(variant["patch"]);
    const Tokenizer tokenizer = Tokenizer::from_json(doc, variant["name"]);
    for (const json& c : variant["cases"]) {
      const std::string text = c["text"];
      EXPECT_EQ(tokenizer.encode(text), ids_of(c["ids"])) << variant["name"] << ", text: " << c["text"].dump();
    }
  }
}

TEST(HfReference, StringMergesEncodeLikeListMerges) {
  CHRONOS_REQUIRE_MINIMIND();
  json doc = read_json_file(testing::minimind_dir() + "/tokenizer.json");
  for (json& m : doc["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  const Tokenizer tokenizer = Tokenizer::from_json(doc, "string merges");
  EXPECT_EQ(tokenizer.merge_count(), minimind().merge_count());
  for (const json& c : hf_reference()["encodings"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tokenizer.encode(text), ids_of(c["ids"])) << "text: " << c["text"].dump();
  }
}

TEST(HfReference, DecodesMatchHfTokenizers) {
  CHRONOS_REQUIRE_MINIMIND();
  // HF replaces the bytes of a split character with U+FFFD; decode() keeps the bytes exactly, and
  // to_valid_utf8 applies the same replacement.
  for (const json& c : hf_reference()["decodes"]) {
    const std::string got = to_valid_utf8(minimind().decode(ids_of(c["ids"]), c["skip_special"].get<bool>()));
    EXPECT_EQ(got, c["text"].get<std::string>()) << "ids: " << c["ids"].dump() << " skip_special " << c["skip_special"];
  }
}

TEST(HfReference, ChatTemplateMatchesMiniMindJinja) {
  // Key order matters (tojson keeps it), so this part of the fixture is read as ordered_json.
  const auto doc = nlohmann::ordered_json::parse(testing::read_bytes(CHRONOS_SOURCE_DIR "/tests/data/tokenizer/hf_reference.json"));
  const auto& chats = doc["chats"];
  ASSERT_GE(chats.size(), 14u);
  for (const auto& chat : chats) {
    const ChatConversation conversation = parse_conversation(chat["messages"]);
    std::vector<nlohmann::ordered_json> tools;
    if (chat.contains("tools"))
      for (const auto& tool : chat["tools"]) tools.push_back(tool);
    ChatTemplateOptions options;
    options.add_generation_prompt = chat.value("add_generation_prompt", false);
    options.open_thinking = chat.value("open_thinking", false);
    const std::string text = render_chat(conversation.messages, tools, options);
    EXPECT_EQ(text, chat["text"].get<std::string>()) << chat["name"];
    if (testing::have_minimind()) EXPECT_EQ(minimind().encode(text), ids_of(chat["ids"])) << chat["name"];
  }
}

}  // namespace
}  // namespace chronos
