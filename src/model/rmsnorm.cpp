#include "chronos/model/rmsnorm.h"

#include <ATen/ATen.h>

namespace chronos {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", at::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  const at::Tensor xf = x.scalar_type() == at::kFloat ? x : x.to(at::kFloat);
  at::Tensor y = xf * at::rsqrt(xf.square().mean(-1, /*keepdim=*/true) + eps_);
  y = y * (weight.scalar_type() == at::kFloat ? weight : weight.to(at::kFloat));
  return y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type());
}

}  // namespace chronos
