// Random-weight checkpoints in a family's own layout (docs/hf-checkpoints.md): config.json as given
// and every tensor under the family's name and shape, in one file or in shards with
// model.safetensors.index.json. For tests and benchmarks at any size without downloading a model;
// one tensor (or shard) is in memory at a time.
#pragma once

#include <c10/core/ScalarType.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace chronos {

struct RandomCheckpointOptions {
  c10::ScalarType dtype = c10::kBFloat16;  // on disk: float32, float16 or bfloat16
  uint64_t shard_bytes = 0;                // > 0: shards of at most this many bytes (one tensor may exceed it)
  uint64_t seed = 0;
  // Called after each shard with (bytes written, bytes in all).
  std::function<void(uint64_t, uint64_t)> on_progress;
};

// Writes dir/config.json (`config`, a Chronos or family config.json object) and random weights:
// projections N(0, 1/in), norm weights 1 + N(0, 0.01), biases N(0, 0.01), embeddings N(0, 1). Every
// value is bfloat16-representable, so the same seed in any dtype holds the same numbers. Creates dir;
// throws ConfigError for a config the loader would refuse.
void write_random_checkpoint(const std::string& dir, const nlohmann::json& config, const RandomCheckpointOptions& options = {});

}  // namespace chronos
