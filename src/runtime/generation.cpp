#include "chronos/runtime/generation.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <fstream>

#include "chronos/core/error.h"
#include "chronos/core/timing.h"

namespace chronos {

double GenerationStats::decode_tokens_per_s() const {
  // The first generated token comes from the prefill; decode steps produce the rest.
  return decode_seconds > 0 && generated_tokens > 1 ? (generated_tokens - 1) / decode_seconds : 0;
}

void GenerationOptions::validate() const {
  if (max_new_tokens < 0) throw ConfigError(cat("generation.max_new_tokens must be >= 0 (got ", max_new_tokens, ")"));
  if (max_context < 0) throw ConfigError(cat("generation.max_context must be >= 0, 0 = the model's (got ", max_context, ")"));
  for (const int64_t id : stop_ids)
    if (id < 0) throw ConfigError(cat("generation.stop_ids holds ", id, "; token ids are >= 0"));
  for (const std::string& stop : stop_strings)
    if (stop.empty()) throw ConfigError("generation.stop_strings holds an empty string");
  sampling.validate();
}

GenerationResult generate(ChronosForCausalLMImpl& model, const std::vector<int64_t>& prompt, const GenerationOptions& options,
                          const TokenCallback& on_token) {
  options.validate();
  if (prompt.empty()) throw InvalidArgument("generate: the prompt is empty");
  const int64_t context = options.max_context > 0 ? options.max_context : model.config().max_position_embeddings;
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  if (prompt_len >= context)
    throw InvalidArgument(cat("the prompt has ", prompt_len, " tokens; the model takes at most ", context - 1,
                              " so that one can be generated (max_position_embeddings ", context, ")"));
  const int64_t vocab = model.config().vocab_size;
  for (int64_t id : prompt)
    if (id < 0 || id >= vocab) throw InvalidArgument(cat("generate: token id ", id, " is outside the vocabulary (", vocab, ")"));

  at::NoGradGuard no_grad;
  const c10::Device device = model.lm_head_weight().device();
  const auto ids_options = at::TensorOptions().dtype(at::kLong).device(device);
  Sampler sampler(options.sampling);
  KVCache cache = model.make_cache();
  ForwardOptions forward;
  forward.logits_to_keep = 1;
  forward.expert_source = options.expert_source;
  if (options.use_kv_cache) forward.cache = &cache;
  int64_t current_step = 0;
  DecodeObserver* observer = options.observer;
  if (observer) {
    forward.on_lookahead = [&](const at::Tensor& probs) { observer->on_lookahead(current_step, probs); };
    forward.on_moe_input = [&](int64_t layer, const at::Tensor& input) { observer->on_moe_input(current_step, layer, input); };
  }

  GenerationResult result;
  result.stats.prompt_tokens = prompt_len;
  std::vector<int64_t> sequence = prompt;
  const bool forced = !options.forced_tokens.empty();
  for (int64_t id : options.forced_tokens)
    if (id < 0 || id >= vocab) throw InvalidArgument(cat("generate: forced token id ", id, " is outside the vocabulary (", vocab, ")"));
  int64_t budget = std::min(options.max_new_tokens, context - prompt_len);
  if (forced) budget = std::min<int64_t>(budget, static_cast<int64_t>(options.forced_tokens.size()));
  Stopwatch total;
  at::Tensor input = at::tensor(prompt, at::kLong).to(device).unsqueeze(0);
  result.stop_reason = budget < options.max_new_tokens && !forced ? "context" : "max_new_tokens";
  for (int64_t step = 0; step < budget; ++step) {
    Stopwatch watch;
    current_step = step;
    if (observer) observer->begin_step(step);
    const ForwardOutput out = model.forward(input, forward);
    const at::Tensor logits = out.logits.select(1, 0).select(0, 0);
    int64_t token = sampler.next(logits, sequence);  // the one host sync of the step
    if (forced) {
      result.sampled.push_back(token);
      token = options.forced_tokens[static_cast<size_t>(step)];
    }
    if (options.record_logprobs) result.logprobs.push_back(at::log_softmax(logits.to(at::kFloat), 0)[token].item<double>());
    if (observer) observer->end_step(step, out);
    (step == 0 ? result.stats.prefill_seconds : result.stats.decode_seconds) += watch.seconds();
    if (step == 0) result.stats.time_to_first_token = total.seconds();
    sequence.push_back(token);
    result.tokens.push_back(token);
    if (on_token && !on_token(token)) {
      result.stop_reason = "callback";
      break;
    }
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), token) != options.stop_ids.end()) {
      result.stop_reason = "stop_id";
      break;
    }
    input = options.use_kv_cache ? at::full({1, 1}, token, ids_options) : at::tensor(sequence, at::kLong).to(device).unsqueeze(0);
  }
  result.stats.generated_tokens = static_cast<int64_t>(result.tokens.size());
  result.stats.peak_rss_bytes = peak_rss_bytes();
  return result;
}

}  // namespace chronos
