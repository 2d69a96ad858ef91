// Inputs that are not regular files: a FIFO, a directory or a missing path gives one IoError naming
// the path at once; nothing blocks on a FIFO that no writer opens.
#include "chronos/io/regular_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/train/jsonl.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

// The IoError `read` throws, or a test failure when it throws none or another type.
template <class Read>
std::string io_error_of(Read read) {
  try {
    read();
  } catch (const IoError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an IoError: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(RegularFile, RefusesAFifoWithoutBlocking) {
  testing::TempDir dir;
  const std::string fifo = dir.file("config.json");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& message : {io_error_of([&] { open_regular_file(fifo); }), io_error_of([&] { read_regular_file(fifo); }),
                                     io_error_of([&] { read_json_file(fifo); }), io_error_of([&] { JsonlFile file(fifo); }),
                                     io_error_of([&] { SafetensorsFile file(fifo); })}) {
    EXPECT_NE(message.find(fifo), std::string::npos) << message;
    EXPECT_NE(message.find("a FIFO"), std::string::npos) << message;
  }
}

TEST(RegularFile, RefusesADirectoryAndAMissingPath) {
  testing::TempDir dir;
  const std::string folder = dir.file("model.safetensors");
  std::filesystem::create_directory(folder);
  EXPECT_NE(io_error_of([&] { read_json_file(folder); }).find("is a directory"), std::string::npos);
  EXPECT_NE(io_error_of([&] { require_regular_file(folder); }).find(folder), std::string::npos);
  const std::string missing = dir.file("none.json");
  const std::string message = io_error_of([&] { read_regular_file(missing); });
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("No such file"), std::string::npos) << message;
}

TEST(RegularFile, ReadsARegularFileWhole) {
  testing::TempDir dir;
  const std::string path = dir.file("text.txt");
  std::string text(200000, 'x');
  text += "\nend";
  std::ofstream(path, std::ios::binary) << text;
  EXPECT_EQ(read_regular_file(path), text);
  EXPECT_NO_THROW(require_regular_file(path));
  std::ofstream(dir.file("empty.txt"));
  EXPECT_EQ(read_regular_file(dir.file("empty.txt")), "");
}

}  // namespace
}  // namespace chronos
