#include "chronos/io/safetensors_header.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"

namespace chronos::safetensors {
namespace {

struct DTypeName {
  DType type;
  const char* name;
  size_t size;
};

constexpr DTypeName kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},     {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},   {DType::U16, "U16", 2},   {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},   {DType::I64, "I64", 8},   {DType::U64, "U64", 8},
    {DType::F16, "F16", 2},   {DType::BF16, "BF16", 2}, {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},   {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw FormatError(cat(source, ": ", what));
}

[[noreturn]] void fail_tensor(const std::string& source, const std::string& tensor, const std::string& what) {
  throw FormatError(cat(source, ": tensor '", tensor, "': ", what));
}

uint64_t read_offset(const nlohmann::json& value, const std::string& source, const std::string& name) {
  if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0))
    fail_tensor(source, name, "data_offsets must be two non-negative integers");
  return value.get<uint64_t>();
}

TensorEntry parse_entry(const std::string& name, const nlohmann::json& value, uint64_t data_size,
                        const std::string& source) {
  if (!value.is_object()) fail_tensor(source, name, "entry is not a JSON object");
  TensorEntry entry;
  entry.name = name;

  auto dtype_it = value.find("dtype");
  if (dtype_it == value.end() || !dtype_it->is_string()) fail_tensor(source, name, "missing string field 'dtype'");
  auto dtype = parse_dtype(dtype_it->get<std::string>());
  if (!dtype) fail_tensor(source, name, cat("unknown dtype '", dtype_it->get<std::string>(), "'"));
  entry.dtype = *dtype;

  auto shape_it = value.find("shape");
  if (shape_it == value.end() || !shape_it->is_array()) fail_tensor(source, name, "missing array field 'shape'");
  if (shape_it->size() > 64) fail_tensor(source, name, "shape has more than 64 dimensions");
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& dim : *shape_it) {
    if (!dim.is_number_integer() || (dim.is_number_integer() && !dim.is_number_unsigned() && dim.get<int64_t>() < 0))
      fail_tensor(source, name, "shape entries must be non-negative integers");
    const uint64_t d = dim.get<uint64_t>();
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail_tensor(source, name, "dimension too large");
    if (d != 0 && numel > std::numeric_limits<uint64_t>::max() / d) overflow = true;
    numel *= d;
    entry.shape.push_back(static_cast<int64_t>(d));
  }

  auto offsets_it = value.find("data_offsets");
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2)
    fail_tensor(source, name, "missing field 'data_offsets' of two integers");
  entry.begin = read_offset((*offsets_it)[0], source, name);
  entry.end = read_offset((*offsets_it)[1], source, name);
  if (entry.end < entry.begin) fail_tensor(source, name, cat("data_offsets [", entry.begin, ", ", entry.end, ") run backwards"));
  if (entry.end > data_size)
    fail_tensor(source, name, cat("data_offsets [", entry.begin, ", ", entry.end, ") run past the data section (",
                                  data_size, " bytes; file truncated?)"));
  const size_t item = dtype_size(entry.dtype);
  if (overflow || (numel != 0 && numel > std::numeric_limits<uint64_t>::max() / item))
    fail_tensor(source, name, "shape is too large");
  if (numel * item != entry.end - entry.begin)
    fail_tensor(source, name, cat("shape needs ", numel * item, " bytes of ", dtype_string(entry.dtype), " but data_offsets hold ",
                                  entry.end - entry.begin));
  return entry;
}

}  // namespace

size_t dtype_size(DType type) {
  for (const auto& d : kDTypes)
    if (d.type == type) return d.size;
  return 1;
}

const char* dtype_string(DType type) {
  for (const auto& d : kDTypes)
    if (d.type == type) return d.name;
  return "?";
}

std::optional<DType> parse_dtype(const std::string& text) {
  for (const auto& d : kDTypes)
    if (text == d.name) return d.type;
  return std::nullopt;
}

uint64_t TensorEntry::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t parse_header_length(const uint8_t* prefix, size_t available, uint64_t file_size, const std::string& source) {
  if (available < 8 || file_size < 8) fail(source, cat("file is ", file_size, " bytes, too short for a safetensors header"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > kMaxHeaderBytes) fail(source, cat("header length ", n, " exceeds the ", kMaxHeaderBytes, "-byte limit (not a safetensors file?)"));
  if (n > file_size - 8) fail(source, cat("header length ", n, " runs past the end of the ", file_size, "-byte file (truncated?)"));
  return n;
}

Header parse_header(const char* json, size_t json_size, uint64_t file_size, const std::string& source) {
  Header header;
  header.data_offset = 8 + json_size;
  if (header.data_offset > file_size) fail(source, "header runs past the end of the file");
  header.data_size = file_size - header.data_offset;

  nlohmann::json root;
  try {
    root = parse_json(std::string_view(json, json_size), source + " header");
  } catch (const FormatError& e) {
    throw FormatError(cat(e.what(), " (the header is not valid JSON)"));
  }
  if (!root.is_object()) fail(source, "header JSON is not an object");

  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail(source, "__metadata__ is not a JSON object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail(source, cat("__metadata__ value for '", m.key(), "' is not a string"));
        header.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    header.tensors.push_back(parse_entry(it.key(), *it, header.data_size, source));
  }

  std::stable_sort(header.tensors.begin(), header.tensors.end(),
                   [](const TensorEntry& a, const TensorEntry& b) { return a.begin < b.begin; });
  const TensorEntry* previous = nullptr;
  for (const auto& entry : header.tensors) {
    if (entry.begin == entry.end) continue;  // empty tensors occupy no bytes
    if (previous && entry.begin < previous->end)
      fail(source, cat("tensors '", previous->name, "' and '", entry.name, "' overlap in the data section"));
    previous = &entry;
  }
  return header;
}

std::string serialize_header(const std::vector<TensorEntry>& tensors, const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps the data order, which makes files diffable and deterministic.
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  if (!metadata.empty()) root["__metadata__"] = metadata;
  for (const auto& t : tensors) {
    root[t.name] = {{"dtype", dtype_string(t.dtype)}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
  }
  std::string text = root.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  return text;
}

}  // namespace chronos::safetensors
