#include "chronos/train/data.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "chronos/core/error.h"
#include "chronos/tokenizer/chat_formatter.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

const std::string kMiniMind = std::string(CHRONOS_SOURCE_DIR) + "/tests/data/minimind/tokenizer.json";

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kMiniMind)) GTEST_SKIP() << "MiniMind tokenizer not found at " << kMiniMind;
    tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_file(kMiniMind));
  }
  std::unique_ptr<Tokenizer> tokenizer;
  testing::TempDir dir;
};

TEST_F(DataTest, SftLabelsCoverTheAnswerThroughTheClosingNewline) {
  ExampleEncoder encoder(*tokenizer, {128, 1, 2});
  const nlohmann::json record = nlohmann::json::parse(
      R"({"conversations":[{"role":"user","content":"what is lookahead prefetch"},{"role":"assistant","content":"router cache expert"}]})");
  const Example e = encoder.sft(record, "x:1");
  ASSERT_EQ(e.ids.size(), e.labels.size());
  // The supervised span starts with "<think>\n\n</think>\n\n" (ids 25 234 234 26 234 234) right after the
  // 5-id marker [1, 1388, 570, 811, 234] and ends with "<|im_end|>\n" (2, 234).
  size_t first = 0;
  while (e.labels[first] == -100) ++first;
  ASSERT_GE(first, 5u);
  EXPECT_EQ(std::vector<int64_t>(e.ids.begin() + first - 5, e.ids.begin() + first), (std::vector<int64_t>{1, 1388, 570, 811, 234}));
  EXPECT_EQ(std::vector<int64_t>(e.ids.begin() + first, e.ids.begin() + first + 6), (std::vector<int64_t>{25, 234, 234, 26, 234, 234}));
  EXPECT_EQ(e.labels.back(), 234);
  EXPECT_EQ(e.labels[e.labels.size() - 2], 2);
  for (size_t t = first; t < e.labels.size(); ++t) EXPECT_EQ(e.labels[t], e.ids[t]);
  EXPECT_TRUE(e.has_targets());
}

TEST_F(DataTest, TruncationCanLeaveNoTargets) {
  ExampleEncoder encoder(*tokenizer, {6, 1, 2});
  const Example e = encoder.sft(nlohmann::json::parse(R"({"conversations":[{"role":"user","content":"a long question here"},{"role":"assistant","content":"x"}]})"), "x:1");
  EXPECT_EQ(e.ids.size(), 6u);
  EXPECT_FALSE(e.has_targets());
}

TEST_F(DataTest, BadRecordsNameFileAndLine) {
  ExampleEncoder encoder(*tokenizer, {64, 1, 2});
  EXPECT_THROW(encoder.sft(nlohmann::json::parse(R"({"text":"no chat"})"), "f.jsonl:3"), FormatError);
  try {
    encoder.preference(nlohmann::json::parse(R"({"chosen":[]})"), "f.jsonl:7");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("f.jsonl:7"), std::string::npos) << e.what();
  }
}

TEST_F(DataTest, PackingCutsDocumentsIntoFullSequences) {
  testing::write_bytes(dir.file("p.jsonl"), "{\"text\":\"one two three four five six\"}\n\n{\"text\":\"seven eight nine\"}\n");
  ExampleEncoder encoder(*tokenizer, {5, 1, 2});
  RecordStream records(dir.file("p.jsonl"), 0, /*shuffle=*/false, false);
  PackedTextStream packed(records, encoder);
  std::vector<int64_t> all;
  for (int i = 0; i < 4; ++i) {
    const Example e = packed.next();
    EXPECT_EQ(e.ids.size(), 5u);
    EXPECT_EQ(e.ids, e.labels);
    all.insert(all.end(), e.ids.begin(), e.ids.end());
  }
  EXPECT_EQ(all.front(), 1);  // documents are wrapped in BOS ... EOS
  EXPECT_NE(std::find(all.begin(), all.end(), 2), all.end());
  EXPECT_GE(records.cursor().epoch, 1);  // cycled past the end of the file
}

TEST_F(DataTest, StreamSkipsOrRejectsBadLines) {
  testing::write_bytes(dir.file("b.jsonl"), "{\"text\":\"fine\"}\n{not json\n{\"text\":\"also fine\"}\n");
  ExampleEncoder encoder(*tokenizer, {8, 1, 2});
  auto read_all = [&](bool skip) {
    RecordStream records(dir.file("b.jsonl"), 0, false, skip);
    for (int i = 0; i < 2; ++i)
      records.next([&](const nlohmann::json& r, const std::string& w) { return encoder.pretrain_tokens(r, w); });
    return records.cursor();
  };
  try {
    read_all(false);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("b.jsonl:2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_all(true).bad_records, 1);
}

TEST(RecordStreamTest, EmptyDatasetIsAnError) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("e.jsonl"), "\n  \n");
  EXPECT_THROW(RecordStream(dir.file("e.jsonl"), 0, true, false), FormatError);
  EXPECT_THROW(RecordStream(dir.file("missing.jsonl"), 0, true, false), IoError);
}

TEST(RecordStreamTest, EveryLineBadIsAnErrorNotAHang) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("bad.jsonl"), "x\ny\n");
  RecordStream records(dir.file("bad.jsonl"), 0, true, /*skip_bad_lines=*/true);
  EXPECT_THROW(records.next([](const nlohmann::json& r, const std::string&) { return r.size(); }), FormatError);
}

TEST(JsonlTest, IndexesNonBlankLinesWithTheirNumbers) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("a.jsonl"), "{\"a\":1}\n\n\r\n{\"a\":2}\r\n{\"a\":3}");
  JsonlFile file(dir.file("a.jsonl"));
  ASSERT_EQ(file.size(), 3u);
  EXPECT_EQ(file.line_number(1), 4);
  EXPECT_EQ(file.parse(1)["a"], 2);
  EXPECT_EQ(file.parse(2)["a"], 3);
  EXPECT_EQ(file.where(2), dir.file("a.jsonl") + ":5");
}

TEST(JsonlTest, ShuffleIsASeededPermutation) {
  const auto a = shuffled_order(100, 7), b = shuffled_order(100, 7), c = shuffled_order(100, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) EXPECT_EQ(sorted[i], i);
}

TEST(BatchTest, PadsRightAndMasks) {
  const Batch b = make_batch({{{5, 6, 7}, {5, 6, 7}}, {{8}, {-100}}}, 0);
  EXPECT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b.input_ids[1][1].item<int64_t>(), 0);
  EXPECT_EQ(b.labels[1][2].item<int64_t>(), -100);
  EXPECT_EQ(b.attention_mask.sum().item<int64_t>(), 4);
  EXPECT_EQ(b.tokens(), 4);
}


// A Hugging Face family's own chat template (Mixtral's): each assistant answer and its </s> are
// supervised, the [INST] turns and the BOS are not.
TEST(TemplatedSftTest, LabelsCoverWhatTheTemplateAddsForEachAnswer) {
  const std::string data = std::string(CHRONOS_SOURCE_DIR) + "/tests/data";
  const Tokenizer tokenizer = Tokenizer::from_file(data + "/tokenizer/pipeline_sentencepiece.json");
  std::ifstream in(data + "/chat/mixtral_instruct.jinja");
  const std::string jinja((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const ChatFormatter chat(
      TokenizerConfig::from_json({{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"chat_template", jinja}}, "tokenizer_config.json"),
      "tokenizer_config.json");
  EncoderOptions options{256, 1, 2, &chat};
  const ExampleEncoder encoder(tokenizer, options);
  const nlohmann::json messages = {{{"role", "user"}, {"content", "hi"}},
                                   {{"role", "assistant"}, {"content", "hello there"}},
                                   {{"role", "user"}, {"content", "more"}},
                                   {{"role", "assistant"}, {"content", "ok"}}};
  const Example e = encoder.sft({{"messages", messages}}, "chat.jsonl:1");
  const std::string text = chat.render(nlohmann::ordered_json(messages), false);
  const std::vector<TokenId> whole = tokenizer.encode(text);
  EXPECT_EQ(e.ids, std::vector<int64_t>(whole.begin(), whole.end()));
  std::vector<TokenId> supervised;
  for (size_t t = 0; t < e.ids.size(); ++t)
    if (e.labels[t] != -100) supervised.push_back(static_cast<TokenId>(e.ids[t]));
  std::vector<TokenId> want = tokenizer.encode("hello there</s>");
  const std::vector<TokenId> second = tokenizer.encode("ok</s>");
  // The answers as the whole text tokenizes them: compare decoded text, not ids cut at span edges.
  EXPECT_EQ(tokenizer.decode(supervised), tokenizer.decode(want) + tokenizer.decode(second));
  EXPECT_EQ(e.labels.front(), -100);  // <s>
  const auto prompt = encoder.prompt({{"messages", messages}}, "chat.jsonl:1");
  EXPECT_EQ(prompt.second, "hi");
  const std::vector<TokenId> prompt_ids = tokenizer.encode("<s>[INST] hi [/INST]");
  EXPECT_EQ(prompt.first, std::vector<int64_t>(prompt_ids.begin(), prompt_ids.end()));
}

}  // namespace
}  // namespace chronos
