// Model directories (DESIGN.md "Formats"): config.json + model.safetensors (or shards with
// model.safetensors.index.json) with the Python reference's tensor names (docs/formats.md), so the Python
// reference and transformers read them; or a Hugging Face checkpoint of a supported family (mixtral,
// qwen2_moe, qwen3_moe, olmoe; docs/hf-checkpoints.md) with its own config keys and tensor names,
// loaded as it is and saved the same way. Writes are atomic; every malformed input raises a chronos
// error naming the file and the tensor.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chronos/model/causal_lm.h"
#include "chronos/model/weight_format.h"

namespace chronos {

struct LoadOptions {
  c10::Device device = c10::Device(c10::kCPU);  // where the parameters go
  c10::ScalarType dtype = c10::kFloat;          // compute dtype the weights are converted to
  // Leave the routed experts out (empty parameters, never allocated nor read): an ExpertSource
  // such as the expert store serves them, so they never take memory beside it.
  bool skip_routed_experts = false;
  // CPU weights in one huge-page allocation (model/weight_arena.h): decoding streams them faster.
  // Off, tensors stored in the compute dtype stay zero-copy views of the mapped files.
  bool huge_pages = true;
  // Load weights holding NaN or Inf. Off: such a tensor is refused at load, naming it.
  bool allow_nonfinite = false;
  // The format of the matrices (weight_format.h), converted once at load; unset: the format the
  // directory stores them in (float32 unless save_pretrained wrote a converted model). A CPU,
  // float32-compute feature.
  std::optional<WeightFormat> weights_format;
};

// The checkpoint state dict: every parameter under the name its family stores it by; a Chronos
// model adds lm_head.weight (a copy of the tied embedding, so that readers expecting it find it).
std::vector<std::pair<std::string, at::Tensor>> reference_state_dict(ChronosForCausalLMImpl& model);

// Writes dir/config.json and dir/model.safetensors (metadata {"format": "pt"}); creates dir. A
// family's model is written in its own layout and in the dtype its config names (torch_dtype). A
// model converted to a weight format keeps its matrices as they are (bf16, or uint8 rows of blocks)
// and names the format and block layout in the metadata (docs/formats.md "Weight formats").
void save_pretrained(ChronosForCausalLMImpl& model, const std::string& dir);

// Reads a model directory. Accepts files without lm_head.weight (re-ties to the embedding),
// fp32/fp16/bf16 weights, sharded checkpoints, and converted models save_pretrained wrote (a uint8
// matrix whose rows do not fit its metadata's block layout is refused, naming it). A config asking for a feature that is not
// implemented is refused with one line naming the key (hf_config.h).
ChronosForCausalLM load_pretrained(const std::string& dir, const LoadOptions& options = {});

// A fingerprint of a model directory's routed expert weights ("xxh3_64:<16 hex digits>"): the names,
// dtypes, shapes and first and last 256 bytes of gate, up and down of up to 64 experts spread over
// all layers. Reads a few pages per sampled tensor; two checkpoints of the same shapes but other
// weights differ in it. chronos-pack writes it into the cache's manifest, the expert store checks it.
std::string expert_weights_fingerprint(const std::string& dir, const ModelConfig& config);

// Throws IoError naming `dir` and the real cause when it does not exist, is not a folder, or holds
// no config.json. Tools call it first, so a mistyped path is not reported as a missing tokenizer.
void require_model_directory(const std::string& dir);

}  // namespace chronos
