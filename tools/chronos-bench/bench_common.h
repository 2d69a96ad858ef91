// Flags and measurements shared by the chronos-bench modes.
#pragma once

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>

#include "chronos/model/causal_lm.h"
#include "common/runtime_flags.h"

namespace chronos::bench {

struct CommonFlags {
  int warmup = 2;
  int repeat = 5;
  bool json = false;
  int matmul_size = 2048;
  tools::RuntimeFlags runtime;
};

// --warmup, --repeat, --matmul-size, --json and the runtime flags.
void add_common_flags(CLI::App& command, CommonFlags& flags);

// Blocks until queued device work is done (no-op on the CPU).
void synchronize(const c10::Device& device);

// Median seconds of `fn` over `repeat` runs after max(warmup, 1) untimed ones, synchronising the
// device around each timed run.
double median_seconds(const std::function<void()>& fn, int warmup, int repeat, const c10::Device& device);

// Median FLOP/s of a plain n x n matmul on the device in the runtime's dtype: the peak that the
// utilisation figures divide by, measured in the same run as the figure.
double measure_matmul_flops(const tools::Runtime& runtime, int n, int warmup, int repeat);

// The model a bench runs: a model directory's weights (`model`), or random weights for a config
// (`config`, seeded); exactly one of the two. In eval mode on the runtime's device and dtype, its
// matrices in `weights` (unset: a directory's own format, float32 for random weights).
ChronosForCausalLM load_bench_model(const std::string& config, const std::string& model, const tools::Runtime& runtime,
                                    uint64_t seed, std::optional<WeightFormat> weights = std::nullopt);

// Bytes per second of `dd if=path of=/dev/null iflag=direct bs=4M`, from its own report: the disk's
// direct (page-cache-free) read rate. IoError when dd fails (a file system without O_DIRECT).
double dd_bytes_per_second(const std::string& path);

}  // namespace chronos::bench
