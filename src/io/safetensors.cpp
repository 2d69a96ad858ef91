#include "chronos/io/safetensors.h"

#include <ATen/ATen.h>
#include <torch/version.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "chronos/core/error.h"
#include "chronos/io/atomic_file.h"
#include "chronos/io/regular_file.h"

namespace chronos {

namespace st = safetensors;

// A private (copy-on-write) mapping of the whole file; unmapped when the last view is gone.
struct SafetensorsFile::Mapping {
  void* base = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (base && base != MAP_FAILED) munmap(base, size);
  }
};

c10::ScalarType to_scalar_type(st::DType type, const std::string& source) {
  switch (type) {
    case st::DType::BOOL: return c10::kBool;
    case st::DType::U8: return c10::kByte;
    case st::DType::I8: return c10::kChar;
    case st::DType::I16: return c10::kShort;
    case st::DType::I32: return c10::kInt;
    case st::DType::I64: return c10::kLong;
    case st::DType::F16: return c10::kHalf;
    case st::DType::BF16: return c10::kBFloat16;
    case st::DType::F32: return c10::kFloat;
    case st::DType::F64: return c10::kDouble;
    default: break;
  }
  throw FormatError(cat(source, ": dtype ", st::dtype_string(type), " is not supported by LibTorch ", TORCH_VERSION));
}

st::DType from_scalar_type(c10::ScalarType type) {
  switch (type) {
    case c10::kBool: return st::DType::BOOL;
    case c10::kByte: return st::DType::U8;
    case c10::kChar: return st::DType::I8;
    case c10::kShort: return st::DType::I16;
    case c10::kInt: return st::DType::I32;
    case c10::kLong: return st::DType::I64;
    case c10::kHalf: return st::DType::F16;
    case c10::kBFloat16: return st::DType::BF16;
    case c10::kFloat: return st::DType::F32;
    case c10::kDouble: return st::DType::F64;
    default: break;
  }
  throw InvalidArgument(cat("safetensors cannot store dtype ", c10::toString(type)));
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), mapping_(std::make_shared<Mapping>()) {
  const int fd = open_regular_file(path);
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    ::close(fd);
    throw IoError(cat(path, ": cannot stat (", std::strerror(errno), ")"));
  }
  const auto file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw FormatError(cat(path, ": file is ", file_size, " bytes, too short for a safetensors header"));
  }
  mapping_->size = file_size;
  mapping_->base = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (mapping_->base == MAP_FAILED) {
    mapping_->base = nullptr;
    throw IoError(cat(path, ": cannot map (", std::strerror(map_errno), ")"));
  }
  const auto* bytes = static_cast<const uint8_t*>(mapping_->base);
  const uint64_t n = st::parse_header_length(bytes, file_size, file_size, path);
  header_ = st::parse_header(reinterpret_cast<const char*>(bytes + 8), n, file_size, path);
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(header_.tensors.size());
  for (const auto& t : header_.tensors) out.push_back(t.name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) != 0; }

const st::TensorEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw FormatError(cat(path_, ": no tensor named '", name, "'"));
  return header_.tensors[it->second];
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const st::TensorEntry& e = entry(name);
  const auto type = to_scalar_type(e.dtype, path_);
  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  if (e.numel() == 0) return at::empty(e.shape, options);
  auto* data = static_cast<uint8_t*>(mapping_->base) + header_.data_offset + e.begin;
  const size_t item = st::dtype_size(e.dtype);
  if (reinterpret_cast<uintptr_t>(data) % item != 0) {
    at::Tensor copy = at::empty(e.shape, options);
    std::memcpy(copy.data_ptr(), data, e.end - e.begin);
    return copy;
  }
  std::shared_ptr<Mapping> keep = mapping_;
  return at::from_blob(data, e.shape, [keep](void*) mutable { keep.reset(); }, options);
}

std::map<std::string, at::Tensor> load_safetensors(const std::string& path) {
  SafetensorsFile file(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& e : file.header().tensors) out.emplace(e.name, file.tensor(e.name));
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<st::TensorEntry> entries;
  std::vector<at::Tensor> host;
  entries.reserve(tensors.size());
  host.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw InvalidArgument(cat(path, ": '__metadata__' is not a valid tensor name"));
    if (!tensor.defined()) throw InvalidArgument(cat(path, ": tensor '", name, "' is undefined"));
    at::Tensor cpu = tensor.detach().to(at::kCPU).contiguous();
    st::TensorEntry e;
    e.name = name;
    e.dtype = from_scalar_type(cpu.scalar_type());
    e.shape.assign(cpu.sizes().begin(), cpu.sizes().end());
    e.begin = offset;
    e.end = offset + static_cast<uint64_t>(cpu.numel()) * cpu.element_size();
    offset = e.end;
    entries.push_back(std::move(e));
    host.push_back(std::move(cpu));
  }
  const std::string header = st::serialize_header(entries, metadata);
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>((header.size() >> (8 * i)) & 0xff);

  AtomicFile out(path);
  out.write(length, sizeof(length));
  out.write(header);
  for (const auto& t : host) out.write(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
  out.commit();
}

}  // namespace chronos
