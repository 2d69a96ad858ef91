#include "chronos/core/dtype.h"

#include <gtest/gtest.h>

#include "chronos/core/error.h"

namespace chronos {
namespace {

TEST(DType, ParsesNames) {
  EXPECT_EQ(parse_float_dtype("fp32"), c10::kFloat);
  EXPECT_EQ(parse_float_dtype("float16"), c10::kHalf);
  EXPECT_EQ(parse_float_dtype("bf16"), c10::kBFloat16);
  EXPECT_THROW(parse_float_dtype("fp8"), InvalidArgument);
  EXPECT_EQ(dtype_name(c10::kBFloat16), "bf16");
}

TEST(DType, ComputeSupport) {
  EXPECT_NO_THROW(check_compute_dtype(c10::Device(c10::kCPU), c10::kFloat));
  EXPECT_NO_THROW(check_compute_dtype(c10::Device(c10::kCPU), c10::kBFloat16));
  EXPECT_THROW(check_compute_dtype(c10::Device(c10::kCPU), c10::kLong), InvalidArgument);
}

}  // namespace
}  // namespace chronos
