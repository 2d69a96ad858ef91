// chronos-train init: a freshly initialised model directory.
#include <torch/utils.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "chronos-train/modes.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/model/config.h"
#include "chronos/model/pretrained.h"
#include "common/runtime_flags.h"

namespace fs = std::filesystem;

namespace chronos::train_cli {
namespace {

struct InitFlags {
  std::string config;
  std::string out;
  std::string tokenizer;
  uint64_t seed = 0;
  tools::RuntimeFlags runtime;
};

void copy_tokenizer(const std::string& tokenizer, const std::string& out) {
  if (!fs::is_regular_file(tokenizer)) throw IoError(cat(tokenizer, ": tokenizer file does not exist"));
  std::error_code ec;
  fs::copy_file(tokenizer, fs::path(out) / "tokenizer.json", fs::copy_options::overwrite_existing, ec);
  if (ec) throw IoError(cat(tokenizer, ": cannot copy into ", out, " (", ec.message(), ")"));
  // The chat template and special tokens travel with the vocabulary when they sit beside it.
  const fs::path side = fs::path(tokenizer).parent_path() / "tokenizer_config.json";
  if (fs::is_regular_file(side)) fs::copy_file(side, fs::path(out) / "tokenizer_config.json", fs::copy_options::overwrite_existing, ec);
}

int run_init(const InitFlags& flags) {
  tools::apply_runtime_flags(flags.runtime);
  const ModelConfig config = ModelConfig::load(flags.config);
  log::info(cat("config ", flags.config, ": ", config.to_json().dump()));
  torch::manual_seed(flags.seed);
  ChronosForCausalLM model(config);
  save_pretrained(*model, flags.out);
  if (!flags.tokenizer.empty()) copy_tokenizer(flags.tokenizer, flags.out);
  std::cout << "initialised " << count_parameters(config) << " parameters (seed " << flags.seed << ") in " << flags.out << "\n";
  return 0;
}

}  // namespace

tools::Subcommand add_init_mode(CLI::App& app) {
  auto flags = std::make_shared<InitFlags>();
  CLI::App* cmd = app.add_subcommand("init", "Write a freshly initialised model directory");
  cmd->add_option("--config", flags->config, "Model config JSON (e.g. configs/small.json)")->required();
  cmd->add_option("--out", flags->out, "Output model directory")->required();
  cmd->add_option("--tokenizer", flags->tokenizer, "tokenizer.json to copy into the directory");
  cmd->add_option("--seed", flags->seed, "Random seed for the initial weights")->capture_default_str();
  tools::add_runtime_flags(*cmd, flags->runtime, /*with_dtype=*/false);
  return {cmd, [flags] { return run_init(*flags); }};
}

}  // namespace chronos::train_cli
