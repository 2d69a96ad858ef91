#include "chronos/io/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "chronos/core/error.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

size_t entries_in(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFile, CommitReplacesTheDestination) {
  testing::TempDir dir;
  write_file_atomic(dir.file("f.txt"), "old");
  write_file_atomic(dir.file("f.txt"), "new contents");
  EXPECT_EQ(testing::read_bytes(dir.file("f.txt")), "new contents");
  EXPECT_EQ(entries_in(dir.path()), 1u);  // no temporary left behind
}

TEST(AtomicFile, AbandonedWriteLeavesTheOldFile) {
  testing::TempDir dir;
  write_file_atomic(dir.file("f.txt"), "old");
  {
    AtomicFile file(dir.file("f.txt"));
    file.write("half-writ");
  }
  EXPECT_EQ(testing::read_bytes(dir.file("f.txt")), "old");
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicFile, MissingFolderIsNamed) {
  testing::TempDir dir;
  try {
    AtomicFile file(dir.file("no/such/f.txt"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("no/such"), std::string::npos);
  }
}

TEST(AtomicFile, MakeDirectoriesRefusesAFile) {
  testing::TempDir dir;
  write_file_atomic(dir.file("f"), "x");
  EXPECT_THROW(make_directories(dir.file("f")), IoError);
  make_directories(dir.file("a/b/c"));
  EXPECT_TRUE(std::filesystem::is_directory(dir.file("a/b/c")));
}

}  // namespace
}  // namespace chronos
