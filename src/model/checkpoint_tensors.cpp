#include "model/checkpoint_tensors.h"

#include <filesystem>
#include <set>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"

namespace chronos {
namespace fs = std::filesystem;

bool is_confined_path(const std::string& name) {
  if (name.empty() || name.find('\0') != std::string::npos) return false;
  const fs::path path(name);
  if (path.is_absolute() || path.has_root_name() || path.has_root_directory()) return false;
  for (const auto& part : path)
    if (part == "..") return false;
  return true;
}

CheckpointTensors::CheckpointTensors(const std::string& dir) {
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    add(single.string());
    return;
  }
  if (!fs::exists(index)) throw IoError(cat(dir, ": no model.safetensors (or model.safetensors.index.json)"));
  const nlohmann::json json = read_json_file(index.string());
  if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object())
    throw FormatError(cat(index.string(), ": missing object 'weight_map'"));
  std::set<std::string> shards;
  for (const auto& [name, file] : json["weight_map"].items()) {
    if (!file.is_string()) throw FormatError(cat(index.string(), ": weight_map['", name, "'] is not a file name"));
    const std::string& shard = file.get_ref<const std::string&>();
    if (!is_confined_path(shard))
      throw FormatError(cat(index.string(), ": weight_map['", name, "'] names \"", shard,
                            "\", which is not a path inside the model directory"));
    shards.insert(shard);
  }
  for (const auto& shard : shards) add((fs::path(dir) / shard).string());
}

std::vector<std::string> CheckpointTensors::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [name, _] : where_) out.push_back(name);
  return out;
}

void CheckpointTensors::add(const std::string& path) {
  files_.push_back(std::make_unique<SafetensorsFile>(path));
  for (const auto& name : files_.back()->names()) where_[name] = files_.size() - 1;
}

}  // namespace chronos
