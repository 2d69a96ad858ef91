// What chronos-generate and chronos-serve load before they decode: the model directory (in the
// --weights-dtype format, routed experts left out with --offload), its tokenizer, and with
// --offload the expert store and the predictive OffloadEngine over it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "chronos/model/causal_lm.h"
#include "chronos/routing/intent_classifier.h"
#include "chronos/runtime/offload_engine.h"
#include "chronos/store/expert_store.h"
#include "chronos/tokenizer/tokenizer.h"
#include "common/offload_flags.h"
#include "common/runtime_flags.h"

namespace chronos::tools {

struct DecodeSetup {
  std::string tokenizer_path;
  Tokenizer tokenizer;
  ChronosForCausalLM model{nullptr};
  std::unique_ptr<ExpertStore> store;        // with --offload
  std::optional<IntentClassifier> classifier;  // with --offload and an intent predictor, when the model has one
  std::unique_ptr<OffloadEngine> engine;     // with --offload
};

// `tokenizer_path`: empty for the model directory's tokenizer.json. `predict`: none|lookahead|intent|both.
// Errors name the directory or file at fault.
DecodeSetup load_for_decode(const std::string& model_dir, const std::string& tokenizer_path, const Runtime& runtime,
                            const std::string& weights_dtype, const OffloadFlags& offload, const std::string& predict);

}  // namespace chronos::tools
