// project(x, W) = x W^T without bias, choosing the fastest kernel: a single float32 row on the CPU
// with no gradient goes to our streaming gemv (model/cpu_kernels.h), other single rows to a BLAS
// matrix-vector product. OpenBLAS 0.3.21 runs a one-row GEMM through its packing path, which copies
// the whole weight: 5x slower for batch-1 decoding (measured: 25 vs 143 GB/s).
#pragma once

#include <ATen/Tensor.h>
#include <torch/nn/modules/linear.h>

namespace chronos {

// x [..., in], weight [out, in] -> [..., out], plus `bias` [out] when it is defined.
at::Tensor project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

// A Linear module, bias-free unless asked (only the attention of some families has one), default
// init U(+-1/sqrt(in)).
torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias = false);

}  // namespace chronos
