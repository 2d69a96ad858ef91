#include "chronos/model/flops.h"

#include <algorithm>

#include "chronos/model/causal_lm.h"
#include "chronos/model/config.h"

namespace chronos {

double forward_flops(const ModelConfig& c, int64_t batch, int64_t seq_len) {
  const double H = static_cast<double>(c.hidden_size), D = static_cast<double>(c.resolved_head_dim());
  const double nH = static_cast<double>(c.num_attention_heads), nKV = static_cast<double>(c.resolved_kv_heads());
  const double r = static_cast<double>(c.rope_width()), n = D - r, C = static_cast<double>(c.kv_latent_dim);
  const double S = static_cast<double>(seq_len), N = static_cast<double>(batch) * S;
  double per_token = 0;  // multiply-adds per token, outside the attention scores
  double scores = 0;     // multiply-adds of q.k and p.v over the batch
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (c.layer_is_mla(l)) {
      per_token += H * nH * (n + r) + H * C + C * nKV * (n + r + D) + nH * D * H;
    } else {
      per_token += H * nH * D + 2 * H * nKV * D + nH * D * H;
    }
    // Causal: each query sees on average (S+1)/2 keys, or at most the window.
    const double visible = c.layer_has_window(l) ? std::min<double>((S + 1) / 2, static_cast<double>(c.sliding_window_size))
                                                 : (S + 1) / 2;
    scores += N * nH * visible * 2 * D;
    if (c.use_moe) {
      const double active = static_cast<double>(c.num_experts_per_tok + c.num_shared_experts);
      per_token += H * static_cast<double>(c.num_experts) + active * 3 * H * static_cast<double>(c.resolved_moe_intermediate_size());
    } else {
      per_token += 3 * H * static_cast<double>(c.resolved_intermediate_size());
    }
  }
  if (c.has_lookahead_router())
    per_token += H * (H / 4) + (H / 4) * static_cast<double>((c.lookahead_steps + 1) * c.num_experts *
                                                             (c.lookahead_per_layer ? c.num_hidden_layers : 1));
  per_token += H * static_cast<double>(c.vocab_size);                                                   // lm_head
  return 2 * (N * per_token + scores);
}

double decode_weight_bytes(const ModelConfig& c, double bytes_per_parameter) {
  // Everything but the experts a token does not run, and the embedding rows it does not look up;
  // a tied matrix is read whole once, by the lm_head (an untied lm_head is counted already).
  double params = static_cast<double>(count_parameters(c)) - static_cast<double>(c.vocab_size * c.hidden_size);
  if (c.use_moe) {
    const double expert = 3.0 * static_cast<double>(c.hidden_size * c.resolved_moe_intermediate_size());
    params -= static_cast<double>(c.num_hidden_layers * (c.num_experts - c.num_experts_per_tok)) * expert;
  }
  params += static_cast<double>(c.tie_word_embeddings ? c.vocab_size * c.hidden_size : 0) + static_cast<double>(c.hidden_size);
  return params * bytes_per_parameter;
}

double decode_weight_bytes(ChronosForCausalLMImpl& model) {
  const ModelConfig& c = model.config();
  const auto bytes_of = [](torch::nn::Module& module) {
    double total = 0;
    for (const at::Tensor& p : module.parameters(/*recurse=*/true)) total += static_cast<double>(p.nbytes());
    return total;
  };
  double bytes = 0;
  for (const at::Tensor& p : model.parameters(/*recurse=*/true)) bytes += static_cast<double>(p.nbytes());  // a tied matrix once
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    DecoderLayerImpl& layer = model.layer(l);
    if (layer.moe.is_empty()) continue;
    const double expert = bytes_of(*layer.moe->experts->ptr(0));
    bytes -= static_cast<double>(c.num_experts - c.num_experts_per_tok) * expert;
  }
  const at::Tensor& table = model.model->embed_tokens->weight;
  const double row = static_cast<double>(table.nbytes()) / static_cast<double>(std::max<int64_t>(1, table.size(0)));
  if (!c.tie_word_embeddings) bytes -= static_cast<double>(table.nbytes());  // only the row looked up is read
  return bytes + row;
}

}  // namespace chronos
