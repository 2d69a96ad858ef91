#include "chronos/runtime/decode_run.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "chronos/core/error.h"
#include "chronos/core/memory.h"
#include "chronos/routing/router_control.h"

namespace chronos {

DecodeRun::DecodeRun(ChronosForCausalLMImpl& model, std::vector<int64_t> prompt, GenerationOptions options)
    : model_(model),
      options_(std::move(options)),
      sampler_((options_.validate(), options_.sampling)),
      cache_(model.make_cache(options_.kv_dtype)) {
  if (prompt.empty()) throw InvalidArgument("generate: the prompt is empty");
  const int64_t context = options_.max_context > 0 ? options_.max_context : model.config().max_position_embeddings;
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  if (prompt_len >= context)
    throw InvalidArgument(cat("the prompt has ", prompt_len, " tokens; the model takes at most ", context - 1,
                              " so that one can be generated (max_position_embeddings ", context, ")"));
  const int64_t vocab = model.config().vocab_size;
  for (int64_t id : prompt)
    if (id < 0 || id >= vocab) throw InvalidArgument(cat("generate: token id ", id, " is outside the vocabulary (", vocab, ")"));
  const bool forced = !options_.forced_tokens.empty();
  for (int64_t id : options_.forced_tokens)
    if (id < 0 || id >= vocab) throw InvalidArgument(cat("generate: forced token id ", id, " is outside the vocabulary (", vocab, ")"));

  forward_.logits_to_keep = 1;
  forward_.expert_source = options_.expert_source;
  if (options_.use_kv_cache) forward_.cache = &cache_;
  forward_.lookahead = options_.observer != nullptr;  // the observer's on_lookahead and end_step read it; nothing else does
  if (DecodeObserver* observer = options_.observer) {
    forward_.on_lookahead = [this, observer](const at::Tensor& probs) { observer->on_lookahead(step_, probs); };
    forward_.on_moe_input = [this, observer](int64_t layer, const at::Tensor& input) { observer->on_moe_input(step_, layer, input); };
  }
  result_.stats.prompt_tokens = prompt_len;
  budget_ = std::min(options_.max_new_tokens, context - prompt_len);
  if (forced) budget_ = std::min<int64_t>(budget_, static_cast<int64_t>(options_.forced_tokens.size()));
  result_.stop_reason = budget_ < options_.max_new_tokens && !forced ? "context" : "max_new_tokens";
  const c10::Device device = model.lm_head_weight().device();
  input_ = at::tensor(prompt, at::kLong).to(device).unsqueeze(0);
  sequence_ = std::move(prompt);
  if (budget_ <= 0) finish();
}

int64_t DecodeRun::step() {
  if (done_) throw InvalidArgument("DecodeRun::step: the run has ended");
  at::NoGradGuard no_grad;
  Stopwatch watch;
  DecodeObserver* observer = options_.observer;
  if (observer) observer->begin_step(step_);
  RouterControl* control = options_.router_control;
  forward_.router_bias = control ? control->bias() : nullptr;
  const ForwardOutput out = model_.forward(input_, forward_);
  if (control && !control->frozen()) tick_router_control(*control, out);
  const at::Tensor& logits = out.logits;  // [1, 1, V]: the sampler reads any shape of V scores
  int64_t token = sampler_.next(logits, sequence_);  // the one host sync of the step
  if (!options_.forced_tokens.empty()) {
    result_.sampled.push_back(token);
    token = options_.forced_tokens[static_cast<size_t>(step_)];
  }
  if (options_.record_logprobs) result_.logprobs.push_back(at::log_softmax(logits.reshape({-1}).to(at::kFloat), 0)[token].item<double>());
  if (observer) observer->end_step(step_, out);
  (step_ == 0 ? result_.stats.prefill_seconds : result_.stats.decode_seconds) += watch.seconds();
  if (step_ == 0) result_.stats.time_to_first_token = total_.seconds();
  sequence_.push_back(token);
  result_.tokens.push_back(token);
  ++step_;
  if (std::find(options_.stop_ids.begin(), options_.stop_ids.end(), token) != options_.stop_ids.end()) {
    result_.stop_reason = "stop_id";
    finish();
  } else if (step_ >= budget_) {
    finish();
  } else {
    input_ = options_.use_kv_cache ? next_input(token) : at::tensor(sequence_, at::kLong).to(input_.device()).unsqueeze(0);
  }
  return token;
}

at::Tensor DecodeRun::next_input(int64_t token) {
  // The last step's [1, 1] CPU input rewritten when nothing else holds it (at::full through the
  // dispatcher was 0.7% of a fine.json step).
  if (input_.is_cpu() && input_.numel() == 1 && input_.use_count() == 1 && input_.storage().use_count() == 1 && input_.is_contiguous()) {
    input_.data_ptr<int64_t>()[0] = token;
    return input_;
  }
  return at::full({1, 1}, token, at::TensorOptions().dtype(at::kLong).device(input_.device()));
}

void DecodeRun::tick_router_control(RouterControl& control, const ForwardOutput& out) {
  // The tokens this step added: the prompt at step 0, then one (a forward without the KV cache
  // recomputes the whole sequence, whose earlier tokens were counted already).
  const int64_t fresh = step_ == 0 ? result_.stats.prompt_tokens : 1;
  std::vector<at::Tensor> selected;
  for (const at::Tensor& s : out.selected) selected.push_back(s.narrow(1, s.size(1) - fresh, fresh));
  const at::Tensor counts = expert_choice_counts(selected, {}, model_.config().num_experts);
  if (counts.defined()) control.tick(counts);
}

void DecodeRun::stop(const std::string& reason) {
  result_.stop_reason = reason;
  if (!done_) finish();
}

void DecodeRun::finish() {
  done_ = true;
  result_.stats.generated_tokens = static_cast<int64_t>(result_.tokens.size());
  result_.stats.peak_rss_bytes = peak_rss_bytes();
  cache_ = model_.make_cache(options_.kv_dtype);  // a finished run holds no keys and values
}

GenerationResult run_to_end(DecodeRun& run, const TokenCallback& on_token) {
  while (!run.done()) {
    const int64_t token = run.step();
    if (on_token && !on_token(token)) run.stop("callback");
  }
  return run.result();
}

}  // namespace chronos
