#include "common/environment.h"
#include "common/flag_checks.h"
#include "common/runtime_flags.h"

#include "chronos/core/backend.h"
#include "chronos/core/error.h"
#include "chronos/core/dtype.h"
#include "chronos/core/log.h"

namespace chronos::tools {

void add_runtime_flags(CLI::App& app, RuntimeFlags& flags, bool with_dtype) {
  app.add_option("--device", flags.device, "Compute device: auto, cpu, cuda, cuda:N or mps")->capture_default_str();
  app.add_option("--threads", flags.threads, "Intra-op CPU threads (0 = OMP_NUM_THREADS when set, else all cores)")->capture_default_str()->check(thread_count());
  if (with_dtype) app.add_option("--dtype", flags.dtype, "Compute dtype: fp32, bf16 or fp16 (where the device supports it)")->capture_default_str();
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error or off (default: CHRONOS_LOG_LEVEL or info)");
  app.add_flag("--allow-nonfinite", flags.allow_nonfinite, "Load model weights even when they hold NaN or Inf (refused by default)");
}

LoadOptions load_options(const Runtime& runtime, c10::ScalarType dtype) {
  LoadOptions options;
  options.device = runtime.device;
  options.dtype = dtype;
  options.allow_nonfinite = runtime.allow_nonfinite;
  return options;
}

Runtime apply_runtime_flags(const RuntimeFlags& flags) {
  tools::apply_log_level_from_env();
  if (!flags.log_level.empty()) log::set_level(log::parse_level(flags.log_level));
  Runtime runtime;
  runtime.threads = configure_threads(flags.threads);
  runtime.allow_nonfinite = flags.allow_nonfinite;
  // The library names the value; the message says which flag carried it.
  const auto with_flag = [](const char* flag, auto&& step) {
    try {
      return step();
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(cat(flag, ": ", e.what()));
    }
  };
  runtime.device = with_flag("--device", [&] { return choose_device(flags.device); });
  runtime.dtype = with_flag("--dtype", [&] { return parse_float_dtype(flags.dtype); });
  with_flag("--dtype", [&] {
    check_compute_dtype(runtime.device, runtime.dtype);
    return 0;
  });
  log::debug(describe(probe_backend()));
  return runtime;
}

void add_weights_dtype_flag(CLI::App& app, std::string& value) {
  app.add_option("--weights-dtype", value,
                 "Format of the model's matrices, converted once at load: fp32, bf16, int8 or int4 (default: as the model "
                 "directory stores them, fp32 for a trained model; docs/decode.md \"Weight formats\")");
}

void add_kv_dtype_flag(CLI::App& app, std::string& value) {
  app.add_option("--kv-dtype", value,
                 "What the KV cache keeps: fp32 (as computed) or bf16 (half the bytes every token reads back; docs/decode.md "
                 "\"A bfloat16 KV cache\")")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
}

std::optional<WeightFormat> parse_weights_dtype(const std::string& value) {
  if (value.empty()) return std::nullopt;
  try {
    return parse_weight_format(value);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(cat("--weights-dtype: ", e.what()));
  }
}

}  // namespace chronos::tools
