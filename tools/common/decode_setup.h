// What chronos-generate and chronos-serve load before they decode: the model directory (in the
// --weights-dtype format, routed experts left out with --offload), its tokenizer, and with
// --offload the expert store and the predictive OffloadEngine over it.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>

#include "chronos/model/causal_lm.h"
#include "chronos/routing/intent_classifier.h"
#include "chronos/routing/router_control.h"
#include "chronos/runtime/offload_engine.h"
#include "chronos/store/expert_store.h"
#include "chronos/tokenizer/tokenizer.h"
#include "common/offload_flags.h"
#include "common/runtime_flags.h"

namespace chronos::tools {

// The flags that say what to load.
struct DecodeFlags {
  std::string model;           // --model DIR
  std::string tokenizer;       // --tokenizer FILE (empty: the model directory's tokenizer.json)
  std::string weights_dtype;   // --weights-dtype fp32|bf16|int8|int4 (empty: the directory's own format)
  std::string kv_dtype = "fp32";  // --kv-dtype fp32|bf16
  OffloadFlags offload;        // --offload DIR and its budgets
  std::string predict = "both";  // --predict none|lookahead|intent|both (with --offload)
};
// Adds --model (required), --tokenizer, --weights-dtype, --kv-dtype, the offload flags and --predict.
void add_decode_flags(CLI::App& app, DecodeFlags& flags);

struct DecodeSetup {
  std::string tokenizer_path;
  Tokenizer tokenizer;
  ChronosForCausalLM model{nullptr};
  std::unique_ptr<ExpertStore> store;        // with --offload
  std::optional<IntentClassifier> classifier;  // with --offload and an intent predictor, when the model has one
  std::unique_ptr<OffloadEngine> engine;     // with --offload
  // The model directory's trained router control (router_control.json), frozen: its bias is part
  // of how the model routes. Empty when the directory has none.
  std::optional<RouterControl> router_control;
};

// Errors name the directory or file at fault.
DecodeSetup load_for_decode(const DecodeFlags& flags, const Runtime& runtime);

}  // namespace chronos::tools
