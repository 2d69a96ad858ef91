// One pre-norm decoder block: x += Attn(norm_in(x)); x += FFN(norm_post(x)). The attention is MLA,
// sliding-window or plain GQA by layer index; the FFN is MoE or, with use_moe=false, dense SwiGLU.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "chronos/model/attention.h"
#include "chronos/model/feed_forward.h"
#include "chronos/model/moe.h"
#include "chronos/model/rmsnorm.h"

namespace chronos {

struct ModelConfig;

struct DecoderOutput {
  at::Tensor hidden;        // [B,S,H]
  at::Tensor router_probs;  // [B,S,E] (undefined for a dense FFN)
  at::Tensor selected;      // [B,S,k]
  at::Tensor aux_raw;       // scalar
};

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& config, int64_t index, bool routed_experts = true);
  DecoderOutput forward(const at::Tensor& x, AttentionContext& attention, const MoECall& moe);

  bool is_mla() const { return !mla.is_empty(); }

  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  MLAttention mla{nullptr};            // registered as self_attn on MLA layers
  WindowAttention window{nullptr};     // registered as self_attn on the others
  MoE moe{nullptr};                    // registered as mlp when use_moe
  FeedForward dense{nullptr};          // registered as mlp otherwise
};
TORCH_MODULE(DecoderLayer);

}  // namespace chronos
