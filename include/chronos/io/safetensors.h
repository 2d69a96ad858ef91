// Safetensors files as LibTorch tensors. Reading maps the file copy-on-write and hands out
// zero-copy views (a view keeps the mapping alive); writing is atomic (temp file, fsync, rename).
#pragma once

#include <ATen/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chronos/io/safetensors_header.h"

namespace chronos {

// The LibTorch type of a safetensors dtype; throws FormatError naming `source` when this LibTorch
// has no such type (U16/U32/U64, F8 before LibTorch 2.1).
c10::ScalarType to_scalar_type(safetensors::DType type, const std::string& source);
// The safetensors dtype of a LibTorch type; throws InvalidArgument for types the format lacks.
safetensors::DType from_scalar_type(c10::ScalarType type);

// An open, validated safetensors file.
class SafetensorsFile {
 public:
  // Opens and validates `path`; throws IoError (missing/unreadable) or FormatError (malformed).
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  const safetensors::Header& header() const { return header_; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  // Throws FormatError naming the file and the tensor when absent.
  const safetensors::TensorEntry& entry(const std::string& name) const;
  // A CPU tensor over the mapped bytes (copied only when misaligned for its dtype). Writable:
  // writes stay private to this process.
  at::Tensor tensor(const std::string& name) const;

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  safetensors::Header header_;
  std::map<std::string, size_t> index_;
};

// Loads every tensor of a file, by name.
std::map<std::string, at::Tensor> load_safetensors(const std::string& path);

// Writes tensors (any device; stored in their own dtype, row-major) in the given order, atomically.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace chronos
