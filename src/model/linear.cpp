#include "chronos/model/linear.h"

#include <ATen/ATen.h>

#include "model/cpu_kernels.h"

namespace chronos {

at::Tensor project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (bias.defined()) return project(x, weight).add_(bias);
  const int64_t in = x.size(-1);
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
