#include <ATen/ATen.h>

#include "chronos/model/attention.h"
#include "chronos/model/config.h"
#include "chronos/model/linear.h"

namespace chronos {
WindowAttentionImpl::WindowAttentionImpl(const ModelConfig& c, int64_t window)
    : heads_(c.num_attention_heads), kv_heads_(c.resolved_kv_heads()), head_dim_(c.resolved_head_dim()),
      window_(window), dropout_(c.dropout), clip_(c.clip_qkv), qk_norm_(c.qk_norm) {
  const int64_t H = c.hidden_size;
  q_proj = register_module("q_proj", make_linear(H, heads_ * head_dim_, c.attention_bias));
  k_proj = register_module("k_proj", make_linear(H, kv_heads_ * head_dim_, c.attention_bias));
  v_proj = register_module("v_proj", make_linear(H, kv_heads_ * head_dim_, c.attention_bias));
  o_proj = register_module("o_proj", make_linear(heads_ * head_dim_, H, c.attention_output_bias));
  if (qk_norm_ != QkNorm::none) {
    const bool whole = qk_norm_ == QkNorm::full_width;
    q_norm = register_module("q_norm", RMSNorm(whole ? heads_ * head_dim_ : head_dim_, c.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(whole ? kv_heads_ * head_dim_ : head_dim_, c.rms_norm_eps));
  }
}

at::Tensor WindowAttentionImpl::project_heads(const at::Tensor& x, const torch::nn::Linear& proj, RMSNorm norm,
                                              int64_t heads) const {
  const int64_t B = x.size(0), S = x.size(1);
  at::Tensor y = project(x, proj->weight, proj->bias);
  if (qk_norm_ == QkNorm::full_width && !norm.is_empty()) y = norm->forward(y);
  if (clip_ > 0) y = y.clamp(-clip_, clip_);
  y = y.view({B, S, heads, head_dim_});
  if (qk_norm_ == QkNorm::per_head && !norm.is_empty()) y = norm->forward(y);
  return y;
}

at::Tensor WindowAttentionImpl::forward(const at::Tensor& x, AttentionContext& ctx) {
  if (one_token_path_applies(x, ctx)) return forward_one_token(x, ctx);
  const int64_t S = x.size(1), P = ctx.position;
  auto [cos, sin] = ctx.rope_full->rows(P, S, x.device());
  at::Tensor q = apply_rope(project_heads(x, q_proj, q_norm, heads_), cos, sin);
  at::Tensor k = apply_rope(project_heads(x, k_proj, k_norm, kv_heads_), cos, sin);
  at::Tensor v = project_heads(x, v_proj, RMSNorm(nullptr), kv_heads_);
  if (ctx.cache) {
    ctx.cache->append(k, v);
    k = ctx.cache->first.to(q.scalar_type());  // a bfloat16 cache (KvDtype) is read back in the compute dtype
    v = ctx.cache->second.to(q.scalar_type());
  }
  const int64_t T = k.size(1);
  AttentionMasking masking{P, P + S - T, window_, ctx.key_padding};
  at::Tensor out = project(attend(q, k, v, masking, head_dim_, dropout_, is_training()), o_proj->weight, o_proj->bias);
  // Keep only the keys a future query can still see.
  if (ctx.cache && window_ > 0) ctx.cache->keep_last(std::min(T, window_));
  return is_training() && dropout_ > 0 ? at::dropout(out, dropout_, true) : out;
}

}  // namespace chronos
