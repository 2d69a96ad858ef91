#include "model/cpu_gemv.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cstring>

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

// Rows [first, last) of y = W x. Four independent accumulators hide the FMA latency; each row is
// one sequential stream, which the hardware prefetcher follows.
CHRONOS_SIMD_CLONES
void gemv_rows(const float* weight, const float* x, float* y, int64_t in, int64_t first, int64_t last) {
  for (int64_t row = first; row < last; ++row) {
    const float* w = weight + row * in;
    Vec16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
    int64_t i = 0;
    for (; i + 4 * kLanes <= in; i += 4 * kLanes) {
      a0 += load(w + i) * load(x + i);
      a1 += load(w + i + kLanes) * load(x + i + kLanes);
      a2 += load(w + i + 2 * kLanes) * load(x + i + 2 * kLanes);
      a3 += load(w + i + 3 * kLanes) * load(x + i + 3 * kLanes);
    }
    for (; i + kLanes <= in; i += kLanes) a0 += load(w + i) * load(x + i);
    float sum = reduce((a0 + a1) + (a2 + a3));
    for (; i < in; ++i) sum += w[i] * x[i];
    y[row] = sum;
  }
}

}  // namespace

bool gemv_applies(const at::Tensor& x, const at::Tensor& weight) {
  if (!x.device().is_cpu() || !weight.device().is_cpu() || x.scalar_type() != at::kFloat ||
      weight.scalar_type() != at::kFloat || weight.dim() != 2 || x.numel() != weight.size(1) ||
      !x.is_contiguous() || !weight.is_contiguous())
    return false;
  return !c10::GradMode::is_enabled() || (!x.requires_grad() && !weight.requires_grad());
}

void gemv(const float* weight, const float* x, float* y, int64_t out, int64_t in) {
  constexpr int64_t kMinChunkBytes = 128 << 10;
  const int64_t grain = std::max<int64_t>(4, kMinChunkBytes / (static_cast<int64_t>(sizeof(float)) * std::max<int64_t>(in, 1)));
  at::parallel_for(0, out, grain, [&](int64_t first, int64_t last) { gemv_rows(weight, x, y, in, first, last); });
}

}  // namespace chronos::cpu
