// Helpers shared by the loss files (private to src/train).
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <string>

#include "chronos/core/error.h"
#include "chronos/train/global_batch.h"

namespace chronos::losses {

// Dtype the maths runs in: fp32, or fp64 when the input already is (gradient checks use fp64).
inline at::ScalarType compute_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// `t` in its compute dtype (no copy when it already is).
inline at::Tensor upcast(const at::Tensor& t) { return t.to(compute_dtype(t)); }

// A bool [..] validity tensor from an optional mask of any dtype (nonzero = valid). Undefined
// mask: every position of `sizes` is valid.
inline at::Tensor valid_mask(const at::Tensor& mask, at::IntArrayRef sizes, const at::Device& device) {
  if (!mask.defined()) return at::ones(sizes, at::TensorOptions().dtype(at::kBool).device(device));
  return mask.to(device) != 0;
}

// sum(values over valid) / max(#valid, 1): masked positions never contribute, even NaN or inf.
// In a data-parallel step the count is the global batch's (train/global_batch.h).
inline at::Tensor masked_mean(const at::Tensor& values, const at::Tensor& valid) { return global_masked_mean(values, valid); }

// 0/1 tensor shaped like `probs` [...,E] marking the top-k experts of each row.
inline at::Tensor topk_set(const at::Tensor& probs, int64_t k) {
  const at::Tensor index = std::get<1>(probs.topk(k, -1));
  return at::zeros_like(probs).scatter_(-1, index, 1.0);
}

inline void require(bool ok, const std::string& message) {
  if (!ok) throw InvalidArgument(message);
}

inline std::string shape_of(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? "," : "") + std::to_string(t.size(d));
  return s + "]";
}

// Throws ConfigError "<field> must be <rule> (got <value>)" when `ok` is false.
inline void check_config(bool ok, const char* field, const char* rule, double value) {
  if (!ok) throw ConfigError(cat(field, " must be ", rule, " (got ", value, ")"));
}

}  // namespace chronos::losses
