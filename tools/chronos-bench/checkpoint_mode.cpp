// chronos-bench checkpoint: writes a random-weight checkpoint from a config.json (Chronos or a Hugging
// Face family, e.g. configs/hf/mixtral-1g.json) to benchmark decode, offload and packing on at any
// size, without downloading a model. The weights are random: the figures measure speed and memory,
// not what a trained model's routing would give.
#include <filesystem>
#include <iostream>

#include "chronos-bench/modes.h"
#include "chronos/core/dtype.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/core/timing.h"
#include "chronos/io/json_file.h"
#include "chronos/model/random_checkpoint.h"
#include "chronos/store/offload_config.h"
#include "common/environment.h"
#include "common/progress_line.h"

namespace fs = std::filesystem;

namespace chronos::bench {
namespace {

struct CheckpointFlags {
  std::string config;
  std::string out;
  std::string dtype = "bf16";
  std::string shard_size = "2G";
  uint64_t seed = 0;
  std::string log_level;
};

int run_checkpoint(const CheckpointFlags& flags) {
  tools::apply_log_level_from_env();
  if (!flags.log_level.empty()) log::set_level(log::parse_level(flags.log_level));
  RandomCheckpointOptions options;
  if (flags.dtype == "bf16") options.dtype = c10::kBFloat16;
  else if (flags.dtype == "fp16") options.dtype = c10::kHalf;
  else if (flags.dtype == "fp32") options.dtype = c10::kFloat;
  else throw InvalidArgument(cat("--dtype: expected bf16, fp16 or fp32 (got \"", flags.dtype, "\")"));
  options.shard_bytes = static_cast<uint64_t>(parse_byte_size(flags.shard_size, 0, "--shard-size"));
  options.seed = flags.seed;
  if (fs::exists(flags.out) && !fs::is_empty(flags.out)) throw IoError(cat(flags.out, ": exists and is not empty; give a new folder"));
  tools::ProgressLine progress;
  options.on_progress = [&](uint64_t done, uint64_t total) {
    progress.update("wrote", static_cast<int64_t>(done >> 20), static_cast<int64_t>(total >> 20), "MiB");
  };
  const Stopwatch watch;
  write_random_checkpoint(flags.out, read_json_file(flags.config), options);
  progress.done();
  uint64_t bytes = 0;
  for (const auto& entry : fs::directory_iterator(flags.out))
    if (entry.path().extension() == ".safetensors") bytes += entry.file_size();
  std::cout << "wrote " << flags.out << ": " << (bytes >> 20) << " MiB of " << flags.dtype << " weights in " << watch.seconds() << " s"
            << std::endl;
  return 0;
}

}  // namespace

tools::Subcommand add_checkpoint_mode(CLI::App& app) {
  auto flags = std::make_shared<CheckpointFlags>();
  CLI::App* cmd = app.add_subcommand("checkpoint", "Write a random-weight checkpoint of a config.json to benchmark on");
  cmd->add_option("--config", flags->config, "config.json of the model (Chronos, or mixtral/qwen2_moe/qwen3_moe/olmoe keys)")->required();
  cmd->add_option("--out", flags->out, "New folder for config.json and the safetensors files")->required();
  cmd->add_option("--dtype", flags->dtype, "Weights on disk: bf16, fp16 or fp32")->capture_default_str();
  cmd->add_option("--shard-size", flags->shard_size, "Most bytes per shard (K/M/G; 0: one model.safetensors)")->capture_default_str();
  cmd->add_option("--seed", flags->seed, "Seed of the random weights")->capture_default_str();
  cmd->add_option("--log-level", flags->log_level, "trace, debug, info, warn, error or off");
  return {cmd, [flags] { return run_checkpoint(*flags); }};
}

}  // namespace chronos::bench
