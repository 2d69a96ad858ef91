// The IntentClassifier: reads up to max_prompt_tokens prompt tokens (the last ones when the prompt is
// longer) and predicts, per (layer, expert), the probability that the generation that follows will
// route to that expert. A small, fast model (one pass, no attention): its own token embedding (not the
// LM's: the LM's is H-wide and trained for another job; a narrow one keeps the classifier small and
// cheap to run at prefill) -> masked mean pooling over the real tokens -> LayerNorm -> MLP -> L*E logits.
// Padding (mask 0) is kept out of the pooling, so padding never changes a prediction.
// The reference has an untrained, unused classifier with an MSE target; this one
// is trained on real activation logs with a multi-label loss (train/intent_training.h).
// Files in the model directory: intent_classifier.safetensors (parameters by name) and
// intent_classifier.json (the config).
#pragma once

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chronos/model/config.h"

namespace chronos {

struct IntentClassifierConfig {
  int64_t max_prompt_tokens = 512;  // tokens read from the end of the prompt
  int64_t embed_dim = 128;          // width of the classifier's own token embedding
  int64_t hidden_size = 256;        // width of the MLP's hidden layer
  int64_t vocab_size = 6400;        // token ids must be < vocab_size (the LM's vocab_size)
  int64_t num_layers = 8;           // L: the LM's num_hidden_layers
  int64_t num_experts = 4;          // E: the LM's routed experts per layer

  // Throws ConfigError naming the field, value and rule.
  void validate() const;
  nlohmann::json to_json() const;
  // Missing keys take the defaults; a wrong type throws FormatError naming `source` and the key.
  static IntentClassifierConfig from_json(const nlohmann::json& json, const std::string& source);
  // The defaults sized for `model` (vocab_size, num_layers, num_experts taken from it).
  static IntentClassifierConfig for_model(const ModelConfig& model);
};

// Classifier input: the last max_tokens of each prompt, right-padded with id 0.
struct IntentBatch {
  at::Tensor ids;   // [B,T] long
  at::Tensor mask;  // [B,T] float, 1 = real token
};
IntentBatch make_intent_batch(const std::vector<std::vector<int64_t>>& prompts, int64_t max_tokens);

class IntentClassifierImpl : public torch::nn::Module {
 public:
  // Validates the config; parameters are freshly initialised (seed with torch::manual_seed).
  explicit IntentClassifierImpl(IntentClassifierConfig config);

  // ids [B,T] long (T <= max_prompt_tokens), mask [B,T] (1 = real, 0 = padding; any dtype) ->
  // logits [B,L,E]. A row with no real token gets the output bias alone (the learnt prior).
  // Throws InvalidArgument on wrong shapes.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask);
  // Probabilities [L,E] float (CPU) for one prompt (its last max_prompt_tokens tokens); eval mode, no grad.
  at::Tensor predict(const std::vector<int64_t>& prompt) const;

  const IntentClassifierConfig& config() const { return config_; }

  torch::nn::Embedding embed{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};  // -> L*E logits; its bias is the prior (set to the usage frequency's logit when training)

 private:
  IntentClassifierConfig config_;
};
TORCH_MODULE(IntentClassifier);

inline constexpr const char* kIntentClassifierWeights = "intent_classifier.safetensors";
inline constexpr const char* kIntentClassifierConfig = "intent_classifier.json";

// Writes both files into `model_dir` (which must exist), each atomically (weights first, config last).
void save_intent_classifier(const IntentClassifierImpl& classifier, const std::string& model_dir);
// The classifier saved in `model_dir`, on the CPU in eval mode; nullopt when neither file is there.
// Throws FormatError naming the file when one file is missing, malformed, or does not fit `model`
// (vocab_size, num_hidden_layers, num_experts) or the config's tensor names and shapes.
std::optional<IntentClassifier> load_intent_classifier(const std::string& model_dir, const ModelConfig& model);

}  // namespace chronos
