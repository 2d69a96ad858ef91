// chronos-bench decode: batch-1 decode with the KV cache, tokens/s against the memory-bandwidth
// bound (weight bytes read per token / memory bandwidth measured in the same run). --busy-cores N
// runs N busy loops at the same priority during each decode run: a machine that runs other things.
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <atomic>
#include <iomanip>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "chronos-bench/bench_common.h"
#include "chronos-bench/modes.h"
#include "chronos/core/backend.h"
#include "chronos/core/error.h"
#include "chronos/core/timing.h"
#include "chronos/model/flops.h"
#include "chronos/model/weight_format.h"
#include "chronos/runtime/generation.h"
#include "common/flag_checks.h"

namespace chronos::bench {
namespace {

struct DecodeFlags {
  std::string config;
  std::string model;
  int64_t prompt_tokens = 128;
  int64_t new_tokens = 256;
  uint64_t seed = 0;
  int busy_cores = 0;
  std::string weights_dtype;
  std::string kv_dtype = "fp32";
  CommonFlags common;
};

// N threads that spin until destroyed, each keeping one core busy at the default priority.
class BusyLoad {
 public:
  explicit BusyLoad(int cores) {
    for (int i = 0; i < cores; ++i)
      threads_.emplace_back([this] {
        volatile uint64_t sink = 0;
        while (!stop_.load(std::memory_order_relaxed)) sink = sink + 1;
      });
  }
  ~BusyLoad() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
  }
  BusyLoad(const BusyLoad&) = delete;
  BusyLoad& operator=(const BusyLoad&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

struct Bandwidth {
  double read = 0;  // bytes/s of a reduction over 512 MiB: what streaming weights can reach
  double copy = 0;  // bytes/s read + written by a 512 MiB copy (STREAM-copy style), for reference
};

// Memory bandwidth over buffers far larger than the caches, best of several passes (slower passes
// saw interference). On this project's VMs the figure moves between runs and within one (39-69 GB/s),
// so the bench measures it again next to every decode run and pairs the two.
struct BandwidthProbe {
  at::Tensor source, target;
};

BandwidthProbe make_probe(const tools::Runtime& rt) {
  const int64_t floats = (512ll << 20) / 4;
  const auto options = at::TensorOptions().dtype(at::kFloat).device(rt.device);
  BandwidthProbe probe{at::ones({floats}, options), at::empty({floats}, options)};
  probe.target.copy_(probe.source);
  return probe;
}

Bandwidth measure_bandwidth(const tools::Runtime& rt, BandwidthProbe& probe, int passes) {
  at::NoGradGuard no_grad;
  const at::Tensor& source = probe.source;
  at::Tensor& target = probe.target;
  const int64_t floats = source.numel();
  std::vector<double> read, copy;
  for (int i = 0; i < passes; ++i) {
    Stopwatch watch;
    const at::Tensor s = source.sum();
    synchronize(rt.device);
    read.push_back(watch.seconds());
    watch.reset();
    target.copy_(source);
    synchronize(rt.device);
    copy.push_back(watch.seconds());
  }
  const double bytes = static_cast<double>(floats) * 4;
  return {bytes / *std::min_element(read.begin(), read.end()), 2 * bytes / *std::min_element(copy.begin(), copy.end())};
}

int run_decode(const DecodeFlags& flags) {
  const tools::Runtime rt = tools::apply_runtime_flags(flags.common.runtime);
  ChronosForCausalLM model = load_bench_model(flags.config, flags.model, rt, flags.seed, tools::parse_weights_dtype(flags.weights_dtype));
  const std::string weights = to_string(weights_format(*model));
  const ModelConfig& config = model->config();
  const std::string source = flags.model.empty() ? flags.config : flags.model;
  std::vector<int64_t> prompt(flags.prompt_tokens);
  const at::Tensor random_ids = at::randint(3, config.vocab_size, {flags.prompt_tokens}, at::kLong);
  for (int64_t i = 0; i < flags.prompt_tokens; ++i) prompt[i] = random_ids[i].item<int64_t>();

  GenerationOptions options;
  options.sampling.greedy = true;
  options.max_new_tokens = flags.new_tokens;
  options.max_context = flags.prompt_tokens + flags.new_tokens + 1;
  options.kv_dtype = parse_kv_dtype(flags.kv_dtype);

  BandwidthProbe probe = make_probe(rt);
  for (int i = 0; i < flags.common.warmup; ++i) {
    GenerationOptions short_run = options;
    short_run.max_new_tokens = std::min<int64_t>(16, flags.new_tokens);
    generate(*model, prompt, short_run);
  }
  const double bytes = decode_weight_bytes(*model);  // at the size the weights are stored in
  std::vector<double> decode_rates, prefill_rates, ttft, reads, copies, ratios, copy_ratios;
  for (int i = 0; i < flags.common.repeat; ++i) {
    const Bandwidth bandwidth = measure_bandwidth(rt, probe, 5);  // on a quiet machine
    const GenerationResult r = [&] {
      const BusyLoad load(flags.busy_cores);
      return generate(*model, prompt, options);
    }();
    decode_rates.push_back(r.stats.decode_tokens_per_s());
    prefill_rates.push_back(r.stats.prefill_tokens_per_s());
    ttft.push_back(r.stats.time_to_first_token);
    reads.push_back(bandwidth.read);
    copies.push_back(bandwidth.copy);
    ratios.push_back(decode_rates.back() * bytes / bandwidth.read);
    copy_ratios.push_back(decode_rates.back() * bytes / bandwidth.copy);
  }
  const double tokens_per_s = median(decode_rates);
  const Bandwidth bandwidth{median(reads), median(copies)};
  const double bound = bandwidth.read / bytes;
  const double ratio = median(ratios);  // each run against the bandwidth measured just before it

  nlohmann::json result = {{"mode", "decode"},
                           {"model", source},
                           {"device", rt.device.str()},
                           {"dtype", flags.common.runtime.dtype},
                           {"weights_dtype", weights},
                           {"kv_dtype", flags.kv_dtype},
                           {"threads", rt.threads},
                           {"busy_cores", flags.busy_cores},
                           {"blas", probe_backend().blas},
                           {"prompt_tokens", flags.prompt_tokens},
                           {"new_tokens", flags.new_tokens},
                           {"tokens_per_s", tokens_per_s},
                           {"ms_per_token", 1e3 / tokens_per_s},
                           {"prefill_tokens_per_s", median(prefill_rates)},
                           {"time_to_first_token_ms", median(ttft) * 1e3},
                           {"weight_mb_per_token", bytes / 1e6},
                           {"bytes_per_token", bytes},
                           {"memory_gb_per_s", bandwidth.read / 1e9},
                           {"copy_gb_per_s", bandwidth.copy / 1e9},
                           {"bound_ratio_copy", median(copy_ratios)},
                           {"bound_ratio_min", *std::min_element(ratios.begin(), ratios.end())},
                           {"bound_ratio_max", *std::max_element(ratios.begin(), ratios.end())},
                           {"bound_tokens_per_s", bound},
                           {"bound_ratio", ratio},
                           {"repeat", flags.common.repeat}};
  if (flags.common.json) {
    std::cout << result.dump() << std::endl;
    return 0;
  }
  std::cout << std::fixed << std::setprecision(3) << "decode  " << source << "  prompt " << flags.prompt_tokens << " + "
            << flags.new_tokens << " new tokens, batch 1 (" << rt.device.str() << ", " << flags.common.runtime.dtype << ", weights " << weights
            << ", KV " << flags.kv_dtype << ", "
            << rt.threads << " threads" << (flags.busy_cores > 0 ? cat(", ", flags.busy_cores, " busy cores beside it") : "") << ")\n"
            << "  tokens_per_s        " << tokens_per_s << "  (" << 1e3 / tokens_per_s << " ms/token, median of "
            << flags.common.repeat << ")\n"
            << "  prefill tokens/s    " << median(prefill_rates) << ", time to first token " << median(ttft) * 1e3 << " ms\n"
            << "  weights per token   " << bytes / 1e6 << " MB, memory bandwidth " << bandwidth.read / 1e9 << " GB/s read ("
            << bandwidth.copy / 1e9 << " GB/s copy)\n"
            << "  bound               " << bound << " tokens/s (median bandwidth)\n"
            << "  bound_ratio         " << ratio << "  (median of the runs, each against the bandwidth measured "
            << "just before it; " << *std::min_element(ratios.begin(), ratios.end()) << "-"
            << *std::max_element(ratios.begin(), ratios.end()) << ")\n";
  return 0;
}

}  // namespace

tools::Subcommand add_decode_mode(CLI::App& app) {
  auto flags = std::make_shared<DecodeFlags>();
  CLI::App* cmd = app.add_subcommand("decode", "Batch-1 decode with the KV cache: tokens/s against the memory-bandwidth bound");
  auto* config = cmd->add_option("--config", flags->config, "Model config JSON (random weights)");
  cmd->add_option("--model", flags->model, "Model directory (its weights)")->excludes(config);
  cmd->add_option("--prompt-tokens", flags->prompt_tokens, "Prompt length")->capture_default_str()->check(tools::positive());
  cmd->add_option("--new-tokens", flags->new_tokens, "Tokens to generate")->capture_default_str()->check(tools::number_in(2, 1 << 20, "in [2, 1048576]"));
  cmd->add_option("--seed", flags->seed, "Seed for weights and prompt")->capture_default_str();
  cmd->add_option("--busy-cores", flags->busy_cores, "Busy loops at the same priority beside each decode run (a busy machine)")
      ->capture_default_str()->check(tools::number_in(0, 256, "in [0, 256]"));
  tools::add_weights_dtype_flag(*cmd, flags->weights_dtype);
  tools::add_kv_dtype_flag(*cmd, flags->kv_dtype);
  add_common_flags(*cmd, flags->common);
  cmd->get_option("--repeat")->default_val(5);
  cmd->get_option("--warmup")->default_val(1);
  return {cmd, [flags] { return run_decode(*flags); }};
}

}  // namespace chronos::bench
