// SwiGLU feed-forward, the unit of every routed, shared and dense FFN:
// F(x) = down( silu(gate x) * (up x) ), weights [I,H], [I,H], [H,I], no bias.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "chronos/model/quantized.h"

namespace chronos {

// The three weights of one SwiGLU FFN, wherever they live (module parameters, an expert store slot).
// Quantized (quant != none): uint8 [rows, quantized_row_bytes(quant, cols)] of the same logical
// shapes, so I = gate_proj.size(0) and H = down_proj.size(0).
struct ExpertWeights {
  at::Tensor gate_proj;  // [I, H]
  at::Tensor up_proj;    // [I, H]
  at::Tensor down_proj;  // [H, I]
  QuantFormat quant = QuantFormat::none;
};

// Applies a SwiGLU FFN given its weights; x [N, H] -> [N, H]. Quantized weights are dequantised into
// temporaries in x's dtype (the batch path; batch-1 decoding computes from the quantized bytes).
at::Tensor swiglu(const at::Tensor& x, const ExpertWeights& w);

class FeedForwardImpl : public torch::nn::Module {
 public:
  // Unmaterialised: empty [0, hidden] weights, never allocated (a routed expert an ExpertSource serves).
  FeedForwardImpl(int64_t hidden, int64_t intermediate, bool materialised = true);
  at::Tensor forward(const at::Tensor& x) { return swiglu(x, weights()); }
  ExpertWeights weights() const { return {gate_proj->weight, up_proj->weight, down_proj->weight}; }

  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(FeedForward);

}  // namespace chronos
