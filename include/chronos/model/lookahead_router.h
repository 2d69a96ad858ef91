// LookaheadRouter (docs/architecture.md): after block 0, predicts for every position t the routing of
// tokens t+1..t+K. Linear(H, H/4) -> SiLU -> Linear(H/4, (K+1) x E), step-major, softmax over E: one
// layer-averaged distribution per step (the reference's shape). With lookahead_per_layer the last
// projection has (K+1) x L x E outputs, step-major then layer, and each layer's E are a distribution
// of their own, trained against that layer's routing (the experts of different layers are unrelated,
// so one id shared by every layer predicts little). Slot 0 ("current") is kept for checkpoint parity
// and never trained [Q10].
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

namespace chronos {

struct ModelConfig;

class LookaheadRouterImpl : public torch::nn::Module {
 public:
  explicit LookaheadRouterImpl(const ModelConfig& config);
  // x [B,S,H] -> probabilities [B,S,K+1,E], or [B,S,K+1,L,E] per layer.
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Sequential proj{nullptr};  // names proj.0 and proj.2 as in the reference

 private:
  int64_t steps_, layers_, experts_;  // layers_ 1: layer-averaged
};
TORCH_MODULE(LookaheadRouter);

}  // namespace chronos
