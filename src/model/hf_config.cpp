// The four families' config.json keys and defaults follow transformers' configuration classes
// (configuration_mixtral.py, configuration_qwen2_moe.py, configuration_qwen3_moe.py,
// configuration_olmoe.py); the forms of the layers they select follow the modeling files.
#include "chronos/model/hf_config.h"

#include <array>
#include <set>
#include <utility>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"
#include "model/config_json.h"

namespace chronos {
namespace {

using config_json::Reader;

struct FamilyDefaults {
  const char* name;
  int64_t vocab, hidden, layers, heads, kv_heads, max_positions;
  double rms_norm_eps, rope_theta, aux_loss_coef;
  int64_t experts, top_k, expert_width, dense_width;
  bool norm_topk_prob;
};

// transformers' defaults for keys a config.json may leave out.
constexpr std::array<FamilyDefaults, 4> kFamilies = {{
    {"mixtral", 32000, 4096, 32, 32, 8, 4096 * 32, 1e-5, 1e6, 0.001, 8, 2, 14336, 14336, true},
    {"qwen2_moe", 151936, 2048, 24, 16, 16, 32768, 1e-6, 10000.0, 0.001, 60, 4, 1408, 5632, false},
    {"qwen3_moe", 151936, 2048, 24, 32, 4, 32768, 1e-6, 10000.0, 0.001, 128, 8, 768, 6144, false},
    {"olmoe", 50304, 2048, 16, 16, 16, 4096, 1e-5, 10000.0, 0.01, 64, 8, 2048, 2048, false},
}};

const FamilyDefaults* find_family(const std::string& model_type) {
  for (const auto& family : kFamilies)
    if (model_type == family.name) return &family;
  return nullptr;
}

bool is_qwen(const std::string& type) { return type == "qwen2_moe" || type == "qwen3_moe"; }

// Where each family keeps the expert count and the expert width.
const char* experts_key(const std::string& type) { return type == "mixtral" ? "num_local_experts" : "num_experts"; }
const char* expert_width_key(const std::string& type) { return is_qwen(type) ? "moe_intermediate_size" : "intermediate_size"; }

struct FamilyReader {
  const nlohmann::json& json;
  const std::string& source;
  std::set<std::string> seen;
  Reader read{json, source, seen};

  // "<file>: <key> = <value as written> <why>": the value itself, shortened past 80 characters.
  [[noreturn]] void refuse(const std::string& key, const std::string& why) const {
    std::string value = json.at(key).dump();
    if (value.size() > 80) value = value.substr(0, 77) + "...";
    throw ConfigError(cat(source, ": ", key, " = ", value, " ", why, " (docs/hf-checkpoints.md)"));
  }
  bool present(const char* key) const { return json.contains(key) && !json.at(key).is_null(); }

  // An integer token id, or null (left unchanged), or a list (its first id; the list stays in the file).
  void token_id(const char* key, int64_t& field) {
    if (!present(key)) return;
    const nlohmann::json& v = json.at(key);
    if (v.is_array()) {
      if (v.empty()) return;
      field = read.integer(key, v.front(), "an integer, a list of integers or null");
      return;
    }
    field = read.integer(key, v, "an integer, a list of integers or null");
  }
};

}  // namespace

bool is_hf_family(const std::string& model_type) { return find_family(model_type) != nullptr; }

std::string hf_family_list() {
  std::string out;
  for (const auto& family : kFamilies) out += cat(out.empty() ? "" : ", ", family.name);
  return out;
}

ModelConfig config_from_hf_json(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) throw ConfigError(cat(source, ": expected a JSON object"));
  const std::string type = json.value("model_type", "");
  const FamilyDefaults* family = find_family(type);
  if (!family) throw ConfigError(cat(source, ": model_type \"", type, "\" is not a supported family (", hf_family_list(), ")"));
  FamilyReader r{json, source, {}};

  // What Chronos adds to a model does not exist in these: no hybrid attention, no LookaheadRouter,
  // no simulated misses, no Chronos loss terms unless a training recipe asks for them.
  ModelConfig c;
  c.model_type = type;
  c.extra = json;
  c.use_hybrid_attention = false;
  c.lookahead_steps = 0;
  c.lookahead_per_layer = false;
  c.fallback_mask_prob = 0;
  c.dropout = 0;
  c.lambda_balance = c.lambda_temporal = c.lambda_lookahead = c.lambda_lookahead_topk = c.lambda_lookahead_union = 0;
  c.lambda_router_locality = c.lambda_router_anchor = 0;
  c.sliding_window_size = 0;
  c.num_shared_experts = 0;
  c.qk_norm = QkNorm::none;
  c.vocab_size = family->vocab;
  c.hidden_size = family->hidden;
  c.num_hidden_layers = family->layers;
  c.num_attention_heads = family->heads;
  c.num_key_value_heads = family->kv_heads;
  c.max_position_embeddings = family->max_positions;
  c.rms_norm_eps = family->rms_norm_eps;
  c.rope_theta = family->rope_theta;
  c.router_aux_loss_coef = family->aux_loss_coef;
  c.num_experts = family->experts;
  c.num_experts_per_tok = family->top_k;
  c.norm_topk_prob = family->norm_topk_prob;
  c.moe_intermediate_size = family->expert_width;
  c.intermediate_size = family->dense_width;
  c.tie_word_embeddings = false;
  c.bos_token_id = 1;
  c.eos_token_id = 2;

  Reader& read = r.read;
  read("vocab_size", c.vocab_size);
  read("hidden_size", c.hidden_size);
  read("num_hidden_layers", c.num_hidden_layers);
  read("num_attention_heads", c.num_attention_heads);
  if (r.present("num_key_value_heads")) read("num_key_value_heads", c.num_key_value_heads);
  else c.num_key_value_heads = c.num_attention_heads;
  if (r.present("head_dim")) read("head_dim", c.head_dim);
  read("hidden_act", c.hidden_act);
  read("max_position_embeddings", c.max_position_embeddings);
  read("rms_norm_eps", c.rms_norm_eps);
  read("rope_theta", c.rope_theta);
  read("tie_word_embeddings", c.tie_word_embeddings);
  read("router_aux_loss_coef", c.router_aux_loss_coef);
  read(experts_key(type), c.num_experts);
  read("num_experts_per_tok", c.num_experts_per_tok);
  if (type != "mixtral") read("norm_topk_prob", c.norm_topk_prob);  // Mixtral always renormalises
  read(expert_width_key(type), c.moe_intermediate_size);
  if (is_qwen(type)) read("intermediate_size", c.intermediate_size);  // the dense width (mlp_only_layers)
  else c.intermediate_size = c.moe_intermediate_size;
  r.token_id("bos_token_id", c.bos_token_id);
  r.token_id("eos_token_id", c.eos_token_id);
  // A model without a BOS id (OLMoE) separates documents with EOS.
  if (json.contains("bos_token_id") && json.at("bos_token_id").is_null()) c.bos_token_id = c.eos_token_id;
  for (const char* key : {"torch_dtype", "dtype"})
    if (r.present(key) && json.at(key).is_string()) c.torch_dtype = json.at(key).get<std::string>();

  // Attention forms.
  if (type == "qwen2_moe") {
    c.attention_bias = true;  // q/k/v carry a bias unless qkv_bias says otherwise; o_proj never
    read("qkv_bias", c.attention_bias);
  } else if (type != "mixtral") {
    read("attention_bias", c.attention_bias);
    c.attention_output_bias = c.attention_bias;
  }
  if (type == "qwen3_moe") c.qk_norm = QkNorm::per_head;
  if (type == "olmoe") {
    c.qk_norm = QkNorm::full_width;
    if (r.present("clip_qkv")) {
      read("clip_qkv", c.clip_qkv);
      if (!(c.clip_qkv > 0)) r.refuse("clip_qkv", "must be > 0 or null");
    }
  }

  // Sliding windows: Mixtral's applies to every layer. Which Qwen layers a window applies to differs
  // between transformers versions, and no released Qwen MoE checkpoint enables one: refused.
  if (type == "mixtral") {
    if (r.present("sliding_window")) read("sliding_window", c.sliding_window_size);
  } else if (is_qwen(type)) {
    bool use_window = false;
    read("use_sliding_window", use_window);
    if (use_window) r.refuse("use_sliding_window", "is not implemented for this family (transformers versions disagree on its layers)");
  }
  if (r.present("layer_types")) {
    const nlohmann::json& kinds = json.at("layer_types");
    if (!kinds.is_array() || static_cast<int64_t>(kinds.size()) != c.num_hidden_layers)
      r.refuse("layer_types", cat("must list one kind per layer (", c.num_hidden_layers, ")"));
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string expected = c.layer_has_window(l) ? "sliding_attention" : "full_attention";
      if (kinds[static_cast<size_t>(l)] != expected)
        r.refuse("layer_types", cat("asks for ", describe_json(kinds[static_cast<size_t>(l)]), " at layer ", l,
                                    ", the other keys for \"", expected, "\" (only that layout is implemented)"));
    }
  }

  // The shared expert of Qwen2-MoE, scaled by its sigmoid gate.
  if (type == "qwen2_moe") {
    c.num_shared_experts = 1;
    c.shared_expert_gate = true;
    c.shared_expert_intermediate_size = 5632;
    read("shared_expert_intermediate_size", c.shared_expert_intermediate_size);
    if (c.shared_expert_intermediate_size <= 0) r.refuse("shared_expert_intermediate_size", "must be > 0");
  }

  // What is not implemented, refused by name.
  if (r.present("rope_scaling")) {
    const nlohmann::json& scaling = json.at("rope_scaling");
    const std::string kind = scaling.is_object() ? scaling.value("rope_type", scaling.value("type", std::string())) : "";
    if (kind != "default") r.refuse("rope_scaling", "is not implemented (only plain RoPE is)");
  }
  if (r.present("rope_parameters")) {
    const nlohmann::json& rope = json.at("rope_parameters");
    if (!rope.is_object() || rope.value("rope_type", std::string("default")) != "default")
      r.refuse("rope_parameters", "is not implemented (only plain RoPE is)");
    if (rope.contains("rope_theta")) {
      if (!rope.at("rope_theta").is_number()) r.refuse("rope_parameters", "has a rope_theta that is not a number");
      c.rope_theta = rope.at("rope_theta").get<double>();
    }
  }
  if (r.present("quantization_config")) r.refuse("quantization_config", "is not implemented (load the unquantized checkpoint)");
  if (is_qwen(type)) {
    if (r.present("mlp_only_layers") && !(json.at("mlp_only_layers").is_array() && json.at("mlp_only_layers").empty()))
      r.refuse("mlp_only_layers", "is not implemented (every layer must be sparse)");
    for (const char* key : {"decoder_sparse_step", "expert_interval"}) {
      if (!r.present(key)) continue;
      int64_t step = 1;
      read(key, step);
      if (step != 1) r.refuse(key, "is not implemented (only 1: every layer sparse)");
    }
  }
  for (const char* key : {"attention_dropout", "router_jitter_noise"})
    if (r.present(key) && !(json.at(key).is_number() && json.at(key).get<double>() == 0))
      r.refuse(key, "is not implemented (only 0)");
  return c;
}

nlohmann::json config_to_hf_json(const ModelConfig& c) {
  const std::string& type = c.model_type;
  if (!is_hf_family(type)) throw InvalidArgument(cat("config_to_hf_json: model_type \"", type, "\" is not a Hugging Face family"));
  nlohmann::json json = c.extra.is_object() ? c.extra : nlohmann::json::object();
  json["model_type"] = type;
  json["vocab_size"] = c.vocab_size;
  json["hidden_size"] = c.hidden_size;
  json["num_hidden_layers"] = c.num_hidden_layers;
  json["num_attention_heads"] = c.num_attention_heads;
  json["num_key_value_heads"] = c.resolved_kv_heads();
  if (json.contains("head_dim") || c.resolved_head_dim() != c.hidden_size / c.num_attention_heads) json["head_dim"] = c.resolved_head_dim();
  json["hidden_act"] = c.hidden_act;
  json["max_position_embeddings"] = c.max_position_embeddings;
  json["rms_norm_eps"] = c.rms_norm_eps;
  if (json.contains("rope_parameters") && json["rope_parameters"].is_object()) json["rope_parameters"]["rope_theta"] = c.rope_theta;
  else json["rope_theta"] = c.rope_theta;
  json["tie_word_embeddings"] = c.tie_word_embeddings;
  json["router_aux_loss_coef"] = c.router_aux_loss_coef;
  json[experts_key(type)] = c.num_experts;
  json["num_experts_per_tok"] = c.num_experts_per_tok;
  if (type != "mixtral") json["norm_topk_prob"] = c.norm_topk_prob;
  json[expert_width_key(type)] = c.resolved_moe_intermediate_size();
  if (is_qwen(type)) json["intermediate_size"] = c.resolved_intermediate_size();
  // Token ids the file gave as null or as a list stay as they were.
  for (const auto& [key, id] : {std::pair<const char*, int64_t>{"bos_token_id", c.bos_token_id}, {"eos_token_id", c.eos_token_id}})
    if (!json.contains(key) || json[key].is_number()) json[key] = id;
  json[json.contains("dtype") && !json.contains("torch_dtype") ? "dtype" : "torch_dtype"] = c.torch_dtype;
  if (type == "qwen3_moe" || type == "olmoe") json["attention_bias"] = c.attention_bias;
  if (type == "olmoe") json["clip_qkv"] = c.clip_qkv > 0 ? nlohmann::json(c.clip_qkv) : nlohmann::json(nullptr);
  if (type == "mixtral") {
    json["sliding_window"] = c.sliding_window_size > 0 ? nlohmann::json(c.sliding_window_size) : nlohmann::json(nullptr);
  } else if (is_qwen(type)) {
    json["use_sliding_window"] = false;
  }
  if (type == "qwen2_moe") json["qkv_bias"] = c.attention_bias;
  if (type == "qwen2_moe") json["shared_expert_intermediate_size"] = c.resolved_shared_intermediate_size();
  return json;
}

}  // namespace chronos
