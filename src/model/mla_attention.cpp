#include <ATen/ATen.h>

#include "chronos/model/attention.h"
#include "chronos/model/config.h"

namespace chronos {
namespace {

torch::nn::Linear linear(int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); }

}  // namespace

MLAttentionImpl::MLAttentionImpl(const ModelConfig& c)
    : heads_(c.num_attention_heads), kv_heads_(c.resolved_kv_heads()), head_dim_(c.resolved_head_dim()),
      rope_(c.rope_width()), nope_(c.nope_width()), dropout_(c.dropout) {
  const int64_t H = c.hidden_size, C = c.kv_latent_dim;
  q_nope_proj = register_module("q_nope_proj", linear(H, heads_ * nope_));
  q_rope_proj = register_module("q_rope_proj", linear(H, heads_ * rope_));
  q_nope_norm = register_module("q_nope_norm", RMSNorm(nope_, c.rms_norm_eps));
  q_rope_norm = register_module("q_rope_norm", RMSNorm(rope_, c.rms_norm_eps));
  kv_down_proj = register_module("kv_down_proj", linear(H, C));
  kv_down_norm = register_module("kv_down_norm", RMSNorm(C, c.rms_norm_eps));
  k_nope_proj = register_module("k_nope_proj", linear(C, kv_heads_ * nope_));
  k_rope_proj = register_module("k_rope_proj", linear(C, kv_heads_ * rope_));
  v_proj = register_module("v_proj", linear(C, kv_heads_ * head_dim_));
  o_proj = register_module("o_proj", linear(heads_ * head_dim_, H));
}

at::Tensor MLAttentionImpl::forward(const at::Tensor& x, AttentionContext& ctx) {
  const int64_t B = x.size(0), S = x.size(1), P = ctx.position;
  auto [cos, sin] = ctx.rope_mla->rows(P, S, x.device());

  at::Tensor qn = q_nope_norm(q_nope_proj(x).view({B, S, heads_, nope_}));
  at::Tensor qr = apply_rope(q_rope_norm(q_rope_proj(x).view({B, S, heads_, rope_})), cos, sin);
  at::Tensor q = at::cat({qn, qr}, -1);

  at::Tensor latent = kv_down_norm(kv_down_proj(x));                                   // [B,S,C]
  at::Tensor rope_keys = apply_rope(k_rope_proj(latent).view({B, S, kv_heads_, rope_}), cos, sin);
  if (ctx.cache && ctx.cache->length() > 0) {
    latent = at::cat({ctx.cache->first, latent}, 1);
    rope_keys = at::cat({ctx.cache->second, rope_keys}, 1);
  }
  if (ctx.cache) *ctx.cache = LayerCache{latent, rope_keys};
  const int64_t T = latent.size(1);

  at::Tensor k = at::cat({k_nope_proj(latent).view({B, T, kv_heads_, nope_}), rope_keys}, -1);
  at::Tensor v = v_proj(latent).view({B, T, kv_heads_, head_dim_});
  AttentionMasking masking{P, P + S - T, 0, ctx.key_padding};
  at::Tensor out = attend(q, k, v, masking, head_dim_, dropout_, is_training());
  out = o_proj(out);
  return is_training() && dropout_ > 0 ? at::dropout(out, dropout_, true) : out;
}

}  // namespace chronos
