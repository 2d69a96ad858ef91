// The generic float vectors of the CPU kernels (cpu_kernels.cpp, format_kernels.cpp): GCC lowers them
// to whatever the enclosing function is compiled for (zmm, ymm or xmm code).
#pragma once

#include <cstdint>
#include <cstring>

namespace chronos::cpu::vectors {

using Vec16 = float __attribute__((vector_size(64)));
using Vec8 = float __attribute__((vector_size(32)));
using Vec4 = float __attribute__((vector_size(16)));
constexpr int64_t kLanes = 16;

inline __attribute__((always_inline)) Vec16 load(const float* p) {
  Vec16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline __attribute__((always_inline)) void store(float* p, Vec16 v) { std::memcpy(p, &v, sizeof v); }

using U16x16 = uint16_t __attribute__((vector_size(32)));
using U32x16 = uint32_t __attribute__((vector_size(64)));

// 16 bfloat16 values widened to float32: their bits become the high half of each float.
inline __attribute__((always_inline)) Vec16 widen16(const uint16_t* p) {
  U16x16 v;
  std::memcpy(&v, p, sizeof v);
  return reinterpret_cast<Vec16>(__builtin_convertvector(v, U32x16) << 16);
}

inline __attribute__((always_inline)) float bf16_value(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

using Int8 = int32_t __attribute__((vector_size(32)));

// e^x in every lane, within 2 ulp of std::exp: x = n ln2 + r with |r| <= ln2 / 2, e^r by Cephes'
// degree-7 polynomial (S. L. Moshier, Cephes Math Library, expf.c), 2^n put into the exponent bits.
// exp(+inf) = +inf, exp(-inf) = 0 and NaN stays NaN, as std::exp; results below 2^-126 flush to zero.
// std::exp one value at a time was 2.5% of a decode step (softmax scores, SwiGLU gates).
// On 8 lanes, each comparison inside the select that uses it: GCC 12 lowers this header before it
// inlines it into the clones, and there it turns selects on 16 lanes (in the AVX2 clone) and selects
// on a mask kept in a variable (in every clone) into one branch per lane.
inline __attribute__((always_inline)) Vec8 exp(Vec8 x) {
  const Vec8 hi = Vec8{} + 88.72283905f, lo = Vec8{} - 87.33654475f;  // ln(FLT_MAX), ln(2^-126)
  const Vec8 c = x > hi ? hi : (x < lo ? lo : x);                     // NaN passes through
  // Round to nearest by the 1.5 * 2^23 trick: n's integer sits in the low mantissa bits.
  constexpr float kRound = 12582912.0f;
  const Vec8 shifted = c * 1.44269504088896341f + kRound;
  const Vec8 n = shifted - kRound;
  const Vec8 r = (c - n * 0.693359375f) - n * -2.12194440e-4f;  // ln2 in two parts, exact products
  Vec8 p = Vec8{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  Int8 bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  // n in [-126, 128]: 2^n as two factors keeps n = 128 (x near ln FLT_MAX) finite in between.
  const Int8 whole = bits - 0x4B400000, half = whole >> 1;
  const Int8 e1 = (half + 127) << 23, e2 = (whole - half + 127) << 23;
  Vec8 s1, s2;
  std::memcpy(&s1, &e1, sizeof s1);
  std::memcpy(&s2, &e2, sizeof s2);
  const Vec8 y = p * s1 * s2;
  return x > hi ? Vec8{} + __builtin_inff() : (x < lo ? Vec8{} : y);
}

inline __attribute__((always_inline)) Vec16 exp(Vec16 x) {
  const Vec8 a = exp(Vec8(__builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7)));
  const Vec8 b = exp(Vec8(__builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15)));
  return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

// The sum of the 16 lanes.
inline __attribute__((always_inline)) float reduce(Vec16 a) {
  const Vec8 b = __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15);
  const Vec4 c = __builtin_shufflevector(b, b, 0, 1, 2, 3) + __builtin_shufflevector(b, b, 4, 5, 6, 7);
  return (c[0] + c[2]) + (c[1] + c[3]);
}

// reduce() of four vectors at once, bit for bit the same sums: the shuffles of four reductions
// shared, for the score of four keys at a time.
inline __attribute__((always_inline)) Vec4 reduce4(Vec16 a, Vec16 b, Vec16 c, Vec16 d) {
  const auto halves = [](Vec16 v) -> Vec8 {
    return __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  };
  const Vec8 ha = halves(a), hb = halves(b), hc = halves(c), hd = halves(d);
  // Each vector's four partial sums, two vectors side by side: lo4 + hi4 as in reduce().
  const Vec8 ab = __builtin_shufflevector(ha, hb, 0, 1, 2, 3, 8, 9, 10, 11) + __builtin_shufflevector(ha, hb, 4, 5, 6, 7, 12, 13, 14, 15);
  const Vec8 cd = __builtin_shufflevector(hc, hd, 0, 1, 2, 3, 8, 9, 10, 11) + __builtin_shufflevector(hc, hd, 4, 5, 6, 7, 12, 13, 14, 15);
  // reduce() ends with (p0 + p2) + (p1 + p3).
  const Vec8 e = __builtin_shufflevector(ab, cd, 0, 1, 4, 5, 8, 9, 12, 13) + __builtin_shufflevector(ab, cd, 2, 3, 6, 7, 10, 11, 14, 15);
  return __builtin_shufflevector(e, e, 0, 2, 4, 6) + __builtin_shufflevector(e, e, 1, 3, 5, 7);
}

}  // namespace chronos::cpu::vectors
