#include "chronos/runtime/generation.h"

#include "chronos/core/error.h"
#include "chronos/runtime/decode_run.h"

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
  DecodeRun run(model, prompt, options);
  return run_to_end(run, on_token);
}

}  // namespace chronos
