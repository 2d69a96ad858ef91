// The Chronos decoder (docs/architecture.md) and its causal-LM head. Parameter names follow the
// reference state dict: model.embed_tokens, model.layers.{l}..., model.norm, model.lookahead_router;
// lm_head is tied to the embedding and is not a separate parameter. The Hugging Face families
// (docs/hf-checkpoints.md) are config-driven variants of the same modules: no LookaheadRouter, an
// untied lm_head unless tie_word_embeddings; model/checkpoint_layout.h maps their tensor names.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <memory>
#include <vector>

#include "chronos/model/config.h"
#include "chronos/model/decoder_layer.h"
#include "chronos/model/expert_source.h"
#include "chronos/model/kv_cache.h"
#include "chronos/model/lookahead_router.h"
#include "chronos/model/rope.h"
#include "chronos/model/router_bias.h"

namespace chronos {

struct ForwardOptions {
  KVCache* cache = nullptr;        // in/out: continue from and extend this cache; null: no caching
  at::Tensor attention_mask;       // optional [B, M], 1 = keep, 0 = padding (also kept out of the balance loss)
  at::Tensor labels;               // optional [B, S]: CE of logits[:, :-1] against labels[:, 1:], -100 ignored
  int64_t logits_to_keep = 0;      // > 0: logits for the last n positions only
  const std::vector<at::Tensor>* available_expert_masks = nullptr;  // optional, one [E] bool per layer
  ExpertSource* expert_source = nullptr;  // null: the model's own expert parameters
  // Optional: a bias on every MoE layer's router logits (model/router_bias.h); null: none.
  const RouterBias* router_bias = nullptr;
  // Optional: called with lookahead_probs ([B,S,K+1,E], or [B,S,K+1,L,E] per layer) as soon as the LookaheadRouter has run on
  // block 0's output, before block 1, so a caller can start fetching experts for later tokens
  // while blocks 1..L-1 compute (docs/offload.md "Predictive decode"). Unset: nothing changes.
  std::function<void(const at::Tensor& lookahead_probs)> on_lookahead;
  // Optional: called by every MoE layer with (layer, its input [B,S,H]) before it routes, so a caller
  // can predict the experts of the next layers from it while this one computes. Unset: nothing changes.
  std::function<void(int64_t layer, const at::Tensor& moe_input)> on_moe_input;
  // False: the LookaheadRouter does not run (lookahead_probs stays undefined, on_lookahead is not
  // called): a decode whose predictions nobody reads saves its work (5% of a fine.json int8 step).
  bool lookahead = true;
};

struct ForwardOutput {
  at::Tensor logits;                     // [B, S_keep, V]
  at::Tensor loss;                       // CE when labels were given, else undefined
  at::Tensor aux_loss;                   // sum over layers of router_aux_loss_coef * aux_raw (0 in eval)
  std::vector<at::Tensor> aux_raw;       // per layer, for the trainer's lambda_balance
  std::vector<at::Tensor> router_probs;  // per layer [B,S,E], with autograd
  std::vector<at::Tensor> selected;      // per layer [B,S,k] expert ids
  at::Tensor lookahead_probs;            // [B,S,K+1,E], or [B,S,K+1,L,E] with lookahead_per_layer
  at::Tensor hidden_states;              // final normed [B,S,H]
};

// What to allocate when building a model.
struct BuildOptions {
  // False: the routed experts' parameters stay empty and are never allocated (an ExpertSource such
  // as the expert store serves them), so an offloaded model needs memory for its dense part only.
  bool routed_experts = true;
};

class ChronosModelImpl : public torch::nn::Module {
 public:
  explicit ChronosModelImpl(const ModelConfig& config, const BuildOptions& build = {});

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  LookaheadRouter lookahead_router{nullptr};  // absent unless config.has_lookahead_router()
};
TORCH_MODULE(ChronosModel);

class ChronosForCausalLMImpl : public torch::nn::Module {
 public:
  // Builds a freshly initialised model (validates the config first). Seed with torch::manual_seed.
  explicit ChronosForCausalLMImpl(ModelConfig config, const BuildOptions& build = {});

  ForwardOutput forward(const at::Tensor& input_ids, const ForwardOptions& options = {});

  const ModelConfig& config() const { return config_; }
  DecoderLayerImpl& layer(int64_t index) { return model->layers->at<DecoderLayerImpl>(static_cast<size_t>(index)); }
  at::Tensor lm_head_weight() const { return lm_head.is_empty() ? model->embed_tokens->weight : lm_head->weight; }
  KVCache make_cache(KvDtype dtype = KvDtype::fp32) const { return KVCache(config_.num_hidden_layers, dtype); }
  // Sets fallback_mask_prob in the config and every MoE layer (0..1).
  void set_fallback_mask_prob(double p);

  ChronosModel model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // only without tie_word_embeddings

 private:
  ModelConfig config_;
  std::unique_ptr<RotaryTable> rope_full_;  // head_dim-wide table, every layer
  std::unique_ptr<RotaryTable> rope_mla_;   // only with mla_proper_rope: r-wide table
};
TORCH_MODULE(ChronosForCausalLM);

// Mean of the per-layer router probabilities: the P-bar of the router losses, [B,S,E].
at::Tensor mean_router_probs(const std::vector<at::Tensor>& router_probs);

}  // namespace chronos
