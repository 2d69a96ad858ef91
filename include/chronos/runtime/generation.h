// The decode loop: prefill the prompt, then one token at a time with the KV cache (or, for
// verification, recomputing the whole sequence each step), sampling with a Sampler and handing
// each token to a callback as soon as it exists.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chronos/core/memory.h"
#include "chronos/model/causal_lm.h"
#include "chronos/runtime/sampler.h"

namespace chronos {

class RouterControl;  // routing/router_control.h

// Optional hooks into the decode loop (the offload engine uses them, runtime/offload_engine.h).
// Step 0 is the prompt's forward (prefill), step s >= 1 the forward of the s-th generated token's
// predecessor, i.e. the step that produces generated token s.
class DecodeObserver {
 public:
  virtual ~DecodeObserver() = default;
  // Before step `step`'s forward.
  virtual void begin_step(int64_t step) {}
  // Right after block 0 of step `step` (ForwardOptions::on_lookahead), lookahead_probs [1,S,K+1,E] (or [1,S,K+1,L,E]).
  virtual void on_lookahead(int64_t step, const at::Tensor& lookahead_probs) {}
  // Before MoE layer `layer` of step `step` routes (ForwardOptions::on_moe_input), with its input [1,S,H].
  virtual void on_moe_input(int64_t step, int64_t layer, const at::Tensor& moe_input) {}
  // After step `step`'s forward and sampling, with its output (selected: per layer [1,S,k]).
  virtual void end_step(int64_t step, const ForwardOutput& output) {}
};

struct GenerationOptions {
  int64_t max_new_tokens = 256;    // upper bound on generated tokens
  std::vector<int64_t> stop_ids;   // generation ends after producing one of these (e.g. EOS)
  // Generation ends once the text contains one of these (non-empty). Ids carry no text, so these
  // are applied by a TextStream (runtime/text_stream.h) fed from the TokenCallback.
  std::vector<std::string> stop_strings;
  bool use_kv_cache = true;        // false: recompute the full sequence every step
  KvDtype kv_dtype = KvDtype::fp32;  // what the KV cache keeps (chronos/model/kv_cache.h)
  int64_t max_context = 0;         // > 0: total tokens allowed (prompt + generated); 0: max_position_embeddings
  SamplingOptions sampling;
  ExpertSource* expert_source = nullptr;  // null: the model's own experts
  DecodeObserver* observer = nullptr;     // null: no hooks (the plain loop)
  // Teacher forcing (evaluation): when non-empty, step i emits forced_tokens[i] whatever the sampler
  // picks (its pick goes to GenerationResult::sampled), and generation ends after the last one.
  std::vector<int64_t> forced_tokens;
  bool record_logprobs = false;  // GenerationResult::logprobs (one more host sync per step)
  // A router control (routing/router_control.h; null: none): its bias steers every forward, and,
  // unless frozen, it ticks after each with the new tokens' top-k choices (one small copy to the host).
  RouterControl* router_control = nullptr;

  // Throws ConfigError naming the field: negative max_new_tokens or max_context, a negative stop
  // id, an empty stop string, and SamplingOptions::validate's rules.
  void validate() const;
};

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0;      // prompt forward (time to the first token's logits)
  double decode_seconds = 0;       // every later step
  double time_to_first_token = 0;  // from the call to the first sampled token
  int64_t peak_rss_bytes = 0;      // process high-water mark (VmHWM), 0 where unknown
  double prefill_tokens_per_s() const { return prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0; }
  double decode_tokens_per_s() const;
};

struct GenerationResult {
  std::vector<int64_t> tokens;  // generated ids (the stop id included when one ended the run)
  std::string stop_reason;      // "stop_id", "max_new_tokens", "context", or "callback"
  std::vector<int64_t> sampled; // with forced_tokens: the sampler's pick at each step
  std::vector<double> logprobs; // with record_logprobs: natural log-probability of each emitted token
  GenerationStats stats;
};

// Called with each new id; return false to stop (e.g. a stop string was completed).
using TokenCallback = std::function<bool(int64_t token)>;

// Generates from `prompt` (non-empty). Throws InvalidArgument when the prompt does not fit the context.
GenerationResult generate(ChronosForCausalLMImpl& model, const std::vector<int64_t>& prompt, const GenerationOptions& options,
                          const TokenCallback& on_token = {});

}  // namespace chronos
