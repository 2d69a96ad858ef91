// The flags chronos-compare and chronos-tune share: the training data and stages, and how a trained
// model is measured (held-out text, prompts, budgets).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "chronos/eval/compare.h"

namespace chronos::tools {

struct CompareFlags {
  std::string config, data, tokenizer, out;
  int64_t steps = 0;
  std::string stages = "pretrain";
  std::vector<std::string> stage_data, stage_steps;
  int64_t batch_size = 8, max_seq_len = 256;
  double lr = 2e-3;
  uint64_t seed = 0;
  int64_t grad_accum = 1, log_every = 0;
  RouterWeightOverrides lambdas;
  MeasureOptions measure;
};

// Adds the flags. `required`: --config, --data, --tokenizer, --heldout, --prompts, --out and --steps
// must be given (chronos-tune makes them optional for --apply-best alone).
void add_compare_flags(CLI::App& app, CompareFlags& flags, bool required);

// The options the flags describe (stages parsed, the config loaded). Throws InvalidArgument naming
// the flag for a bad --stages / --stage-data / --stage-steps value.
CompareOptions compare_options(const CompareFlags& flags);

}  // namespace chronos::tools
