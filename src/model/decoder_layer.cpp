#include "chronos/model/decoder_layer.h"

#include <ATen/ATen.h>

#include "chronos/model/config.h"
#include "model/cpu_kernels.h"
#include "model/token_buffer.h"

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

namespace {

// x + y for two float32 tokens of x's shape, x contiguous, into a reused buffer (token_buffer.h).
at::Tensor add_tokens(const at::Tensor& x, const at::Tensor& y, TokenBuffer& into) {
  const at::Tensor b = cpu::is_plain_float(y) ? y : y.to(at::kFloat).contiguous();
  at::Tensor out = into.get(x.sizes(), x.options());
  const float *xs = x.data_ptr<float>(), *ys = b.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); ++i) o[i] = xs[i] + ys[i];
  return out;
}

// The buffers of a layer's two sums: the stream after attention, dropped within the layer, and the
// layer's output, held as the next layer's input, so layers alternate between two.
struct ResidualBuffers {
  TokenBuffer after_attention;
  TokenBuffer output[2];
};

// One float32 CPU token at inference with float32 norms.
bool one_token_path_applies(const DecoderLayerImpl& layer, const at::Tensor& x) {
  return !layer.is_training() && x.dim() == 3 && x.numel() == x.size(2) && cpu::is_plain_float(x) &&
         cpu::is_plain_float(layer.input_layernorm->weight) && cpu::is_plain_float(layer.post_attention_layernorm->weight);
}

}  // namespace

DecoderOutput DecoderLayerImpl::forward(const at::Tensor& x, AttentionContext& attention, const MoECall& call) {
  // One float32 CPU token at inference: the residual adds in plain loops (RMSNorm takes its own
  // one-token loop), not the ~14 tensor operations a layer they take on the general path.
  if (one_token_path_applies(*this, x)) {
    thread_local ResidualBuffers buffers;
    TokenBuffer& output = buffers.output[call.layer & 1];
    const at::Tensor h =
        add_tokens(x, is_mla() ? mla->forward(input_layernorm(x), attention) : window->forward(input_layernorm(x), attention), buffers.after_attention);
    const at::Tensor ffn_in = post_attention_layernorm(h);
    DecoderOutput out;
    if (!moe.is_empty()) {
      MoEOutput m = moe->forward(ffn_in, call);
      out.hidden = add_tokens(h, m.output, output);
      out.router_probs = std::move(m.router_probs);
      out.selected = std::move(m.selected);
      out.aux_raw = std::move(m.aux_raw);
    } else {
      out.hidden = add_tokens(h, dense->forward(ffn_in.view({1, x.size(2)})).view_as(x), output);
      out.aux_raw = at::zeros({}, x.options());
    }
    return out;
  }
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
