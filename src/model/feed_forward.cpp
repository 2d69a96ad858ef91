#include "chronos/model/feed_forward.h"

#include <ATen/ATen.h>

#include "chronos/model/linear.h"
#include "chronos/model/weight_format.h"

namespace chronos {

at::Tensor swiglu(const at::Tensor& x, const ExpertWeights& w) {
  // On the CPU, project() reads quantized rows as the one-token kernels do (weight_format.h).
  if (w.quant != QuantFormat::none && !x.device().is_cpu()) {
    const int64_t H = w.down_proj.size(0), I = w.gate_proj.size(0);
    const auto dense = [&](const at::Tensor& q, int64_t cols) { return widen_weight(q, cols).to(x.device(), x.scalar_type()); };
    return swiglu(x, ExpertWeights{dense(w.gate_proj, H), dense(w.up_proj, H), dense(w.down_proj, I)});
  }
  return project(at::silu(project(x, w.gate_proj)) * project(x, w.up_proj), w.down_proj);
}

FeedForwardImpl::FeedForwardImpl(int64_t hidden, int64_t intermediate, bool materialised) {
  gate_proj = register_module("gate_proj", make_linear(hidden, materialised ? intermediate : 0));
  up_proj = register_module("up_proj", make_linear(hidden, materialised ? intermediate : 0));
  down_proj = register_module("down_proj", materialised ? make_linear(intermediate, hidden) : make_linear(hidden, 0));
}

}  // namespace chronos
