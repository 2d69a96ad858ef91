#include "chronos/io/append_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "chronos/core/error.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

std::string contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(AppendFile, AppendsOrTruncates) {
  testing::TempDir dir;
  {
    AppendFile log(dir.file("a.jsonl"), AppendFile::Mode::truncate);
    log.write_line("one");
    log.close();
  }
  {
    AppendFile log(dir.file("a.jsonl"), AppendFile::Mode::append);
    log.write_line("two");
    log.close();
    log.close();  // idempotent
  }
  EXPECT_EQ(contents(dir.file("a.jsonl")), "one\ntwo\n");
  AppendFile again(dir.file("a.jsonl"), AppendFile::Mode::truncate);
  again.close();
  EXPECT_EQ(contents(dir.file("a.jsonl")), "");
}

// A full disk: every write is checked, so a log cannot end truncated behind a successful run.
TEST(AppendFile, FullDiskIsAnError) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  AppendFile log("/dev/full", AppendFile::Mode::append);
  try {
    log.write_line("lost");
    FAIL() << "the write to /dev/full succeeded";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/dev/full: write failed (No space left on device)"), std::string::npos) << e.what();
  }
}

TEST(AppendFile, DirectoriesFifosAndMissingFoldersAreRefused) {
  testing::TempDir dir;
  EXPECT_THROW(AppendFile(dir.path(), AppendFile::Mode::append), IoError);
  EXPECT_THROW(AppendFile(dir.file("none/log.jsonl"), AppendFile::Mode::append), IoError);
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  EXPECT_THROW(AppendFile(dir.file("fifo"), AppendFile::Mode::append), IoError);  // no reader: refused at once
}

}  // namespace
}  // namespace chronos
