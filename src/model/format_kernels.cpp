#include "model/format_kernels.h"

#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CHRONOS_FORMAT_AVX2 1
#define CHRONOS_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

#include "chronos/core/error.h"
#include "chronos/model/quantized.h"
#include "model/cpu_kernels.h"
#include "model/float_vectors.h"
#include "model/work_pool.h"

namespace chronos::cpu {
namespace {

using namespace vectors;
using U16x16 = uint16_t __attribute__((vector_size(32)));
using U32x16 = uint32_t __attribute__((vector_size(64)));

constexpr int64_t kBlock = kQuantBlock;

// The portable kernels: generic vectors the compiler lowers to the baseline instruction set (SSE2 on
// x86-64).
#define CHRONOS_ALWAYS_INLINE inline __attribute__((always_inline))

// 16 bfloat16 values widened to float32: their bits become the high half of each float.
CHRONOS_ALWAYS_INLINE Vec16 widen16(const uint16_t* p) {
  U16x16 v;
  std::memcpy(&v, p, sizeof v);
  return reinterpret_cast<Vec16>(__builtin_convertvector(v, U32x16) << 16);
}

CHRONOS_ALWAYS_INLINE float bf16_value(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

CHRONOS_ALWAYS_INLINE float dot_bf16_body(const uint16_t* w, const float* x, int64_t n) {
  Vec16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 += widen16(w + i) * load(x + i);
    a1 += widen16(w + i + 16) * load(x + i + 16);
    a2 += widen16(w + i + 32) * load(x + i + 32);
    a3 += widen16(w + i + 48) * load(x + i + 48);
  }
  for (; i + 16 <= n; i += 16) a0 += widen16(w + i) * load(x + i);
  float sum = reduce((a0 + a1) + (a2 + a3));
  for (; i < n; ++i) sum += bf16_value(w[i]) * x[i];
  return sum;
}

float block_scale(const uint8_t* block) {
  return c10::detail::fp16_ieee_to_fp32_value(static_cast<uint16_t>(block[0] | (block[1] << 8)));
}

float dot_bf16_portable(const uint16_t* w, const float* x, int64_t n) { return dot_bf16_body(w, x, n); }

float dot_int8_portable(const uint8_t* row, const float* scales, const int8_t* quants, int64_t blocks) {
  float sum = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = row + b * (2 + kBlock);
    const auto* w = reinterpret_cast<const int8_t*>(block + 2);
    const int8_t* y = quants + b * kBlock;
    int32_t s = 0;
    for (int64_t i = 0; i < kBlock; ++i) s += static_cast<int32_t>(w[i]) * y[i];
    sum += block_scale(block) * scales[b] * static_cast<float>(s);
  }
  return sum;
}

float dot_int4_portable(const uint8_t* row, const float* scales, const int8_t* quants, int64_t blocks) {
  float sum = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = row + b * (2 + kBlock / 2);
    int8_t w[kBlock];  // byte j holds weight j (low nibble) and j + 16 (high nibble), each q + 8
    for (int64_t j = 0; j < kBlock / 2; ++j) {
      w[j] = static_cast<int8_t>((block[2 + j] & 0x0f) - 8);
      w[j + kBlock / 2] = static_cast<int8_t>((block[2 + j] >> 4) - 8);
    }
    const int8_t* y = quants + b * kBlock;
    int32_t s = 0;
    for (int64_t i = 0; i < kBlock; ++i) s += static_cast<int32_t>(w[i]) * y[i];
    sum += block_scale(block) * scales[b] * static_cast<float>(s);
  }
  return sum;
}

#ifdef CHRONOS_FORMAT_AVX2

CHRONOS_TARGET_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// acc + scale * (32 int8 products of w and y summed in 8 lanes). maddubs multiplies unsigned by
// signed bytes, so |w| meets y with w's sign moved onto it (w is never -128: quants are in
// [-127, 127] and int4's in [-8, 7]); pairs sum into int16 (at most 2 * 127 * 127), then into int32.
CHRONOS_TARGET_AVX2 inline __m256 block_product(__m256 acc, __m256i w, const int8_t* y, float scale) {
  const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y));
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(yv, w));
  const __m256i sums = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  return _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(sums), acc);
}

CHRONOS_TARGET_AVX2 inline float avx2_scale(const uint8_t* block) {
  uint16_t bits;
  std::memcpy(&bits, block, sizeof bits);
  return _cvtsh_ss(bits);
}

// 8 bfloat16 values widened to float32: zero-extended to 32 bits and shifted into the high half.
CHRONOS_TARGET_AVX2 inline __m256 widen8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

// Four accumulators hide the FMA latency. (The generic-vector body compiled for AVX2 widened through
// shuffles and streamed 6 GB/s on one core, below its portable build.)
CHRONOS_TARGET_AVX2 float dot_bf16_avx2(const uint16_t* w, const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(widen8(w + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(widen8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(widen8(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(widen8(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(widen8(w + i), _mm256_loadu_ps(x + i), a0);
  float sum = horizontal_sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) sum += bf16_value(w[i]) * x[i];
  return sum;
}

// The 32 quants of int8 block b of a row.
CHRONOS_TARGET_AVX2 inline __m256i int8_weights(const uint8_t* row, int64_t b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * (2 + kBlock) + 2));
}

// The 32 weights of int4 block b of a row as int8: low nibbles are weights 0..15, high nibbles 16..31, each q + 8.
CHRONOS_TARGET_AVX2 inline __m256i int4_weights(const uint8_t* row, int64_t b) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * (2 + kBlock / 2) + 2));
  const __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
  return _mm256_sub_epi8(nibbles, _mm256_set1_epi8(8));
}

// Two accumulators over alternate blocks, hiding the FMA latency. `weights` gives block b's 32 weights
// as int8, each block `bytes` long.
template <__m256i (*weights)(const uint8_t*, int64_t), int64_t bytes>
CHRONOS_TARGET_AVX2 float dot_blocks_avx2(const uint8_t* row, const float* scales, const int8_t* quants, int64_t blocks) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    acc0 = block_product(acc0, weights(row, b), quants + b * kBlock, avx2_scale(row + b * bytes) * scales[b]);
    acc1 = block_product(acc1, weights(row, b + 1), quants + (b + 1) * kBlock, avx2_scale(row + (b + 1) * bytes) * scales[b + 1]);
  }
  if (b < blocks) acc0 = block_product(acc0, weights(row, b), quants + b * kBlock, avx2_scale(row + b * bytes) * scales[b]);
  return horizontal_sum(_mm256_add_ps(acc0, acc1));
}

#endif

struct Kernels {
  float (*dot_bf16)(const uint16_t*, const float*, int64_t);
  float (*dot_int8)(const uint8_t*, const float*, const int8_t*, int64_t);
  float (*dot_int4)(const uint8_t*, const float*, const int8_t*, int64_t);
};

Kernels kernels_for(FormatIsa isa) {
#ifdef CHRONOS_FORMAT_AVX2
  if (isa == FormatIsa::avx2)
    return {dot_bf16_avx2, dot_blocks_avx2<int8_weights, 2 + kBlock>, dot_blocks_avx2<int4_weights, 2 + kBlock / 2>};
#endif
  (void)isa;
  return {dot_bf16_portable, dot_int8_portable, dot_int4_portable};
}

FormatIsa detect() {
#ifdef CHRONOS_FORMAT_AVX2
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return FormatIsa::avx2;
#endif
  return FormatIsa::portable;
}

FormatIsa g_isa = detect();
Kernels g_kernels = kernels_for(g_isa);

// One block of n <= kBlock values -> its int8 quants (zero beyond n) and returns its scale.
float quantize_input_block(const float* x, int64_t n, int8_t* q) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float scale = amax / 127.0f;
  const float inv = scale > 0 ? 1.0f / scale : 0.0f;
  for (int64_t i = 0; i < kBlock; ++i) q[i] = i < n ? static_cast<int8_t>(std::nearbyint(std::clamp(x[i] * inv, -127.0f, 127.0f))) : 0;
  return scale;
}

}  // namespace

FormatIsa detected_isa() { return detect(); }
FormatIsa active_isa() { return g_isa; }

const char* to_string(FormatIsa isa) { return isa == FormatIsa::avx2 ? "avx2" : "portable"; }

void use_isa(FormatIsa isa) {
  if (isa == FormatIsa::avx2 && detect() != FormatIsa::avx2) throw InvalidArgument("this CPU does not run the AVX2 kernels");
  g_isa = isa;
  g_kernels = kernels_for(isa);
}

void KernelInput::assign(const float* x, int64_t n, bool with_blocks) {
  values_ = x;
  n_ = n;
  scales_.clear();
  quants_.clear();
  if (!with_blocks) return;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  scales_.resize(static_cast<size_t>(blocks));
  quants_.resize(static_cast<size_t>(blocks * kBlock));
  for (int64_t b = 0; b < blocks; ++b)
    scales_[b] = quantize_input_block(x + b * kBlock, std::min(kBlock, n - b * kBlock), quants_.data() + b * kBlock);
}

void round_to_input_blocks(float* x, int64_t n) {
  int8_t q[kBlock];
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t len = std::min(kBlock, n - start);
    const float scale = quantize_input_block(x + start, len, q);
    for (int64_t i = 0; i < len; ++i) x[start + i] = scale * static_cast<float>(q[i]);
  }
}

float row_dot(WeightFormat format, const void* row, const KernelInput& x) {
  const int64_t n = x.size(), blocks = (n + kBlock - 1) / kBlock;
  switch (format) {
    case WeightFormat::fp32: return dot(static_cast<const float*>(row), x.values(), n);
    case WeightFormat::bf16: return g_kernels.dot_bf16(static_cast<const uint16_t*>(row), x.values(), n);
    case WeightFormat::int8:
      return g_kernels.dot_int8(static_cast<const uint8_t*>(row), x.block_scales(), x.block_quants(), blocks);
    case WeightFormat::int4:
      return g_kernels.dot_int4(static_cast<const uint8_t*>(row), x.block_scales(), x.block_quants(), blocks);
  }
  return 0;
}

void gemv_stored(WeightFormat format, const void* weight, const KernelInput& x, float* y, int64_t out) {
  if (needs_blocks(format) && !x.has_blocks()) throw InvalidArgument(cat("gemv_stored: ", to_string(format), " rows need the input's int8 blocks"));
  if (format == WeightFormat::fp32) return gemv(static_cast<const float*>(weight), x.values(), y, out, x.size());
  constexpr int64_t kMinChunkBytes = 128 << 10;
  const int64_t row_bytes = weight_row_bytes(format, x.size());
  const int64_t grain = std::max<int64_t>(4, kMinChunkBytes / std::max<int64_t>(row_bytes, 1));
  const auto* rows = static_cast<const uint8_t*>(weight);
  parallel_chunks(out, grain, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) y[r] = row_dot(format, rows + r * row_bytes, x);
  });
}

}  // namespace chronos::cpu
