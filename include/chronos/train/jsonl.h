// JSON-lines files read by line number without loading them: one pass records where each non-blank
// line starts (8 bytes a line), then lines are read with pread on demand. Files larger than RAM work,
// and any order (a seeded shuffle) costs no more than the file order.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace chronos {

class JsonlFile {
 public:
  // Indexes `path`; throws IoError when it is missing or unreadable.
  explicit JsonlFile(std::string path);
  ~JsonlFile();
  JsonlFile(const JsonlFile&) = delete;
  JsonlFile& operator=(const JsonlFile&) = delete;

  const std::string& path() const { return path_; }
  // Number of non-blank lines (records).
  size_t size() const { return offsets_.size(); }
  // 1-based line number of record i in the file (blank lines counted), for messages.
  int64_t line_number(size_t record) const { return line_numbers_.at(record); }
  // The raw text of record i (without the newline).
  std::string text(size_t record) const;
  // Record i parsed; throws FormatError "FILE:LINE: invalid JSON ..." when it is not JSON.
  nlohmann::json parse(size_t record) const;
  // "FILE:LINE" of record i, to prefix messages about its contents.
  std::string where(size_t record) const;

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<uint64_t> offsets_;      // byte offset of each record
  std::vector<uint32_t> lengths_;      // byte length of each record
  std::vector<int64_t> line_numbers_;  // 1-based line of each record
};

// A seeded permutation of 0..n-1 (the same for the same seed on every platform).
std::vector<size_t> shuffled_order(size_t n, uint64_t seed);

}  // namespace chronos
