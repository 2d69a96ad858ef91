// Tensor names on disk per family (docs/hf-checkpoints.md). The model's parameters are named as in
// the Chronos reference (model.layers.{l}.mlp.experts.{e}.gate_proj.weight, ...); a Hugging Face
// family stores some of them under its own names: Mixtral's block_sparse_moe.experts.{e}.w1/w3/w2,
// Qwen2-MoE's singular mlp.shared_expert. Loading, saving, packing and fingerprinting all go through here.
#pragma once

#include <cstdint>
#include <string>

#include "chronos/model/config.h"

namespace chronos {

enum class ExpertMatrix { gate, up, down };

// The name `parameter` (a model parameter name) has in a checkpoint of config.model_type.
std::string checkpoint_tensor_name(const ModelConfig& config, const std::string& parameter);

// The checkpoint name of one matrix of routed expert `expert` in `layer`.
std::string routed_expert_tensor_name(const ModelConfig& config, int64_t layer, int64_t expert, ExpertMatrix matrix);

// Whether a model parameter name is a routed expert's (mlp.experts.*, not the shared experts).
bool is_routed_expert_parameter(const std::string& parameter);

}  // namespace chronos
