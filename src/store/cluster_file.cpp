#include "chronos/store/cluster_file.h"

#include <ATen/ATen.h>
#include <xxhash.h>

#include <memory>

#include "chronos/core/error.h"
#include "chronos/io/atomic_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/io/safetensors_header.h"
#include "chronos/model/weight_format.h"
#include "model/row_groups.h"

namespace chronos {
namespace {

constexpr const char* kParams[] = {"gate_proj", "up_proj", "down_proj"};

uint64_t align_up(uint64_t value) { return (value + kExpertAlignment - 1) / kExpertAlignment * kExpertAlignment; }

// Streams bytes into the atomic file and the whole-file hash at once.
class HashingWriter {
 public:
  explicit HashingWriter(const std::string& path) : file_(path), state_(XXH3_createState(), XXH3_freeState) {
    XXH3_64bits_reset(state_.get());
  }
  void write(const void* data, size_t size) {
    file_.write(data, size);
    XXH3_64bits_update(state_.get(), data, size);
    written_ += size;
  }
  void zeros(size_t size) {
    static const std::vector<char> block(kExpertAlignment, 0);
    while (size > 0) {
      const size_t n = std::min(size, block.size());
      write(block.data(), n);
      size -= n;
    }
  }
  uint64_t written() const { return written_; }
  uint64_t digest() const { return XXH3_64bits_digest(state_.get()); }
  void commit() { file_.commit(); }

 private:
  AtomicFile file_;
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state_;
  uint64_t written_ = 0;
};

}  // namespace

std::string expert_tensor_name(ExpertKey key, const char* param) { return key.name() + "__" + param + ".weight"; }

std::string cluster_file_name(int64_t cluster_id) {
  char name[32];
  std::snprintf(name, sizeof name, "cluster_%03lld.ctsr", static_cast<long long>(cluster_id));
  return name;
}

ClusterFile write_cluster_file(const std::string& dir, const std::string& file, int64_t cluster_id,
                               const std::vector<std::pair<ExpertKey, ExpertWeights>>& members, const ExpertStorage& storage) {
  if (members.empty()) throw InvalidArgument(cat("cluster ", cluster_id, " has no members"));
  const safetensors::DType stored = from_scalar_type(storage.dtype);
  const at::Tensor& first = members.front().second.gate_proj;
  const int64_t I = first.size(0), H = first.size(1);
  const uint64_t in_bytes = storage.matrix_bytes(I, H), out_bytes = storage.matrix_bytes(H, I);
  // The stored bytes of one weight: cast, or quantized along its rows (in row groups when asked).
  const auto encode = [&](const at::Tensor& t) {
    if (!storage.is_quantized()) return t.detach().to(at::kCPU, storage.dtype).contiguous();
    const at::Tensor blocks = quantize_matrix(t, storage.quant);
    return storage.row_groups ? group_rows(blocks, storage.quant == QuantFormat::int8 ? WeightFormat::int8 : WeightFormat::int4, t.size(1)) : blocks;
  };

  // Layout: per member gate|up|down, then zero padding (a U8 tensor) up to the next 4 KiB boundary.
  std::vector<safetensors::TensorEntry> entries;
  uint64_t offset = 0;
  for (size_t m = 0; m < members.size(); ++m) {
    const auto& [key, w] = members[m];
    const at::Tensor* tensors[] = {&w.gate_proj, &w.up_proj, &w.down_proj};
    for (int p = 0; p < 3; ++p) {
      const std::vector<int64_t> shape = p == 2 ? std::vector<int64_t>{H, I} : std::vector<int64_t>{I, H};
      if (w.quant != QuantFormat::none || tensors[p]->sizes().vec() != shape)
        throw InvalidArgument(cat("cluster ", cluster_id, ": ", expert_tensor_name(key, kParams[p]), " has shape ",
                                  tensors[p]->sizes(), w.quant != QuantFormat::none ? " (already quantized)" : "", ", expected [",
                                  shape[0], ", ", shape[1], "] of floats"));
      const uint64_t bytes = p == 2 ? out_bytes : in_bytes;
      entries.push_back({expert_tensor_name(key, kParams[p]), stored, storage.stored_shape(shape[0], shape[1]), offset, offset + bytes});
      offset += bytes;
    }
    const uint64_t pad = align_up(offset) - offset;
    if (pad > 0) {
      entries.push_back({cat("pad_", m), safetensors::DType::U8, {static_cast<int64_t>(pad)}, offset, offset + pad});
      offset += pad;
    }
  }
  // The header is padded with spaces so that the data section starts on a 4 KiB boundary.
  std::string header = safetensors::serialize_header(entries, {});
  header.append(align_up(8 + header.size()) - 8 - header.size(), ' ');
  const uint64_t data_offset = 8 + header.size();

  const std::string path = dir + "/" + file;
  HashingWriter out(path);
  const uint64_t header_size = header.size();
  uint8_t prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<uint8_t>(header_size >> (8 * i));
  out.write(prefix, 8);
  out.write(header.data(), header.size());

  ClusterFile result;
  result.cluster_id = cluster_id;
  result.file = file;
  for (const auto& [key, w] : members) {
    ExpertRange range{key, out.written(), 2 * in_bytes + out_bytes, 0};
    std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> hash(XXH3_createState(), XXH3_freeState);
    XXH3_64bits_reset(hash.get());
    for (const at::Tensor* t : {&w.gate_proj, &w.up_proj, &w.down_proj}) {
      const at::Tensor bytes = encode(*t);
      const size_t size = static_cast<size_t>(bytes.numel()) * bytes.element_size();
      out.write(bytes.data_ptr(), size);
      XXH3_64bits_update(hash.get(), bytes.data_ptr(), size);
    }
    range.checksum = XXH3_64bits_digest(hash.get());
    out.zeros(range.read_length() - range.length);
    result.experts.push_back(range);
  }
  if (out.written() != data_offset + offset) throw Error(cat(path, ": wrote ", out.written(), " bytes, laid out ", data_offset + offset));
  result.size_bytes = out.written();
  result.checksum = out.digest();
  out.commit();
  return result;
}

}  // namespace chronos
