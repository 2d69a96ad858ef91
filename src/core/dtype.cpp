#include "chronos/core/dtype.h"

#include <torch/version.h>

#include "chronos/core/error.h"

namespace chronos {

c10::ScalarType parse_float_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32" || name == "float") return c10::kFloat;
  if (name == "fp16" || name == "float16" || name == "half") return c10::kHalf;
  if (name == "bf16" || name == "bfloat16") return c10::kBFloat16;
  throw InvalidArgument(cat("unknown dtype '", name, "' (expected fp32, fp16 or bf16)"));
}

std::string dtype_name(c10::ScalarType type) {
  switch (type) {
    case c10::kFloat: return "fp32";
    case c10::kHalf: return "fp16";
    case c10::kBFloat16: return "bf16";
    default: return c10::toString(type);
  }
}

void check_compute_dtype(const c10::Device& device, c10::ScalarType type) {
  if (type != c10::kFloat && type != c10::kHalf && type != c10::kBFloat16)
    throw InvalidArgument(cat("compute dtype ", dtype_name(type), " is not a floating type the model supports"));
  // LibTorch before 2.1 has no fp16 matmul on the CPU ("addmm_impl_cpu_" not implemented for 'Half').
  if (device.is_cpu() && type == c10::kHalf && (TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 1)))
    throw InvalidArgument(cat("dtype fp16 is not supported on the CPU by LibTorch ", TORCH_VERSION,
                              " (use fp32 or bf16; fp16 weights are converted on load)"));
}

}  // namespace chronos
