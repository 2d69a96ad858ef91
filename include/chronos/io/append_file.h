// Log files written a line at a time (training logs, per-token metrics). Every write and the close
// are checked: a full disk or a vanished file raises IoError naming the file and the cause instead
// of leaving a silently truncated log behind an exit code of 0.
#pragma once

#include <string>
#include <string_view>

namespace chronos {

class AppendFile {
 public:
  enum class Mode { append, truncate };
  // Opens (creating) `path` for writing at its end. Throws IoError naming it when it cannot be
  // opened or is a directory or FIFO (a character device such as /dev/null is fine).
  AppendFile(std::string path, Mode mode);
  ~AppendFile();  // closes without checking: call close() to learn whether the last bytes landed
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  // Writes `line` and a newline in full; throws IoError naming the file (e.g. "No space left on device").
  void write_line(std::string_view line);
  // Closes the file; throws IoError when the close reports an error. Idempotent.
  void close();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace chronos
