// The one-token kernels of the weight formats (model/format_kernels.h) against float64 sums, for
// every implementation this CPU runs, on lengths that exercise each loop and tail: under one
// vector, one block, partial last blocks, and rows split over the threads.
#include "model/format_kernels.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "chronos/model/weight_format.h"

namespace chronos {
namespace {

const std::vector<int64_t> kLengths = {1, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1000};

std::vector<cpu::FormatIsa> runnable_isas() {
  std::vector<cpu::FormatIsa> isas = {cpu::FormatIsa::portable};
  if (cpu::detected_isa() == cpu::FormatIsa::avx2) isas.push_back(cpu::FormatIsa::avx2);
  return isas;
}

// Restores the detected implementation when a test ends.
struct IsaGuard {
  ~IsaGuard() { cpu::use_isa(cpu::detected_isa()); }
};

// The float input the kernels see: x itself, or its int8 block values for the block formats.
at::Tensor seen_input(const at::Tensor& x, WeightFormat format) {
  at::Tensor seen = x.clone();
  if (cpu::needs_blocks(format)) cpu::round_to_input_blocks(seen.data_ptr<float>(), seen.numel());
  return seen;
}

TEST(FormatKernels, RowDotMatchesFloat64OnEveryLengthAndImplementation) {
  const IsaGuard guard;
  at::manual_seed(21);
  for (const cpu::FormatIsa isa : runnable_isas()) {
    cpu::use_isa(isa);
    for (const WeightFormat format : {WeightFormat::fp32, WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4}) {
      for (const int64_t n : kLengths) {
        const at::Tensor w = at::randn({1, n}), x = at::randn({n}) * 3;
        const at::Tensor stored = to_weight_format(w, format);
        const double want = (widen_weight(stored, n)[0].to(at::kDouble) * seen_input(x, format).to(at::kDouble)).sum().item<double>();
        const cpu::KernelInput input(x.data_ptr<float>(), n, cpu::needs_blocks(format));
        const float got = cpu::row_dot(format, stored.data_ptr(), input);
        EXPECT_NEAR(got, want, 2e-6 * std::sqrt(static_cast<double>(n)) * (1 + std::fabs(want)))
            << cpu::to_string(isa) << " " << to_string(format) << " n " << n;
      }
    }
  }
}

// The implementations agree with each other exactly on the integer formats' block sums, and to float
// rounding overall.
TEST(FormatKernels, ImplementationsAgree) {
  if (cpu::detected_isa() != cpu::FormatIsa::avx2) GTEST_SKIP() << "only the portable kernels run on this CPU";
  const IsaGuard guard;
  at::manual_seed(22);
  for (const WeightFormat format : {WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4}) {
    const int64_t n = 777;
    const at::Tensor w = at::randn({1, n}), x = at::randn({n});
    const at::Tensor stored = to_weight_format(w, format);
    const cpu::KernelInput input(x.data_ptr<float>(), n, cpu::needs_blocks(format));
    cpu::use_isa(cpu::FormatIsa::portable);
    const float portable = cpu::row_dot(format, stored.data_ptr(), input);
    cpu::use_isa(cpu::FormatIsa::avx2);
    const float avx2 = cpu::row_dot(format, stored.data_ptr(), input);
    EXPECT_NEAR(portable, avx2, 1e-5 * (1 + std::fabs(portable))) << to_string(format);
  }
}

TEST(FormatKernels, GemvStoredMatchesTheWidenedMatrix) {
  const IsaGuard guard;
  at::manual_seed(23);
  for (const cpu::FormatIsa isa : runnable_isas()) {
    cpu::use_isa(isa);
    for (const WeightFormat format : {WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4}) {
      for (const auto& [out, in] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 33}, {300, 17}, {1408, 512}, {512, 1408}, {33, 1000}}) {
        const at::Tensor w = at::randn({out, in}), x = at::randn({in});
        const at::Tensor stored = to_weight_format(w, format);
        at::Tensor y = at::full({out}, std::nanf(""));
        cpu::gemv_stored(format, stored.data_ptr(), cpu::KernelInput(x.data_ptr<float>(), in, cpu::needs_blocks(format)), y.data_ptr<float>(), out);
        const at::Tensor want = at::mv(widen_weight(stored, in).to(at::kDouble), seen_input(x, format).to(at::kDouble)).to(at::kFloat);
        EXPECT_TRUE(at::allclose(y, want, 1e-4, 1e-4 * std::sqrt(static_cast<double>(in))))
            << cpu::to_string(isa) << " " << to_string(format) << " " << out << "x" << in << ": max error "
            << (y - want).abs().max().item<float>();
      }
    }
  }
}

// The input blocks: scale max|x| / 127 per block, quants in [-127, 127], the padding zero; the
// rounded input is what the blocks stand for, within half a step of x.
TEST(FormatKernels, InputBlocksRoundWithinHalfAStep) {
  at::manual_seed(24);
  const int64_t n = 70;
  at::Tensor x = at::randn({n});
  x[40] = 0;
  const cpu::KernelInput input(x.data_ptr<float>(), n, true);
  ASSERT_TRUE(input.has_blocks());
  at::Tensor rounded = x.clone();
  cpu::round_to_input_blocks(rounded.data_ptr<float>(), n);
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t first = b * 32, len = std::min<int64_t>(32, n - first);
    const float scale = x.narrow(0, first, len).abs().max().item<float>() / 127.0f;
    EXPECT_FLOAT_EQ(input.block_scales()[b], scale);
    for (int64_t i = 0; i < 32; ++i) {
      const int8_t q = input.block_quants()[b * 32 + i];
      if (i >= len) {
        EXPECT_EQ(q, 0) << "padding";
        continue;
      }
      EXPECT_GE(q, -127);
      EXPECT_FLOAT_EQ(rounded[first + i].item<float>(), scale * q);
      EXPECT_LE(std::fabs(x[first + i].item<float>() - scale * q), 0.5f * scale * 1.0001f);
    }
  }
  // An all-zero block has scale 0 and zero quants.
  const std::vector<float> zeros(40, 0.0f);
  const cpu::KernelInput zero(zeros.data(), 40, true);
  EXPECT_EQ(zero.block_scales()[0], 0.0f);
}

TEST(FormatKernels, BlockRowsWithoutInputBlocksAreRefused) {
  const at::Tensor stored = to_weight_format(at::randn({4, 64}), WeightFormat::int8);
  const at::Tensor x = at::randn({64});
  std::vector<float> y(4);
  EXPECT_THROW(cpu::gemv_stored(WeightFormat::int8, stored.data_ptr(), cpu::KernelInput(x.data_ptr<float>(), 64, false), y.data(), 4),
               std::exception);
}

}  // namespace
}  // namespace chronos
