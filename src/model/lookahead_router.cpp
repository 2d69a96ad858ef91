#include "chronos/model/lookahead_router.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>

#include "chronos/model/config.h"

namespace chronos {

LookaheadRouterImpl::LookaheadRouterImpl(const ModelConfig& c) : steps_(c.lookahead_steps + 1), experts_(c.num_experts) {
  const int64_t H = c.hidden_size, inner = c.hidden_size / 4;
  proj = register_module("proj", torch::nn::Sequential(
                                     torch::nn::Linear(torch::nn::LinearOptions(H, inner).bias(false)), torch::nn::SiLU(),
                                     torch::nn::Linear(torch::nn::LinearOptions(inner, steps_ * experts_).bias(false))));
}

at::Tensor LookaheadRouterImpl::forward(const at::Tensor& x) {
  at::Tensor logits = proj->forward(x);
  return at::softmax(logits.view({x.size(0), x.size(1), steps_, experts_}).to(at::kFloat), -1);
}

}  // namespace chronos
