// LookaheadRouter (spec/model.md §6): after block 0, predicts for every position t the layer-averaged
// routing of tokens t+1..t+K. Linear(H, H/4) -> SiLU -> Linear(H/4, (K+1)E), step-major, softmax over E.
// Slot 0 ("current") is kept for checkpoint parity and never trained [Q10].
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

namespace chronos {

struct ModelConfig;

class LookaheadRouterImpl : public torch::nn::Module {
 public:
  explicit LookaheadRouterImpl(const ModelConfig& config);
  // x [B,S,H] -> probabilities [B,S,K+1,E].
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Sequential proj{nullptr};  // names proj.0 and proj.2 as in the reference

 private:
  int64_t steps_, experts_;
};
TORCH_MODULE(LookaheadRouter);

}  // namespace chronos
