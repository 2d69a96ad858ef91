#include "chronos/model/linear.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "chronos/model/weight_format.h"
#include "model/cpu_kernels.h"
#include "model/format_kernels.h"
#include "model/stored_rows.h"

namespace chronos {
namespace {

// x W^T for a weight stored in another format than x (chronos/model/weight_format.h). One row goes
// to the format kernels; more rows to a float product with the weights widened in tiles of ~1 MiB,
// the input first rounded to its int8 blocks for the block formats, as the kernels compute.
at::Tensor project_stored(const at::Tensor& x, const at::Tensor& weight, WeightFormat format) {
  const int64_t in = x.size(-1), out = weight.size(0);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out;
  const bool blocks = cpu::needs_blocks(format);
  if (x.numel() == in && cpu::is_plain_float(x) && is_stored_matrix(weight, in)) {
    at::Tensor y = at::empty(shape, x.options());
    const cpu::RowLayout layout = cpu::row_layout(weight, in);
    const cpu::KernelInput input(x.data_ptr<float>(), in, blocks, cpu::needs_int4_pairs(format, layout));
    cpu::gemv_stored(format, weight.data_ptr(), input, y.data_ptr<float>(), out, layout);
    return y;
  }
  at::Tensor rows = x.reshape({-1, in});
  if (blocks) {
    rows = rows.to(at::kFloat).contiguous().clone();
    float* data = rows.data_ptr<float>();
    for (int64_t r = 0; r < rows.size(0); ++r) cpu::round_to_input_blocks(data + r * in, in);
  }
  at::Tensor y = at::empty({rows.size(0), out}, rows.options());
  const int64_t tile = std::max<int64_t>(1, (1 << 20) / (4 * std::max<int64_t>(in, 1)));
  for (int64_t first = 0; first < out; first += tile) {
    const int64_t n = std::min(tile, out - first);
    const at::Tensor widened = widen_rows(weight, first, n, in).to(rows.device(), rows.scalar_type());
    y.narrow(1, first, n).copy_(at::mm(rows, widened.t()));
  }
  return y.to(x.scalar_type()).view(shape);
}

}  // namespace

at::Tensor project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (bias.defined()) return project(x, weight).add_(bias);
  const int64_t in = x.size(-1);
  // A bf16 or block-quantized weight under a float32 input; any dtype against a uint8 weight.
  if ((weight.scalar_type() != x.scalar_type() && x.scalar_type() == at::kFloat) || weight.scalar_type() == at::kByte)
    return project_stored(x, weight, stored_format(weight, in));
  if (x.dim() >= 1 && cpu::gemv_applies(x, weight)) {
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = weight.size(0);
    at::Tensor y = at::empty(shape, x.options());
    cpu::gemv(weight.data_ptr<float>(), x.data_ptr<float>(), y.data_ptr<float>(), weight.size(0), in);
    return y;
  }
  if (x.device().is_cpu() && x.numel() == in && x.dim() >= 1) {
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = weight.size(0);
    return at::mv(weight, x.reshape({in})).view(shape);
  }
  return at::linear(x, weight);
}

torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

}  // namespace chronos
