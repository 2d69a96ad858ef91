// One cluster file opened for the expert store's reads: O_DIRECT when the filesystem allows it
// (DESIGN.md: 1.9 GB/s direct against 0.68 GB/s through the page cache, and measurements stay
// free of the page cache), buffered otherwise (tmpfs refuses O_DIRECT at open; some filesystems
// refuse it per read with EINVAL: the file then switches to buffered reads for good).
// Reads are positional (pread/preadv) and safe from several threads at once.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace chronos {

// A destination of a read: `size` bytes at `data`. For O_DIRECT, data and size are 4 KiB aligned.
struct ReadSpan {
  void* data = nullptr;
  size_t size = 0;
};

class SsdFile {
 public:
  enum class Mode {
    direct_if_possible,  // O_DIRECT, falling back to buffered reads where it is refused
    buffered,            // the page cache (for tests and callers that cannot align)
  };

  // Opens `path` read-only. Throws IoError naming the file when it cannot be opened.
  explicit SsdFile(std::string path, Mode mode = Mode::direct_if_possible);
  ~SsdFile();
  SsdFile(const SsdFile&) = delete;
  SsdFile& operator=(const SsdFile&) = delete;

  // Reads the spans back to back from `offset` with one preadv (more when the kernel returns
  // short). At least `min_bytes` must arrive (0: all of them); fewer, or an error such as EIO,
  // throws IoError naming the file and the offset. Returns the bytes read.
  uint64_t read(const std::vector<ReadSpan>& spans, uint64_t offset, uint64_t min_bytes = 0) const;
  uint64_t read(void* data, size_t size, uint64_t offset, uint64_t min_bytes = 0) const {
    return read(std::vector<ReadSpan>{{data, size}}, offset, min_bytes);
  }

  // True while reads bypass the page cache.
  bool direct() const { return direct_fd_ >= 0 && direct_ok_.load(std::memory_order_relaxed); }
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

 private:
  uint64_t read_fd(int fd, const std::vector<ReadSpan>& spans, uint64_t offset) const;

  std::string path_;
  int direct_fd_ = -1;    // O_DIRECT descriptor, -1 when refused at open
  int buffered_fd_ = -1;  // always open: the fallback
  uint64_t size_ = 0;
  mutable std::atomic<bool> direct_ok_{true};
};

}  // namespace chronos
