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
