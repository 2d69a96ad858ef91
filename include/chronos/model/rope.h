// Rotary position tables and their application (docs/architecture.md). A table holds cos/sin for
// positions 0..length-1 over `width` columns (frequencies repeated twice, half-split layout); it
// grows on demand, and YaRN is decided once from the configured maximum [Q12].
#pragma once

#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include <map>
#include <utility>

namespace chronos {

struct ModelConfig;

class RotaryTable {
 public:
  // `width` columns built from width/2 frequencies theta^(-2i/width).
  RotaryTable(const ModelConfig& config, int64_t width);

  // cos and sin rows for positions [start, start+count), fp32, [count, width], on `device`.
  std::pair<at::Tensor, at::Tensor> rows(int64_t start, int64_t count, const c10::Device& device);
  // The cos and sin row of one position in the CPU table, width() floats each, for the one-token
  // paths (no tensor per call); valid until the table next grows.
  std::pair<const float*, const float*> cpu_row(int64_t position);

  int64_t width() const { return width_; }
  int64_t length() const { return length_; }
  const at::Tensor& inv_freq() const { return inv_freq_; }  // [width/2] fp32, YaRN applied

 private:
  void build(int64_t length);

  int64_t width_;
  int64_t length_ = 0;
  double theta_;
  bool yarn_;
  at::Tensor inv_freq_;                 // [width/2] fp32 (YaRN applied)
  at::Tensor cos_, sin_;                // [length, width] fp32 on the CPU
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> device_copies_;
};

// x: [B, S, heads, d]; cos/sin: [S, >= d] (the first d columns are used). Returns x's dtype.
// y = x * cos + rotate_half(x) * sin, rotate_half(x) = (-x[h:], x[:h]), h = d / 2.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace chronos
