// Routed experts read one at a time from a model directory's safetensors files, by the family's
// tensor names (model/checkpoint_layout.h). Reads are copies made with pread, not views of a
// mapping: an expert dropped after use leaves the process's resident memory, so a checkpoint far
// larger than RAM streams through in bounded memory (chronos-pack --ram-budget).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chronos/model/config.h"
#include "chronos/model/feed_forward.h"
#include "chronos/store/expert_key.h"

namespace chronos {

class CheckpointTensors;

class CheckpointExperts {
 public:
  // Throws IoError / FormatError naming the folder, file or tensor (a missing expert, a wrong
  // shape, a dtype that is not a float).
  CheckpointExperts(const std::string& model_dir, const ModelConfig& config);
  ~CheckpointExperts();

  // The expert's three matrices as stored (CPU, the checkpoint's dtype).
  ExpertWeights read(ExpertKey key) const;

 private:
  at::Tensor read_tensor(const std::string& name, at::IntArrayRef shape) const;

  std::string dir_;
  ModelConfig config_;
  std::unique_ptr<CheckpointTensors> tensors_;
};

}  // namespace chronos
