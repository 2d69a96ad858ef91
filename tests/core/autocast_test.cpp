#include "chronos/core/autocast.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

namespace chronos {
namespace {

TEST(Autocast, InactiveOffCudaAndForFp32) {
  const AutocastGuard cpu(c10::Device(c10::kCPU), c10::kBFloat16);
  EXPECT_FALSE(cpu.active());
  const AutocastGuard fp32(c10::Device(c10::kCUDA, 0), c10::kFloat);
  EXPECT_FALSE(fp32.active());
  const at::Tensor a = at::randn({4, 4});
  EXPECT_EQ(at::mm(a, a).scalar_type(), at::kFloat);
}

TEST(Autocast, CudaMatmulsRunInBf16AndTheGuardRestores) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const at::Tensor a = at::randn({8, 8}, at::TensorOptions().device(at::kCUDA));
  {
    const AutocastGuard guard(c10::Device(c10::kCUDA, 0), c10::kBFloat16);
    EXPECT_TRUE(guard.active());
    EXPECT_EQ(at::mm(a, a).scalar_type(), at::kBFloat16);
  }
  EXPECT_EQ(at::mm(a, a).scalar_type(), at::kFloat);
}

}  // namespace
}  // namespace chronos
