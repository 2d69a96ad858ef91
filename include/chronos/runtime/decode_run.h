// One generation as a sequence of steps: the decode loop of generate() (runtime/generation.h)
// turned inside out, so that a caller can run one token of a request, then one of another (the
// server's fair interleaving of its decode slots, serve/request_scheduler.h), or stop a run
// between two tokens. generate() is a loop over step().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chronos/core/timing.h"
#include "chronos/model/causal_lm.h"
#include "chronos/runtime/generation.h"
#include "chronos/runtime/sampler.h"

namespace chronos {

class DecodeRun {
 public:
  // Validates as generate() does (options, prompt length against the context, token ids); the
  // prompt's forward runs in the first step(). `model` must outlive the run, as must
  // options.expert_source and options.observer.
  DecodeRun(ChronosForCausalLMImpl& model, std::vector<int64_t> prompt, GenerationOptions options);
  DecodeRun(const DecodeRun&) = delete;
  DecodeRun& operator=(const DecodeRun&) = delete;

  // Whether the run has ended (a stop id, the token budget, the context, or stop()).
  bool done() const { return done_; }
  // Runs one forward (the prompt's in the first call) and samples; returns the new token. Must not
  // be called once done().
  int64_t step();
  // Ends the run (when it has not ended) and makes `reason` the result's stop_reason (generate()
  // uses "callback", also for a token that had ended the run by itself).
  void stop(const std::string& reason);
  // Tokens generated so far.
  int64_t generated() const { return static_cast<int64_t>(result_.tokens.size()); }
  // The prompt and the tokens generated so far.
  const std::vector<int64_t>& sequence() const { return sequence_; }
  // The result so far (statistics filled in once done()).
  const GenerationResult& result() const { return result_; }

 private:
  ChronosForCausalLMImpl& model_;
  GenerationOptions options_;
  Sampler sampler_;
  KVCache cache_;
  ForwardOptions forward_;
  std::vector<int64_t> sequence_;
  at::Tensor input_;
  int64_t budget_ = 0;
  int64_t step_ = 0;
  bool done_ = false;
  Stopwatch total_;
  GenerationResult result_;
  void finish();
  void tick_router_control(RouterControl& control, const ForwardOutput& out);
  // The [1, 1] input of the step after `token` with the KV cache.
  at::Tensor next_input(int64_t token);
};

// Steps `run` to its end, handing each token to `on_token` (false stops the run: "callback").
GenerationResult run_to_end(DecodeRun& run, const TokenCallback& on_token = {});

}  // namespace chronos
