// Batch-1 CPU matrix-vector kernels for decoding. One token's forward reads every weight it uses
// once, so decode speed is the speed weights stream from memory. OpenBLAS sgemv reached about half
// the machine's read bandwidth and, run from its own pthreads, fought the ATen OpenMP threads for the
// two cores (57 vs 102 tokens/s with OPENBLAS_NUM_THREADS=1 vs 2, 20 in a program that had not yet
// woken them). These kernels stream rows with wide FMAs and split the rows over the ATen threads.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>

namespace chronos::cpu {

// Whether y = W x may use gemv(): a CPU float32 weight [out, in], contiguous, a contiguous float32
// input of `in` values, and nothing that needs a gradient.
bool gemv_applies(const at::Tensor& x, const at::Tensor& weight);

// y[out] = W[out, in] x[in] for row-major W. Rows are split over the ATen threads in chunks large
// enough (>= 128 KiB of weights) that waking a thread pays for itself.
void gemv(const float* weight, const float* x, float* y, int64_t out, int64_t in);

}  // namespace chronos::cpu
