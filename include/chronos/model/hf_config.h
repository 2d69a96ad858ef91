// The config.json of Hugging Face MoE families (docs/hf-checkpoints.md): mixtral, qwen2_moe,
// qwen3_moe and olmoe are read with each family's own keys and defaults (as transformers' config
// classes define them) into a ModelConfig, and written back the same way. A key asking for
// something this runtime does not implement (rope scaling, mlp_only_layers, decoder_sparse_step > 1,
// a quantization_config, ...) is refused with one line naming the key and its value.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "chronos/model/config.h"

namespace chronos {

// Whether model_type names a family read by config_from_hf_json.
bool is_hf_family(const std::string& model_type);
// "mixtral, qwen2_moe, qwen3_moe, olmoe", for messages.
std::string hf_family_list();

// Reads a family's config.json; every key the family does not map onto a field (architectures,
// transformers_version, output_router_logits, ...) stays in `extra` for the round trip. Throws
// ConfigError naming `source` and the key for wrong types and refused features.
ModelConfig config_from_hf_json(const nlohmann::json& json, const std::string& source);

// The family's config.json: the keys kept in `extra`, overwritten by the fields' current values.
nlohmann::json config_to_hf_json(const ModelConfig& config);

}  // namespace chronos
