#include "chronos/model/decoder_layer.h"

#include <ATen/ATen.h>

#include "chronos/model/config.h"

namespace chronos {

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c, int64_t index, bool routed_experts) {
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  if (c.layer_is_mla(index)) {
    mla = register_module("self_attn", MLAttention(c));
  } else {
    window = register_module("self_attn", WindowAttention(c, c.layer_has_window(index) ? c.sliding_window_size : 0));
  }
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  if (c.use_moe) {
    moe = register_module("mlp", MoE(c, routed_experts));
  } else {
    dense = register_module("mlp", FeedForward(c.hidden_size, c.resolved_intermediate_size()));
  }
}

DecoderOutput DecoderLayerImpl::forward(const at::Tensor& x, AttentionContext& attention, const MoECall& call) {
  const at::Tensor normed = input_layernorm(x);
  at::Tensor h = x + (is_mla() ? mla->forward(normed, attention) : window->forward(normed, attention));
  DecoderOutput out;
  const at::Tensor ffn_in = post_attention_layernorm(h);
  if (!moe.is_empty()) {
    MoEOutput m = moe->forward(ffn_in, call);
    out.hidden = h + m.output;
    out.router_probs = std::move(m.router_probs);
    out.selected = std::move(m.selected);
    out.aux_raw = std::move(m.aux_raw);
  } else {
    const int64_t B = ffn_in.size(0), S = ffn_in.size(1), H = ffn_in.size(2);
    out.hidden = h + dense->forward(ffn_in.reshape({B * S, H})).view({B, S, H});
    out.aux_raw = at::zeros({}, x.options().dtype(at::kFloat));
  }
  return out;
}

}  // namespace chronos
