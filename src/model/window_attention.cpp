#include <ATen/ATen.h>

#include "chronos/model/attention.h"
#include "chronos/model/config.h"
#include "chronos/model/linear.h"

namespace chronos {
WindowAttentionImpl::WindowAttentionImpl(const ModelConfig& c, int64_t window)
    : heads_(c.num_attention_heads), kv_heads_(c.resolved_kv_heads()), head_dim_(c.resolved_head_dim()),
      window_(window), dropout_(c.dropout) {
  const int64_t H = c.hidden_size;
  q_proj = register_module("q_proj", make_linear(H, heads_ * head_dim_));
  k_proj = register_module("k_proj", make_linear(H, kv_heads_ * head_dim_));
  v_proj = register_module("v_proj", make_linear(H, kv_heads_ * head_dim_));
  o_proj = register_module("o_proj", make_linear(heads_ * head_dim_, H));
  q_norm = register_module("q_norm", RMSNorm(head_dim_, c.rms_norm_eps));
  k_norm = register_module("k_norm", RMSNorm(head_dim_, c.rms_norm_eps));
}

at::Tensor WindowAttentionImpl::forward(const at::Tensor& x, AttentionContext& ctx) {
  if (one_token_path_applies(x, ctx)) return forward_one_token(x, ctx);
  const int64_t B = x.size(0), S = x.size(1), P = ctx.position;
  auto [cos, sin] = ctx.rope_full->rows(P, S, x.device());
  at::Tensor q = apply_rope(q_norm(project(x, q_proj->weight).view({B, S, heads_, head_dim_})), cos, sin);
  at::Tensor k = apply_rope(k_norm(project(x, k_proj->weight).view({B, S, kv_heads_, head_dim_})), cos, sin);
  at::Tensor v = project(x, v_proj->weight).view({B, S, kv_heads_, head_dim_});
  if (ctx.cache) {
    ctx.cache->append(k, v);
    k = ctx.cache->first;
    v = ctx.cache->second;
  }
  const int64_t T = k.size(1);
  AttentionMasking masking{P, P + S - T, window_, ctx.key_padding};
  at::Tensor out = project(attend(q, k, v, masking, head_dim_, dropout_, is_training()), o_proj->weight);
  // Keep only the keys a future query can still see.
  if (ctx.cache && window_ > 0) ctx.cache->keep_last(std::min(T, window_));
  return is_training() && dropout_ > 0 ? at::dropout(out, dropout_, true) : out;
}

}  // namespace chronos
