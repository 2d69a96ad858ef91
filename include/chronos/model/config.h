// ModelConfig: every key of the Chronos config.json (docs/formats.md), with defaults, derived
// sizes, JSON load/save and validation. Keys the reference writes for its own runtime (flash_attn,
// vram_budget_gb, offload_miss_policy_default, ...) mean nothing here: they stay in `extra` for the round trip.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace chronos {

struct ModelConfig {
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
  int64_t lookahead_steps = 2;             // K: LookaheadRouter predicts t+1..t+K
  bool lookahead_per_layer = false;        // true: it predicts each layer's routing (K+1 x L x E outputs);
                                           // false: one layer-averaged distribution (the reference's shape)
  // ---- attention ----
  bool use_hybrid_attention = true;        // even layers MLA, odd layers sliding window; false: GQA everywhere
  int64_t kv_latent_dim = 64;              // C: MLA latent width
  int64_t rope_dim = 32;                   // requested MLA rope width; effective r = max(1, min(rope_dim, D - 1))
  int64_t sliding_window_size = 2048;      // W
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
  bool layer_is_mla(int64_t layer) const { return use_hybrid_attention && layer % 2 == 0; }
  bool layer_has_window(int64_t layer) const { return use_hybrid_attention && layer % 2 == 1; }
  bool yarn_enabled() const;    // decided from the configured maximum, not the table length [Q12]

  // Throws ConfigError naming the field, the value and the rule for the first broken rule.
  void validate() const;

  // Missing keys take defaults; unknown keys go to `extra` (with a warning unless the reference
  // writes them); wrong types throw
  // ConfigError naming the key. `source` names the file in messages.
  static ModelConfig from_json(const nlohmann::json& json, const std::string& source = "config");
  nlohmann::json to_json() const;  // HF style, model_type "chronos", resolved sizes written out

  static ModelConfig load(const std::string& path);  // reads and validates a config.json
  void save(const std::string& path) const;          // atomic
};

// Number of parameters a model of this config has (tied embedding counted once).
int64_t count_parameters(const ModelConfig& config);

}  // namespace chronos
