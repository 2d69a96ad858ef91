// Every tensor of a model directory by name, from model.safetensors or from the shards that
// model.safetensors.index.json names. Shard names are confined to the model directory.
#pragma once

#include <ATen/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "chronos/io/safetensors.h"

namespace chronos {

class CheckpointTensors {
 public:
  // Throws IoError when the folder holds neither file, FormatError naming the index when it is
  // malformed or a shard name is absolute, empty or climbs out with "..".
  explicit CheckpointTensors(const std::string& dir);

  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const SafetensorsFile& file_of(const std::string& name) const { return *files_[where_.at(name)]; }
  at::Tensor tensor(const std::string& name) const { return file_of(name).tensor(name); }
  std::vector<std::string> names() const;

 private:
  void add(const std::string& path);
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

// True when `name` read from a file in `dir` stays inside it: relative, not empty, no ".." part.
bool is_confined_path(const std::string& name);

}  // namespace chronos
