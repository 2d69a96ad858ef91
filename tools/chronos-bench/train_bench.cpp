// chronos-bench train: training tokens/s and model FLOPs utilisation of one optimizer step
// (forward, the Chronos router regulariser, backward, AdamW) against a plain matmul measured in the
// same run. Training FLOPs are counted as 3x the forward's (the backward computes two products per
// forward product).
#include <ATen/ATen.h>

#include <iomanip>
#include <iostream>
#include <memory>

#include "chronos-bench/bench_common.h"
#include "chronos-bench/modes.h"
#include "chronos/core/backend.h"
#include "chronos/core/timing.h"
#include "chronos/model/flops.h"
#include "chronos/train/chronos_losses.h"
#include "chronos/train/optimizer.h"
#include "chronos/train/sequence_log_probs.h"
#include "common/flag_checks.h"

namespace chronos::bench {
namespace {

struct TrainFlags {
  std::string config;
  std::string model;
  int64_t seq_len = 512;
  int64_t batch = 4;
  uint64_t seed = 0;
  CommonFlags common;
};

int run_train(const TrainFlags& flags) {
  const tools::Runtime rt = tools::apply_runtime_flags(flags.common.runtime);
  // Master weights stay fp32; --dtype only sets the matmul reference here.
  tools::Runtime fp32 = rt;
  fp32.dtype = at::kFloat;
  ChronosForCausalLM model = load_bench_model(flags.config, flags.model, fp32, flags.seed);
  const ModelConfig& config = model->config();
  const std::string source = flags.model.empty() ? flags.config : flags.model;
  model->train();
  auto optimizer = make_adamw(*model, AdamWSettings{});
  const RouterLossWeights weights = RouterLossWeights::from_config(config);
  const at::Tensor ids = at::randint(config.vocab_size, {flags.batch, flags.seq_len}, at::TensorOptions().dtype(at::kLong).device(rt.device));

  auto step = [&] {
    const ForwardOutput out = model->forward(ids);
    const RouterLossTerms terms = chronos_router_losses(RouterLossInputs::from_forward(out, config.num_experts_per_tok), weights);
    (causal_lm_loss(out.logits, ids) + terms.total).backward();
    optimizer->step();
    optimizer->zero_grad();
  };
  const double peak = measure_matmul_flops(fp32, flags.common.matmul_size, flags.common.warmup, flags.common.repeat);
  const double t = median_seconds(step, flags.common.warmup, flags.common.repeat, rt.device);
  const double flops = 3 * forward_flops(config, flags.batch, flags.seq_len);
  const double tokens_per_s = static_cast<double>(flags.batch * flags.seq_len) / t;
  const double mfu = flops / t / peak;
  nlohmann::json result = {{"mode", "train"},
                           {"model", source},
                           {"device", rt.device.str()},
                           {"threads", rt.threads},
                           {"blas", probe_backend().blas},
                           {"batch", flags.batch},
                           {"seq_len", flags.seq_len},
                           {"parameters", count_parameters(config)},
                           {"median_step_ms", t * 1e3},
                           {"tokens_per_s", tokens_per_s},
                           {"train_gflop_per_step", flops / 1e9},
                           {"achieved_gflops", flops / t / 1e9},
                           {"matmul_gflops", peak / 1e9},
                           {"mfu", mfu},
                           {"repeat", flags.common.repeat}};
  if (flags.common.json) {
    std::cout << result.dump() << std::endl;
    return 0;
  }
  std::cout << std::fixed << std::setprecision(3) << "train  " << source << "  batch " << flags.batch << " x seq " << flags.seq_len
            << "  (" << rt.device.str() << ", fp32, " << rt.threads << " threads)\n"
            << "  median step        " << t * 1e3 << " ms over " << flags.common.repeat << " steps\n"
            << "  tokens_per_s       " << tokens_per_s << "\n"
            << "  training GFLOP     " << flops / 1e9 << " per step -> " << flops / t / 1e9 << " GFLOP/s\n"
            << "  matmul peak        " << peak / 1e9 << " GFLOP/s (" << flags.common.matmul_size << "^3)\n"
            << "  mfu                " << mfu << "\n";
  return 0;
}

}  // namespace

tools::Subcommand add_train_mode(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* cmd = app.add_subcommand("train", "Training step (forward + regulariser + backward + AdamW): tokens/s and MFU");
  auto* config = cmd->add_option("--config", flags->config, "Model config JSON (random weights)");
  cmd->add_option("--model", flags->model, "Model directory (its weights)")->excludes(config);
  cmd->add_option("--seq-len", flags->seq_len, "Tokens per sequence")->capture_default_str()->check(tools::positive());
  cmd->add_option("--batch", flags->batch, "Sequences per step")->capture_default_str()->check(tools::positive());
  cmd->add_option("--seed", flags->seed, "Seed for weights and inputs")->capture_default_str();
  add_common_flags(*cmd, flags->common);
  cmd->get_option("--repeat")->default_val(3);
  cmd->get_option("--warmup")->default_val(1);
  return {cmd, [flags] { return run_train(*flags); }};
}

}  // namespace chronos::bench
