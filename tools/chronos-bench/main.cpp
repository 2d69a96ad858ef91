// chronos-bench: benchmarks as executables. Each mode warms up, repeats, and reports medians and
// ratios measured in the same run; --json prints one object with the same figures.
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <iomanip>
#include <iostream>

#include "chronos/core/backend.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/core/timing.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/config.h"
#include "chronos/model/flops.h"
#include "common/runtime_flags.h"
#include "common/tool_main.h"

using namespace chronos;

namespace {

struct CommonFlags {
  int warmup = 2;
  int repeat = 5;
  bool json = false;
  int matmul_size = 2048;
  tools::RuntimeFlags runtime;
};

void add_common(CLI::App& cmd, CommonFlags& flags) {
  cmd.add_option("--warmup", flags.warmup, "Untimed warm-up iterations")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd.add_option("--repeat", flags.repeat, "Timed iterations (the median is reported)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd.add_option("--matmul-size", flags.matmul_size, "Side of the square matmul used as the peak reference")->capture_default_str()->check(CLI::PositiveNumber);
  cmd.add_flag("--json", flags.json, "Print one JSON object instead of text");
  tools::add_runtime_flags(cmd, flags.runtime);
}

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) at::empty({1}, at::TensorOptions().device(device)).cpu();  // waits for the stream
}

// Median FLOP/s of a plain square matmul on the device: the peak the utilisation figures divide by.
double measure_matmul_flops(const tools::Runtime& rt, int n, int warmup, int repeat) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions().dtype(rt.dtype).device(rt.device);
  at::Tensor a = at::randn({n, n}, opts), b = at::randn({n, n}, opts);
  for (int i = 0; i < std::max(warmup, 1); ++i) at::mm(a, b);
  synchronize(rt.device);
  std::vector<double> seconds;
  for (int i = 0; i < repeat; ++i) {
    Stopwatch watch;
    at::Tensor c = at::mm(a, b);
    synchronize(rt.device);
    seconds.push_back(watch.seconds());
  }
  return 2.0 * n * n * static_cast<double>(n) / median(seconds);
}

struct ForwardFlags {
  std::string config;
  int64_t seq_len = 512;
  int64_t batch = 4;
  uint64_t seed = 0;
  CommonFlags common;
};

int run_forward(const ForwardFlags& flags) {
  const tools::Runtime rt = tools::apply_runtime_flags(flags.common.runtime);
  const ModelConfig config = ModelConfig::load(flags.config);
  torch::manual_seed(flags.seed);
  ChronosForCausalLM model(config);
  model->to(rt.device, rt.dtype);
  model->eval();
  at::NoGradGuard no_grad;
  const at::Tensor ids = at::randint(config.vocab_size, {flags.batch, flags.seq_len}, at::TensorOptions().dtype(at::kLong).device(rt.device));

  const double peak = measure_matmul_flops(rt, flags.common.matmul_size, flags.common.warmup, flags.common.repeat);
  for (int i = 0; i < flags.common.warmup; ++i) model->forward(ids);
  synchronize(rt.device);
  std::vector<double> seconds;
  for (int i = 0; i < flags.common.repeat; ++i) {
    Stopwatch watch;
    ForwardOutput out = model->forward(ids);
    synchronize(rt.device);
    seconds.push_back(watch.seconds());
  }
  const double t = median(seconds);
  const double flops = forward_flops(config, flags.batch, flags.seq_len);
  const double tokens_per_s = static_cast<double>(flags.batch * flags.seq_len) / t;
  const double achieved = flops / t;
  const double mfu = achieved / peak;

  nlohmann::json result = {{"mode", "forward"},
                           {"config", flags.config},
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
  std::cout << std::fixed << std::setprecision(3) << "forward  " << flags.config << "  batch " << flags.batch << " x seq "
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

int main(int argc, char** argv) {
  return tools::run_tool("chronos-bench", [&] {
    CLI::App app{"chronos-bench: Chronos benchmarks (medians and ratios from one run)"};
    app.require_subcommand(1);
    ForwardFlags forward;
    CLI::App* fwd = app.add_subcommand("forward", "Prefill forward pass: tokens/s and model FLOPs utilisation");
    fwd->add_option("--config", forward.config, "Model config JSON")->required();
    fwd->add_option("--seq-len", forward.seq_len, "Tokens per sequence")->capture_default_str()->check(CLI::PositiveNumber);
    fwd->add_option("--batch", forward.batch, "Sequences per forward")->capture_default_str()->check(CLI::PositiveNumber);
    fwd->add_option("--seed", forward.seed, "Seed for weights and inputs")->capture_default_str();
    add_common(*fwd, forward.common);
    if (auto code = tools::parse_command_line(app, argc, argv, "chronos-bench")) return *code;
    if (fwd->parsed()) return run_forward(forward);
    return 1;
  });
}
