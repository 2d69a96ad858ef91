#include "chronos/model/linear.h"

#include <ATen/ATen.h>

namespace chronos {

at::Tensor project(const at::Tensor& x, const at::Tensor& weight) {
  const int64_t in = x.size(-1);
  if (x.device().is_cpu() && x.numel() == in && x.dim() >= 1) {
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = weight.size(0);
    return at::mv(weight, x.reshape({in})).view(shape);
  }
  return at::linear(x, weight);
}

torch::nn::Linear make_linear(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

}  // namespace chronos
