#include "model/format_kernels.h"

#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CHRONOS_FORMAT_AVX2 1
#define CHRONOS_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define CHRONOS_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")))
#endif

#include "chronos/core/error.h"
#include "chronos/model/quantized.h"
#include "model/cpu_kernels.h"
#include "model/float_vectors.h"
#include "model/row_groups.h"
#include "model/work_pool.h"

namespace chronos::cpu {
namespace {

using namespace vectors;

constexpr int64_t kBlock = kQuantBlock;

// The portable kernels: generic vectors the compiler lowers to the baseline instruction set (SSE2 on
// x86-64).
#define CHRONOS_ALWAYS_INLINE inline __attribute__((always_inline))

// A rows function: rows [0, count) of a block-format matrix, each by `row_dot` inlined. A call per row
// through a function pointer made decode 6-12% slower on fine.json (rows of 4 and 8 blocks) and 1-5%
// on base.json, int8 and int4 (token-by-token pairs, docs/decode.md).
#define CHRONOS_BLOCK_ROWS(target, name, row_dot)                                                              \
  target void name(const uint8_t* rows, int64_t row_bytes, int64_t count, const KernelInput& x, int64_t blocks, \
                   float* out) {                                                                                \
    for (int64_t r = 0; r < count; ++r) out[r] = row_dot(rows + r * row_bytes, x, blocks);                    \
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

// One block of n <= kBlock values -> its int8 quants (zero beyond n) and returns its scale.
float quantize_input_block(const float* x, int64_t n, int8_t* q) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float scale = amax / 127.0f;
  const float inv = scale > 0 ? 1.0f / scale : 0.0f;
  for (int64_t i = 0; i < kBlock; ++i) q[i] = i < n ? static_cast<int8_t>(std::nearbyint(std::clamp(x[i] * inv, -127.0f, 127.0f))) : 0;
  return scale;
}

// The sum of a block's quants: the offset term of the kernels that meet weights as unsigned bytes.
int32_t quant_sum(const int8_t* q) {
  int32_t sum = 0;
  for (int64_t i = 0; i < kBlock; ++i) sum += q[i];
  return sum;
}

float quantize_full_block_portable(const float* x, int8_t* q, int32_t* sum) {
  const float scale = quantize_input_block(x, kBlock, q);
  *sum = quant_sum(q);
  return scale;
}

void rows_bf16_portable(const uint16_t* w, int64_t count, const float* x, int64_t n, float* out) {
  for (int64_t r = 0; r < count; ++r) out[r] = dot_bf16_body(w + r * n, x, n);
}

CHRONOS_ALWAYS_INLINE float dot_int8_portable(const uint8_t* row, const KernelInput& x, int64_t blocks) {
  const float* scales = x.block_scales();
  const int8_t* quants = x.block_quants();
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

CHRONOS_ALWAYS_INLINE float dot_int4_portable(const uint8_t* row, const KernelInput& x, int64_t blocks) {
  const float* scales = x.block_scales();
  const int8_t* quants = x.block_quants();
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

CHRONOS_BLOCK_ROWS(, rows_int8_portable, dot_int8_portable)
CHRONOS_BLOCK_ROWS(, rows_int4_portable, dot_int4_portable)

// The block formats in groups of four rows (model/row_groups.h). Every implementation sums a row as
// its vector kernels do, in four int32 lanes: lane j adds a block's products of weights 4j..4j+3 and
// 16+4j..16+4j+3 in integers, scaled into two accumulators over alternate blocks, which add lane by
// lane and then as (0 + 2) + (1 + 3). A row read alone (a range that starts or ends inside a group)
// thus gives the bits it gives in its group.
//
// A rows function over groups: rows [first, last) of a grouped matrix of `block_bytes` blocks, whole
// groups by `group_dot` (four rows into out), the rows of a group the range cuts one by one by
// `row_dot`.
#define CHRONOS_GROUP_ROWS(target, name, block_bytes, group_dot, row_dot)                                              \
  target void name(const uint8_t* matrix, int64_t first, int64_t last, const KernelInput& x, int64_t blocks, float* out) { \
    const int64_t group_bytes = kGroupRows * blocks * (block_bytes);                                                 \
    for (int64_t r = first; r < last;) {                                                                               \
      const uint8_t* group = matrix + r / kGroupRows * group_bytes;                                                    \
      if (r % kGroupRows == 0 && r + kGroupRows <= last) {                                                             \
        group_dot(group, blocks, x, out + (r - first));                                                                \
        r += kGroupRows;                                                                                               \
      } else {                                                                                                         \
        out[r - first] = row_dot(group, blocks, r % kGroupRows, x);                                                    \
        ++r;                                                                                                           \
      }                                                                                                                \
    }                                                                                                                  \
  }

template <WeightFormat F>
CHRONOS_ALWAYS_INLINE float dot_group_row_portable(const uint8_t* group, int64_t blocks, int64_t k, const KernelInput& x) {
  constexpr int64_t kQuantBytes = block_quant_bytes(F);
  const float* scales = x.block_scales();
  const int8_t* quants = x.block_quants();
  float acc[2][4] = {};
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* q = group + group_quants_offset(blocks, kQuantBytes, b, k);
    int8_t w[kBlock];
    for (int64_t i = 0; i < kBlock / 2; ++i) {
      if constexpr (F == WeightFormat::int8) {
        w[i] = static_cast<int8_t>(q[i]);
        w[i + kBlock / 2] = static_cast<int8_t>(q[64 + i]);
      } else {  // byte i: weight i in the low nibble, i + 16 in the high one, each q + 8
        w[i] = static_cast<int8_t>((q[i] & 0x0f) - 8);
        w[i + kBlock / 2] = static_cast<int8_t>((q[i] >> 4) - 8);
      }
    }
    const int8_t* y = quants + b * kBlock;
    const float scale = block_scale(group + group_scale_offset(b, k)) * scales[b];
    for (int64_t j = 0; j < 4; ++j) {
      int32_t lane = 0;
      for (int64_t i = 4 * j; i < 4 * j + 4; ++i) lane += static_cast<int32_t>(w[i]) * y[i] + static_cast<int32_t>(w[16 + i]) * y[16 + i];
      acc[b % 2][j] += scale * static_cast<float>(lane);
    }
  }
  float lanes[4];
  for (int64_t j = 0; j < 4; ++j) lanes[j] = acc[0][j] + acc[1][j];
  return (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
}

template <WeightFormat F>
CHRONOS_ALWAYS_INLINE void dot_group_portable(const uint8_t* group, int64_t blocks, const KernelInput& x, float* out) {
  for (int64_t k = 0; k < kGroupRows; ++k) out[k] = dot_group_row_portable<F>(group, blocks, k, x);
}

constexpr int64_t kInt8Block = 2 + block_quant_bytes(WeightFormat::int8), kInt4Block = 2 + block_quant_bytes(WeightFormat::int4);
CHRONOS_GROUP_ROWS(, rows_int8_groups_portable, kInt8Block, dot_group_portable<WeightFormat::int8>,
                   dot_group_row_portable<WeightFormat::int8>)
CHRONOS_GROUP_ROWS(, rows_int4_groups_portable, kInt4Block, dot_group_portable<WeightFormat::int4>,
                   dot_group_row_portable<WeightFormat::int4>)

#ifdef CHRONOS_FORMAT_AVX2

CHRONOS_TARGET_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// quantize_input_block of a whole block, bit for bit: the same max, scale, product, clamp and
// round-to-nearest-even (cvtps under the default rounding mode, as nearbyint), packed to int8.
CHRONOS_TARGET_AVX2 float quantize_full_block_avx2(const float* x, int8_t* q, int32_t* sum) {
  __m256 v[4];
  __m256 m = _mm256_setzero_ps();
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm256_loadu_ps(x + 8 * j);
    m = _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v[j]), m);  // a NaN loses, as in std::max
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  const float scale = _mm_cvtss_f32(h) / 127.0f;
  const __m256 inv = _mm256_set1_ps(scale > 0 ? 1.0f / scale : 0.0f);
  __m256i i[4];
  for (int j = 0; j < 4; ++j)
    i[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[j], inv), _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f)));
  const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  // The quants' sum from the int32 lanes (within +-127 each: the packing saturates nothing).
  const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
  *sum = _mm_cvtsi128_si32(s4);
  return scale;
}

// How far ahead the bf16 row kernels ask for their row (see dot_bf16_avx512).
constexpr int64_t kBf16PrefetchBytes = 4096;

// 8 bfloat16 values widened to float32: zero-extended to 32 bits and shifted into the high half.
CHRONOS_TARGET_AVX2 inline __m256 widen8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

// The input in pairs of columns for the bf16 rows, the layout pair_columns_avx512 gives: per whole 32
// columns the values of the 16 even columns, then of the 16 odd ones; the columns after the last whole
// 32 as they are.
CHRONOS_TARGET_AVX2 void pair_columns_avx2(const float* x, int64_t n, float* paired) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int half = 0; half < 2; ++half) {  // columns 16 half .. 16 half + 15
      const __m256 a = _mm256_loadu_ps(x + i + 16 * half), b = _mm256_loadu_ps(x + i + 16 * half + 8);
      // shuffle_ps works within 128-bit lanes: (a0 a2 b0 b2 | a4 a6 b4 b6), put back in order
      const __m256d even = _mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), odd = _mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD));
      _mm256_storeu_ps(paired + i + 8 * half, _mm256_castpd_ps(_mm256_permute4x64_pd(even, 0xD8)));
      _mm256_storeu_ps(paired + i + 16 + 8 * half, _mm256_castpd_ps(_mm256_permute4x64_pd(odd, 0xD8)));
    }
  }
  for (; i < n; ++i) paired[i] = x[i];
}

CHRONOS_TARGET_AVX2 inline __m256 even_columns_avx2(__m256i pairs) { return _mm256_castsi256_ps(_mm256_slli_epi32(pairs, 16)); }
CHRONOS_TARGET_AVX2 inline __m256 odd_columns_avx2(__m256i pairs) {
  return _mm256_castsi256_ps(_mm256_and_si256(pairs, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// One row against the paired input, as dot_bf16_avx512 reads it: a 32-byte load holds 16 weights in
// pairs, a shift gives the even columns' floats and a mask the odd ones'. Four accumulators hide the
// FMA latency. (The generic-vector body compiled for AVX2 widened through shuffles and streamed 6 GB/s
// on one core, below its portable build.) The row 4 KiB ahead is asked for as in the AVX-512 kernel:
// on an Intel Xeon VM, this kernel pinned, 14336 x 4096 from memory 17.5 -> 20.4 GB/s on both cores,
// 1024 x 512 in L2 5-9% faster. The even and odd columns then gave one core -1 to +8% from memory
// (three pairs) and, in L2 (2048 x 512, 512 x 256), 33-42 -> 42-44 GB/s in five of six pairs (41 -> 30
// in the sixth).
CHRONOS_TARGET_AVX2 CHRONOS_ALWAYS_INLINE float dot_bf16_avx2(const uint16_t* w, const float* paired, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(reinterpret_cast<const char*>(w + i) + kBf16PrefetchBytes, _MM_HINT_T0);
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16));
    a0 = _mm256_fmadd_ps(even_columns_avx2(lo), _mm256_loadu_ps(paired + i), a0);
    a1 = _mm256_fmadd_ps(odd_columns_avx2(lo), _mm256_loadu_ps(paired + i + 16), a1);
    a2 = _mm256_fmadd_ps(even_columns_avx2(hi), _mm256_loadu_ps(paired + i + 8), a2);
    a3 = _mm256_fmadd_ps(odd_columns_avx2(hi), _mm256_loadu_ps(paired + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(widen8(w + i), _mm256_loadu_ps(paired + i), a0);  // past the last whole 32: in order
  float sum = horizontal_sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) sum += bf16_value(w[i]) * paired[i];
  return sum;
}

// Rows of at least this many columns go four at a time: their input (32 KB of floats and more) no
// longer fits beside the weights in a 32-48 KB L1 cache, and a row at a time read it from L2 once per
// row. Shorter rows stay one at a time: four interleaved streams of short rows lost the hardware
// prefetcher (n = 512 to 2,816 streamed at half speed from memory), and their input is in L1 anyway.
constexpr int64_t kSharedInputColumns = 8192;

// Four rows a step share every load of the input, each row in two accumulators over alternate
// 8-column steps (eight chains in all); a group short of four rows repeats its last row, so every
// row sums in the same order wherever the rows split.
CHRONOS_TARGET_AVX2 void rows_bf16_avx2(const uint16_t* w, int64_t count, const float* x, int64_t n, float* out) {
  if (n < kSharedInputColumns) {
    alignas(64) float paired[kSharedInputColumns];
    pair_columns_avx2(x, n, paired);
    for (int64_t r = 0; r < count; ++r) out[r] = dot_bf16_avx2(w + r * n, paired, n);
    return;
  }
  for (int64_t r = 0; r < count; r += 4) {
    const uint16_t* row[4];
    for (int j = 0; j < 4; ++j) row[j] = w + std::min(r + j, count - 1) * n;
    __m256 a0[4], a1[4];
    for (int j = 0; j < 4; ++j) a0[j] = a1[j] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
      for (int j = 0; j < 4; ++j) {
        a0[j] = _mm256_fmadd_ps(widen8(row[j] + i), x0, a0[j]);
        a1[j] = _mm256_fmadd_ps(widen8(row[j] + i + 8), x1, a1[j]);
      }
    }
    if (i + 8 <= n) {
      const __m256 x0 = _mm256_loadu_ps(x + i);
      for (int j = 0; j < 4; ++j) a0[j] = _mm256_fmadd_ps(widen8(row[j] + i), x0, a0[j]);
      i += 8;
    }
    for (int j = 0; j < 4 && r + j < count; ++j) {
      float sum = horizontal_sum(_mm256_add_ps(a0[j], a1[j]));
      for (int64_t k = i; k < n; ++k) sum += bf16_value(row[j][k]) * x[k];
      out[r + j] = sum;
    }
  }
}

CHRONOS_TARGET_AVX2 inline float avx2_scale(const uint8_t* block) {
  uint16_t bits;
  std::memcpy(&bits, block, sizeof bits);
  return _cvtsh_ss(bits);
}

// One block's products in 8 int32 lanes (lane i: products 4i..4i+3), starting from `start` (the
// offsets to take off; int8's AVX2 form has none): q points at its 32 int8 quants (int8) or 16 nibble bytes (int4), y at
// the input's 32 quants.
//  - int8, AVX2: maddubs multiplies unsigned by signed bytes, so |w| meets y with w's sign moved onto
//    it (w is never -128: quants are in [-127, 127]); pairs sum into int16 (at most 2 * 127 * 127).
//  - int4, AVX2: the stored nibbles u = q + 8 are unsigned already: maddubs(u, y) (pairs at most
//    2 * 15 * 127), the offset -8 * sum(y) added in integers.
//  - AVX-512 VNNI: vpdpbusd adds four unsigned-by-signed products straight into int32 lanes (no int16
//    step). int8 meets it as w XOR 0x80 = w + 128 unsigned, its offset -128 * sum(y).
CHRONOS_TARGET_AVX2 inline __m256i nibbles(const uint8_t* q) {  // weights 0..15 low, 16..31 high
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
}
CHRONOS_TARGET_AVX2 inline __m256i load_quants(const int8_t* y) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y)); }
CHRONOS_TARGET_AVX2 inline __m256i int8_block_avx2(const uint8_t* q, const int8_t* y) {
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(load_quants(y), w));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}
CHRONOS_TARGET_AVX2 inline __m256i int4_block_avx2(const uint8_t* q, const int8_t* y, __m256i start) {
  return _mm256_add_epi32(start, _mm256_madd_epi16(_mm256_maddubs_epi16(nibbles(q), load_quants(y)), _mm256_set1_epi16(1)));
}
CHRONOS_TARGET_AVX512 inline __m256i int8_block_vnni(const uint8_t* q, const int8_t* y, __m256i start) {
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  return _mm256_dpbusd_epi32(start, _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80))), load_quants(y));
}
CHRONOS_TARGET_AVX512 inline __m256i int4_block_vnni(const uint8_t* q, const int8_t* y, __m256i start) {
  return _mm256_dpbusd_epi32(start, nibbles(q), load_quants(y));
}

// A block's sum from its products (offset included), scaled by both scales into an accumulator.
CHRONOS_TARGET_AVX2 inline __m256 add_scaled(__m256 acc, __m256i products, float scale) {
  return _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(products), acc);
}

// The lanes block b's products start from: its offset in lane 0.
CHRONOS_TARGET_AVX2 inline __m256i int8_vnni_offsets(const KernelInput& x, int64_t b) {
  return _mm256_setr_epi32(x.int8_offsets()[b], 0, 0, 0, 0, 0, 0, 0);
}
CHRONOS_TARGET_AVX2 inline __m256i int4_offsets(const KernelInput& x, int64_t b) {
  return _mm256_setr_epi32(-8 * x.block_sums()[b], 0, 0, 0, 0, 0, 0, 0);
}

// int8 one block at a time; two accumulators over alternate blocks hide the FMA latency.
constexpr int64_t kInt8BlockBytes = 2 + kBlock;
CHRONOS_TARGET_AVX2 CHRONOS_ALWAYS_INLINE float dot_int8_avx2(const uint8_t* row, const KernelInput& x, int64_t blocks) {
  const float* scales = x.block_scales();
  const int8_t* quants = x.block_quants();
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    acc0 = add_scaled(acc0, int8_block_avx2(row + b * kInt8BlockBytes + 2, quants + b * kBlock), avx2_scale(row + b * kInt8BlockBytes) * scales[b]);
    acc1 = add_scaled(acc1, int8_block_avx2(row + (b + 1) * kInt8BlockBytes + 2, quants + (b + 1) * kBlock), avx2_scale(row + (b + 1) * kInt8BlockBytes) * scales[b + 1]);
  }
  if (b < blocks) acc0 = add_scaled(acc0, int8_block_avx2(row + b * kInt8BlockBytes + 2, quants + b * kBlock), avx2_scale(row + b * kInt8BlockBytes) * scales[b]);
  return horizontal_sum(_mm256_add_ps(acc0, acc1));
}

// int4 takes its blocks two at a time: one 32-byte vector holds the nibbles of both, their low
// nibbles (weights 0..15 of each) and high ones (16..31) are one mask and one shift apart, and they meet
// the input's quants of both blocks (KernelInput::quad_quants: 0..15 of each, then 16..31 of each), so
// lanes 0-3 belong to the first block and 4-7 to the second. Per block that is one unpacking step, one
// float conversion, one scaled add, and half of building the two scales, against twice that one block
// at a time. int4_pair_avx2 and int4_pair_vnni give the pair's int32 lanes, starting from the pair's
// two offsets (KernelInput::pair_offsets) in lanes 0 and 4.
constexpr int64_t kInt4BlockBytes = 2 + kBlock / 2;

// [o0, 0, o1, 0] -> lanes [o0, 0, 0, 0, o1, 0, 0, 0]: one zero-extension of 32-bit lanes to 64. (A
// 32-byte vector of offsets per pair, loaded as it is, cost 30-40% at k = 14,336: the input's
// arrays then outgrow the L1 cache beside the streamed weights.)
CHRONOS_TARGET_AVX2 inline __m256i int4_pair_start(const int32_t* offsets) {
  return _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(offsets)));
}
CHRONOS_TARGET_AVX2 inline __m256i int4_pair_nibbles(const uint8_t* q, __m256i* high) {
  const __m256i packed = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q))),
                                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + kInt4BlockBytes)), 1);
  const __m256i mask = _mm256_set1_epi8(0x0f);
  *high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), mask);
  return _mm256_and_si256(packed, mask);
}
// AVX2: maddubs of the low and of the high nibbles (each pair at most 2 * 15 * 127) add in int16 (at
// most 7,620) before one madd to int32.
CHRONOS_TARGET_AVX2 inline __m256i int4_pair_avx2(const uint8_t* q, const int8_t* y_low, const int8_t* y_high, const int32_t* offsets) {
  __m256i high;
  const __m256i low = int4_pair_nibbles(q, &high);
  const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(low, load_quants(y_low)), _mm256_maddubs_epi16(high, load_quants(y_high)));
  return _mm256_add_epi32(int4_pair_start(offsets), _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
CHRONOS_TARGET_AVX512 inline __m256i int4_pair_vnni(const uint8_t* q, const int8_t* y_low, const int8_t* y_high, const int32_t* offsets) {
  __m256i high;
  const __m256i low = int4_pair_nibbles(q, &high);
  return _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(int4_pair_start(offsets), low, load_quants(y_low)), high, load_quants(y_high));
}
// The two blocks' scales (weight scale times input scale, each the same float product as one block's)
// spread over their lanes: the first block's in lanes 0-3, the second's in 4-7.
CHRONOS_TARGET_AVX2 inline __m128 pair_scales(const uint8_t* block, int64_t block_bytes, const float* input_scales) {
  uint16_t first, second;
  std::memcpy(&first, block, sizeof first);
  std::memcpy(&second, block + block_bytes, sizeof second);
  const __m128 weight = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(first | (static_cast<uint32_t>(second) << 16))));
  return _mm_mul_ps(weight, _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(input_scales))));
}
CHRONOS_TARGET_AVX2 inline __m256 int4_pair_scales(const uint8_t* block, const float* input_scales) {
  return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(pair_scales(block, kInt4BlockBytes, input_scales)), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
}

// Two accumulators over alternate pairs (the first and second half of each group of four blocks,
// KernelInput::quad_quants); an odd last block goes one block at a time.
CHRONOS_TARGET_AVX2 CHRONOS_ALWAYS_INLINE float dot_int4_avx2(const uint8_t* row, const KernelInput& x, int64_t blocks) {
  const float* scales = x.block_scales();
  const int8_t* groups = x.quad_quants();
  const int32_t* pair_offsets = x.pair_offsets();
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= blocks; b += 4) {
    const uint8_t* q = row + b * kInt4BlockBytes;
    const int8_t* y = groups + b * kBlock;
    acc0 = _mm256_fmadd_ps(int4_pair_scales(q, scales + b),
                           _mm256_cvtepi32_ps(int4_pair_avx2(q + 2, y, y + 64, pair_offsets + 2 * b)), acc0);
    q += 2 * kInt4BlockBytes;
    acc1 = _mm256_fmadd_ps(int4_pair_scales(q, scales + b + 2),
                           _mm256_cvtepi32_ps(int4_pair_avx2(q + 2, y + 32, y + 96, pair_offsets + 2 * (b + 2))), acc1);
  }
  if (b + 2 <= blocks) {
    const uint8_t* q = row + b * kInt4BlockBytes;
    const int8_t* y = groups + b * kBlock;
    acc0 = _mm256_fmadd_ps(int4_pair_scales(q, scales + b),
                           _mm256_cvtepi32_ps(int4_pair_avx2(q + 2, y, y + 32, pair_offsets + 2 * b)), acc0);
    b += 2;
  }
  if (b < blocks)
    acc1 = add_scaled(acc1, int4_block_avx2(row + b * kInt4BlockBytes + 2, x.block_quants() + b * kBlock, int4_offsets(x, b)),
                      avx2_scale(row + b * kInt4BlockBytes) * scales[b]);
  return horizontal_sum(_mm256_add_ps(acc0, acc1));
}

CHRONOS_BLOCK_ROWS(CHRONOS_TARGET_AVX2, rows_int8_avx2, dot_int8_avx2)
CHRONOS_BLOCK_ROWS(CHRONOS_TARGET_AVX2, rows_int4_avx2, dot_int4_avx2)

// Row groups on AVX2, a row's four lanes in one 128-bit lane, two rows to a 256-bit vector, the
// input's sixteen quants broadcast to both halves. int8: maddubs with w's sign moved onto the input
// (as int8_block_avx2). int4: maddubs of the unsigned nibbles (q + 8), low and high ones added in
// int16 (as int4_pair_avx2), -8 * the block's quant sum in lane 0 of each row.
CHRONOS_TARGET_AVX2 inline __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
CHRONOS_TARGET_AVX2 inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
CHRONOS_TARGET_AVX2 inline __m256i signed_dot_avx2(__m256i w, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w)), _mm256_set1_epi16(1));
}
CHRONOS_TARGET_AVX2 inline __m128i signed_dot_sse(__m128i w, __m128i y) {
  return _mm_madd_epi16(_mm_maddubs_epi16(_mm_sign_epi8(w, w), _mm_sign_epi8(y, w)), _mm_set1_epi16(1));
}
CHRONOS_TARGET_AVX2 inline __m256i nibble_dot_avx2(__m256i packed, __m256i y0, __m256i y1) {
  const __m256i mask = _mm256_set1_epi8(0x0f);
  const __m256i low = _mm256_and_si256(packed, mask), high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), mask);
  return _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(low, y0), _mm256_maddubs_epi16(high, y1)), _mm256_set1_epi16(1));
}
CHRONOS_TARGET_AVX2 inline __m128i nibble_dot_sse(__m128i packed, __m128i y0, __m128i y1) {
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i low = _mm_and_si128(packed, mask), high = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
  return _mm_madd_epi16(_mm_add_epi16(_mm_maddubs_epi16(low, y0), _mm_maddubs_epi16(high, y1)), _mm_set1_epi16(1));
}
// Lanes (0 + 2) + (1 + 3): a row's sum from its four lanes.
CHRONOS_TARGET_AVX2 inline float lane_sum(__m128 v) {
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  return _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
}
// A block's four weight scales times the input's.
CHRONOS_TARGET_AVX2 inline __m128 group_scales(const uint8_t* group, int64_t b, float input_scale) {
  return _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(group + group_scale_offset(b, 0)))), _mm_set1_ps(input_scale));
}

// One block of row k into its four lanes.
template <WeightFormat F>
CHRONOS_TARGET_AVX2 inline __m128 group_row_step_avx2(__m128 acc, const uint8_t* group, int64_t blocks, int64_t b, int64_t k, const KernelInput& x) {
  const uint8_t* q = group + group_quants_offset(blocks, block_quant_bytes(F), b, k);
  const int8_t* y = x.block_quants() + b * kBlock;
  __m128i products;
  if constexpr (F == WeightFormat::int8) {
    products = _mm_add_epi32(signed_dot_sse(load16(q), load16(y)), signed_dot_sse(load16(q + 64), load16(y + 16)));
  } else {
    products = _mm_add_epi32(_mm_cvtsi32_si128(-8 * x.block_sums()[b]), nibble_dot_sse(load16(q), load16(y), load16(y + 16)));
  }
  return _mm_fmadd_ps(_mm_set1_ps(avx2_scale(group + group_scale_offset(b, k)) * x.block_scales()[b]), _mm_cvtepi32_ps(products), acc);
}

// Row k of a group, block by block into its four lanes by `step` (a 128-bit step of the ISA), two
// accumulators over alternate blocks: what the ISA's four-row kernel computes in that row's lanes.
#define CHRONOS_GROUP_ROW(target, name, step)                                                                  \
  template <WeightFormat F>                                                                                    \
  target CHRONOS_ALWAYS_INLINE float name(const uint8_t* group, int64_t blocks, int64_t k, const KernelInput& x) { \
    __m128 acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps();                                                   \
    int64_t b = 0;                                                                                             \
    for (; b + 2 <= blocks; b += 2) {                                                                          \
      acc0 = step<F>(acc0, group, blocks, b, k, x);                                                            \
      acc1 = step<F>(acc1, group, blocks, b + 1, k, x);                                                        \
    }                                                                                                          \
    if (b < blocks) acc0 = step<F>(acc0, group, blocks, b, k, x);                                              \
    return lane_sum(_mm_add_ps(acc0, acc1));                                                                   \
  }

CHRONOS_GROUP_ROW(CHRONOS_TARGET_AVX2, dot_group_row_avx2, group_row_step_avx2)

// One block of four rows: rows 0 and 1 in acc01, rows 2 and 3 in acc23.
template <WeightFormat F>
CHRONOS_TARGET_AVX2 inline void group_step_avx2(__m256& acc01, __m256& acc23, const uint8_t* group, int64_t blocks, int64_t b, const KernelInput& x) {
  const uint8_t* q = group + group_quants_offset(blocks, block_quant_bytes(F), b, 0);
  const int8_t* y = x.block_quants() + b * kBlock;
  const __m256i y0 = _mm256_broadcastsi128_si256(load16(y)), y1 = _mm256_broadcastsi128_si256(load16(y + 16));
  __m256i p01, p23;
  if constexpr (F == WeightFormat::int8) {
    p01 = _mm256_add_epi32(signed_dot_avx2(load32(q), y0), signed_dot_avx2(load32(q + 64), y1));
    p23 = _mm256_add_epi32(signed_dot_avx2(load32(q + 32), y0), signed_dot_avx2(load32(q + 96), y1));
  } else {
    const int32_t offset = -8 * x.block_sums()[b];
    const __m256i start = _mm256_setr_epi32(offset, 0, 0, 0, offset, 0, 0, 0);
    p01 = _mm256_add_epi32(start, nibble_dot_avx2(load32(q), y0, y1));
    p23 = _mm256_add_epi32(start, nibble_dot_avx2(load32(q + 32), y0, y1));
  }
  const __m256 s = _mm256_castps128_ps256(group_scales(group, b, x.block_scales()[b]));
  acc01 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1)), _mm256_cvtepi32_ps(p01), acc01);
  acc23 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3)), _mm256_cvtepi32_ps(p23), acc23);
}

template <WeightFormat F>
CHRONOS_TARGET_AVX2 CHRONOS_ALWAYS_INLINE void dot_group_avx2(const uint8_t* group, int64_t blocks, const KernelInput& x, float* out) {
  __m256 a01 = _mm256_setzero_ps(), a23 = _mm256_setzero_ps(), b01 = _mm256_setzero_ps(), b23 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    group_step_avx2<F>(a01, a23, group, blocks, b, x);
    group_step_avx2<F>(b01, b23, group, blocks, b + 1, x);
  }
  if (b < blocks) group_step_avx2<F>(a01, a23, group, blocks, b, x);
  const __m256 s01 = _mm256_add_ps(a01, b01), s23 = _mm256_add_ps(a23, b23);
  out[0] = lane_sum(_mm256_castps256_ps128(s01));
  out[1] = lane_sum(_mm256_extractf128_ps(s01, 1));
  out[2] = lane_sum(_mm256_castps256_ps128(s23));
  out[3] = lane_sum(_mm256_extractf128_ps(s23, 1));
}

CHRONOS_GROUP_ROWS(CHRONOS_TARGET_AVX2, rows_int8_groups_avx2, kInt8Block, dot_group_avx2<WeightFormat::int8>,
                   dot_group_row_avx2<WeightFormat::int8>)
CHRONOS_GROUP_ROWS(CHRONOS_TARGET_AVX2, rows_int4_groups_avx2, kInt4Block, dot_group_avx2<WeightFormat::int4>,
                   dot_group_row_avx2<WeightFormat::int4>)

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as the unused source of their unmasked forms,
// which it then reports as uninitialised where they inline (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// AVX-512: the same formats on 512-bit vectors, half the instructions per weight of the 256-bit
// kernels (in cache, one core, 512 x 512 bf16: 28 -> 54 G weights/s).

// 16 bfloat16 values widened to float32.
CHRONOS_TARGET_AVX512 inline __m512 widen16_avx512(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

// The input in pairs of columns for the bf16 rows: per whole 32 columns, the values of the 16 even
// columns, then of the 16 odd ones; the columns after the last whole 32 as they are.
CHRONOS_TARGET_AVX512 void pair_columns_avx512(const float* x, int64_t n, float* paired) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 lo = _mm512_loadu_ps(x + i), hi = _mm512_loadu_ps(x + i + 16);
    _mm512_storeu_ps(paired + i, _mm512_permutex2var_ps(lo, even, hi));
    _mm512_storeu_ps(paired + i + 16, _mm512_permutex2var_ps(lo, odd, hi));
  }
  for (; i < n; ++i) paired[i] = x[i];
}

CHRONOS_TARGET_AVX512 inline __m512 even_columns_avx512(__m512i pairs) { return _mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16)); }
CHRONOS_TARGET_AVX512 inline __m512 odd_columns_avx512(__m512i pairs) {
  return _mm512_castsi512_ps(_mm512_and_si512(pairs, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// A 64-byte load holds 32 weights, each 32-bit lane a pair (the even column's bits low, the odd one's
// high): the lane shifted left by 16 is the even column's float, the lane with its low half cleared
// the odd one's. Against the paired input that is two integer operations and two FMAs per 32 weights,
// where widening 16 at a time took a shuffle, a shift and an FMA per 16 (one core, in cache, rows of
// 128-640 columns: 19-20 -> 23-24 G weights/s; 14336 x 4096 from memory 1.36x). The row (and the rows
// after it) is asked for 4 KiB ahead: on an Intel Xeon VM whose two cores read memory at 26 GB/s
// together, base.json bf16 decoded 21-28% faster with it (10-16% beside a busy core; fine.json 7-17%);
// 8 KiB ahead was level with 4. (On an AMD EPYC VM the bf16 rows had not gained, see kPrefetchBytes;
// the float32 kernel lost 17% with prefetches on the Intel VM.)
CHRONOS_TARGET_AVX512 CHRONOS_ALWAYS_INLINE float dot_bf16_avx512(const uint16_t* w, const float* paired, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(w + i) + kBf16PrefetchBytes, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + i) + kBf16PrefetchBytes + 64, _MM_HINT_T0);
    const __m512i v0 = _mm512_loadu_si512(w + i), v1 = _mm512_loadu_si512(w + i + 32);
    a0 = _mm512_fmadd_ps(even_columns_avx512(v0), _mm512_loadu_ps(paired + i), a0);
    a1 = _mm512_fmadd_ps(odd_columns_avx512(v0), _mm512_loadu_ps(paired + i + 16), a1);
    a2 = _mm512_fmadd_ps(even_columns_avx512(v1), _mm512_loadu_ps(paired + i + 32), a2);
    a3 = _mm512_fmadd_ps(odd_columns_avx512(v1), _mm512_loadu_ps(paired + i + 48), a3);
  }
  if (i + 32 <= n) {
    const __m512i v = _mm512_loadu_si512(w + i);
    a0 = _mm512_fmadd_ps(even_columns_avx512(v), _mm512_loadu_ps(paired + i), a0);
    a1 = _mm512_fmadd_ps(odd_columns_avx512(v), _mm512_loadu_ps(paired + i + 16), a1);
    i += 32;
  }
  if (i + 16 <= n) {  // past the last whole 32 columns the input is in its own order
    a2 = _mm512_fmadd_ps(widen16_avx512(w + i), _mm512_loadu_ps(paired + i), a2);
    i += 16;
  }
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; ++i) sum += bf16_value(w[i]) * paired[i];
  return sum;
}

// As rows_bf16_avx2: rows of kSharedInputColumns and more four at a time, each row in two chains.
CHRONOS_TARGET_AVX512 void rows_bf16_avx512(const uint16_t* w, int64_t count, const float* x, int64_t n, float* out) {
  if (n < kSharedInputColumns) {
    alignas(64) float paired[kSharedInputColumns];
    pair_columns_avx512(x, n, paired);
    for (int64_t r = 0; r < count; ++r) out[r] = dot_bf16_avx512(w + r * n, paired, n);
    return;
  }
  for (int64_t r = 0; r < count; r += 4) {
    const uint16_t* row[4];
    for (int j = 0; j < 4; ++j) row[j] = w + std::min(r + j, count - 1) * n;
    __m512 a0[4], a1[4];
    for (int j = 0; j < 4; ++j) a0[j] = a1[j] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
      for (int j = 0; j < 4; ++j) {
        a0[j] = _mm512_fmadd_ps(widen16_avx512(row[j] + i), x0, a0[j]);
        a1[j] = _mm512_fmadd_ps(widen16_avx512(row[j] + i + 16), x1, a1[j]);
      }
    }
    if (i + 16 <= n) {
      const __m512 x0 = _mm512_loadu_ps(x + i);
      for (int j = 0; j < 4; ++j) a0[j] = _mm512_fmadd_ps(widen16_avx512(row[j] + i), x0, a0[j]);
      i += 16;
    }
    for (int j = 0; j < 4 && r + j < count; ++j) {
      float sum = _mm512_reduce_add_ps(_mm512_add_ps(a0[j], a1[j]));
      for (int64_t k = i; k < n; ++k) sum += bf16_value(row[j][k]) * x[k];
      out[r + j] = sum;
    }
  }
}

// The integer kernels ask for the row 4 KiB ahead of where they read: at ~20 instructions per
// 72-136 bytes of weights the reorder window holds only ~2 KiB of a row's misses in flight, and with
// the hardware prefetcher alone they streamed about half of fp32's bytes per second. (base.json,
// `chronos-bench decode`, paired rounds: int4 +6-34% in six of six, int8 -8% to +14%, +8% in the
// median of six; 1 and 2 KiB ahead showed nothing, 8 KiB scattered; bf16, 3 instructions per 32
// bytes, did not gain; fine.json, in the L3 cache, int8 3-7% slower.)
constexpr int64_t kPrefetchBytes = 4096;
CHRONOS_TARGET_AVX512 inline void prefetch_ahead(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0); }

// Four int4 blocks are 72 bytes, 36 16-bit words, which one 64-byte load and one masked load of the
// rest hold: a word permutation gathers their nibbles into place and another their float16 scales.
// (Four 16-byte loads and three inserts a group, with the scales read a word at a time, ran int4 at
// 50-54 G weights/s in cache, one core, hardly above the 256-bit kernel's 50; this runs 60. For two
// int8 blocks the same permutations lost, 51 -> 41: the loads and one insert stay.)
//
// Word indices into (the first 64 bytes, the rest) of four int4 blocks: the nibbles of block k (words
// 9k + 1 .. 9k + 8) in 128-bit lane k, the scales (words 0, 9, 18, 27) in words 0..3.
struct WordIndex {
  alignas(64) uint16_t int4_nibbles[32], int4_scales[32];
  constexpr WordIndex() : int4_nibbles(), int4_scales() {
    for (int j = 0; j < 32; ++j) int4_nibbles[j] = static_cast<uint16_t>(9 * (j / 8) + 1 + j % 8);
    for (int k = 0; k < 4; ++k) int4_scales[k] = static_cast<uint16_t>(9 * k);
  }
};
constexpr WordIndex kWords;

CHRONOS_TARGET_AVX512 inline __m512i load_index(const uint16_t* index) { return _mm512_load_si512(index); }

// Two int8 blocks: block b's quants in the low 256 bits, b + 1's in the high, against the input's 64
// quants of both, from the offsets (KernelInput::int8_offsets) of b in lane 0 and of b + 1 in lane 9;
// scaled and added to acc.
CHRONOS_TARGET_AVX512 inline __m512 int8_pair_avx512(__m512 acc, const uint8_t* block, const int8_t* y, const int32_t* offsets, const float* input_scales) {
  const __m512i w = _mm512_inserti64x4(_mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2))),
                                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kInt8BlockBytes + 2)), 1);
  const __m512i start = _mm512_maskz_broadcast_i32x2(0x0201, _mm_loadl_epi64(reinterpret_cast<const __m128i*>(offsets)));
  const __m512i products = _mm512_dpbusd_epi32(start, _mm512_xor_si512(w, _mm512_set1_epi8(static_cast<char>(0x80))), _mm512_loadu_si512(y));
  const __m512 scales = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                                              _mm512_zextps128_ps512(pair_scales(block, kInt8BlockBytes, input_scales)));
  return _mm512_fmadd_ps(scales, _mm512_cvtepi32_ps(products), acc);
}

// Two accumulators over alternate pairs of blocks; an odd last block on 256 bits.
CHRONOS_TARGET_AVX512 CHRONOS_ALWAYS_INLINE float dot_int8_avx512(const uint8_t* row, const KernelInput& x, int64_t blocks) {
  const float* scales = x.block_scales();
  const int8_t* quants = x.block_quants();
  const int32_t* offsets = x.int8_offsets();
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= blocks; b += 4) {
    const uint8_t* q = row + b * kInt8BlockBytes;
    prefetch_ahead(q);
    prefetch_ahead(q + 64);
    acc0 = int8_pair_avx512(acc0, q, quants + b * kBlock, offsets + b, scales + b);
    acc1 = int8_pair_avx512(acc1, q + 2 * kInt8BlockBytes, quants + (b + 2) * kBlock, offsets + b + 2, scales + b + 2);
  }
  if (b + 2 <= blocks) {
    acc0 = int8_pair_avx512(acc0, row + b * kInt8BlockBytes, quants + b * kBlock, offsets + b, scales + b);
    b += 2;
  }
  const __m512 acc = _mm512_add_ps(acc0, acc1);
  __m256 sum = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
  if (b < blocks)
    sum = add_scaled(sum, int8_block_vnni(row + b * kInt8BlockBytes + 2, quants + b * kBlock, int8_vnni_offsets(x, b)), avx2_scale(row + b * kInt8BlockBytes) * scales[b]);
  return horizontal_sum(sum);
}

// Four int4 blocks: the 16 nibble bytes of each in one 128-bit lane, their low nibbles (weights 0..15)
// and high ones (16..31) against a group of the input (KernelInput::quad_quants), from two pairs'
// offsets in lanes 0, 4, 8 and 12; scaled and added to acc. Lanes 0-7 hold what AVX2's pair of blocks
// 4g, 4g + 1 holds, lanes 8-15 what its pair 4g + 2, 4g + 3 holds.
CHRONOS_TARGET_AVX512 inline __m512 int4_quad_avx512(__m512 acc, const uint8_t* block, const int8_t* y, const int32_t* offsets, const float* input_scales) {
  const __m512i head = _mm512_loadu_si512(block), rest = _mm512_maskz_loadu_epi16(0xf, block + 64);
  const __m512i packed = _mm512_permutex2var_epi16(head, load_index(kWords.int4_nibbles), rest);
  const __m512i mask = _mm512_set1_epi8(0x0f);
  const __m512i low = _mm512_and_si512(packed, mask), high = _mm512_and_si512(_mm512_srli_epi32(packed, 4), mask);
  const __m512i start = _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(offsets)));
  const __m512i products = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, low, _mm512_loadu_si512(y)), high, _mm512_loadu_si512(y + 64));
  const __m128 weight = _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(load_index(kWords.int4_scales), head)));
  const __m512 scales = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                              _mm512_zextps128_ps512(_mm_mul_ps(weight, _mm_loadu_ps(input_scales))));
  return _mm512_fmadd_ps(scales, _mm512_cvtepi32_ps(products), acc);
}

// One accumulator: its low half is AVX2's acc0 and its high half AVX2's acc1, with the same float
// operations in the same order, so both give the same bits; the tail goes as in AVX2, on 256 bits.
// (One chain of FMAs a group of four blocks is not what limits the loop.)
CHRONOS_TARGET_AVX512 CHRONOS_ALWAYS_INLINE float dot_int4_avx512(const uint8_t* row, const KernelInput& x, int64_t blocks) {
  const float* scales = x.block_scales();
  const int8_t* groups = x.quad_quants();
  const int32_t* pair_offsets = x.pair_offsets();
  __m512 acc = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= blocks; b += 4) {
    prefetch_ahead(row + b * kInt4BlockBytes);
    acc = int4_quad_avx512(acc, row + b * kInt4BlockBytes, groups + b * kBlock, pair_offsets + 2 * b, scales + b);
  }
  __m256 acc0 = _mm512_castps512_ps256(acc), acc1 = _mm512_extractf32x8_ps(acc, 1);
  if (b + 2 <= blocks) {
    const uint8_t* q = row + b * kInt4BlockBytes;
    const int8_t* y = groups + b * kBlock;
    acc0 = _mm256_fmadd_ps(int4_pair_scales(q, scales + b), _mm256_cvtepi32_ps(int4_pair_vnni(q + 2, y, y + 32, pair_offsets + 2 * b)), acc0);
    b += 2;
  }
  if (b < blocks)
    acc1 = add_scaled(acc1, int4_block_vnni(row + b * kInt4BlockBytes + 2, x.block_quants() + b * kBlock, int4_offsets(x, b)),
                      avx2_scale(row + b * kInt4BlockBytes) * scales[b]);
  return horizontal_sum(_mm256_add_ps(acc0, acc1));
}

CHRONOS_BLOCK_ROWS(CHRONOS_TARGET_AVX512, rows_int8_avx512, dot_int8_avx512)
CHRONOS_BLOCK_ROWS(CHRONOS_TARGET_AVX512, rows_int4_avx512, dot_int4_avx512)

// Row groups on AVX-512: a block's 64 bytes of quants of the four rows (int8's quants 0..15, or
// int4's 32 as nibbles) meet the input's sixteen broadcast to every 128-bit lane in one vpdpbusd
// (int8 as w + 128 unsigned, as int8_pair_avx512; int4's nibbles unsigned already), the next sixteen
// in a second, from the block's offset in lane 0 of each row; one conversion and one FMA with the
// four rows' scales spread over their lanes. Per block of four rows that is about 12 instructions,
// where a row-major int8 block took about 6 a row. The weights are asked for 8 KiB ahead (against 4
// KiB: base.json int8 +6%, fine.json level; without: base -11%).
constexpr int64_t kGroupPrefetchBytes = 8192;
CHRONOS_TARGET_AVX512 inline __m512i flip_sign(__m512i w) { return _mm512_xor_si512(w, _mm512_set1_epi8(static_cast<char>(0x80))); }
CHRONOS_TARGET_AVX512 inline __m128i flip_sign(__m128i w) { return _mm_xor_si128(w, _mm_set1_epi8(static_cast<char>(0x80))); }

template <WeightFormat F>
CHRONOS_TARGET_AVX512 inline int32_t group_offset(const KernelInput& x, int64_t b) {
  return F == WeightFormat::int8 ? x.int8_offsets()[b] : -8 * x.block_sums()[b];
}

template <WeightFormat F>
CHRONOS_TARGET_AVX512 inline __m128 group_row_step_avx512(__m128 acc, const uint8_t* group, int64_t blocks, int64_t b, int64_t k, const KernelInput& x) {
  const uint8_t* q = group + group_quants_offset(blocks, block_quant_bytes(F), b, k);
  const int8_t* y = x.block_quants() + b * kBlock;
  const __m128i start = _mm_cvtsi32_si128(group_offset<F>(x, b));
  __m128i products;
  if constexpr (F == WeightFormat::int8) {
    products = _mm_dpbusd_epi32(_mm_dpbusd_epi32(start, flip_sign(load16(q)), load16(y)), flip_sign(load16(q + 64)), load16(y + 16));
  } else {
    const __m128i packed = load16(q), mask = _mm_set1_epi8(0x0f);
    products = _mm_dpbusd_epi32(_mm_dpbusd_epi32(start, _mm_and_si128(packed, mask), load16(y)), _mm_and_si128(_mm_srli_epi16(packed, 4), mask),
                                load16(y + 16));
  }
  return _mm_fmadd_ps(_mm_set1_ps(avx2_scale(group + group_scale_offset(b, k)) * x.block_scales()[b]), _mm_cvtepi32_ps(products), acc);
}

CHRONOS_GROUP_ROW(CHRONOS_TARGET_AVX512, dot_group_row_avx512, group_row_step_avx512)

template <WeightFormat F>
CHRONOS_TARGET_AVX512 inline __m512 group_step_avx512(__m512 acc, const uint8_t* group, int64_t blocks, int64_t b, const KernelInput& x) {
  const uint8_t* q = group + group_quants_offset(blocks, block_quant_bytes(F), b, 0);
  _mm_prefetch(reinterpret_cast<const char*>(q + kGroupPrefetchBytes), _MM_HINT_T0);
  const int8_t* y = x.block_quants() + b * kBlock;
  const __m512i y0 = _mm512_broadcast_i32x4(load16(y)), y1 = _mm512_broadcast_i32x4(load16(y + 16));
  const __m512i start = _mm512_maskz_set1_epi32(0x1111, group_offset<F>(x, b));
  __m512i products;
  if constexpr (F == WeightFormat::int8) {
    _mm_prefetch(reinterpret_cast<const char*>(q + kGroupPrefetchBytes + 64), _MM_HINT_T0);
    products = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, flip_sign(_mm512_loadu_si512(q)), y0), flip_sign(_mm512_loadu_si512(q + 64)), y1);
  } else {
    const __m512i packed = _mm512_loadu_si512(q), mask = _mm512_set1_epi8(0x0f);
    products = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, _mm512_and_si512(packed, mask), y0),
                                   _mm512_and_si512(_mm512_srli_epi16(packed, 4), mask), y1);
  }
  const __m512 s = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                         _mm512_castps128_ps512(group_scales(group, b, x.block_scales()[b])));
  return _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(products), acc);
}

template <WeightFormat F>
CHRONOS_TARGET_AVX512 CHRONOS_ALWAYS_INLINE void dot_group_avx512(const uint8_t* group, int64_t blocks, const KernelInput& x, float* out) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    acc0 = group_step_avx512<F>(acc0, group, blocks, b, x);
    acc1 = group_step_avx512<F>(acc1, group, blocks, b + 1, x);
  }
  if (b < blocks) acc0 = group_step_avx512<F>(acc0, group, blocks, b, x);
  const __m512 sum = _mm512_add_ps(acc0, acc1);
  out[0] = lane_sum(_mm512_castps512_ps128(sum));
  out[1] = lane_sum(_mm512_extractf32x4_ps(sum, 1));
  out[2] = lane_sum(_mm512_extractf32x4_ps(sum, 2));
  out[3] = lane_sum(_mm512_extractf32x4_ps(sum, 3));
}

CHRONOS_GROUP_ROWS(CHRONOS_TARGET_AVX512, rows_int8_groups_avx512, kInt8Block, dot_group_avx512<WeightFormat::int8>,
                   dot_group_row_avx512<WeightFormat::int8>)
CHRONOS_GROUP_ROWS(CHRONOS_TARGET_AVX512, rows_int4_groups_avx512, kInt4Block, dot_group_avx512<WeightFormat::int4>,
                   dot_group_row_avx512<WeightFormat::int4>)

#pragma GCC diagnostic pop

#endif

// `count` rows of `blocks` blocks each, `row_bytes` apart, against the input's blocks.
using BlockRows = void (*)(const uint8_t* rows, int64_t row_bytes, int64_t count, const KernelInput& x, int64_t blocks, float* out);
// Rows [first, last) of a block-format matrix in groups of four rows of `blocks` blocks.
using GroupRows = void (*)(const uint8_t* matrix, int64_t first, int64_t last, const KernelInput& x, int64_t blocks, float* out);

struct Kernels {
  // `count` rows of n bfloat16 values, back to back, against n floats.
  void (*rows_bf16)(const uint16_t* rows, int64_t count, const float* x, int64_t n, float* out);
  BlockRows rows_int8;
  BlockRows rows_int4;
  GroupRows rows_int8_groups;
  GroupRows rows_int4_groups;
  float (*quantize_block)(const float* x, int8_t* q, int32_t* sum);  // a whole block of the input: scale, quants, their sum
};

Kernels kernels_for(FormatIsa isa) {
#ifdef CHRONOS_FORMAT_AVX2
  // bf16 widens in registers on AVX-512 too: vdpbf16ps would round the input to bfloat16.
  if (isa == FormatIsa::avx512_vnni)
    return {rows_bf16_avx512, rows_int8_avx512, rows_int4_avx512, rows_int8_groups_avx512, rows_int4_groups_avx512, quantize_full_block_avx2};
  if (isa == FormatIsa::avx2)
    return {rows_bf16_avx2, rows_int8_avx2, rows_int4_avx2, rows_int8_groups_avx2, rows_int4_groups_avx2, quantize_full_block_avx2};
#endif
  (void)isa;
  return {rows_bf16_portable,        rows_int8_portable,        rows_int4_portable,
          rows_int8_groups_portable, rows_int4_groups_portable, quantize_full_block_portable};
}

FormatIsa detect() {
#ifdef CHRONOS_FORMAT_AVX2
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni"))
    return FormatIsa::avx512_vnni;
  if (avx2) return FormatIsa::avx2;
#endif
  return FormatIsa::portable;
}

FormatIsa g_isa = detect();
Kernels g_kernels = kernels_for(g_isa);

}  // namespace

FormatIsa detected_isa() { return detect(); }
FormatIsa active_isa() { return g_isa; }

const char* to_string(FormatIsa isa) {
  switch (isa) {
    case FormatIsa::portable: return "portable";
    case FormatIsa::avx2: return "avx2";
    case FormatIsa::avx512_vnni: return "avx512vnni";
  }
  return "?";
}

std::vector<FormatIsa> runnable_isas() {
  std::vector<FormatIsa> isas;
  for (const FormatIsa isa : {FormatIsa::portable, FormatIsa::avx2, FormatIsa::avx512_vnni})
    if (static_cast<int>(isa) <= static_cast<int>(detect())) isas.push_back(isa);  // each level includes the ones below
  return isas;
}

void use_isa(FormatIsa isa) {
  if (static_cast<int>(isa) > static_cast<int>(detect())) throw InvalidArgument(cat("this CPU does not run the ", to_string(isa), " kernels"));
  g_isa = isa;
  g_kernels = kernels_for(isa);
}

std::vector<KernelInput::Blocks>& KernelInput::stock() {
  thread_local std::vector<Blocks> spare;
  return spare;
}

KernelInput::~KernelInput() {
  constexpr size_t kStocked = 16;  // more than a layer holds at once: one per SwiGLU term, and its input
  if (b_.scales.capacity() == 0) return;
  std::vector<Blocks>& spare = stock();
  if (spare.capacity() < kStocked) spare.reserve(kStocked);
  if (spare.size() < kStocked) spare.push_back(std::move(b_));
}

void KernelInput::assign(const float* x, int64_t n, bool with_blocks, bool with_int4_pairs) {
  values_ = x;
  n_ = n;
  int4_pairs_ = false;
  b_.scales.clear();
  b_.quants.clear();
  b_.sums.clear();
  b_.int8_offsets.clear();
  b_.quad_quants.clear();
  b_.pair_offsets.clear();
  if (!with_blocks) return;
  if (b_.scales.capacity() == 0 && !stock().empty()) {
    b_ = std::move(stock().back());
    stock().pop_back();
  }
  const int64_t blocks = (n + kBlock - 1) / kBlock, full = n / kBlock;
  b_.scales.resize(static_cast<size_t>(blocks));
  b_.sums.resize(static_cast<size_t>(blocks));
  b_.quants.resize(static_cast<size_t>(blocks * kBlock));
  b_.int8_offsets.resize(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b) {
    int8_t* q = b_.quants.data() + b * kBlock;
    int32_t& sum = b_.sums[static_cast<size_t>(b)];
    if (b < full) {
      b_.scales[static_cast<size_t>(b)] = g_kernels.quantize_block(x + b * kBlock, q, &sum);
    } else {
      b_.scales[static_cast<size_t>(b)] = quantize_input_block(x + b * kBlock, n - b * kBlock, q);
      sum = quant_sum(q);
    }
    b_.int8_offsets[static_cast<size_t>(b)] = -128 * sum;
  }
  if (!with_int4_pairs) return;
  int4_pairs_ = true;
  // Groups of four blocks, then a last pair (a zero-padded last block included): quants 0..15 of
  // each block, then 16..31 of each; the int4 offsets of each pair.
  constexpr int64_t kHalf = kBlock / 2;
  const int64_t pairs = blocks / 2, grouped = 2 * pairs;
  b_.quad_quants.resize(static_cast<size_t>(grouped * kBlock));
  for (int64_t first = 0; first < grouped; first += 4) {
    const int64_t width = std::min<int64_t>(4, grouped - first);
    int8_t* out = b_.quad_quants.data() + first * kBlock;
    for (int64_t j = 0; j < width; ++j) {
      const int8_t* block = b_.quants.data() + (first + j) * kBlock;
      std::memcpy(out + j * kHalf, block, kHalf);
      std::memcpy(out + (width + j) * kHalf, block + kHalf, kHalf);
    }
  }
  b_.pair_offsets.assign(static_cast<size_t>(pairs * 4), 0);
  for (int64_t p = 0; p < pairs; ++p) {
    b_.pair_offsets[static_cast<size_t>(4 * p)] = -8 * b_.sums[static_cast<size_t>(2 * p)];
    b_.pair_offsets[static_cast<size_t>(4 * p + 2)] = -8 * b_.sums[static_cast<size_t>(2 * p + 1)];
  }
}

void round_to_input_blocks(float* x, int64_t n) {
  int8_t q[kBlock];
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t len = std::min(kBlock, n - start);
    int32_t sum = 0;
    const float scale = len == kBlock ? g_kernels.quantize_block(x + start, q, &sum) : quantize_input_block(x + start, len, q);
    for (int64_t i = 0; i < len; ++i) x[start + i] = scale * static_cast<float>(q[i]);
  }
}

RowLayout row_layout(const at::Tensor& stored, int64_t cols) {
  return grouped_format(stored, cols) ? RowLayout::groups : RowLayout::rows;
}

float row_dot(WeightFormat format, const void* row, const KernelInput& x) {
  float y = 0;
  rows_dot(format, row, 0, 1, x, &y);
  return y;
}

void rows_dot(WeightFormat format, const void* matrix, int64_t first, int64_t last, const KernelInput& x, float* out, RowLayout layout) {
  const int64_t n = x.size(), blocks = (n + kBlock - 1) / kBlock, row_bytes = weight_row_bytes(format, n);
  if (layout == RowLayout::groups) {
    if (!needs_blocks(format)) throw InvalidArgument(cat("rows_dot: ", to_string(format), " rows come row by row, not in groups"));
    return (format == WeightFormat::int8 ? g_kernels.rows_int8_groups : g_kernels.rows_int4_groups)(static_cast<const uint8_t*>(matrix), first,
                                                                                                     last, x, blocks, out);
  }
  if (format == WeightFormat::int4 && !x.has_int4_pairs()) throw InvalidArgument("rows_dot: row-major int4 rows need the input's int4 pairs");
  const auto* rows = static_cast<const uint8_t*>(matrix) + first * row_bytes;
  const int64_t count = last - first;
  switch (format) {
    case WeightFormat::fp32:
      return matrix_rows_dot(reinterpret_cast<const float*>(rows), n, count, x.values(), out);
    case WeightFormat::bf16:
      return g_kernels.rows_bf16(reinterpret_cast<const uint16_t*>(rows), count, x.values(), n, out);
    case WeightFormat::int8:
    case WeightFormat::int4:
      return (format == WeightFormat::int8 ? g_kernels.rows_int8 : g_kernels.rows_int4)(rows, row_bytes, count, x, blocks, out);
  }
}

void gemv_stored(WeightFormat format, const void* weight, const KernelInput& x, float* y, int64_t out, RowLayout layout) {
  if (needs_blocks(format) && !x.has_blocks()) throw InvalidArgument(cat("gemv_stored: ", to_string(format), " rows need the input's int8 blocks"));
  // Checked here, on the calling thread: rows_dot's own check would throw inside the parallel loop.
  if (needs_int4_pairs(format, layout) && !x.has_int4_pairs()) throw InvalidArgument("gemv_stored: row-major int4 rows need the input's int4 pairs");
  if (format == WeightFormat::fp32) return gemv(static_cast<const float*>(weight), x.values(), y, out, x.size());
  constexpr int64_t kMinChunkBytes = 128 << 10;
  const int64_t row_bytes = weight_row_bytes(format, x.size());
  const int64_t grain = std::max<int64_t>(4, kMinChunkBytes / std::max<int64_t>(row_bytes, 1));
  parallel_chunks(
      out, grain, [&](int64_t first, int64_t last) { rows_dot(format, weight, first, last, x, y + first, layout); }, chunk_alignment(layout));
}

}  // namespace chronos::cpu
