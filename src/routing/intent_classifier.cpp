#include "chronos/routing/intent_classifier.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/serialize/tensor.h>
#include <torch/utils.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"

namespace fs = std::filesystem;

namespace chronos {
namespace {

void require(bool ok, const std::string& field, int64_t value, const std::string& rule) {
  if (!ok) throw ConfigError(cat("intent_classifier.", field, " ", rule, " (got ", value, ")"));
}

}  // namespace

void IntentClassifierConfig::validate() const {
  require(max_prompt_tokens > 0, "max_prompt_tokens", max_prompt_tokens, "must be > 0");
  require(embed_dim > 0, "embed_dim", embed_dim, "must be > 0");
  require(hidden_size > 0, "hidden_size", hidden_size, "must be > 0");
  require(vocab_size > 0, "vocab_size", vocab_size, "must be > 0");
  require(num_layers > 0, "num_layers", num_layers, "must be > 0");
  require(num_experts > 0, "num_experts", num_experts, "must be > 0");
}

nlohmann::json IntentClassifierConfig::to_json() const {
  return {{"max_prompt_tokens", max_prompt_tokens}, {"embed_dim", embed_dim},   {"hidden_size", hidden_size},
          {"vocab_size", vocab_size},               {"num_layers", num_layers}, {"num_experts", num_experts}};
}

IntentClassifierConfig IntentClassifierConfig::from_json(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) throw FormatError(cat(source, ": expected a JSON object"));
  IntentClassifierConfig config;
  auto read = [&](const char* key, int64_t& field) {
    if (!json.contains(key)) return;
    if (!json.at(key).is_number_integer()) throw FormatError(cat(source, ": key '", key, "' must be an integer (got ", describe_json(json.at(key)), ")"));
    field = json.at(key).get<int64_t>();
  };
  read("max_prompt_tokens", config.max_prompt_tokens);
  read("embed_dim", config.embed_dim);
  read("hidden_size", config.hidden_size);
  read("vocab_size", config.vocab_size);
  read("num_layers", config.num_layers);
  read("num_experts", config.num_experts);
  return config;
}

IntentClassifierConfig IntentClassifierConfig::for_model(const ModelConfig& model) {
  IntentClassifierConfig config;
  config.vocab_size = model.vocab_size;
  config.num_layers = model.num_hidden_layers;
  config.num_experts = model.num_experts;
  return config;
}

IntentBatch make_intent_batch(const std::vector<std::vector<int64_t>>& prompts, int64_t max_tokens) {
  if (max_tokens <= 0) throw InvalidArgument(cat("make_intent_batch: max_tokens must be > 0 (got ", max_tokens, ")"));
  int64_t width = 1;
  for (const auto& p : prompts) width = std::max(width, std::min<int64_t>(max_tokens, static_cast<int64_t>(p.size())));
  const auto rows = static_cast<int64_t>(prompts.size());
  at::Tensor ids = at::zeros({rows, width}, at::kLong);
  at::Tensor mask = at::zeros({rows, width}, at::kFloat);
  auto id = ids.accessor<int64_t, 2>();
  auto m = mask.accessor<float, 2>();
  for (int64_t b = 0; b < rows; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const int64_t n = std::min<int64_t>(max_tokens, static_cast<int64_t>(p.size()));
    const size_t start = p.size() - static_cast<size_t>(n);  // the last n tokens
    for (int64_t t = 0; t < n; ++t) {
      id[b][t] = p[start + static_cast<size_t>(t)];
      m[b][t] = 1.0F;
    }
  }
  return {ids, mask};
}

IntentClassifierImpl::IntentClassifierImpl(IntentClassifierConfig config) : config_(std::move(config)) {
  config_.validate();
  embed = register_module("embed", torch::nn::Embedding(config_.vocab_size, config_.embed_dim));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({config_.embed_dim})));
  fc1 = register_module("fc1", torch::nn::Linear(config_.embed_dim, config_.hidden_size));
  fc2 = register_module("fc2", torch::nn::Linear(config_.hidden_size, config_.num_layers * config_.num_experts));
  torch::NoGradGuard no_grad;
  embed->weight.normal_(0.0, 0.02);
}

at::Tensor IntentClassifierImpl::forward(const at::Tensor& ids, const at::Tensor& mask) {
  if (ids.dim() != 2 || !mask.defined() || mask.sizes() != ids.sizes())
    throw InvalidArgument(cat("IntentClassifier: ids and mask must both be [B,T] (got ", ids.sizes(), " and ",
                              mask.defined() ? mask.sizes() : at::IntArrayRef{}, ")"));
  if (ids.size(1) > config_.max_prompt_tokens)
    throw InvalidArgument(cat("IntentClassifier: ", ids.size(1), " tokens exceed max_prompt_tokens ", config_.max_prompt_tokens));
  const at::Tensor m = mask.to(embed->weight.scalar_type()).unsqueeze(-1);  // [B,T,1]
  // Padding ids may be anything: clamp them into range, the mask removes them from the mean.
  const at::Tensor x = embed->forward(at::where(mask.to(at::kBool), ids, at::zeros_like(ids)));  // [B,T,D]
  const at::Tensor pooled = (x * m).sum(1) / m.sum(1).clamp_min(1.0);                          // [B,D]
  // An all-padding row pools to zeros; the LayerNorm of zeros is its bias, so such rows get a fixed
  // (prompt-free) prediction.
  at::Tensor h = at::gelu(fc1->forward(norm->forward(pooled)));
  return fc2->forward(h).view({ids.size(0), config_.num_layers, config_.num_experts});
}

at::Tensor IntentClassifierImpl::predict(const std::vector<int64_t>& prompt) const {
  auto& self = const_cast<IntentClassifierImpl&>(*this);  // forward is non-const in torch::nn
  const bool was_training = self.is_training();
  self.eval();
  torch::NoGradGuard no_grad;
  IntentBatch batch = make_intent_batch({prompt}, config_.max_prompt_tokens);
  const c10::Device device = embed->weight.device();
  at::Tensor probs = at::sigmoid(self.forward(batch.ids.to(device), batch.mask.to(device))[0]).to(at::kCPU, at::kFloat);
  if (was_training) self.train();
  return probs;
}

void save_intent_classifier(const IntentClassifierImpl& classifier, const std::string& model_dir) {
  if (!fs::is_directory(model_dir)) throw IoError(cat(model_dir, ": model directory does not exist"));
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : classifier.named_parameters())
    tensors.emplace_back(item.key(), item.value().detach().to(at::kCPU, at::kFloat).contiguous());
  save_safetensors((fs::path(model_dir) / kIntentClassifierWeights).string(), tensors, {{"format", "chronos-intent-classifier"}});
  write_json_file((fs::path(model_dir) / kIntentClassifierConfig).string(), classifier.config().to_json());
}

std::optional<IntentClassifier> load_intent_classifier(const std::string& model_dir, const ModelConfig& model) {
  const std::string weights = (fs::path(model_dir) / kIntentClassifierWeights).string();
  const std::string config_path = (fs::path(model_dir) / kIntentClassifierConfig).string();
  const bool has_weights = fs::exists(weights), has_config = fs::exists(config_path);
  if (!has_weights && !has_config) return std::nullopt;
  if (!has_config) throw FormatError(cat(config_path, ": missing (", weights, " is there without its config)"));
  if (!has_weights) throw FormatError(cat(weights, ": missing (", config_path, " is there without its weights)"));

  IntentClassifierConfig config;
  try {
    config = IntentClassifierConfig::from_json(read_json_file(config_path), config_path);
    config.validate();
  } catch (const FormatError&) {
    throw;
  } catch (const Error& e) {
    throw FormatError(cat(config_path, ": ", e.what()));
  }
  auto mismatch = [&](const char* field, int64_t mine, const char* model_field, int64_t theirs) {
    if (mine != theirs)
      throw FormatError(cat(config_path, ": ", field, " ", mine, " does not fit the model's ", model_field, " ", theirs));
  };
  mismatch("vocab_size", config.vocab_size, "vocab_size", model.vocab_size);
  mismatch("num_layers", config.num_layers, "num_hidden_layers", model.num_hidden_layers);
  mismatch("num_experts", config.num_experts, "num_experts", model.num_experts);

  IntentClassifier classifier(config);
  std::map<std::string, at::Tensor> stored;
  try {
    stored = load_safetensors(weights);
  } catch (const FormatError&) {
    throw;
  } catch (const Error& e) {
    throw FormatError(cat(weights, ": ", e.what()));
  }
  torch::NoGradGuard no_grad;
  size_t used = 0;
  for (auto& item : classifier->named_parameters()) {
    auto it = stored.find(item.key());
    if (it == stored.end()) throw FormatError(cat(weights, ": tensor '", item.key(), "' is missing"));
    const at::Tensor& t = it->second;
    if (!at::isFloatingType(t.scalar_type()) || t.sizes() != item.value().sizes())
      throw FormatError(cat(weights, ": tensor '", item.key(), "' is ", t.scalar_type(), t.sizes(), ", expected float",
                            item.value().sizes(), " for ", config_path));
    item.value().copy_(t);
    ++used;
  }
  if (used != stored.size()) throw FormatError(cat(weights, ": ", stored.size() - used, " unexpected tensor(s)"));
  classifier->eval();
  return classifier;
}

}  // namespace chronos
