// Activation logs for the IntentClassifier (routing/intent_classifier.h): for each prompt, generate a
// continuation with the model, run the model once over prompt + continuation, and record which experts
// the generated positions routed to. Prompt positions do not count: prefill routes the prompt anyway
// (and sees its experts then); the classifier's job is to foresee what decode will need.
#pragma once

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chronos/model/causal_lm.h"
#include "chronos/runtime/sampler.h"
#include "chronos/tokenizer/tokenizer.h"

namespace chronos {

// One training example: prompt ids and the multi-hot target [L,E] float (1 = some generated token
// routed to expert e in layer l).
struct IntentExample {
  std::vector<int64_t> prompt;
  at::Tensor target;
};

struct ActivationLogOptions {
  int64_t max_new_tokens = 64;  // continuation length (fewer when a stop id comes first)
  SamplingOptions sampling = greedy_sampling();  // greedy by default; a seeded sampler otherwise
  std::vector<int64_t> stop_ids;  // e.g. the model's eos_token_id

  static SamplingOptions greedy_sampling() {
    SamplingOptions s;
    s.greedy = true;
    return s;
  }
};

// Generates a continuation of `prompt` (non-empty; prompt + max_new_tokens must fit the context) and
// returns the prompt with its target. With no generated token the target is all zeros.
IntentExample record_activations(ChronosForCausalLMImpl& model, const std::vector<int64_t>& prompt,
                                 const ActivationLogOptions& options);

// record_activations over many prompts; `progress(done, total)` is called after each (may be empty).
// The sampler seed is offset by the prompt's index, so every run with the same options is identical.
std::vector<IntentExample> collect_activation_logs(ChronosForCausalLMImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                                   const ActivationLogOptions& options,
                                                   const std::function<void(size_t, size_t)>& progress = {});

// The prompt ids of a prompts.jsonl record: {"text": "..."} is encoded as is; {"conversations": [...]}
// (or "messages") renders the turns before the first assistant turn with the chat template and the
// generation prompt. The last `max_tokens` ids are kept. Throws FormatError "`where`: ..." otherwise.
std::vector<int64_t> intent_prompt_ids(const Tokenizer& tokenizer, const nlohmann::json& record, const std::string& where,
                                       int64_t max_tokens);

}  // namespace chronos
