// The two attention kinds of the hybrid decoder (docs/architecture.md): MLA on even layers, sliding-window
// (or, when use_hybrid_attention is false, plain GQA without a window) on odd layers.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "chronos/model/attention_core.h"
#include "chronos/model/config.h"
#include "chronos/model/kv_cache.h"
#include "chronos/model/rmsnorm.h"
#include "chronos/model/rope.h"

namespace chronos {

// What every attention layer needs from the model for one call.
struct AttentionContext {
  int64_t position = 0;            // P: tokens already in the cache (absolute position of the first query)
  LayerCache* cache = nullptr;     // updated in place when set
  at::Tensor key_padding;          // optional [B, M] (1 = keep)
  RotaryTable* rope_full = nullptr;  // head_dim-wide table (shared by every layer)
  RotaryTable* rope_mla = nullptr;   // table used for MLA rope columns (the full one unless mla_proper_rope)
};

// Multi-head latent attention: keys and values are re-projected from a cached normalised latent.
class MLAttentionImpl : public torch::nn::Module {
 public:
  explicit MLAttentionImpl(const ModelConfig& config);
  at::Tensor forward(const at::Tensor& x, AttentionContext& context);
  // Whether forward() takes the batch-1 decoding path (attention_one_token.cpp): one float32 CPU
  // token at inference with a cache and no padding. It attends in the absorbed form, q^T W_k and
  // W_v (p^T latent), so the cached latent is never re-projected (DeepSeek-V2, docs/decode.md).
  bool one_token_path_applies(const at::Tensor& x, const AttentionContext& context) const;

  torch::nn::Linear q_nope_proj{nullptr}, q_rope_proj{nullptr}, kv_down_proj{nullptr};
  torch::nn::Linear k_nope_proj{nullptr}, k_rope_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_nope_norm{nullptr}, q_rope_norm{nullptr}, kv_down_norm{nullptr};

 private:
  at::Tensor forward_one_token(const at::Tensor& x, AttentionContext& context);
  int64_t heads_, kv_heads_, head_dim_, rope_, nope_;
  double dropout_;
};
TORCH_MODULE(MLAttention);

// Sliding-window attention with absolute positions [Q2] and a banded causal mask [Q3]; with
// window 0 it is plain GQA attention. The config picks each family's form: q/k/v (and o) biases,
// q/k RMSNorm per head, over the whole projection or none, and clipping of q, k and v (OLMoE).
class WindowAttentionImpl : public torch::nn::Module {
 public:
  WindowAttentionImpl(const ModelConfig& config, int64_t window);
  at::Tensor forward(const at::Tensor& x, AttentionContext& context);
  // Whether forward() takes the batch-1 decoding path (attention_one_token.cpp).
  bool one_token_path_applies(const at::Tensor& x, const AttentionContext& context) const;

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // absent with QkNorm::none

 private:
  at::Tensor forward_one_token(const at::Tensor& x, AttentionContext& context);
  // x [B,S,H] -> [B,S,heads,D]: projection, bias, clipping, then the norm in the config's form.
  at::Tensor project_heads(const at::Tensor& x, const torch::nn::Linear& proj, RMSNorm norm, int64_t heads) const;
  int64_t heads_, kv_heads_, head_dim_, window_;
  double dropout_, clip_;
  QkNorm qk_norm_;
};
TORCH_MODULE(WindowAttention);

}  // namespace chronos
