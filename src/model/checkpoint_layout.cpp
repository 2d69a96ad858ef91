#include "model/checkpoint_layout.h"

#include "chronos/core/error.h"

namespace chronos {
namespace {

// Replaces the first `from` in s by `to`; false when there is none.
bool replace_first(std::string& s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  if (at == std::string::npos) return false;
  s.replace(at, from.size(), to);
  return true;
}

}  // namespace

bool is_routed_expert_parameter(const std::string& parameter) { return parameter.find(".mlp.experts.") != std::string::npos; }

std::string checkpoint_tensor_name(const ModelConfig& config, const std::string& parameter) {
  std::string name = parameter;
  if (config.model_type == "mixtral") {
    const bool expert = is_routed_expert_parameter(name);
    replace_first(name, ".mlp.", ".block_sparse_moe.");
    if (expert && !replace_first(name, ".gate_proj.", ".w1.") && !replace_first(name, ".up_proj.", ".w3."))
      replace_first(name, ".down_proj.", ".w2.");
  } else if (config.model_type == "qwen2_moe") {
    replace_first(name, ".mlp.shared_experts.0.", ".mlp.shared_expert.");
  }
  return name;
}

std::string routed_expert_tensor_name(const ModelConfig& config, int64_t layer, int64_t expert, ExpertMatrix matrix) {
  const char* proj = matrix == ExpertMatrix::gate ? "gate_proj" : matrix == ExpertMatrix::up ? "up_proj" : "down_proj";
  return checkpoint_tensor_name(config, cat("model.layers.", layer, ".mlp.experts.", expert, ".", proj, ".weight"));
}

}  // namespace chronos
