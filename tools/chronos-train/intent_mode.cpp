// chronos-train intent: train the IntentClassifier on activation logs of the model itself and save it
// into the model directory.
#include <torch/utils.h>

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>

#include "chronos-train/modes.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/model/pretrained.h"
#include "chronos/routing/intent_classifier.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/train/intent_data.h"
#include "chronos/train/intent_training.h"
#include "chronos/train/jsonl.h"
#include "common/flag_checks.h"
#include "common/runtime_flags.h"

namespace fs = std::filesystem;

namespace chronos::train_cli {
namespace {

struct IntentFlags {
  std::string model, data;
  int64_t max_new_tokens = 64;
  int64_t max_prompts = 0;
  bool sample = false;
  IntentTrainingConfig training;
  IntentClassifierConfig classifier;
  tools::RuntimeFlags runtime;
};

void print_metrics(const char* name, const IntentMetrics& m) {
  std::cout << "  " << std::left << std::setw(10) << name << std::right << std::fixed << std::setprecision(4) << " loss " << m.loss
            << "  precision " << m.precision << "  recall " << m.recall << "  recall@" << m.budget << " " << m.recall_at_budget << "\n";
}

int run_intent(IntentFlags f) {
  const tools::Runtime rt = tools::apply_runtime_flags(f.runtime);
  if (f.max_new_tokens <= 0) throw InvalidArgument(cat("--max-new-tokens must be > 0 (got ", f.max_new_tokens, ")"));
  f.training.validate();
  require_model_directory(f.model);
  const std::string tokenizer_path = (fs::path(f.model) / "tokenizer.json").string();
  if (!fs::is_regular_file(tokenizer_path)) throw IoError(cat(f.model, ": no tokenizer.json in the model directory"));
  if (!fs::is_regular_file(f.data)) throw IoError(cat(f.data, ": prompt data not found"));

  JsonlFile file(f.data);
  if (file.size() == 0) throw FormatError(cat(f.data, ": no prompt records"));
  const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path);
  ChronosForCausalLM model = load_pretrained(f.model, tools::load_options(rt, c10::kFloat));
  const ModelConfig& config = model->config();
  const int64_t max_prompt = config.max_position_embeddings - f.max_new_tokens;
  if (max_prompt <= 0)
    throw InvalidArgument(cat("--max-new-tokens ", f.max_new_tokens, " leaves no room for a prompt in max_position_embeddings ",
                              config.max_position_embeddings));

  size_t records = file.size();
  if (f.max_prompts > 0) records = std::min(records, static_cast<size_t>(f.max_prompts));
  std::vector<std::vector<int64_t>> prompts;
  prompts.reserve(records);
  for (size_t i = 0; i < records; ++i) prompts.push_back(intent_prompt_ids(tokenizer, file.parse(i), file.where(i), max_prompt));

  f.classifier.vocab_size = config.vocab_size;
  f.classifier.num_layers = config.num_hidden_layers;
  f.classifier.num_experts = config.num_experts;
  f.classifier.validate();
  log::info(cat("intent classifier ", f.classifier.to_json().dump(), "; ", prompts.size(), " prompts, max_new_tokens ", f.max_new_tokens));

  ActivationLogOptions logging;
  logging.max_new_tokens = f.max_new_tokens;
  logging.stop_ids = {config.eos_token_id};
  if (f.sample) logging.sampling = SamplingOptions{};
  logging.sampling.seed = f.training.seed;
  const size_t every = std::max<size_t>(1, prompts.size() / 10);
  std::vector<IntentExample> examples = collect_activation_logs(*model, prompts, logging, [&](size_t done, size_t total) {
    if (done % every == 0 || done == total) log::info(cat("activation logs: ", done, "/", total, " prompts"));
  });

  const int64_t log_every = std::max<int64_t>(1, f.training.steps / 10);
  IntentTrainingResult result = train_intent_classifier(f.classifier, examples, f.training, [&](int64_t step, double loss) {
    if (step % log_every == 0 || step == f.training.steps) log::info(cat("step ", step, "/", f.training.steps, " loss ", loss));
  });
  save_intent_classifier(*result.classifier, f.model);

  const IntentEvaluation& shown = result.val_examples > 0 ? result.validation : result.training;
  std::cout << "intent classifier: " << result.train_examples << " training / " << result.val_examples << " validation prompts; saved "
            << (fs::path(f.model) / kIntentClassifierWeights).string() << "\n";
  std::cout << (result.val_examples > 0 ? "validation" : "training (no validation split)") << " (threshold " << f.training.threshold
            << "):\n";
  print_metrics("classifier", shown.classifier);
  print_metrics("frequency", shown.baseline);
  return 0;
}

}  // namespace

tools::Subcommand add_intent_mode(CLI::App& app) {
  auto flags = std::make_shared<IntentFlags>();
  IntentFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand("intent", "Train the intent classifier (prompt -> experts decode will use) and save it in the model directory");
  cmd->add_option("--model", f.model, "Model directory (the classifier is saved into it)")->required();
  cmd->add_option("--data", f.data, "Prompts (JSONL: {\"text\": ...} or {\"conversations\": [...]})")->required();
  cmd->add_option("--max-new-tokens", f.max_new_tokens, "Tokens generated per prompt for the activation log")->capture_default_str()->check(tools::positive(1 << 16));
  cmd->add_option("--max-prompts", f.max_prompts, "Use at most the first N prompts (0 = all)")->capture_default_str()->check(tools::non_negative(1e9));
  cmd->add_flag("--sample", f.sample, "Sample the continuations (seeded) instead of greedy decoding");
  cmd->add_option("--steps", f.training.steps, "Optimizer steps")->capture_default_str()->check(tools::positive(1e9));
  cmd->add_option("--lr", f.training.lr, "AdamW learning rate")->capture_default_str()->check(tools::positive(10));
  cmd->add_option("--batch-size", f.training.batch_size, "Prompts per step")->capture_default_str()->check(tools::positive(1 << 16));
  cmd->add_option("--seed", f.training.seed, "Seed for the split, order, weights and sampling")->capture_default_str();
  cmd->add_option("--val-fraction", f.training.val_fraction, "Share of prompts held out for validation")->capture_default_str()->check(tools::number_in(0, 0.9, "in [0, 0.9]"));
  cmd->add_option("--threshold", f.training.threshold, "Probability above which an expert counts as predicted")->capture_default_str()->check(tools::number_in(0, 1, "in [0, 1]"));
  cmd->add_option("--embed-dim", f.classifier.embed_dim, "Classifier embedding width")->capture_default_str()->check(tools::positive(1 << 16));
  cmd->add_option("--hidden-size", f.classifier.hidden_size, "Classifier MLP width")->capture_default_str()->check(tools::positive(1 << 16));
  tools::add_runtime_flags(*cmd, f.runtime, /*with_dtype=*/false);
  return {cmd, [flags] { return run_intent(*flags); }};
}

}  // namespace chronos::train_cli
