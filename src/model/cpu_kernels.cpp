#include "model/cpu_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "chronos/core/error.h"
#include "model/float_vectors.h"
#include "model/row_groups.h"
#include "model/format_kernels.h"
#include "model/work_pool.h"

// One clone per instruction set, picked once at load time (GCC/Clang ifunc): the generic vectors
// below become zmm, ymm or xmm code.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CHRONOS_SIMD_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define CHRONOS_SIMD_CLONES
#endif

namespace chronos::cpu {

using namespace vectors;

namespace {
// Four independent accumulators hide the FMA latency; `a` is one sequential stream, which the
// hardware prefetcher follows.
inline __attribute__((always_inline)) float dot4_inline(const float* a, const float* b, int64_t n) {
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
}  // namespace

CHRONOS_SIMD_CLONES
float dot(const float* a, const float* b, int64_t n) { return dot4_inline(a, b, n); }

// The rows in one call, each summed as dot() sums it: a call per row through the clones' ifunc made
// fine.json's fp32 decode 2% slower (paired tokens).
CHRONOS_SIMD_CLONES
void matrix_rows_dot(const float* rows, int64_t n, int64_t count, const float* x, float* out) {
  for (int64_t r = 0; r < count; ++r) out[r] = dot4_inline(rows + r * n, x, n);
}

// The attention kernels, inline templates over the cached rows' type (float, or bfloat16 widened in
// registers) that the exported clones below compile for their instruction set.
namespace {
inline __attribute__((always_inline)) Vec16 load_row(const float* p) { return load(p); }
inline __attribute__((always_inline)) Vec16 load_row(const c10::BFloat16* p) { return widen16(reinterpret_cast<const uint16_t*>(p)); }
inline __attribute__((always_inline)) float value(float v) { return v; }
inline __attribute__((always_inline)) float value(c10::BFloat16 v) { return bf16_value(v.x); }

// The cached rows are asked for 24 rows ahead into L2 (PREFETCHT1): the weights streamed since the
// layer's last token have evicted them, and a window layer's rows of one key-value group are 256 of
// every 512 bytes, which the hardware prefetchers left to demand misses. fine.json int8, one head
// pair of a window layer (rdtsc in a throwaway build): the scores 11.1 -> 8.1 k cycles, both
// weighted sums 8.2 -> 7.5 k; with a bfloat16 cache 8.5 -> 6.0 k and 6.5 -> 4.3 k. 12 and 48 rows
// ahead were level with 24; PREFETCHT0 16 ahead had been level in decode.
constexpr int64_t kRowsAhead = 24;
template <typename Row>
inline __attribute__((always_inline)) void prefetch_row(const Row* row, int64_t n) {
  for (int64_t b = 0; b < n * static_cast<int64_t>(sizeof(Row)); b += 64) __builtin_prefetch(reinterpret_cast<const char*>(row) + b, 0, 2);
}

template <typename Row>
inline __attribute__((always_inline)) float dot_inline(const float* a, const Row* b, int64_t n) {
  Vec16 a0 = {}, a1 = {};
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    a0 += load(a + i) * load_row(b + i);
    a1 += load(a + i + kLanes) * load_row(b + i + kLanes);
  }
  for (; i + kLanes <= n; i += kLanes) a0 += load(a + i) * load_row(b + i);
  float sum = reduce(a0 + a1);
  for (; i < n; ++i) sum += a[i] * value(b[i]);
  return sum;
}

// Four keys at a time share the loads of q and the shuffles of the lane sums (reduce4); each score is
// summed exactly as dot_inline sums it, so the blocks and the single rows agree bit for bit.
template <typename Row>
inline __attribute__((always_inline)) void dot_rows_inline(const float* q, const Row* rows, int64_t stride, int64_t count, int64_t n,
                                                           float scale, float* out, bool accumulate) {
  int64_t t = 0;
  for (; t + 4 <= count; t += 4) {
    const Row* r[4] = {rows + t * stride, rows + (t + 1) * stride, rows + (t + 2) * stride, rows + (t + 3) * stride};
    if (t + kRowsAhead + 3 < count)
      for (int j = 0; j < 4; ++j) prefetch_row(r[j] + kRowsAhead * stride, n);
    Vec16 lo[4] = {}, hi[4] = {};
    int64_t i = 0;
    for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
      const Vec16 q0 = load(q + i), q1 = load(q + i + kLanes);
      for (int j = 0; j < 4; ++j) {
        lo[j] += q0 * load_row(r[j] + i);
        hi[j] += q1 * load_row(r[j] + i + kLanes);
      }
    }
    for (; i + kLanes <= n; i += kLanes) {
      const Vec16 q0 = load(q + i);
      for (int j = 0; j < 4; ++j) lo[j] += q0 * load_row(r[j] + i);
    }
    const Vec4 sums = reduce4(lo[0] + hi[0], lo[1] + hi[1], lo[2] + hi[2], lo[3] + hi[3]);
    for (int j = 0; j < 4; ++j) {
      float sum = sums[j];
      for (int64_t k = i; k < n; ++k) sum += q[k] * value(r[j][k]);
      const float v = scale * sum;
      out[t + j] = accumulate ? out[t + j] + v : v;
    }
  }
  for (; t < count; ++t) {
    const float v = scale * dot_inline(q, rows + t * stride, n);
    out[t] = accumulate ? out[t] + v : v;
  }
}

// Two queries against the same rows (two heads of one key-value group): each row is read once for
// both, two keys a step, and every score is summed exactly as dot_rows sums it (lo and hi halves,
// one reduction, the scalar tail), so the pair and the single heads agree bit for bit.
template <typename Row>
inline __attribute__((always_inline)) void dot_rows2_inline(const float* q0, const float* q1, const Row* rows, int64_t stride, int64_t count,
                                                            int64_t n, float scale, float* out0, float* out1, bool accumulate) {
  const float* q[2] = {q0, q1};
  float* out[2] = {out0, out1};
  for (int64_t t = 0; t < count; t += 2) {
    const int keys = t + 1 < count ? 2 : 1;  // an odd last key is read as both (its second sums go unused)
    const Row* r[2] = {rows + t * stride, rows + (t + keys - 1) * stride};
    if (t + kRowsAhead + 1 < count) {
      prefetch_row(r[0] + kRowsAhead * stride, n);
      prefetch_row(r[0] + (kRowsAhead + 1) * stride, n);
    }
    Vec16 lo[2][2] = {}, hi[2][2] = {};  // [key][query]
    int64_t i = 0;
    for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
      const Vec16 k0 = load_row(r[0] + i), k0h = load_row(r[0] + i + kLanes), k1 = load_row(r[1] + i), k1h = load_row(r[1] + i + kLanes);
      for (int j = 0; j < 2; ++j) {
        const Vec16 ql = load(q[j] + i), qh = load(q[j] + i + kLanes);
        lo[0][j] += ql * k0;
        hi[0][j] += qh * k0h;
        lo[1][j] += ql * k1;
        hi[1][j] += qh * k1h;
      }
    }
    for (; i + kLanes <= n; i += kLanes) {
      const Vec16 k0 = load_row(r[0] + i), k1 = load_row(r[1] + i);
      for (int j = 0; j < 2; ++j) {
        lo[0][j] += load(q[j] + i) * k0;
        lo[1][j] += load(q[j] + i) * k1;
      }
    }
    const Vec4 sums = reduce4(lo[0][0] + hi[0][0], lo[1][0] + hi[1][0], lo[0][1] + hi[0][1], lo[1][1] + hi[1][1]);
    if (i == n && keys == 2) {  // no scalar tail: the four scores scaled (and added) as one vector
      using Vec2 = float __attribute__((vector_size(8)));
      Vec4 v = scale * sums;  // [query 0 key t, query 0 key t + 1, query 1 key t, query 1 key t + 1]
      if (accumulate) {
        Vec2 before0, before1;
        std::memcpy(&before0, out0 + t, sizeof before0);
        std::memcpy(&before1, out1 + t, sizeof before1);
        v = __builtin_shufflevector(before0, before1, 0, 1, 2, 3) + v;
      }
      const Vec2 scores0 = __builtin_shufflevector(v, v, 0, 1), scores1 = __builtin_shufflevector(v, v, 2, 3);
      std::memcpy(out0 + t, &scores0, sizeof scores0);
      std::memcpy(out1 + t, &scores1, sizeof scores1);
      continue;
    }
    for (int j = 0; j < 2; ++j) {
      for (int key = 0; key < keys; ++key) {
        float sum = sums[2 * j + key];
        for (int64_t k = i; k < n; ++k) sum += q[j][k] * value(r[key][k]);
        const float v = scale * sum;
        out[j][t + key] = accumulate ? out[j][t + key] + v : v;
      }
    }
  }
}

// Columns in blocks of four vectors that stay in registers over all rows (out is read and written
// once, not once per row); every out[i] sums its rows in the same order as a row-by-row loop.
template <typename Row>
inline __attribute__((always_inline)) void weighted_row_sum_inline(const float* p, const Row* rows, int64_t stride, int64_t count, int64_t n,
                                                                   float* out) {
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    Vec16 o0 = load(out + i), o1 = load(out + i + kLanes), o2 = load(out + i + 2 * kLanes), o3 = load(out + i + 3 * kLanes);
    for (int64_t t = 0; t < count; ++t) {
      const Row* r = rows + t * stride + i;
      if (t + kRowsAhead < count) prefetch_row(r + kRowsAhead * stride, 4 * kLanes);
      const float w = p[t];
      o0 += w * load_row(r);
      o1 += w * load_row(r + kLanes);
      o2 += w * load_row(r + 2 * kLanes);
      o3 += w * load_row(r + 3 * kLanes);
    }
    store(out + i, o0);
    store(out + i + kLanes, o1);
    store(out + i + 2 * kLanes, o2);
    store(out + i + 3 * kLanes, o3);
  }
  for (; i + kLanes <= n; i += kLanes) {
    Vec16 o = load(out + i);
    for (int64_t t = 0; t < count; ++t) o += p[t] * load_row(rows + t * stride + i);
    store(out + i, o);
  }
  for (; i < n; ++i) {
    float o = out[i];
    for (int64_t t = 0; t < count; ++t) o += p[t] * value(rows[t * stride + i]);
    out[i] = o;
  }
}

// weighted_row_sum for two weightings of the same rows, each row read once; each out sums its rows in
// the order weighted_row_sum does, so the pair and the single heads agree bit for bit.
template <typename Row>
inline __attribute__((always_inline)) void weighted_row_sum2_inline(const float* p0, const float* p1, const Row* rows, int64_t stride,
                                                                    int64_t count, int64_t n, float* out0, float* out1) {
  const float* p[2] = {p0, p1};
  float* out[2] = {out0, out1};
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    Vec16 o[2][4];
    for (int j = 0; j < 2; ++j)
      for (int c = 0; c < 4; ++c) o[j][c] = load(out[j] + i + c * kLanes);
    for (int64_t t = 0; t < count; ++t) {
      const Row* r = rows + t * stride + i;
      if (t + kRowsAhead < count) prefetch_row(r + kRowsAhead * stride, 4 * kLanes);
      const Vec16 r0 = load_row(r), r1 = load_row(r + kLanes), r2 = load_row(r + 2 * kLanes), r3 = load_row(r + 3 * kLanes);
      for (int j = 0; j < 2; ++j) {
        const float w = p[j][t];
        o[j][0] += w * r0;
        o[j][1] += w * r1;
        o[j][2] += w * r2;
        o[j][3] += w * r3;
      }
    }
    for (int j = 0; j < 2; ++j)
      for (int c = 0; c < 4; ++c) store(out[j] + i + c * kLanes, o[j][c]);
  }
  for (; i + kLanes <= n; i += kLanes) {
    Vec16 o0 = load(out0 + i), o1 = load(out1 + i);
    for (int64_t t = 0; t < count; ++t) {
      const Vec16 r = load_row(rows + t * stride + i);
      o0 += p0[t] * r;
      o1 += p1[t] * r;
    }
    store(out0 + i, o0);
    store(out1 + i, o1);
  }
  for (; i < n; ++i) {
    float o0 = out0[i], o1 = out1[i];
    for (int64_t t = 0; t < count; ++t) {
      o0 += p0[t] * value(rows[t * stride + i]);
      o1 += p1[t] * value(rows[t * stride + i]);
    }
    out0[i] = o0;
    out1[i] = o1;
  }
}

}  // namespace

// The exported kernels: one set of clones per row type.
#define CHRONOS_ATTENTION_KERNELS(Row)                                                                                                   \
  CHRONOS_SIMD_CLONES void dot_rows(const float* q, const Row* rows, int64_t stride, int64_t count, int64_t n, float scale, float* out,   \
                                    bool accumulate) {                                                                                   \
    dot_rows_inline(q, rows, stride, count, n, scale, out, accumulate);                                                                  \
  }                                                                                                                                      \
  CHRONOS_SIMD_CLONES void dot_rows2(const float* q0, const float* q1, const Row* rows, int64_t stride, int64_t count, int64_t n,        \
                                     float scale, float* out0, float* out1, bool accumulate) {                                           \
    dot_rows2_inline(q0, q1, rows, stride, count, n, scale, out0, out1, accumulate);                                                     \
  }                                                                                                                                      \
  CHRONOS_SIMD_CLONES void weighted_row_sum(const float* p, const Row* rows, int64_t stride, int64_t count, int64_t n, float* out) {     \
    weighted_row_sum_inline(p, rows, stride, count, n, out);                                                                             \
  }                                                                                                                                      \
  CHRONOS_SIMD_CLONES void weighted_row_sum2(const float* p0, const float* p1, const Row* rows, int64_t stride, int64_t count, int64_t n, \
                                             float* out0, float* out1) {                                                                 \
    weighted_row_sum2_inline(p0, p1, rows, stride, count, n, out0, out1);                                                                \
  }

CHRONOS_ATTENTION_KERNELS(float)
CHRONOS_ATTENTION_KERNELS(c10::BFloat16)

void rms_norm(const float* x, float* y, int64_t groups, int64_t dim, const float* weight, double eps) {
  for (int64_t g = 0; g < groups; ++g) {
    const float* v = x + g * dim;
    float* out = y + g * dim;
    const float scale = 1.0f / std::sqrt(dot(v, v, dim) / static_cast<float>(dim) + static_cast<float>(eps));
    for (int64_t i = 0; i < dim; ++i) out[i] = v[i] * scale * weight[i];
  }
}

namespace {
// The largest of n floats in two sets of eight lanes (std::max_element's compares each wait on the
// last: most of a softmax's time over a few hundred attention scores). Only a NaN can make it differ
// from std::max_element's value, and a NaN score makes the whole softmax NaN either way.
inline __attribute__((always_inline)) float max_of(const float* v, int64_t n) {
  Vec8 top0 = Vec8{} - __builtin_inff(), top1 = top0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Vec8 x0, x1;
    std::memcpy(&x0, v + i, sizeof x0);
    std::memcpy(&x1, v + i + 8, sizeof x1);
    top0 = x0 > top0 ? x0 : top0;
    top1 = x1 > top1 ? x1 : top1;
  }
  float best = -__builtin_inff();
  for (int j = 0; j < 8; ++j) best = std::max({best, top0[j], top1[j]});
  for (; i < n; ++i) best = std::max(best, v[i]);
  return best;
}

inline __attribute__((always_inline)) float exp_shifted_inline(float* scores, int64_t n, float* sum) {
  const float top = max_of(scores, n);
  Vec16 sums = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Vec16 e = vectors::exp(load(scores + i) - top);
    store(scores + i, e);
    sums += e;
  }
  float total = reduce(sums);
  for (; i < n; ++i) total += (scores[i] = std::exp(scores[i] - top));
  *sum = total;
  return top;
}
}  // namespace

CHRONOS_SIMD_CLONES
float exp_shifted_in_place(float* scores, int64_t n, float* sum) { return exp_shifted_inline(scores, n, sum); }

CHRONOS_SIMD_CLONES
void softmax_in_place(float* scores, int64_t n) {
  float sum = 0;
  exp_shifted_inline(scores, n, &sum);
  const float inverse = 1.0f / sum;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store(scores + i, load(scores + i) * inverse);
  for (; i < n; ++i) scores[i] *= inverse;
}

CHRONOS_SIMD_CLONES
void silu_times(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Vec16 g = load(gate + i);
    store(gate + i, g / (1.0f + vectors::exp(-g)) * load(up + i));
  }
  for (; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

// Eight lanes, each comparison inside the select that uses it (float_vectors.h on GCC 12's selects):
// the lanes' maxima and a NaN flag in one pass, then the first value equal to the maximum.
CHRONOS_SIMD_CLONES
int64_t first_max(const float* v, int64_t n) {
  Vec8 top = Vec8{} - __builtin_inff();
  Int8 nan = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    Vec8 x;
    std::memcpy(&x, v + i, sizeof x);
    nan |= x != x;
    top = x > top ? x : top;
  }
  bool any_nan = false;
  float best = -__builtin_inff();
  for (int j = 0; j < 8; ++j) {
    any_nan = any_nan || nan[j] != 0;
    best = std::max(best, top[j]);
  }
  for (; i < n; ++i) {
    any_nan = any_nan || std::isnan(v[i]);
    best = std::max(best, v[i]);
  }
  for (int64_t k = 0; k < n; ++k)
    if (any_nan ? std::isnan(v[k]) : v[k] == best) return k;
  return 0;
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
  parallel_chunks(out, grain, [&](int64_t first, int64_t last) { matrix_rows_dot(weight + first * in, in, last - first, x, y + first); });
}

namespace {

// Rows of a term's matrices a kernel call covers at most (stack buffers of this many floats).
constexpr int64_t kRun = 256;

// h[i] = silu(gate_t x) * (up_t x) at row i % intermediate of term i / intermediate, for the flat rows
// [first, last) of `terms` (one kernel dispatch per run of a term's rows).
void gate_up_rows(const SwigluTerm* terms, const KernelInput& x, float* h, int64_t intermediate, int64_t first, int64_t last) {
  float up[kRun];
  for (int64_t i = first; i < last;) {
    const SwigluTerm& t = terms[i / intermediate];
    const int64_t r = i % intermediate, n = std::min({last - i, intermediate - r, kRun});
    float* gate = h + i;
    rows_dot(t.format, t.gate, r, r + n, x, gate, t.gate_up_layout);
    rows_dot(t.format, t.up, r, r + n, x, up, t.gate_up_layout);
    silu_times(gate, up, n);
    i += n;
  }
}

// Terms whose hidden activations lie in one buffer, `intermediate` a term.
struct TermGroup {
  const SwigluTerm* terms;
  int64_t count;
  const float* h;
  int64_t intermediate;
};

// The down projections' input of each term of a group: its hidden activations, with the blocks its
// format reads. A chunk keeps the first few on its stack (a token's routed and shared experts:
// 4 + 1 on fine.json, 8 + 0 on Mixtral).
class DownInputs {
 public:
  explicit DownInputs(const TermGroup& g) : more_(static_cast<size_t>(std::max<int64_t>(0, g.count - kInline))) {
    for (int64_t t = 0; t < g.count; ++t)
      (*this)[t].assign(g.h + t * g.intermediate, g.intermediate, needs_blocks(g.terms[t].format),
                        needs_int4_pairs(g.terms[t].format, g.terms[t].down_layout));
  }
  KernelInput& operator[](int64_t t) { return t < kInline ? inline_[t] : more_[static_cast<size_t>(t - kInline)]; }

 private:
  static constexpr int64_t kInline = 16;
  KernelInput inline_[kInline];
  std::vector<KernelInput> more_;
};

// y[o] += sum_t coef_t * (down_t h_t)[o] for o in [first, last), over the terms of `first_group`
// in order, then those of `second_group`.
void down_rows(const TermGroup& first_group, float* y, int64_t first, int64_t last, const TermGroup& second_group = {nullptr, 0, nullptr, 1}) {
  DownInputs first_inputs(first_group), second_inputs(second_group);
  float sum[kRun], part[kRun];
  for (int64_t o = first; o < last; o += kRun) {
    const int64_t n = std::min(last - o, kRun);
    std::fill(sum, sum + n, 0.0f);
    for (int g = 0; g < 2; ++g) {
      const TermGroup& group = g == 0 ? first_group : second_group;
      DownInputs& inputs = g == 0 ? first_inputs : second_inputs;
      for (int64_t t = 0; t < group.count; ++t) {  // terms in order: the same sums as one row at a time
        const SwigluTerm& term = group.terms[t];
        rows_dot(term.format, term.down, o, o + n, inputs[t], part, term.down_layout);
        for (int64_t j = 0; j < n; ++j) sum[j] += term.coef * part[j];
      }
    }
    for (int64_t j = 0; j < n; ++j) y[o + j] += sum[j];
  }
}

// The grain of the down rows: one chunk a thread (two ran level).
int64_t down_grain(int64_t hidden) {
  const int64_t threads = std::max(1, at::get_num_threads());
  return std::max<int64_t>(16, (hidden + threads - 1) / threads);
}

}  // namespace

void swiglu_accumulate(const std::vector<SwigluTerm>& terms, const float* x, float* y, int64_t hidden, int64_t intermediate) {
  const int64_t count = static_cast<int64_t>(terms.size());
  bool any_blocks = false, any_pairs = false;
  int64_t gate_up_align = 1, down_align = 1;
  for (const SwigluTerm& t : terms) {
    any_blocks = any_blocks || needs_blocks(t.format);
    any_pairs = any_pairs || needs_int4_pairs(t.format, t.gate_up_layout);
    gate_up_align = std::max(gate_up_align, chunk_alignment(t.gate_up_layout));
    down_align = std::max(down_align, chunk_alignment(t.down_layout));
  }
  const KernelInput input(x, hidden, any_blocks, any_pairs);
  // The hidden activations in the calling thread's buffer, kept from call to call (the workers reach
  // it through this pointer: a thread_local named in the loop bodies would be each worker's own).
  thread_local std::vector<float> buffer;
  buffer.resize(static_cast<size_t>(count * intermediate));
  float* const h = buffer.data();
  // Rows of every gate and up projection, split over the threads; then, after a barrier (not a join
  // and a second fork), rows of every down projection, one chunk a thread, each quantizing the hidden
  // activations it reads. Chunks start at multiples of four rows when a term is in int8 row groups
  // (its row counts are multiples of four).
  const auto gate_up = [&](int64_t first, int64_t last) { gate_up_rows(terms.data(), input, h, intermediate, first, last); };
  const auto down = [&](int64_t first, int64_t last) { down_rows({terms.data(), count, h, intermediate}, y, first, last); };
  parallel_phases({{count * intermediate, 64, gate_up, gate_up_align}, {hidden, down_grain(hidden), down, down_align}});
}

void swiglu_accumulate_routed(std::vector<SwigluTerm>& shared, int64_t max_routed, FunctionRef<void(std::vector<SwigluTerm>&)> route,
                              const KernelInput& x, float* y, int64_t hidden, int64_t intermediate, int64_t shared_intermediate) {
  const int64_t shared_count = static_cast<int64_t>(shared.size());
  // The calling thread's buffer (as swiglu_accumulate's): the routed terms' activations, then the
  // shared ones'.
  thread_local std::vector<float> buffer;
  buffer.resize(static_cast<size_t>(max_routed * intermediate + shared_count * shared_intermediate));
  float* const h = buffer.data();
  float* const shared_h = h + max_routed * intermediate;
  // The calling thread's, as the buffer; the bodies reach it through this reference (a thread_local
  // named in them would be each worker's own).
  thread_local std::vector<SwigluTerm> routed_terms;
  std::vector<SwigluTerm>& routed = routed_terms;
  routed.clear();
  const auto route_token = [&] {
    route(routed);
    if (static_cast<int64_t>(routed.size()) > max_routed)
      throw InvalidArgument(cat("swiglu_accumulate_routed: ", routed.size(), " routed terms, at most ", max_routed));
  };
  // Three phases: the shared terms' gate and up rows (the pool's threads start on them while this one
  // routes, and it joins them after), the routed terms', then the rows of y.
  const auto shared_gate_up = [&](int64_t first, int64_t last) { gate_up_rows(shared.data(), x, shared_h, shared_intermediate, first, last); };
  const auto routed_gate_up = [&](int64_t first, int64_t last) {
    gate_up_rows(routed.data(), x, h, intermediate, first, std::min(last, static_cast<int64_t>(routed.size()) * intermediate));
  };
  const auto down = [&](int64_t first, int64_t last) {
    down_rows({routed.data(), static_cast<int64_t>(routed.size()), h, intermediate}, y, first, last,
              {shared.data(), shared_count, shared_h, shared_intermediate});
  };
  // Chunks at multiples of four rows: the routed terms' layouts are not known yet (row groups need it).
  const auto align = [](int64_t rows) { return rows % kGroupRows == 0 ? kGroupRows : int64_t{1}; };
  parallel_phases(route_token, {{shared_count * shared_intermediate, 64, shared_gate_up, align(shared_intermediate)},
                                {max_routed * intermediate, 64, routed_gate_up, align(intermediate)},
                                {hidden, down_grain(hidden), down, align(hidden)}});
}

}  // namespace chronos::cpu
