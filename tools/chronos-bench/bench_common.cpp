#include "chronos-bench/bench_common.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <regex>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/core/timing.h"
#include "chronos/model/weight_arena.h"
#include "chronos/model/pretrained.h"
#include "common/flag_checks.h"

namespace chronos::bench {

void add_common_flags(CLI::App& cmd, CommonFlags& flags) {
  cmd.add_option("--warmup", flags.warmup, "Untimed warm-up iterations")->capture_default_str()->check(tools::non_negative());
  cmd.add_option("--repeat", flags.repeat, "Timed iterations (the median is reported)")->capture_default_str()->check(tools::positive());
  cmd.add_option("--matmul-size", flags.matmul_size, "Side of the square matmul used as the peak reference")->capture_default_str()->check(tools::positive());
  cmd.add_flag("--json", flags.json, "Print one JSON object instead of text");
  tools::add_runtime_flags(cmd, flags.runtime);
}

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) at::empty({1}, at::TensorOptions().device(device)).cpu();  // waits for the stream
}

double median_seconds(const std::function<void()>& fn, int warmup, int repeat, const c10::Device& device) {
  for (int i = 0; i < std::max(warmup, 1); ++i) fn();
  synchronize(device);
  std::vector<double> seconds;
  for (int i = 0; i < repeat; ++i) {
    Stopwatch watch;
    fn();
    synchronize(device);
    seconds.push_back(watch.seconds());
  }
  return median(seconds);
}

double measure_matmul_flops(const tools::Runtime& rt, int n, int warmup, int repeat) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions().dtype(rt.dtype).device(rt.device);
  const at::Tensor a = at::randn({n, n}, opts), b = at::randn({n, n}, opts);
  return 2.0 * n * n * static_cast<double>(n) / median_seconds([&] { at::mm(a, b); }, warmup, repeat, rt.device);
}

ChronosForCausalLM load_bench_model(const std::string& config, const std::string& model, const tools::Runtime& rt, uint64_t seed,
                                    std::optional<WeightFormat> weights) {
  if (config.empty() == model.empty()) throw InvalidArgument("give exactly one of --config or --model");
  at::manual_seed(static_cast<int64_t>(seed));
  if (!model.empty()) {
    LoadOptions options = tools::load_options(rt, rt.dtype);
    options.weights_format = weights;
    return load_pretrained(model, options);
  }
  ChronosForCausalLM fresh(ModelConfig::load(config));
  fresh->to(rt.device, rt.dtype);
  if (weights && *weights != WeightFormat::fp32) {
    if (!rt.device.is_cpu() || rt.dtype != at::kFloat)
      throw InvalidArgument(cat("--weights-dtype ", to_string(*weights), " is for float32 compute on the CPU"));
    convert_weights(*fresh, *weights);
  }
  if (rt.device.is_cpu()) gather_weights_in_huge_pages(*fresh);  // as load_pretrained does
  fresh->eval();
  return fresh;
}

double dd_bytes_per_second(const std::string& path) {
  const std::string command = "dd if='" + path + "' of=/dev/null iflag=direct bs=4M 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw IoError("cannot run dd");
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = ::pclose(pipe);
  // "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 0.55 s, 1.9 GB/s"
  std::smatch m;
  static const std::regex line(R"((\d+) bytes .*copied, ([0-9.eE+-]+) s)");
  if (status != 0 || !std::regex_search(output, m, line))
    throw IoError(cat("dd iflag=direct failed on ", path, " (a file system without O_DIRECT?): ", output));
  return std::stod(m[1].str()) / std::stod(m[2].str());
}

}  // namespace chronos::bench
