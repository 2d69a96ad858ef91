#include "chronos/model/quantized.h"

#include <ATen/ATen.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "chronos/core/error.h"

namespace chronos {
namespace {

void store_scale(uint8_t* dst, float scale) {
  const uint16_t bits = c10::detail::fp16_ieee_from_fp32_value(scale);
  dst[0] = static_cast<uint8_t>(bits & 0xff);
  dst[1] = static_cast<uint8_t>(bits >> 8);
}

float load_scale(const uint8_t* src) {
  return c10::detail::fp16_ieee_to_fp32_value(static_cast<uint16_t>(src[0] | (src[1] << 8)));
}

// One block of n <= kQuantBlock weights (the rest of the block counts as zeros).
void quantize_block_int8(const float* w, int64_t n, uint8_t* dst) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
  store_scale(dst, amax / 127.0f);
  const float d = load_scale(dst);  // quantize against the scale as stored, so that d * q is what was meant
  const float inv = d > 0 ? 1.0f / d : 0.0f;
  auto* q = reinterpret_cast<int8_t*>(dst + 2);
  for (int64_t i = 0; i < kQuantBlock; ++i)
    q[i] = i < n ? static_cast<int8_t>(std::clamp(std::nearbyint(w[i] * inv), -127.0f, 127.0f)) : 0;
}

void quantize_block_int4(const float* w, int64_t n, uint8_t* dst) {
  float extreme = 0;  // the weight of largest magnitude, sign kept: it maps to -8 exactly
  for (int64_t i = 0; i < n; ++i)
    if (std::fabs(w[i]) > std::fabs(extreme)) extreme = w[i];
  store_scale(dst, extreme / -8.0f);
  const float d = load_scale(dst);
  const float inv = d != 0 ? 1.0f / d : 0.0f;
  uint8_t* q = dst + 2;
  const auto nibble = [&](int64_t i) {
    const float v = i < n ? std::clamp(std::nearbyint(w[i] * inv), -8.0f, 7.0f) : 0.0f;
    return static_cast<uint8_t>(static_cast<int>(v) + 8);
  };
  for (int64_t j = 0; j < kQuantBlock / 2; ++j) q[j] = static_cast<uint8_t>(nibble(j) | (nibble(j + kQuantBlock / 2) << 4));
}

void dequantize_block(QuantFormat format, const uint8_t* src, int64_t n, float* dst) {
  const float d = load_scale(src);
  if (format == QuantFormat::int8) {
    const auto* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int64_t i = 0; i < n; ++i) dst[i] = d * static_cast<float>(q[i]);
  } else {
    const uint8_t* q = src + 2;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = i % (kQuantBlock / 2);
      const int nib = i < kQuantBlock / 2 ? (q[j] & 0x0f) : (q[j] >> 4);
      dst[i] = d * static_cast<float>(nib - 8);
    }
  }
}

void check_format(QuantFormat format, const char* what) {
  if (format != QuantFormat::int8 && format != QuantFormat::int4) throw InvalidArgument(cat(what, ": format must be int8 or int4"));
}

}  // namespace

const char* to_string(QuantFormat format) {
  switch (format) {
    case QuantFormat::none: return "none";
    case QuantFormat::int8: return "int8";
    case QuantFormat::int4: return "int4";
  }
  return "?";
}

int64_t quantized_block_bytes(QuantFormat format) {
  switch (format) {
    case QuantFormat::int8: return 2 + kQuantBlock;
    case QuantFormat::int4: return 2 + kQuantBlock / 2;
    case QuantFormat::none: break;
  }
  return 0;
}

int64_t quantized_row_bytes(QuantFormat format, int64_t cols) {
  return (cols + kQuantBlock - 1) / kQuantBlock * quantized_block_bytes(format);
}

void quantize_row(QuantFormat format, const float* src, int64_t cols, uint8_t* dst) {
  check_format(format, "quantize_row");
  const int64_t block_bytes = quantized_block_bytes(format);
  for (int64_t start = 0; start < cols; start += kQuantBlock, dst += block_bytes) {
    const int64_t n = std::min(kQuantBlock, cols - start);
    if (format == QuantFormat::int8) {
      quantize_block_int8(src + start, n, dst);
    } else {
      quantize_block_int4(src + start, n, dst);
    }
  }
}

void dequantize_row(QuantFormat format, const uint8_t* src, int64_t cols, float* dst) {
  check_format(format, "dequantize_row");
  const int64_t block_bytes = quantized_block_bytes(format);
  for (int64_t start = 0; start < cols; start += kQuantBlock, src += block_bytes)
    dequantize_block(format, src, std::min(kQuantBlock, cols - start), dst + start);
}

at::Tensor quantize_matrix(const at::Tensor& weight, QuantFormat format) {
  check_format(format, "quantize_matrix");
  if (weight.dim() != 2 || !at::isFloatingType(weight.scalar_type()))
    throw InvalidArgument(cat("quantize_matrix: expected a 2-d floating-point matrix, got ", weight.sizes(), " ", weight.scalar_type()));
  const at::Tensor w = weight.detach().to(at::kCPU, at::kFloat).contiguous();
  const int64_t rows = w.size(0), cols = w.size(1), row_bytes = quantized_row_bytes(format, cols);
  at::Tensor out = at::empty({rows, row_bytes}, at::TensorOptions().dtype(at::kByte));
  const float* src = w.data_ptr<float>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  for (int64_t r = 0; r < rows; ++r) quantize_row(format, src + r * cols, cols, dst + r * row_bytes);
  return out;
}

at::Tensor dequantize_matrix(const at::Tensor& quantized, QuantFormat format, int64_t cols) {
  check_format(format, "dequantize_matrix");
  const int64_t row_bytes = quantized_row_bytes(format, cols);
  if (quantized.dim() != 2 || quantized.scalar_type() != at::kByte || quantized.size(1) != row_bytes)
    throw InvalidArgument(cat("dequantize_matrix: expected uint8 [rows, ", row_bytes, "] for ", cols, " ", to_string(format),
                              " columns, got ", quantized.sizes(), " ", quantized.scalar_type()));
  const at::Tensor q = quantized.to(at::kCPU).contiguous();
  const int64_t rows = q.size(0);
  at::Tensor out = at::empty({rows, cols}, at::TensorOptions().dtype(at::kFloat));
  const uint8_t* src = q.data_ptr<uint8_t>();
  float* dst = out.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) dequantize_row(format, src + r * row_bytes, cols, dst + r * cols);
  return out;
}

}  // namespace chronos
