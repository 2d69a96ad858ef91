// RMSNorm over the last axis: y = w * x / sqrt(mean(x^2) + eps), computed in fp32.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace chronos {

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);

  at::Tensor weight;  // [dim], starts at 1
  double eps() const { return eps_; }

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

}  // namespace chronos
