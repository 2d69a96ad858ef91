// Flags every tool shares: --device, --threads, --dtype, --log-level, --allow-nonfinite; applied in one place.
#pragma once

#include <CLI/CLI.hpp>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <string>

#include "chronos/model/pretrained.h"

namespace chronos::tools {

struct RuntimeFlags {
  std::string device = "auto";
  int threads = 0;  // 0: all cores
  std::string dtype = "fp32";
  std::string log_level;  // empty: CHRONOS_LOG_LEVEL or info
  bool allow_nonfinite = false;
};

struct Runtime {
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = c10::kFloat;
  int threads = 1;
  bool allow_nonfinite = false;  // load weights holding NaN or Inf
};

// Adds the flags to `app` (or a subcommand).
void add_runtime_flags(CLI::App& app, RuntimeFlags& flags, bool with_dtype = true);

// How the tool loads a model directory: onto the runtime's device, in `dtype`.
LoadOptions load_options(const Runtime& runtime, c10::ScalarType dtype);

// Applies log level and threads, resolves the device and dtype; logs the backend summary at debug level.
Runtime apply_runtime_flags(const RuntimeFlags& flags);

// --kv-dtype fp32|bf16 on the tools that decode (chronos/model/kv_cache.h); value starts as "fp32".
void add_kv_dtype_flag(CLI::App& app, std::string& value);

// --weights-dtype fp32|bf16|int8|int4 on the tools that decode (chronos/model/weight_format.h).
void add_weights_dtype_flag(CLI::App& app, std::string& value);
// The flag's value; unset when empty (the model directory's own format). Throws InvalidArgument
// naming the flag.
std::optional<WeightFormat> parse_weights_dtype(const std::string& value);

}  // namespace chronos::tools
