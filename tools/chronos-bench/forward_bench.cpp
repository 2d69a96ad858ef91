// chronos-bench forward: prefill tokens/s and model FLOPs utilisation.
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <iomanip>
#include <iostream>
#include <memory>

#include "chronos-bench/bench_common.h"
#include "chronos-bench/modes.h"
#include "chronos/core/backend.h"
#include "chronos/core/timing.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/config.h"
#include "chronos/model/flops.h"
#include "common/flag_checks.h"

namespace chronos::bench {
namespace {

struct ForwardFlags {
  std::string config;
  std::string model;
  int64_t seq_len = 512;
  int64_t batch = 4;
  uint64_t seed = 0;
  CommonFlags common;
};

int run_forward(const ForwardFlags& flags) {
  const tools::Runtime rt = tools::apply_runtime_flags(flags.common.runtime);
  ChronosForCausalLM model = load_bench_model(flags.config, flags.model, rt, flags.seed);
  const ModelConfig& config = model->config();
  const std::string source = flags.model.empty() ? flags.config : flags.model;
  at::NoGradGuard no_grad;
  const at::Tensor ids = at::randint(config.vocab_size, {flags.batch, flags.seq_len}, at::TensorOptions().dtype(at::kLong).device(rt.device));

  const double peak = measure_matmul_flops(rt, flags.common.matmul_size, flags.common.warmup, flags.common.repeat);
  const double t = median_seconds([&] { model->forward(ids); }, flags.common.warmup, flags.common.repeat, rt.device);
  const double flops = forward_flops(config, flags.batch, flags.seq_len);
  const double tokens_per_s = static_cast<double>(flags.batch * flags.seq_len) / t;
  const double achieved = flops / t;
  const double mfu = achieved / peak;

  nlohmann::json result = {{"mode", "forward"},
                           {"model", source},
                           {"device", rt.device.str()},
                           {"dtype", flags.common.runtime.dtype},
                           {"threads", rt.threads},
                           {"blas", probe_backend().blas},
                           {"batch", flags.batch},
                           {"seq_len", flags.seq_len},
                           {"parameters", count_parameters(config)},
                           {"median_ms", t * 1e3},
                           {"tokens_per_s", tokens_per_s},
                           {"model_gflop", flops / 1e9},
                           {"achieved_gflops", achieved / 1e9},
                           {"matmul_gflops", peak / 1e9},
                           {"matmul_size", flags.common.matmul_size},
                           {"mfu", mfu},
                           {"repeat", flags.common.repeat}};
  if (flags.common.json) {
    std::cout << result.dump() << std::endl;
    return 0;
  }
  std::cout << std::fixed << std::setprecision(3) << "forward  " << source << "  batch " << flags.batch << " x seq "
            << flags.seq_len << "  (" << rt.device.str() << ", " << flags.common.runtime.dtype << ", " << rt.threads
            << " threads, " << result["blas"].get<std::string>() << ")\n"
            << "  median forward     " << t * 1e3 << " ms over " << flags.common.repeat << " runs\n"
            << "  tokens_per_s       " << tokens_per_s << "\n"
            << "  model GFLOP        " << flops / 1e9 << "  -> " << achieved / 1e9 << " GFLOP/s\n"
            << "  matmul peak        " << peak / 1e9 << " GFLOP/s (" << flags.common.matmul_size << "^3)\n"
            << "  mfu                " << mfu << "\n";
  return 0;
}

}  // namespace

tools::Subcommand add_forward_mode(CLI::App& app) {
  auto flags = std::make_shared<ForwardFlags>();
  CLI::App* fwd = app.add_subcommand("forward", "Prefill forward pass: tokens/s and model FLOPs utilisation");
  auto* config = fwd->add_option("--config", flags->config, "Model config JSON (random weights)");
  fwd->add_option("--model", flags->model, "Model directory (its weights)")->excludes(config);
  fwd->add_option("--seq-len", flags->seq_len, "Tokens per sequence")->capture_default_str()->check(tools::positive());
  fwd->add_option("--batch", flags->batch, "Sequences per forward")->capture_default_str()->check(tools::positive());
  fwd->add_option("--seed", flags->seed, "Seed for weights and inputs")->capture_default_str();
  add_common_flags(*fwd, flags->common);
  return {fwd, [flags] { return run_forward(*flags); }};
}

}  // namespace chronos::bench
