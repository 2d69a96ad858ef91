#include "chronos/model/random_checkpoint.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <utility>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/io/atomic_file.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/model/causal_lm.h"
#include "model/checkpoint_layout.h"

namespace chronos {
namespace fs = std::filesystem;

namespace {

struct PlannedTensor {
  std::string name;  // as stored
  std::vector<int64_t> shape;
  enum Kind { projection, norm, bias, embedding } kind;
};

PlannedTensor::Kind kind_of(const std::string& parameter, int64_t dims) {
  if (parameter.find("embed_tokens") != std::string::npos) return PlannedTensor::embedding;
  if (parameter.find(".bias") != std::string::npos) return PlannedTensor::bias;
  return dims == 1 ? PlannedTensor::norm : PlannedTensor::projection;
}

at::Tensor random_values(const PlannedTensor& t, at::ScalarType dtype) {
  at::Tensor v = at::randn(t.shape, at::kFloat);
  switch (t.kind) {
    case PlannedTensor::projection: v.mul_(1.0 / std::sqrt(static_cast<double>(t.shape.back()))); break;
    case PlannedTensor::norm: v.mul_(0.1).add_(1.0); break;
    case PlannedTensor::bias: v.mul_(0.1); break;
    case PlannedTensor::embedding: break;
  }
  return v.to(at::kBFloat16).to(dtype);
}

}  // namespace

void write_random_checkpoint(const std::string& dir, const nlohmann::json& json, const RandomCheckpointOptions& options) {
  if (options.dtype != at::kFloat && options.dtype != at::kHalf && options.dtype != at::kBFloat16)
    throw ConfigError("random checkpoint: dtype must be float32, float16 or bfloat16");
  ModelConfig config = ModelConfig::from_json(json, "config");
  config.validate();

  // Names and shapes from the dense part of the model itself, plus every routed expert.
  std::vector<PlannedTensor> plan;
  {
    BuildOptions build;
    build.routed_experts = false;
    ChronosForCausalLM shape_model(config, build);
    for (const auto& item : shape_model->named_parameters(/*recurse=*/true)) {
      if (config.use_moe && is_routed_expert_parameter(item.key())) continue;
      const at::Tensor& p = item.value();
      plan.push_back({checkpoint_tensor_name(config, item.key()), p.sizes().vec(), kind_of(item.key(), p.dim())});
    }
  }
  if (config.use_moe) {
    const int64_t H = config.hidden_size, I = config.resolved_moe_intermediate_size();
    for (int64_t l = 0; l < config.num_hidden_layers; ++l)
      for (int64_t e = 0; e < config.num_experts; ++e) {
        plan.push_back({routed_expert_tensor_name(config, l, e, ExpertMatrix::gate), {I, H}, PlannedTensor::projection});
        plan.push_back({routed_expert_tensor_name(config, l, e, ExpertMatrix::up), {I, H}, PlannedTensor::projection});
        plan.push_back({routed_expert_tensor_name(config, l, e, ExpertMatrix::down), {H, I}, PlannedTensor::projection});
      }
  }

  const uint64_t element = static_cast<uint64_t>(c10::elementSize(options.dtype));
  uint64_t total = 0;
  std::vector<std::vector<size_t>> shards(1);
  uint64_t in_shard = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    uint64_t bytes = element;
    for (int64_t d : plan[i].shape) bytes *= static_cast<uint64_t>(d);
    if (options.shard_bytes > 0 && in_shard > 0 && in_shard + bytes > options.shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(i);
    in_shard += bytes;
    total += bytes;
  }

  make_directories(dir);
  torch::NoGradGuard no_grad;
  at::manual_seed(options.seed);
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t written = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    std::string file = "model.safetensors";
    if (options.shard_bytes > 0) {  // transformers' shard names: model-00001-of-00003.safetensors
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
      file = name;
    }
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (size_t i : shards[s]) {
      tensors.emplace_back(plan[i].name, random_values(plan[i], options.dtype));
      written += static_cast<uint64_t>(tensors.back().second.nbytes());
      weight_map[plan[i].name] = file;
    }
    save_safetensors((fs::path(dir) / file).string(), tensors, {{"format", "pt"}});
    if (options.on_progress) options.on_progress(written, total);
  }
  if (options.shard_bytes > 0)
    write_json_file((fs::path(dir) / "model.safetensors.index.json").string(),
                    {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
  write_json_file((fs::path(dir) / "config.json").string(), json);
}

}  // namespace chronos
