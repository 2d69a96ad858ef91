// chronos-compare's measuring half, for one trained model: held-out perplexity per domain, KV bytes
// per token, resident greedy decode, and offloaded decode from an fp32 expert cache packed for it
// (reactive, and for a model with a LookaheadRouter the lookahead prefetch too).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chronos/store/offload_config.h"
#include "chronos/tokenizer/tokenizer.h"

namespace chronos {

class ChronosForCausalLMImpl;

struct MeasureOptions {
  std::string heldout;           // JSONL text records grouped by "domain"
  std::string prompts;           // JSONL prompts ({"text"} or chat records)
  std::string calibration_data;  // JSONL the expert cache's clustering is calibrated on (text or chat records)
  int64_t eval_records = 0;      // 0: all
  int64_t eval_seq_len = 256;
  int64_t num_prompts = 16;      // 0: all
  int64_t max_prompt_tokens = 128;
  int64_t max_new_tokens = 32;
  std::vector<int64_t> kv_contexts = {512, 4096, 32768};
  std::string ram_budget = "50%", compute_budget = "50%";
  SsdThrottle throttle;
  int io_threads = 4;
  int64_t calibration_tokens = 16384;
  std::function<void(const std::string& phase)> on_phase;

  // Throws IoError for a missing heldout / prompts file, ConfigError naming the field for counts
  // out of range, a context < 1 or bad budgets text.
  void validate() const;
};

// The prompts of a prompts JSONL (the last max_prompt_tokens ids of each, the first `limit`; 0: all).
// Throws IoError for a missing file, FormatError "FILE:LINE: ..." for a bad record or an empty file.
std::vector<std::vector<int64_t>> read_prompt_ids(const std::string& path, const Tokenizer& tokenizer, int64_t max_prompt_tokens,
                                                  int64_t limit);

// Measures `model` (whose directory is `model_dir`; its expert_cache is packed there when missing).
// `predictive`: also decode with lookahead prefetch and report the faster of the two offloaded
// modes as the model's. `greedy_tokens` receives the resident greedy ids per prompt.
nlohmann::json measure_model(ChronosForCausalLMImpl& model, const std::string& model_dir, const Tokenizer& tokenizer,
                             const MeasureOptions& options, bool predictive, std::vector<std::vector<int64_t>>& greedy_tokens);

// {"rate", "compared", "equal", "mean_common_prefix"} of two models' greedy ids on the same prompts.
nlohmann::json greedy_agreement_json(const std::vector<std::vector<int64_t>>& a, const std::vector<std::vector<int64_t>>& b);

}  // namespace chronos
