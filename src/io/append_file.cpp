#include "chronos/io/append_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "chronos/core/error.h"

namespace chronos {

AppendFile::AppendFile(std::string path, Mode mode) : path_(std::move(path)) {
  // O_NONBLOCK: opening a FIFO without a reader fails at once instead of waiting for one.
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK | (mode == Mode::truncate ? O_TRUNC : 0);
  fd_ = ::open(path_.c_str(), flags, 0644);
  if (fd_ < 0) throw IoError(cat(path_, ": cannot open for writing (", std::strerror(errno), ")"));
  struct stat info {};
  if (::fstat(fd_, &info) != 0 || S_ISDIR(info.st_mode) || S_ISFIFO(info.st_mode) || S_ISSOCK(info.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw IoError(cat(path_, ": not a file that a log can be written to"));
  }
  const int current = ::fcntl(fd_, F_GETFL);
  if (current >= 0) ::fcntl(fd_, F_SETFL, current & ~O_NONBLOCK);
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AppendFile::write_line(std::string_view line) {
  if (fd_ < 0) throw IoError(cat(path_, ": write after close"));
  std::string bytes(line);
  bytes += '\n';
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError(cat(path_, ": write failed (", n < 0 ? std::strerror(errno) : "no progress", ")"));
    done += static_cast<size_t>(n);
  }
}

void AppendFile::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw IoError(cat(path_, ": close failed (", std::strerror(errno), ")"));
}

}  // namespace chronos
