#include "chronos/model/rmsnorm.h"

#include <ATen/ATen.h>

#include "model/cpu_kernels.h"
#include "model/token_buffer.h"

namespace chronos {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", at::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  // One float32 CPU token without autograd (the last norm of a decode step): a plain loop, not the
  // six tensor operations below.
  if (x.dim() >= 1 && x.numel() == x.size(-1) && weight.numel() == x.numel() && cpu::is_plain_float(x) && cpu::is_plain_float(weight)) {
    thread_local TokenBuffer buffer;
    at::Tensor y = buffer.get(x.sizes(), x.options());
    cpu::rms_norm(x.data_ptr<float>(), y.data_ptr<float>(), 1, x.numel(), weight.data_ptr<float>(), eps_);
    return y;
  }
  const at::Tensor xf = x.scalar_type() == at::kFloat ? x : x.to(at::kFloat);
  at::Tensor y = xf * at::rsqrt(xf.square().mean(-1, /*keepdim=*/true) + eps_);
  y = y * (weight.scalar_type() == at::kFloat ? weight : weight.to(at::kFloat));
  return y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type());
}

}  // namespace chronos
