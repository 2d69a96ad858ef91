#include "chronos/model/config.h"

#include <cmath>
#include <limits>
#include <set>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/json_file.h"
#include "chronos/model/hf_config.h"
#include "model/config_json.h"

namespace chronos {
namespace {

using config_json::broken;
using config_json::Reader;
using config_json::Writer;

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kYarnOriginalMax = 2048;

// Calls f(key, field) for every key that maps onto a ModelConfig field, in config.json order.
template <typename Config, typename F>
void visit_fields(Config& c, F&& f) {
  f("hidden_size", c.hidden_size);
  f("num_hidden_layers", c.num_hidden_layers);
  f("vocab_size", c.vocab_size);
  f("num_attention_heads", c.num_attention_heads);
  f("num_key_value_heads", c.num_key_value_heads);
  f("head_dim", c.head_dim);
  f("intermediate_size", c.intermediate_size);
  f("moe_intermediate_size", c.moe_intermediate_size);
  f("hidden_act", c.hidden_act);
  f("max_position_embeddings", c.max_position_embeddings);
  f("rms_norm_eps", c.rms_norm_eps);
  f("rope_theta", c.rope_theta);
  f("inference_rope_scaling", c.inference_rope_scaling);
  f("tie_word_embeddings", c.tie_word_embeddings);
  f("dropout", c.dropout);
  f("bos_token_id", c.bos_token_id);
  f("eos_token_id", c.eos_token_id);
  f("use_moe", c.use_moe);
  f("num_experts", c.num_experts);
  f("num_experts_per_tok", c.num_experts_per_tok);
  f("norm_topk_prob", c.norm_topk_prob);
  f("router_aux_loss_coef", c.router_aux_loss_coef);
  f("num_shared_experts", c.num_shared_experts);
  f("lookahead_router", c.lookahead_router);
  f("lookahead_steps", c.lookahead_steps);
  f("lookahead_per_layer", c.lookahead_per_layer);
  f("use_hybrid_attention", c.use_hybrid_attention);
  f("kv_latent_dim", c.kv_latent_dim);
  f("rope_dim", c.rope_dim);
  f("sliding_window_size", c.sliding_window_size);
  f("mla_proper_rope", c.mla_proper_rope);
  f("fallback_mask_prob", c.fallback_mask_prob);
  f("lambda_balance", c.lambda_balance);
  f("lambda_temporal", c.lambda_temporal);
  f("lambda_lookahead", c.lambda_lookahead);
  f("lambda_lookahead_topk", c.lambda_lookahead_topk);
  f("lambda_lookahead_union", c.lambda_lookahead_union);
  f("lambda_router_locality", c.lambda_router_locality);
  f("lambda_router_anchor", c.lambda_router_anchor);
  f("torch_dtype", c.torch_dtype);
}

// Keys the Python reference writes for its own runtime that nothing here reads: kept in `extra`
// for the round trip without a warning (docs/formats.md).
const std::set<std::string>& reference_only_keys() {
  static const std::set<std::string> keys = {"flash_attn", "vram_budget_gb", "prefetch_depth", "pinned_memory_max_fraction",
                                             "storage_format", "cluster_manifest_path", "offload_miss_policy_default",
                                             "recommended_resident_experts", "offload_working_set_experts"};
  return keys;
}

// HF bookkeeping and derived keys that are understood but not stored as fields.
const std::set<std::string>& bookkeeping_keys() {
  static const std::set<std::string> keys = {"model_type", "architectures", "transformers_version", "dtype",
                                             "_name_or_path", "auto_map", "rope_scaling", "max_seq_len",
                                             "use_cache", "output_hidden_states", "output_attentions",
                                             "return_dict", "pad_token_id"};
  return keys;
}

}  // namespace

int64_t ModelConfig::resolved_head_dim() const {
  return head_dim > 0 ? head_dim : (num_attention_heads > 0 ? hidden_size / num_attention_heads : 0);
}

int64_t ModelConfig::resolved_intermediate_size() const {
  if (intermediate_size > 0) return intermediate_size;
  return 64 * static_cast<int64_t>(std::ceil(kPi * static_cast<double>(hidden_size) / 64.0));
}

int64_t ModelConfig::resolved_moe_intermediate_size() const {
  return moe_intermediate_size > 0 ? moe_intermediate_size : resolved_intermediate_size();
}

int64_t ModelConfig::rope_width() const {
  return std::max<int64_t>(1, std::min<int64_t>(rope_dim, resolved_head_dim() - 1));
}

const char* to_string(QkNorm norm) {
  switch (norm) {
    case QkNorm::none: return "none";
    case QkNorm::per_head: return "per_head";
    case QkNorm::full_width: return "full_width";
  }
  return "?";
}

bool ModelConfig::layer_has_window(int64_t layer) const {
  if (is_chronos()) return use_hybrid_attention && layer % 2 == 1;
  return sliding_window_size > 0;
}

bool ModelConfig::yarn_enabled() const {
  return inference_rope_scaling && max_position_embeddings > kYarnOriginalMax;
}

void ModelConfig::validate() const {
  auto positive = [](const char* name, int64_t v) {
    if (v <= 0) broken(name, std::to_string(v), "must be > 0");
  };
  // Upper bounds well above every published model, so that no product of sizes (parameter counts,
  // allocation sizes, cache shapes) can overflow int64_t.
  const std::pair<const char*, std::pair<int64_t, int64_t>> bounded[] = {
      {"hidden_size", {hidden_size, 1 << 16}},           {"num_hidden_layers", {num_hidden_layers, 1 << 12}},
      {"vocab_size", {vocab_size, 1 << 22}},             {"num_attention_heads", {num_attention_heads, 1 << 12}},
      {"num_key_value_heads", {num_key_value_heads, 1 << 12}}, {"head_dim", {head_dim, 1 << 12}},
      {"intermediate_size", {intermediate_size, 1 << 18}}, {"moe_intermediate_size", {moe_intermediate_size, 1 << 18}},
      {"num_experts", {num_experts, 1 << 14}},           {"num_experts_per_tok", {num_experts_per_tok, 1 << 14}},
      {"num_shared_experts", {num_shared_experts, 1 << 10}}, {"lookahead_steps", {lookahead_steps, 64}},
      {"kv_latent_dim", {kv_latent_dim, 1 << 16}},       {"rope_dim", {rope_dim, 1 << 12}},
      {"max_position_embeddings", {max_position_embeddings, 1 << 24}}, {"sliding_window_size", {sliding_window_size, 1 << 24}}};
  for (const auto& [name, value_cap] : bounded)
    if (value_cap.first > value_cap.second) broken(name, std::to_string(value_cap.first), cat("must be <= ", value_cap.second));
  positive("hidden_size", hidden_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("vocab_size", vocab_size);
  positive("num_attention_heads", num_attention_heads);
  if (num_key_value_heads < 0) broken("num_key_value_heads", std::to_string(num_key_value_heads), "must be > 0 or null");
  if (num_attention_heads % resolved_kv_heads() != 0)
    broken("num_attention_heads", cat(num_attention_heads, " with num_key_value_heads ", resolved_kv_heads()),
           "must be a multiple of num_key_value_heads");
  if (head_dim < 0) broken("head_dim", std::to_string(head_dim), "must be > 0 (or 0 to derive hidden_size / num_attention_heads)");
  const int64_t d = resolved_head_dim();
  if (d < 2 || d % 2 != 0) broken("head_dim", std::to_string(d), "must be even and >= 2 (rotate-half RoPE)");
  // A derived head_dim obeys the explicit one's bound, or the config would not read back from its own
  // JSON (to_json writes the resolved value).
  if (d > (1 << 12))
    broken("head_dim", cat(d, " (hidden_size / num_attention_heads)"), cat("must be <= ", 1 << 12, ": give more num_attention_heads"));
  if (intermediate_size < 0) broken("intermediate_size", std::to_string(intermediate_size), "must be >= 0 (0 derives it)");
  if (moe_intermediate_size < 0) broken("moe_intermediate_size", std::to_string(moe_intermediate_size), "must be >= 0 (0 derives it)");
  if (hidden_act != "silu") broken("hidden_act", "\"" + hidden_act + "\"", "must be \"silu\" (the only activation implemented)");
  positive("max_position_embeddings", max_position_embeddings);
  if (!(rms_norm_eps > 0)) broken("rms_norm_eps", std::to_string(rms_norm_eps), "must be > 0");
  if (!(rope_theta > 1)) broken("rope_theta", std::to_string(rope_theta), "must be > 1");
  if (!tie_word_embeddings && is_chronos()) broken("tie_word_embeddings", "false", "must be true (Chronos ties lm_head to the embedding)");
  if (!is_chronos() && !is_hf_family(model_type))
    broken("model_type", "\"" + model_type + "\"", cat("must be chronos or one of ", hf_family_list()));
  if (!is_chronos() && use_hybrid_attention) broken("use_hybrid_attention", "true", cat("is Chronos-only (model_type ", model_type, ")"));
  if (!(clip_qkv >= 0)) broken("clip_qkv", std::to_string(clip_qkv), "must be >= 0 (0: no clipping)");
  if (shared_expert_intermediate_size < 0)
    broken("shared_expert_intermediate_size", std::to_string(shared_expert_intermediate_size), "must be >= 0 (0 derives it)");
  if (shared_expert_gate && num_shared_experts != 1)
    broken("num_shared_experts", std::to_string(num_shared_experts), "must be 1 with a shared expert gate");
  if (!(dropout >= 0 && dropout < 1)) broken("dropout", std::to_string(dropout), "must be in [0, 1)");
  if (bos_token_id < 0 || bos_token_id >= vocab_size) broken("bos_token_id", std::to_string(bos_token_id), cat("must be in [0, vocab_size=", vocab_size, ")"));
  if (eos_token_id < 0 || eos_token_id >= vocab_size) broken("eos_token_id", std::to_string(eos_token_id), cat("must be in [0, vocab_size=", vocab_size, ")"));
  if (use_moe) {
    positive("num_experts", num_experts);
    if (num_experts_per_tok < 1 || num_experts_per_tok > num_experts)
      broken("num_experts_per_tok", cat(num_experts_per_tok, ", num_experts ", num_experts), "must be in [1, num_experts]");
    if (num_shared_experts < 0) broken("num_shared_experts", std::to_string(num_shared_experts), "must be >= 0");
  }
  if (lookahead_steps < 0) broken("lookahead_steps", std::to_string(lookahead_steps), "must be >= 0");
  if (use_hybrid_attention) {
    positive("kv_latent_dim", kv_latent_dim);
    positive("rope_dim", rope_dim);
    if (rope_width() % 2 != 0)
      broken("rope_dim", cat(rope_dim, " (effective ", rope_width(), " with head_dim ", d, ")"),
             "must give an even effective rope width min(rope_dim, head_dim - 1) [Q14]");
    positive("sliding_window_size", sliding_window_size);
  }
  if (!(fallback_mask_prob >= 0 && fallback_mask_prob <= 1))
    broken("fallback_mask_prob", std::to_string(fallback_mask_prob), "must be in [0, 1]");
  const std::pair<const char*, double> lambdas[] = {
      {"lambda_balance", lambda_balance}, {"lambda_temporal", lambda_temporal}, {"lambda_lookahead", lambda_lookahead},
      {"lambda_lookahead_topk", lambda_lookahead_topk}, {"lambda_lookahead_union", lambda_lookahead_union},
      {"lambda_router_locality", lambda_router_locality}, {"lambda_router_anchor", lambda_router_anchor},
      {"router_aux_loss_coef", router_aux_loss_coef}};
  for (const auto& [name, value] : lambdas)
    if (!(value >= 0)) broken(name, std::to_string(value), "must be >= 0");
  // The bounds above keep count_parameters below 2^62; refuse anything beyond 2^41 (2.2 trillion).
  if (const int64_t n = count_parameters(*this); n > (int64_t{1} << 41))
    broken("the config", cat(n, " parameters"), "describes more than 2^41 parameters");
}

ModelConfig ModelConfig::from_json(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) throw ConfigError(cat(source, ": expected a JSON object"));
  if (auto it = json.find("model_type"); it != json.end() && it->is_string() && is_hf_family(it->get<std::string>()))
    return config_from_hf_json(json, source);
  if (auto it = json.find("model_type"); it != json.end() && *it != "chronos" && *it != "minimind")
    throw ConfigError(cat(source, ": model_type ", describe_json(*it), " is not supported (supported: chronos, ", hf_family_list(),
                          "; docs/hf-checkpoints.md lists the candidates)"));
  ModelConfig config;
  std::set<std::string> seen;
  Reader reader{json, source, seen};
  if (json.contains("max_seq_len") && !json.contains("max_position_embeddings")) {
    const auto& v = json.at("max_seq_len");
    config.max_position_embeddings = reader.integer("max_seq_len", v, "an integer");
  }
  visit_fields(config, reader);
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (seen.count(it.key()) || bookkeeping_keys().count(it.key())) continue;
    if (!reference_only_keys().count(it.key())) log::warn(cat(source, ": unknown key '", it.key(), "' kept as is"));
    config.extra[it.key()] = it.value();
  }
  return config;
}

nlohmann::json ModelConfig::to_json() const {
  if (!is_chronos()) return config_to_hf_json(*this);
  nlohmann::json json = nlohmann::json::object();
  json["model_type"] = "chronos";
  json["architectures"] = {"ChronosForCausalLM"};
  ModelConfig resolved = *this;
  resolved.head_dim = resolved_head_dim();
  resolved.intermediate_size = resolved_intermediate_size();
  resolved.moe_intermediate_size = resolved_moe_intermediate_size();
  resolved.num_key_value_heads = resolved_kv_heads();
  Writer writer{json};
  visit_fields(static_cast<const ModelConfig&>(resolved), writer);
  if (yarn_enabled()) {
    json["rope_scaling"] = {{"type", "yarn"}, {"factor", 16}, {"original_max_position_embeddings", kYarnOriginalMax},
                            {"beta_fast", 32.0}, {"beta_slow", 1.0}, {"attention_factor", 1.0}};
  } else {
    json["rope_scaling"] = nullptr;
  }
  for (auto it = extra.begin(); it != extra.end(); ++it) json[it.key()] = it.value();
  return json;
}

ModelConfig ModelConfig::load(const std::string& path) {
  ModelConfig config = from_json(read_json_file(path), path);
  try {
    config.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(cat(path, ": ", e.what()));
  }
  return config;
}

void ModelConfig::save(const std::string& path) const { write_json_file(path, to_json()); }

int64_t count_parameters(const ModelConfig& c, bool routed_experts) {
  const int64_t h = c.hidden_size, d = c.resolved_head_dim(), nh = c.num_attention_heads, kv = c.resolved_kv_heads();
  const int64_t r = c.rope_width(), n = d - r, lat = c.kv_latent_dim;
  const int64_t mla = h * nh * n + h * nh * r + n + r + h * lat + lat + lat * kv * n + lat * kv * r + lat * kv * d + nh * d * h;
  const int64_t qk_norm = c.qk_norm == QkNorm::per_head ? 2 * d : c.qk_norm == QkNorm::full_width ? (nh + kv) * d : 0;
  const int64_t gqa = h * nh * d + 2 * h * kv * d + nh * d * h + qk_norm + (c.attention_bias ? (nh + 2 * kv) * d : 0) +
                      (c.attention_output_bias ? h : 0);
  const int64_t ffn = [&] {
    if (!c.use_moe) return 3 * h * c.resolved_intermediate_size();
    return h * c.num_experts + (routed_experts ? c.num_experts * 3 * h * c.resolved_moe_intermediate_size() : 0) +
           c.num_shared_experts * 3 * h * c.resolved_shared_intermediate_size() + (c.shared_expert_gate ? h : 0);
  }();
  int64_t total = c.vocab_size * h * (c.tie_word_embeddings ? 1 : 2) + h;  // embedding (+ lm_head) + final norm
  if (c.has_lookahead_router())
    total += h * (h / 4) + (h / 4) * (c.lookahead_steps + 1) * c.num_experts * (c.lookahead_per_layer ? c.num_hidden_layers : 1);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) total += 2 * h + (c.layer_is_mla(l) ? mla : gqa) + ffn;
  return total;
}

}  // namespace chronos
