#include "chronos/io/json_file.h"

#include <gtest/gtest.h>

#include "chronos/core/error.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

TEST(JsonFile, ReadsAndWrites) {
  testing::TempDir dir;
  write_json_file(dir.file("a.json"), {{"x", 1}, {"y", {1, 2}}});
  const auto json = read_json_file(dir.file("a.json"));
  EXPECT_EQ(json["x"], 1);
  EXPECT_EQ(json["y"][1], 2);
}

TEST(JsonFile, MalformedNamesFileLineAndColumn) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("bad.json"), "{\n  \"a\": 1,\n  \"b\": ]\n}\n");
  try {
    read_json_file(dir.file("bad.json"));
    FAIL();
  } catch (const FormatError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(dir.file("bad.json") + ":3:"), std::string::npos) << what;
  }
}

// 100k levels of '[' would overflow the stack of any recursive walk (dump, conversion): refused at
// parse time with the position, for files, records and text alike.
TEST(JsonFile, DeepNestingIsRefusedWithItsPosition) {
  testing::TempDir dir;
  const std::string deep = "{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  testing::write_bytes(dir.file("deep.json"), deep);
  try {
    read_json_file(dir.file("deep.json"));
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("deep.json") + ":1:134: JSON nests deeper than 128 levels"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_ordered_json(deep, "text"), FormatError);
  // Brackets inside strings do not count, and 128 levels are fine.
  EXPECT_NO_THROW(parse_json("{\"s\": \"" + std::string(1000, '[') + "\"}", "text"));
  EXPECT_NO_THROW(parse_json(std::string(128, '[') + std::string(128, ']'), "text"));
  EXPECT_THROW(parse_json(std::string(129, '[') + std::string(129, ']'), "text"), FormatError);
}

TEST(JsonFile, RecordsNameTheirLine) {
  try {
    parse_json("{\"a\": tru}", "data.jsonl", 7);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("data.jsonl:7:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_json("1e999", "big"), FormatError);  // a number beyond double: nlohmann's out_of_range
}

TEST(JsonFile, DescriptionsAreShort) {
  EXPECT_EQ(describe_json(nlohmann::json::array({1, 2, 3})), "an array of 3 elements");
  EXPECT_EQ(describe_json(nlohmann::json::object()), "an object with 0 keys");
  EXPECT_EQ(describe_json(nlohmann::json(7)), "7");
  EXPECT_LE(describe_json(nlohmann::json(std::string(10000, 'x'))).size(), 40u);
}

TEST(JsonFile, MissingFile) {
  testing::TempDir dir;
  EXPECT_THROW(read_json_file(dir.file("none.json")), IoError);
}

}  // namespace
}  // namespace chronos
