#include "store/checkpoint_experts.h"

#include <ATen/ATen.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "chronos/core/error.h"
#include "chronos/io/regular_file.h"
#include "chronos/io/safetensors.h"
#include "model/checkpoint_layout.h"
#include "model/checkpoint_tensors.h"

namespace chronos {

CheckpointExperts::CheckpointExperts(const std::string& model_dir, const ModelConfig& config)
    : dir_(model_dir), config_(config), tensors_(std::make_unique<CheckpointTensors>(model_dir)) {}

CheckpointExperts::~CheckpointExperts() = default;

at::Tensor CheckpointExperts::read_tensor(const std::string& name, at::IntArrayRef shape) const {
  if (!tensors_->contains(name)) throw FormatError(cat(dir_, ": checkpoint lacks tensor '", name, "'"));
  const SafetensorsFile& file = tensors_->file_of(name);
  const safetensors::TensorEntry& entry = file.entry(name);
  const c10::ScalarType dtype = to_scalar_type(entry.dtype, file.path());
  if (!at::isFloatingType(dtype)) throw FormatError(cat(file.path(), ": tensor '", name, "' is not a float tensor"));
  if (at::IntArrayRef(entry.shape) != shape)
    throw FormatError(cat(file.path(), ": tensor '", name, "' has shape ", at::IntArrayRef(entry.shape), ", the config needs ", shape));
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(dtype));
  const int fd = open_regular_file(file.path());
  auto* bytes = static_cast<char*>(out.data_ptr());
  const size_t size = entry.end - entry.begin;
  const off_t offset = static_cast<off_t>(file.header().data_offset + entry.begin);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, bytes + done, size - done, offset + static_cast<off_t>(done));
    if (n <= 0) {
      const int error = n < 0 ? errno : 0;
      ::close(fd);
      throw IoError(cat(file.path(), ": reading tensor '", name, "' failed (", error ? std::strerror(error) : "unexpected end of file", ")"));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return out;
}

ExpertWeights CheckpointExperts::read(ExpertKey key) const {
  const int64_t H = config_.hidden_size, I = config_.resolved_moe_intermediate_size();
  ExpertWeights w;
  w.gate_proj = read_tensor(routed_expert_tensor_name(config_, key.layer, key.expert, ExpertMatrix::gate), {I, H});
  w.up_proj = read_tensor(routed_expert_tensor_name(config_, key.layer, key.expert, ExpertMatrix::up), {I, H});
  w.down_proj = read_tensor(routed_expert_tensor_name(config_, key.layer, key.expert, ExpertMatrix::down), {H, I});
  return w;
}

}  // namespace chronos
