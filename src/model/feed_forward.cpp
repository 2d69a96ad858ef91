#include "chronos/model/feed_forward.h"

#include <ATen/ATen.h>

namespace chronos {

at::Tensor swiglu(const at::Tensor& x, const ExpertWeights& w) {
  return at::linear(at::silu(at::linear(x, w.gate_proj)) * at::linear(x, w.up_proj), w.down_proj);
}

FeedForwardImpl::FeedForwardImpl(int64_t hidden, int64_t intermediate) {
  auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
  gate_proj = register_module("gate_proj", linear(hidden, intermediate));
  up_proj = register_module("up_proj", linear(hidden, intermediate));
  down_proj = register_module("down_proj", linear(intermediate, hidden));
}

}  // namespace chronos
