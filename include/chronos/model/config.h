// ModelConfig: every key of the Chronos config.json (docs/formats.md), with defaults, derived
// sizes, JSON load/save and validation. Keys the reference writes for its own runtime (flash_attn,
// vram_budget_gb, offload_miss_policy_default, ...) mean nothing here: they stay in `extra` for the round trip.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace chronos {

// How q and k are RMS-normalised before RoPE: over each head's head_dim values (Chronos, Qwen3-MoE),
// over the whole projection before it is split into heads (OLMoE), or not at all (Mixtral, Qwen2-MoE).
enum class QkNorm { none, per_head, full_width };
const char* to_string(QkNorm norm);

struct ModelConfig {
  // ---- family (docs/hf-checkpoints.md) ----
  // "chronos", or the Hugging Face family a checkpoint was loaded from: mixtral, qwen2_moe, qwen3_moe,
  // olmoe. It decides the config.json keys and tensor names on disk and whether a LookaheadRouter exists.
  std::string model_type = "chronos";
  // ---- topology ----
  int64_t hidden_size = 768;               // H
  int64_t num_hidden_layers = 8;           // L
  int64_t vocab_size = 6400;               // V
  int64_t num_attention_heads = 8;         // query heads nH
  int64_t num_key_value_heads = 4;         // KV heads nKV; nH must be a multiple of it
  int64_t head_dim = 0;                    // D; 0 derives H / nH
  int64_t intermediate_size = 0;           // dense FFN width; 0 derives 64 * ceil(pi * H / 64)
  int64_t moe_intermediate_size = 0;       // expert width I; 0 derives intermediate_size
  std::string hidden_act = "silu";         // only silu is implemented
  int64_t max_position_embeddings = 32768; // initial RoPE table length (grows at run time)
  double rms_norm_eps = 1e-6;              // eps of every RMSNorm
  double rope_theta = 1e6;                 // RoPE base
  bool inference_rope_scaling = false;     // YaRN (factor 16 over 2048) when the configured maximum exceeds 2048
  bool tie_word_embeddings = true;         // lm_head shares the embedding matrix (the only supported layout)
  double dropout = 0.1;                    // p of every dropout (training only)
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  // ---- mixture of experts ----
  bool use_moe = true;                     // MoE FFN in every layer (false: dense SwiGLU)
  int64_t num_experts = 4;                 // E routed experts per layer
  int64_t num_experts_per_tok = 1;         // k
  bool norm_topk_prob = true;              // renormalise the top-k weights
  double router_aux_loss_coef = 5e-4;      // scale of the reported aux_loss
  int64_t num_shared_experts = 1;          // always-on experts per layer
  int64_t shared_expert_intermediate_size = 0;  // their width; 0 derives moe_intermediate_size
  bool shared_expert_gate = false;         // sigmoid(w . x) scales the shared output (Qwen2-MoE)
  bool lookahead_router = true;            // a Chronos model without it is a plain MoE (chronos-compare's vanilla)
  int64_t lookahead_steps = 2;             // K: LookaheadRouter predicts t+1..t+K
  bool lookahead_per_layer = false;        // true: it predicts each layer's routing (K+1 x L x E outputs);
                                           // false: one layer-averaged distribution (the reference's shape)
  // ---- attention ----
  bool use_hybrid_attention = true;        // even layers MLA, odd layers sliding window; false: GQA everywhere
  int64_t kv_latent_dim = 64;              // C: MLA latent width
  int64_t rope_dim = 32;                   // requested MLA rope width; effective r = max(1, min(rope_dim, D - 1))
  int64_t sliding_window_size = 2048;      // W
  // In the families every layer attends through a window of sliding_window_size, 0 meaning none.
  bool attention_bias = false;             // q/k/v projections carry a bias (Qwen2-MoE, attention_bias of Qwen3-MoE/OLMoE)
  bool attention_output_bias = false;      // o_proj carries a bias (attention_bias of Qwen3-MoE/OLMoE)
  QkNorm qk_norm = QkNorm::per_head;
  double clip_qkv = 0;                     // > 0: q, k and v clamped to +-clip_qkv after projection (OLMoE)
  bool mla_proper_rope = false;            // true: MLA RoPE from r/2 frequencies (a real rotation); false: reference pairing [Q1]
  // ---- training-time behaviour ----
  double fallback_mask_prob = 0.08;        // simulated expert-miss rate while training
  double lambda_balance = 5e-4;
  double lambda_temporal = 3e-3;
  double lambda_lookahead = 0.1;
  double lambda_lookahead_topk = 0.15;
  double lambda_lookahead_union = 0.05;
  double lambda_router_locality = 0.02;
  double lambda_router_anchor = 0.0;
  // ---- bookkeeping ----
  std::string torch_dtype = "float32";     // dtype the weights were saved in (informational)
  nlohmann::json extra = nlohmann::json::object();  // unknown and reference-only keys, kept for the round trip

  // Resolved sizes (derivations applied).
  int64_t resolved_head_dim() const;
  int64_t resolved_intermediate_size() const;
  int64_t resolved_moe_intermediate_size() const;
  int64_t resolved_kv_heads() const { return num_key_value_heads > 0 ? num_key_value_heads : num_attention_heads; }
  int64_t rope_width() const;   // effective MLA rope width r
  int64_t nope_width() const { return resolved_head_dim() - rope_width(); }
  int64_t resolved_shared_intermediate_size() const {
    return shared_expert_intermediate_size > 0 ? shared_expert_intermediate_size : resolved_moe_intermediate_size();
  }
  bool is_chronos() const { return model_type == "chronos"; }
  bool has_lookahead_router() const { return is_chronos() && lookahead_router; }  // the families have none
  bool layer_is_mla(int64_t layer) const { return use_hybrid_attention && layer % 2 == 0; }
  bool layer_has_window(int64_t layer) const;
  bool yarn_enabled() const;    // decided from the configured maximum, not the table length [Q12]

  // Throws ConfigError naming the field, the value and the rule for the first broken rule.
  void validate() const;

  // Missing keys take defaults; unknown keys go to `extra` (with a warning unless the reference
  // writes them); wrong types throw ConfigError naming the key. A model_type of a Hugging Face family
  // is read by its own rules (hf_config.h); any other model_type is refused. `source` names the file.
  static ModelConfig from_json(const nlohmann::json& json, const std::string& source = "config");
  // The config.json of model_type: Chronos keys with resolved sizes, or the family's own keys
  // (hf_config.h) over the file's other keys, kept in `extra`.
  nlohmann::json to_json() const;

  static ModelConfig load(const std::string& path);  // reads and validates a config.json
  void save(const std::string& path) const;          // atomic
};

// Number of parameters a model of this config has (tied embedding counted once); without the
// routed experts' weights when `routed_experts` is false (the resident part of an offloaded model).
int64_t count_parameters(const ModelConfig& config, bool routed_experts = true);

}  // namespace chronos
