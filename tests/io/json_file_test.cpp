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

TEST(JsonFile, MissingFile) {
  testing::TempDir dir;
  EXPECT_THROW(read_json_file(dir.file("none.json")), IoError);
}

}  // namespace
}  // namespace chronos
