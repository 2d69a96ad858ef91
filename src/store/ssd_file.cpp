#include "store/ssd_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <system_error>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/regular_file.h"

namespace chronos {

SsdFile::SsdFile(std::string path, Mode mode) : path_(std::move(path)) {
  buffered_fd_ = open_regular_file(path_);
  struct stat st {};
  if (::fstat(buffered_fd_, &st) != 0) {
    const int err = errno;
    ::close(buffered_fd_);
    throw IoError(cat("cannot stat cluster file ", path_, ": ", std::strerror(err)));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (mode == Mode::direct_if_possible) {
    direct_fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    // EINVAL: the filesystem does not support O_DIRECT (tmpfs); read through the page cache.
    if (direct_fd_ < 0) log::debug(cat(path_, ": O_DIRECT refused (", std::strerror(errno), "), using buffered reads"));
  }
}

SsdFile::~SsdFile() {
  if (direct_fd_ >= 0) ::close(direct_fd_);
  if (buffered_fd_ >= 0) ::close(buffered_fd_);
}

uint64_t SsdFile::read_fd(int fd, const std::vector<ReadSpan>& spans, uint64_t offset) const {
  std::vector<iovec> iov;
  iov.reserve(spans.size());
  for (const ReadSpan& s : spans)
    if (s.size > 0) iov.push_back({s.data, s.size});
  uint64_t done = 0;
  size_t first = 0;
  while (first < iov.size()) {
    const int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    const ssize_t got = ::preadv(fd, iov.data() + first, count, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category());
    }
    if (got == 0) break;  // end of file
    done += static_cast<uint64_t>(got);
    // Advance past what arrived; a partly filled span continues where it stopped.
    size_t left = static_cast<size_t>(got);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (left > 0) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return done;
}

uint64_t SsdFile::read(const std::vector<ReadSpan>& spans, uint64_t offset, uint64_t min_bytes) const {
  uint64_t total = 0;
  for (const ReadSpan& s : spans) total += s.size;
  const uint64_t want = min_bytes == 0 ? total : min_bytes;
  uint64_t got = 0;
  try {
    if (direct()) {
      try {
        got = read_fd(direct_fd_, spans, offset);
      } catch (const std::system_error& e) {
        if (e.code().value() != EINVAL) throw;
        // The filesystem accepted O_DIRECT at open but refuses this read: buffered from now on.
        if (direct_ok_.exchange(false)) log::warn(cat(path_, ": O_DIRECT read refused (EINVAL), switching to buffered reads"));
        got = read_fd(buffered_fd_, spans, offset);
      }
    } else {
      got = read_fd(buffered_fd_, spans, offset);
    }
  } catch (const std::system_error& e) {
    throw IoError(cat("read error in cluster file ", path_, " at offset ", offset, " (", total, " bytes): ", std::strerror(e.code().value())));
  }
  if (got < want)
    throw IoError(cat("short read in cluster file ", path_, " at offset ", offset, ": ", got, " of ", want,
                      " bytes (the file is truncated)"));
  return got;
}

}  // namespace chronos
