#include <ATen/ATen.h>

#include "chronos/model/attention.h"
#include "chronos/model/config.h"
#include "chronos/model/linear.h"

namespace chronos {
MLAttentionImpl::MLAttentionImpl(const ModelConfig& c)
    : heads_(c.num_attention_heads), kv_heads_(c.resolved_kv_heads()), head_dim_(c.resolved_head_dim()),
      rope_(c.rope_width()), nope_(c.nope_width()), dropout_(c.dropout) {
  const int64_t H = c.hidden_size, C = c.kv_latent_dim;
  q_nope_proj = register_module("q_nope_proj", make_linear(H, heads_ * nope_));
  q_rope_proj = register_module("q_rope_proj", make_linear(H, heads_ * rope_));
  q_nope_norm = register_module("q_nope_norm", RMSNorm(nope_, c.rms_norm_eps));
  q_rope_norm = register_module("q_rope_norm", RMSNorm(rope_, c.rms_norm_eps));
  kv_down_proj = register_module("kv_down_proj", make_linear(H, C));
  kv_down_norm = register_module("kv_down_norm", RMSNorm(C, c.rms_norm_eps));
  k_nope_proj = register_module("k_nope_proj", make_linear(C, kv_heads_ * nope_));
  k_rope_proj = register_module("k_rope_proj", make_linear(C, kv_heads_ * rope_));
  v_proj = register_module("v_proj", make_linear(C, kv_heads_ * head_dim_));
  o_proj = register_module("o_proj", make_linear(heads_ * head_dim_, H));
}

at::Tensor MLAttentionImpl::forward(const at::Tensor& x, AttentionContext& ctx) {
  if (one_token_path_applies(x, ctx)) return forward_one_token(x, ctx);
  const int64_t B = x.size(0), S = x.size(1), P = ctx.position;
  auto [cos, sin] = ctx.rope_mla->rows(P, S, x.device());

  at::Tensor qn = q_nope_norm(project(x, q_nope_proj->weight).view({B, S, heads_, nope_}));
  at::Tensor qr = apply_rope(q_rope_norm(project(x, q_rope_proj->weight).view({B, S, heads_, rope_})), cos, sin);
  at::Tensor q = at::cat({qn, qr}, -1);

  at::Tensor latent = kv_down_norm(project(x, kv_down_proj->weight));                                   // [B,S,C]
  at::Tensor rope_keys = apply_rope(project(latent, k_rope_proj->weight).view({B, S, kv_heads_, rope_}), cos, sin);
  if (ctx.cache) {
    ctx.cache->append(latent, rope_keys);
    latent = ctx.cache->first.to(x.scalar_type());  // a bfloat16 cache (KvDtype) is read back in the compute dtype
    rope_keys = ctx.cache->second.to(x.scalar_type());
  }
  const int64_t T = latent.size(1);

  at::Tensor k = at::cat({project(latent, k_nope_proj->weight).view({B, T, kv_heads_, nope_}), rope_keys}, -1);
  at::Tensor v = project(latent, v_proj->weight).view({B, T, kv_heads_, head_dim_});
  AttentionMasking masking{P, P + S - T, 0, ctx.key_padding};
  at::Tensor out = attend(q, k, v, masking, head_dim_, dropout_, is_training());
  out = project(out, o_proj->weight);
  return is_training() && dropout_ > 0 ? at::dropout(out, dropout_, true) : out;
}

}  // namespace chronos
