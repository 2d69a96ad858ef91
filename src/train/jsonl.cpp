#include "chronos/train/jsonl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <random>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"
#include "chronos/io/regular_file.h"

namespace chronos {

JsonlFile::JsonlFile(std::string path) : path_(std::move(path)) {
  fd_ = open_regular_file(path_);
  std::vector<char> buffer(1 << 20);
  uint64_t offset = 0, start = 0;
  int64_t line = 1;
  bool blank = true;
  auto finish_line = [&](uint64_t end) {
    if (!blank) {
      if (end - start > std::numeric_limits<uint32_t>::max()) throw FormatError(cat(path_, ":", line, ": line longer than 4 GiB"));
      offsets_.push_back(start);
      lengths_.push_back(static_cast<uint32_t>(end - start));
      line_numbers_.push_back(line);
    }
  };
  while (true) {
    const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(cat(path_, ": read failed (", std::strerror(errno), ")"));
    }
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i, ++offset) {
      const char c = buffer[i];
      if (c == '\n') {
        finish_line(offset);
        start = offset + 1;
        blank = true;
        ++line;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        blank = false;
      }
    }
  }
  finish_line(offset);
}

JsonlFile::~JsonlFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string JsonlFile::text(size_t record) const {
  std::string out(lengths_.at(record), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offsets_[record] + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError(cat(where(record), ": read failed (file changed while training?)"));
    done += static_cast<size_t>(n);
  }
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return out;
}

nlohmann::json JsonlFile::parse(size_t record) const {
  const std::string line = text(record);
  return parse_json(line, path_, line_numbers_.at(record));
}

std::string JsonlFile::where(size_t record) const { return cat(path_, ":", line_numbers_.at(record)); }

std::vector<size_t> shuffled_order(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  // Fisher-Yates with our own draw: std::shuffle's use of the engine is implementation-defined.
  std::mt19937_64 rng(seed);
  for (size_t i = n; i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

}  // namespace chronos
