#include "model/cpu_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/work_pool.h"

// One clone per instruction set, picked once at load time (GCC/Clang ifunc): the generic vectors
// below become zmm, ymm or xmm code.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CHRONOS_SIMD_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define CHRONOS_SIMD_CLONES
#endif

namespace chronos::cpu {
namespace {

using Vec16 = float __attribute__((vector_size(64)));
using Vec8 = float __attribute__((vector_size(32)));
using Vec4 = float __attribute__((vector_size(16)));
using Int8x16 = int8_t __attribute__((vector_size(16)));
using Uint8x16 = uint8_t __attribute__((vector_size(16)));
constexpr int64_t kLanes = 16;

inline Vec16 load(const float* p) {
  Vec16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline float reduce(Vec16 a) {
  const Vec8 b = __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15);
  const Vec4 c = __builtin_shufflevector(b, b, 0, 1, 2, 3) + __builtin_shufflevector(b, b, 4, 5, 6, 7);
  return (c[0] + c[2]) + (c[1] + c[3]);
}

}  // namespace

// Four independent accumulators hide the FMA latency; `a` is one sequential stream, which the
// hardware prefetcher follows.
CHRONOS_SIMD_CLONES
float dot(const float* a, const float* b, int64_t n) {
  Vec16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    a0 += load(a + i) * load(b + i);
    a1 += load(a + i + kLanes) * load(b + i + kLanes);
    a2 += load(a + i + 2 * kLanes) * load(b + i + 2 * kLanes);
    a3 += load(a + i + 3 * kLanes) * load(b + i + 3 * kLanes);
  }
  for (; i + kLanes <= n; i += kLanes) a0 += load(a + i) * load(b + i);
  float sum = reduce((a0 + a1) + (a2 + a3));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

namespace {

// The block's fp16 scale. Inline into the kernels' clones: with F16C (x86-64-v3 and up) _Float16 converts
// in one instruction, where the portable bit manipulation costs ~20 per block.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
inline float block_scale(const uint8_t* block) {
  _Float16 scale;
  std::memcpy(&scale, block, sizeof scale);
  return static_cast<float>(scale);
}
#else
inline float block_scale(const uint8_t* block) {
  return c10::detail::fp16_ieee_to_fp32_value(static_cast<uint16_t>(block[0] | (block[1] << 8)));
}
#endif

// The weights of a partial last block, dequantised, against the rest of x.
float tail_dot(QuantFormat format, const uint8_t* block, const float* x, int64_t n) {
  float w[kQuantBlock];
  dequantize_row(format, block, n, w);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

}  // namespace

// Per block: 32 int8 quants widened to two float vectors, their dot with x scaled once by the block's
// scale; two accumulators over alternate blocks.
CHRONOS_SIMD_CLONES
float dot_int8(const uint8_t* row, const float* x, int64_t n) {
  constexpr int64_t kBytes = 2 + kQuantBlock;
  const int64_t full = n / kQuantBlock;
  Vec16 acc[2] = {{}, {}};
  for (int64_t b = 0; b < full; ++b) {
    const uint8_t* block = row + b * kBytes;
    Int8x16 q0, q1;
    std::memcpy(&q0, block + 2, sizeof q0);
    std::memcpy(&q1, block + 2 + 16, sizeof q1);
    const float* xb = x + b * kQuantBlock;
    const Vec16 p = __builtin_convertvector(q0, Vec16) * load(xb) + __builtin_convertvector(q1, Vec16) * load(xb + kLanes);
    acc[b & 1] += block_scale(block) * p;
  }
  float sum = reduce(acc[0] + acc[1]);
  if (full * kQuantBlock < n) sum += tail_dot(QuantFormat::int8, row + full * kBytes, x + full * kQuantBlock, n - full * kQuantBlock);
  return sum;
}

// Per block: 16 bytes of nibbles; the low nibbles are weights 0..15, the high ones 16..31, each q + 8.
CHRONOS_SIMD_CLONES
float dot_int4(const uint8_t* row, const float* x, int64_t n) {
  constexpr int64_t kBytes = 2 + kQuantBlock / 2;
  const int64_t full = n / kQuantBlock;
  Vec16 acc[2] = {{}, {}};
  for (int64_t b = 0; b < full; ++b) {
    const uint8_t* block = row + b * kBytes;
    Uint8x16 q;
    std::memcpy(&q, block + 2, sizeof q);
    const Vec16 lo = __builtin_convertvector(q & 0x0f, Vec16) - 8.0f;
    const Vec16 hi = __builtin_convertvector(q >> 4, Vec16) - 8.0f;
    const float* xb = x + b * kQuantBlock;
    acc[b & 1] += block_scale(block) * (lo * load(xb) + hi * load(xb + kLanes));
  }
  float sum = reduce(acc[0] + acc[1]);
  if (full * kQuantBlock < n) sum += tail_dot(QuantFormat::int4, row + full * kBytes, x + full * kQuantBlock, n - full * kQuantBlock);
  return sum;
}

namespace {

// Row `row` of a [rows, cols] matrix, float32 or quantized, dotted with x.
inline float row_dot(QuantFormat quant, const void* matrix, int64_t row, const float* x, int64_t cols) {
  switch (quant) {
    case QuantFormat::int8: return dot_int8(static_cast<const uint8_t*>(matrix) + row * quantized_row_bytes(quant, cols), x, cols);
    case QuantFormat::int4: return dot_int4(static_cast<const uint8_t*>(matrix) + row * quantized_row_bytes(quant, cols), x, cols);
    case QuantFormat::none: break;
  }
  return dot(static_cast<const float*>(matrix) + row * cols, x, cols);
}

// Rows [first, last) of y = W x.
void gemv_rows(const float* weight, const float* x, float* y, int64_t in, int64_t first, int64_t last) {
  for (int64_t row = first; row < last; ++row) y[row] = dot(weight + row * in, x, in);
}

}  // namespace

void softmax_in_place(float* scores, int64_t n) {
  const float top = *std::max_element(scores, scores + n);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (scores[i] = std::exp(scores[i] - top));
  for (int64_t i = 0; i < n; ++i) scores[i] /= sum;
}

bool is_plain_float(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() &&
         (!c10::GradMode::is_enabled() || !t.requires_grad());
}

bool gemv_applies(const at::Tensor& x, const at::Tensor& weight) {
  return is_plain_float(x) && is_plain_float(weight) && weight.dim() == 2 && x.numel() == weight.size(1);
}

void gemv(const float* weight, const float* x, float* y, int64_t out, int64_t in) {
  constexpr int64_t kMinChunkBytes = 128 << 10;
  const int64_t grain = std::max<int64_t>(4, kMinChunkBytes / (static_cast<int64_t>(sizeof(float)) * std::max<int64_t>(in, 1)));
  parallel_chunks(out, grain, [&](int64_t first, int64_t last) { gemv_rows(weight, x, y, in, first, last); });
}

void swiglu_accumulate(const std::vector<SwigluTerm>& terms, const float* x, float* y, int64_t hidden, int64_t intermediate) {
  const int64_t count = static_cast<int64_t>(terms.size());
  std::vector<float> h(static_cast<size_t>(count * intermediate));
  // Rows of every gate and up projection, split over the threads; then rows of every down projection.
  parallel_chunks(count * intermediate, 64, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      const SwigluTerm& t = terms[static_cast<size_t>(i / intermediate)];
      const int64_t r = i % intermediate;
      const float g = row_dot(t.quant, t.gate, r, x, hidden);
      h[static_cast<size_t>(i)] = g / (1.0f + std::exp(-g)) * row_dot(t.quant, t.up, r, x, hidden);
    }
  });
  parallel_chunks(hidden, 16, [&](int64_t first, int64_t last) {
    for (int64_t o = first; o < last; ++o) {
      float sum = 0;
      for (int64_t t = 0; t < count; ++t) {
        const SwigluTerm& term = terms[static_cast<size_t>(t)];
        sum += term.coef * row_dot(term.quant, term.down, o, h.data() + t * intermediate, intermediate);
      }
      y[o] += sum;
    }
  });
}

}  // namespace chronos::cpu
