#include "chronos/model/linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "chronos/model/weight_format.h"
#include "model/cpu_kernels.h"
#include "model/format_kernels.h"
#include "model/stored_rows.h"

namespace chronos {
namespace {

// x W^T for a weight stored in another format than x (chronos/model/weight_format.h). One row goes
// to the format kernels; more rows (a prompt) to a float product with the weights widened in tiles of
// up to 4 MiB, the input first rounded to its int8 blocks for the block formats, as the kernels
// compute. A CPU matrix widens into one buffer, its rows split over the threads, and each tile's
// product goes straight into its columns of y: against a tensor a tile of 1 MiB, widened on one thread
// while the other waited, base.json's 512-token prompt ran 1.08-1.23x faster in bf16, int8 and int4
// (docs/decode.md "Prompts in the weight formats").
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
    at::parallel_for(0, rows.size(0), std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(in, 1)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) cpu::round_to_input_blocks(data + r * in, in);
    });
  }
  at::Tensor y = at::empty({rows.size(0), out}, rows.options());
  const int64_t tile = std::min(out, std::max<int64_t>(1, (4 << 20) / (4 * std::max<int64_t>(in, 1))));
  const bool in_place = weight.device().is_cpu() && weight.is_contiguous() && rows.device().is_cpu() && rows.scalar_type() == at::kFloat;
  at::Tensor buffer = in_place ? at::empty({tile, in}, rows.options()) : at::Tensor();
  for (int64_t first = 0; first < out; first += tile) {
    const int64_t n = std::min(tile, out - first);
    at::Tensor widened;
    if (in_place) {
      widen_rows_into(weight, first, n, in, buffer.data_ptr<float>());
      widened = buffer.narrow(0, 0, n);
    } else {
      widened = widen_rows(weight, first, n, in).to(rows.device(), rows.scalar_type());
    }
    at::Tensor part = y.narrow(1, first, n);
    at::mm_out(part, rows, widened.t());
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
