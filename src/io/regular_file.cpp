#include "chronos/io/regular_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "chronos/core/error.h"

namespace chronos {
namespace {

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

int open_regular_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == EISDIR) throw IoError(cat(path, ": is a directory, expected a file"));
    throw IoError(cat(path, ": cannot open (", std::strerror(err), ")"));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int err = errno;
    ::close(fd);
    throw IoError(cat(path, ": cannot stat (", std::strerror(err), ")"));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    throw IoError(cat(path, ": is ", kind_of(info.st_mode), ", expected a regular file"));
  }
  // Back to blocking reads (O_NONBLOCK has no effect on a regular file's reads, but say what we mean).
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

std::string read_regular_file(const std::string& path) {
  const int fd = open_regular_file(path);
  std::string text;
  char buffer[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw IoError(cat(path, ": read failed (", std::strerror(err), ")"));
    }
    if (got == 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return text;
}

void require_regular_file(const std::string& path) { ::close(open_regular_file(path)); }

}  // namespace chronos
