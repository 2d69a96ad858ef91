// Atomic file writes: data goes to a temporary file in the destination's folder, is fsynced, and
// is renamed over the destination only on commit(), so a crash never leaves a half-written file.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace chronos {

class AtomicFile {
 public:
  // Creates the temporary file beside `path`; throws IoError naming the folder on failure.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // fsync, rename over the destination, fsync the folder.
  void commit();

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `contents` to `path` atomically.
void write_file_atomic(const std::string& path, std::string_view contents);

// Creates a folder and its parents; throws IoError naming it on failure.
void make_directories(const std::string& path);

}  // namespace chronos
