// Batch-1 CPU kernels for decoding. One token's forward reads every weight it uses once, so decode
// speed is the speed weights stream from memory. OpenBLAS sgemv streamed 17-35 GB/s where a reduction
// read 40-68, and ran on threads of its own beside LibTorch's OpenMP ones. These kernels stream rows
// with wide FMAs and split them over the work pool (work_pool.h): 36-43 GB/s on the same weights.
#pragma once

#include <ATen/Tensor.h>
#include <c10/util/BFloat16.h>

#include <cstdint>
#include <vector>

#include "chronos/model/weight_format.h"
#include "model/format_kernels.h"
#include "model/work_pool.h"

namespace chronos::cpu {

// a . b over n floats (wide FMAs, four accumulators).
float dot(const float* a, const float* b, int64_t n);

// out[r] = dot(rows + r * n, x, n) for r in [0, count), the same sums as dot() row by row.
void matrix_rows_dot(const float* rows, int64_t n, int64_t count, const float* x, float* out);

// The attention kernels below read cached rows of float32 or bfloat16 (a bfloat16 KV cache,
// chronos/model/kv_cache.h), widened in registers; queries, weights and sums stay float32.
//
// out[t] (+)= scale * (q . rows[t]) for `count` rows of n values, `stride` values apart (one head's
// attention scores over its cache): one call per head, not one per key. Adds when `accumulate`.
void dot_rows(const float* q, const float* rows, int64_t stride, int64_t count, int64_t n, float scale, float* out, bool accumulate = false);
void dot_rows(const float* q, const c10::BFloat16* rows, int64_t stride, int64_t count, int64_t n, float scale, float* out,
              bool accumulate = false);

// dot_rows for two queries against the same rows (two heads of one key-value group), each row read
// once: out0 and out1 equal, bit for bit, what dot_rows gives each query alone.
void dot_rows2(const float* q0, const float* q1, const float* rows, int64_t stride, int64_t count, int64_t n, float scale, float* out0,
               float* out1, bool accumulate = false);
void dot_rows2(const float* q0, const float* q1, const c10::BFloat16* rows, int64_t stride, int64_t count, int64_t n, float scale,
               float* out0, float* out1, bool accumulate = false);

// out[n] += sum_t p[t] * rows[t] for `count` rows of n values, `stride` values apart (the weighted sum
// of a head's values).
void weighted_row_sum(const float* p, const float* rows, int64_t stride, int64_t count, int64_t n, float* out);
void weighted_row_sum(const float* p, const c10::BFloat16* rows, int64_t stride, int64_t count, int64_t n, float* out);

// weighted_row_sum for two weightings of the same rows, each row read once: out0 and out1 equal, bit
// for bit, what weighted_row_sum gives each alone.
void weighted_row_sum2(const float* p0, const float* p1, const float* rows, int64_t stride, int64_t count, int64_t n, float* out0, float* out1);
void weighted_row_sum2(const float* p0, const float* p1, const c10::BFloat16* rows, int64_t stride, int64_t count, int64_t n, float* out0,
                       float* out1);

// y = w * x / sqrt(mean(x^2) + eps) over each of `groups` runs of `dim` values (y may be x).
void rms_norm(const float* x, float* y, int64_t groups, int64_t dim, const float* weight, double eps);

// Softmax of n scores in place, in float32 (the router's and attention's precision).
void softmax_in_place(float* scores, int64_t n);

// The softmax's first half: scores[i] = exp(scores[i] - m) in place, m their maximum (returned), and
// *sum their sum; what attention over a slice of its keys keeps to be merged with the other slices'.
float exp_shifted_in_place(float* scores, int64_t n, float* sum);

// gate[i] = silu(gate[i]) * up[i] over n values: SwiGLU's hidden activation.
void silu_times(float* gate, const float* up, int64_t n);

// The index of the first largest of n > 0 floats, or of the first NaN when there is one (the index
// at::argmax picks): greedy decoding's pick over the vocabulary.
int64_t first_max(const float* v, int64_t n);

// Whether t is a float32 CPU tensor with contiguous memory that nothing needs a gradient through.
bool is_plain_float(const at::Tensor& t);

// Whether y = W x may use gemv(): a CPU float32 weight [out, in], contiguous, a contiguous float32
// input of `in` values, and nothing that needs a gradient.
bool gemv_applies(const at::Tensor& x, const at::Tensor& weight);

// y[out] = W[out, in] x[in] for row-major W. Rows are split over the threads in chunks large
// enough (>= 128 KiB of weights) that waking a thread pays for itself.
void gemv(const float* weight, const float* x, float* y, int64_t out, int64_t in);

// One SwiGLU FFN's raw weights and its weight in a sum of FFN outputs: rows of any stored format
// (model/format_kernels.h).
struct SwigluTerm {
  const void* gate = nullptr;  // [I, H] row-major
  const void* up = nullptr;    // [I, H]
  const void* down = nullptr;  // [H, I]
  float coef = 1;
  WeightFormat format = WeightFormat::fp32;
  RowLayout gate_up_layout = RowLayout::rows;  // of gate and up (rows: I)
  RowLayout down_layout = RowLayout::rows;     // (rows: H)
};

// y[H] += sum_t coef_t * down_t( silu(gate_t x) * (up_t x) ) for one token x[H] and every term at
// once: one parallel region (work_pool.h) of two phases, the gate and up rows of all terms, then the
// rows of y (each reading the matching down rows of all terms); no temporary tensors. A split of the
// intermediate rows with per-thread partial outputs, one loop, streamed slower (half rows of down at
// a stride): 24-29 against 36 GB/s.
void swiglu_accumulate(const std::vector<SwigluTerm>& terms, const float* x, float* y, int64_t hidden, int64_t intermediate);

// swiglu_accumulate for a MoE token whose routed experts are not known yet: `route` runs on the
// calling thread (it may use tensors and throw), appends at most `max_routed` routed terms of
// `intermediate` rows and sets the shared terms' coefficients, while the pool's threads start on the
// shared terms' gate and up rows (`shared_intermediate` rows a term). Then the routed terms' gate and
// up rows and the rows of y: the sums swiglu_accumulate gives for the routed terms followed by the
// shared ones. `x` holds the blocks every term needs (route returns no other).
void swiglu_accumulate_routed(std::vector<SwigluTerm>& shared, int64_t max_routed, FunctionRef<void(std::vector<SwigluTerm>&)> route,
                              const KernelInput& x, float* y, int64_t hidden, int64_t intermediate, int64_t shared_intermediate);

}  // namespace chronos::cpu
