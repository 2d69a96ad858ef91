#include "chronos/tokenizer/training_corpus.h"

#include <gtest/gtest.h>

#include <vector>

#include "chronos/core/error.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

using nlohmann::json;

TEST(TrainingCorpus, FieldDetection) {
  EXPECT_EQ(record_text(json::parse(R"({"text": "t", "content": "c"})")), "t");
  EXPECT_EQ(record_text(json::parse(R"({"text": "", "story": "s"})")), "s");
  EXPECT_EQ(record_text(json::parse(R"({"article": "a", "id": 3})")), "a");
  EXPECT_EQ(record_text(json::parse(R"({"instruction": " do \n", "output": "done "})")), "do\ndone");
  EXPECT_EQ(record_text(json::parse(R"({"question": "q?", "answer": "a."})")), "q?\na.");
  EXPECT_EQ(record_text(json::parse(R"({"conversations": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""},
                                                          {"role": "assistant", "content": "there"}]})")),
            "hi\nthere");
  EXPECT_EQ(record_text(json::parse(R"({"messages": [{"content": "m"}]})")), "m");
  EXPECT_FALSE(record_text(json::parse(R"({"id": 1, "label": "x"})")).has_value());
  EXPECT_FALSE(record_text(json::parse(R"({"conversations": []})")).has_value());
  // A named field wins and nothing else is tried.
  EXPECT_EQ(record_text(json::parse(R"({"text": "t", "body": "b"})"), "body"), "b");
  EXPECT_FALSE(record_text(json::parse(R"({"text": "t"})"), "body").has_value());
}

TEST(TrainingCorpus, ReadsLinesAndCounts) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("c.jsonl"), "{\"text\": \"one\"}\n\n  \n{\"id\": 2}\n{\"text\": \"three\"}\r\n{\"text\": \"four\"}");
  std::vector<std::string> texts;
  const auto stats = read_training_corpus(dir.file("c.jsonl"), {}, [&](std::string_view t) { texts.emplace_back(t); });
  EXPECT_EQ(texts, (std::vector<std::string>{"one", "three", "four"}));
  EXPECT_EQ(stats.records, 4);
  EXPECT_EQ(stats.texts, 3);
  EXPECT_EQ(stats.skipped, 1);
  EXPECT_EQ(stats.bytes, 12);

  texts.clear();
  TrainingCorpusOptions options;
  options.max_lines = 2;
  read_training_corpus(dir.file("c.jsonl"), options, [&](std::string_view t) { texts.emplace_back(t); });
  EXPECT_EQ(texts, (std::vector<std::string>{"one"}));
}

TEST(TrainingCorpus, MalformedLineNamesFileAndLine) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("bad.jsonl"), "{\"text\": \"ok\"}\n\n{\"text\": oops}\n");
  try {
    read_training_corpus(dir.file("bad.jsonl"), {}, [](std::string_view) {});
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("bad.jsonl") + ":3:10: invalid JSON"), std::string::npos) << e.what();
  }
  testing::write_bytes(dir.file("array.jsonl"), "[1, 2]\n");
  try {
    read_training_corpus(dir.file("array.jsonl"), {}, [](std::string_view) {});
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("array.jsonl") + ":1: expected a JSON object"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_training_corpus(dir.file("missing.jsonl"), {}, [](std::string_view) {}), IoError);
}

}  // namespace
}  // namespace chronos
