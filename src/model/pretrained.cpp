#include "chronos/model/pretrained.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "chronos/core/dtype.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/atomic_file.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/model/weight_arena.h"

namespace chronos {
namespace fs = std::filesystem;

namespace {

constexpr const char* kLmHead = "lm_head.weight";
constexpr const char* kEmbedding = "model.embed_tokens.weight";

std::string shape_string(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Every tensor of a checkpoint by name, from one file or from the shards of an index.
class CheckpointTensors {
 public:
  explicit CheckpointTensors(const std::string& dir) {
    const fs::path single = fs::path(dir) / "model.safetensors";
    const fs::path index = fs::path(dir) / "model.safetensors.index.json";
    if (fs::exists(single)) {
      add(single.string());
    } else if (fs::exists(index)) {
      const nlohmann::json json = read_json_file(index.string());
      if (!json.contains("weight_map") || !json["weight_map"].is_object())
        throw FormatError(cat(index.string(), ": missing object 'weight_map'"));
      std::set<std::string> shards;
      for (const auto& [name, file] : json["weight_map"].items()) {
        if (!file.is_string()) throw FormatError(cat(index.string(), ": weight_map['", name, "'] is not a file name"));
        shards.insert(file.get<std::string>());
      }
      for (const auto& shard : shards) add((fs::path(dir) / shard).string());
    } else {
      throw IoError(cat(dir, ": no model.safetensors (or model.safetensors.index.json)"));
    }
  }

  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const SafetensorsFile& file_of(const std::string& name) const { return *files_[where_.at(name)]; }
  at::Tensor tensor(const std::string& name) const { return file_of(name).tensor(name); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, _] : where_) out.push_back(name);
    return out;
  }

 private:
  void add(const std::string& path) {
    files_.push_back(std::make_unique<SafetensorsFile>(path));
    for (const auto& name : files_.back()->names()) where_[name] = files_.size() - 1;
  }
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> reference_state_dict(ChronosForCausalLMImpl& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) out.emplace_back(item.key(), item.value().detach());
  out.emplace_back(kLmHead, model.lm_head_weight().detach());
  return out;
}

void save_pretrained(ChronosForCausalLMImpl& model, const std::string& dir) {
  make_directories(dir);
  auto tensors = reference_state_dict(model);
  ModelConfig config = model.config();
  const at::ScalarType dtype = model.lm_head_weight().scalar_type();
  config.torch_dtype = dtype == at::kFloat ? "float32" : dtype == at::kHalf ? "float16" : dtype == at::kBFloat16 ? "bfloat16" : dtype_name(dtype);
  save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  config.save((fs::path(dir) / "config.json").string());
}

namespace {
// "model.layers.3.mlp.experts.1.up_proj.weight" (not shared_experts).
bool is_routed_expert(const std::string& name) { return name.find(".mlp.experts.") != std::string::npos; }
}  // namespace

bool is_model_directory(const std::string& dir) { return fs::is_regular_file(fs::path(dir) / "config.json"); }

ChronosForCausalLM load_pretrained(const std::string& dir, const LoadOptions& options) {
  if (!fs::is_directory(dir)) throw IoError(cat(dir, ": model directory does not exist"));
  check_compute_dtype(options.device, options.dtype);
  const ModelConfig config = ModelConfig::load((fs::path(dir) / "config.json").string());
  const CheckpointTensors checkpoint(dir);

  ChronosForCausalLM model(config);
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& item : model->named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    at::Tensor& param = item.value();
    if (options.skip_routed_experts && is_routed_expert(name)) {
      param.set_data(at::empty({0}, param.options()));
      if (checkpoint.contains(name)) used.insert(name);
      continue;
    }
    std::string source = name;
    if (!checkpoint.contains(name)) {
      // A file holding only lm_head still carries the tied matrix.
      if (name == kEmbedding && checkpoint.contains(kLmHead)) {
        source = kLmHead;
      } else {
        throw FormatError(cat(dir, ": checkpoint lacks tensor '", name, "' (expected shape ", shape_string(param.sizes()), ")"));
      }
    }
    const at::Tensor value = checkpoint.tensor(source);
    if (value.sizes() != param.sizes())
      throw FormatError(cat(checkpoint.file_of(source).path(), ": tensor '", source, "' has shape ", shape_string(value.sizes()),
                            ", the config needs ", shape_string(param.sizes())));
    if (!at::isFloatingType(value.scalar_type()))
      throw FormatError(cat(checkpoint.file_of(source).path(), ": tensor '", source, "' has non-float dtype ", dtype_name(value.scalar_type())));
    param.copy_(value);
    used.insert(source);
  }
  if (checkpoint.contains(kLmHead)) used.insert(kLmHead);  // tied: the embedding is authoritative
  size_t unexpected = 0;
  for (const auto& name : checkpoint.names()) {
    if (used.count(name)) continue;
    if (++unexpected <= 5) log::warn(cat(dir, ": ignoring unexpected tensor '", name, "'"));
  }
  if (unexpected > 5) log::warn(cat(dir, ": ignored ", unexpected, " unexpected tensors in all"));
  model->to(options.device, options.dtype);
  if (options.huge_pages && options.device.is_cpu()) gather_weights_in_huge_pages(*model);
  model->eval();
  return model;
}

}  // namespace chronos
