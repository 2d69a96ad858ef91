// chronos-compare (docs/results.md): a vanilla MoE and the Chronos model trained identically (same
// initialisation of every tensor they share, same data in the same order, same steps, seed and
// schedule), then measured on the same held-out text and prompts: perplexity per domain, greedy
// agreement with each other, KV-cache bytes per token, resident decode speed, offloaded decode at a
// RAM / compute budget (reactive for vanilla, the predictive modes for Chronos), lookahead recall,
// and each training stage's own metric.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chronos/eval/compare_measure.h"
#include "chronos/model/config.h"
#include "chronos/train/stage.h"
#include "chronos/train/stage_recipe.h"
#include "chronos/train/trainer.h"

namespace chronos {

// The vanilla counterpart of a Chronos config: no LookaheadRouter (nor its losses), plain GQA in
// every layer, no simulated expert misses (so no soft gating onto the shared experts is learned),
// no temporal, locality or anchor term; the balance loss kept. When that moves the parameter count
// more than `tolerance` (relative) from the Chronos model's, the shared experts' width is set to
// bring it closest. Throws ConfigError when the config is not a Chronos MoE config or no width
// brings the two within the tolerance.
ModelConfig vanilla_config(const ModelConfig& chronos, double tolerance = 0.02);

// The two sides of a comparison.
enum class CompareSide { vanilla, chronos };
const char* to_string(CompareSide side);

// One training stage of the comparison, run on both sides in turn, each from its own previous stage.
struct CompareStage {
  TrainStage stage = TrainStage::Pretrain;
  std::string data;         // JSONL of the stage's kind
  int64_t steps = 0;        // optimizer steps (> 0)
  int64_t batch_size = 0;   // 0: the stage's default
  int64_t max_seq_len = 0;  // 0: the stage's default
  double lr = 0;            // 0: the stage's default
};

struct CompareOptions {
  ModelConfig config;          // the Chronos model (model_type chronos, MoE)
  std::string tokenizer;       // tokenizer.json of both models
  std::vector<CompareStage> stages;
  std::string out_dir;         // compare.json, compare.md, DIR/vanilla/<n>_<stage>, DIR/chronos/<n>_<stage>
  uint64_t seed = 0;           // initialisation, data order, dropout
  int64_t grad_accum = 1;
  RouterWeightOverrides lambdas;  // the Chronos side's; the vanilla side takes only the balance weight
  int64_t log_every = 0;       // optimizer steps between log lines (0: steps / 20)
  // Held-out text, prompts, KV contexts, budgets. Its calibration_data, when empty, is the first
  // stage's data; its on_phase is this on_phase.
  MeasureOptions measure;
  // Progress: a line per phase, and the trainer's progress.
  std::function<void(const std::string& phase)> on_phase;
  std::function<void(const TrainingProgress&)> on_progress;

  // Throws ConfigError / InvalidArgument naming the field: no stage, a stage without data or
  // steps, a missing file, an empty out_dir, non-positive counts or contexts.
  void validate() const;
};

// The TrainingStage one side trains with: the same recipe (data, seed, batch) on both sides, the
// side's loss weights. `previous_model_dir` is the side's model before this stage (its frozen
// reference where the stage needs one; "" before the first stage).
std::unique_ptr<TrainingStage> make_compare_stage(const CompareOptions& options, size_t stage_index, CompareSide side,
                                                  const ModelConfig& side_config, const Tokenizer& tokenizer,
                                                  const std::string& previous_model_dir);

// The two fresh models: `vanilla` takes every tensor the Chronos model also has (same name and
// shape) from it, so both start from the same initialisation wherever they can.
struct ComparePair {
  std::shared_ptr<ChronosForCausalLMImpl> vanilla, chronos;
};
ComparePair make_compare_models(const ModelConfig& chronos_config, uint64_t seed);

// One side trained through options.stages, starting from `model` (trained in place): each stage's
// model directory is out_dir/<side>/<n>_<stage> (out_dir/<side>/init the start), its log beside it.
struct SideTraining {
  std::string model_dir;                    // the last stage's directory
  nlohmann::json stages = nlohmann::json::object();  // per stage: metric, value, final_terms, steps, seconds, log
  std::vector<nlohmann::json> data_states;  // where each stage's data stood at its end
};
SideTraining train_compare_side(const CompareOptions& options, CompareSide side, ChronosForCausalLMImpl& model, const Tokenizer& tokenizer);

// options.measure with the defaults filled in from the rest of the options.
MeasureOptions compare_measure_options(const CompareOptions& options);

// Trains, measures and writes out_dir/compare.json ({"settings", "vanilla", "chronos",
// "greedy_agreement"}) and out_dir/compare.md; returns the JSON.
nlohmann::json run_compare(const CompareOptions& options);

// The Markdown table of a compare.json.
std::string compare_markdown(const nlohmann::json& compare);

}  // namespace chronos
