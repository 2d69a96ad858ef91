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

// The sum of the 16 lanes.
inline __attribute__((always_inline)) float reduce(Vec16 a) {
  const Vec8 b = __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15);
  const Vec4 c = __builtin_shufflevector(b, b, 0, 1, 2, 3) + __builtin_shufflevector(b, b, 4, 5, 6, 7);
  return (c[0] + c[2]) + (c[1] + c[3]);
}

}  // namespace chronos::cpu::vectors
