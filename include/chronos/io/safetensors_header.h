// The safetensors container header: parsing and validation, independent of LibTorch so that the
// fuzz target can exercise it alone. Layout: u64 little-endian N, N bytes of JSON, then raw data.
// Every malformed input raises chronos::FormatError naming the source and, where known, the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace chronos::safetensors {

enum class DType { BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2 };

// Bytes per element.
size_t dtype_size(DType type);
// The header's spelling ("F32", "BF16", ...).
const char* dtype_string(DType type);
std::optional<DType> parse_dtype(const std::string& text);

struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
  uint64_t numel() const;
};

struct Header {
  std::vector<TensorEntry> tensors;              // in file order of their data offsets
  std::map<std::string, std::string> metadata;   // the optional "__metadata__" string map
  uint64_t data_offset = 0;                      // 8 + N: where the data section starts in the file
  uint64_t data_size = 0;                        // file size - data_offset
};

// The largest header accepted (the format's own limit is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

// Reads N from the first 8 bytes and checks it against the file size. `source` names the file.
uint64_t parse_header_length(const uint8_t* prefix, size_t available, uint64_t file_size, const std::string& source);

// Parses and validates the header JSON; `json` points at the N header bytes.
// Checks: JSON object, entry fields and types, known dtype, non-negative shape, no numel overflow,
// byte count == numel * dtype size, offsets inside the data section, no two tensors overlapping.
Header parse_header(const char* json, size_t json_size, uint64_t file_size, const std::string& source);

// Serialises a header for writing: returns the JSON padded with spaces so that 8 + size is a
// multiple of 8. Entries keep their given offsets.
std::string serialize_header(const std::vector<TensorEntry>& tensors, const std::map<std::string, std::string>& metadata);

}  // namespace chronos::safetensors
