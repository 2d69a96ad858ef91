#include "chronos/model/lookahead_router.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>

#include "chronos/model/config.h"
#include "chronos/model/linear.h"

namespace chronos {

LookaheadRouterImpl::LookaheadRouterImpl(const ModelConfig& c)
    : steps_(c.lookahead_steps + 1), layers_(c.lookahead_per_layer ? c.num_hidden_layers : 1), experts_(c.num_experts) {
  const int64_t H = c.hidden_size, inner = c.hidden_size / 4;
  proj = register_module("proj", torch::nn::Sequential(make_linear(H, inner), torch::nn::SiLU(),
                                                       make_linear(inner, steps_ * layers_ * experts_)));
}

at::Tensor LookaheadRouterImpl::forward(const at::Tensor& x) {
  // proj.0 and proj.2 (bias-free), read directly: parameters() builds a named dictionary each call.
  const at::Tensor& in = proj[0]->as<torch::nn::Linear>()->weight;
  const at::Tensor& out = proj[2]->as<torch::nn::Linear>()->weight;
  const at::Tensor logits = project(at::silu(project(x, in)), out);
  const at::Tensor shaped = layers_ > 1 ? logits.view({x.size(0), x.size(1), steps_, layers_, experts_})
                                        : logits.view({x.size(0), x.size(1), steps_, experts_});
  return at::softmax(shaped.to(at::kFloat), -1);
}

}  // namespace chronos
