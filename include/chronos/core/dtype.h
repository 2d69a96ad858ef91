// Names of floating-point dtypes on the command line and in configs, and what each device can compute in.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace chronos {

// Parses fp32|float32, fp16|float16|half, bf16|bfloat16. Throws InvalidArgument otherwise.
c10::ScalarType parse_float_dtype(const std::string& name);

// Short name used in configs and logs: "fp32", "fp16", "bf16" (other types: c10's name).
std::string dtype_name(c10::ScalarType type);

// Throws InvalidArgument when this LibTorch cannot run the model's matmuls in `type` on `device`
// (e.g. fp16 on the CPU with LibTorch 1.13).
void check_compute_dtype(const c10::Device& device, c10::ScalarType type);

}  // namespace chronos
