#include "chronos/train/intent_data.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>

#include "chronos/core/error.h"
#include "chronos/runtime/generation.h"
#include "chronos/tokenizer/chat_template.h"

namespace chronos {

IntentExample record_activations(ChronosForCausalLMImpl& model, const std::vector<int64_t>& prompt,
                                 const ActivationLogOptions& options) {
  if (prompt.empty()) throw InvalidArgument("record_activations: empty prompt");
  const ModelConfig& config = model.config();
  GenerationOptions generation;
  generation.max_new_tokens = options.max_new_tokens;
  generation.stop_ids = options.stop_ids;
  generation.sampling = options.sampling;
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const GenerationResult result = generate(model, prompt, generation);

  IntentExample example{prompt, at::zeros({config.num_hidden_layers, config.num_experts}, at::kFloat)};
  if (!result.tokens.empty()) {
    std::vector<int64_t> sequence = prompt;
    sequence.insert(sequence.end(), result.tokens.begin(), result.tokens.end());
    const c10::Device device = model.lm_head_weight().device();
    const at::Tensor ids = at::tensor(sequence, at::kLong).view({1, -1}).to(device);
    ForwardOptions forward;
    forward.logits_to_keep = 1;  // only the routing matters
    const ForwardOutput out = model.forward(ids, forward);
    const auto start = static_cast<int64_t>(prompt.size());
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      // selected[l]: [1,S,k] ids; the generated positions are start..S-1.
      const at::Tensor used = out.selected[static_cast<size_t>(l)][0].slice(0, start).reshape({-1}).to(at::kCPU, at::kLong);
      example.target[l].index_fill_(0, used, 1.0);
    }
  }
  if (was_training) model.train();
  return example;
}

std::vector<IntentExample> collect_activation_logs(ChronosForCausalLMImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                                   const ActivationLogOptions& options,
                                                   const std::function<void(size_t, size_t)>& progress) {
  std::vector<IntentExample> examples;
  examples.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    ActivationLogOptions one = options;
    one.sampling.seed = options.sampling.seed + i;
    examples.push_back(record_activations(model, prompts[i], one));
    if (progress) progress(i + 1, prompts.size());
  }
  return examples;
}

std::vector<int64_t> intent_prompt_ids(const Tokenizer& tokenizer, const nlohmann::json& record, const std::string& where,
                                       int64_t max_tokens) {
  if (max_tokens <= 0) throw InvalidArgument(cat("intent_prompt_ids: max_tokens must be > 0 (got ", max_tokens, ")"));
  if (!record.is_object()) throw FormatError(cat(where, ": expected a JSON object"));
  std::string text;
  const nlohmann::json* messages = nullptr;
  for (const char* key : {"conversations", "messages"})
    if (record.contains(key) && record[key].is_array()) messages = &record[key];
  if (messages) {
    ChatConversation conversation;
    try {
      conversation = parse_conversation(nlohmann::ordered_json::parse(messages->dump()));
    } catch (const Error& e) {
      throw FormatError(cat(where, ": ", e.what()));
    }
    std::vector<ChatMessage> turns;
    for (const ChatMessage& m : conversation.messages) {
      if (m.role == "assistant") break;
      turns.push_back(m);
    }
    bool has_user = false;
    for (const ChatMessage& m : turns) has_user = has_user || m.role == "user";
    if (!has_user) throw FormatError(cat(where, ": no user turn before the first assistant turn"));
    ChatTemplateOptions options;
    options.add_generation_prompt = true;
    text = render_chat(turns, conversation.tools, options);
  } else if (record.contains("text") && record["text"].is_string()) {
    text = record["text"].get<std::string>();
  } else {
    throw FormatError(cat(where, ": expected a \"text\" string or a \"conversations\" list"));
  }
  const std::vector<TokenId> ids = tokenizer.encode(text);
  if (ids.empty()) throw FormatError(cat(where, ": the prompt encodes to no tokens"));
  const size_t keep = std::min(ids.size(), static_cast<size_t>(max_tokens));
  return std::vector<int64_t>(ids.end() - static_cast<std::ptrdiff_t>(keep), ids.end());
}

}  // namespace chronos
