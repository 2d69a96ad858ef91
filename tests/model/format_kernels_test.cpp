// The one-token kernels of the weight formats (model/format_kernels.h) against float64 sums, for
// every implementation this CPU runs, on lengths that exercise each loop and tail: under one
// vector, one block, partial last blocks, odd and even block counts (the integer kernels alternate two
// accumulators; int4 takes blocks in pairs), and rows split over the threads.
#include "model/format_kernels.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/model/weight_format.h"
#include "model/row_groups.h"

namespace chronos {
namespace {

// Block counts 1-4, 6-9 and 32: every mix of the int4 kernels' four-block loop, a lone pair and an odd last block.
const std::vector<int64_t> kLengths = {1, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 190, 200, 255, 256, 257, 288, 1000};

using cpu::runnable_isas;

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
// rounding overall; at the extremes of every range too (w and the input at +-127, int4 at -8 and 7),
// where an int16 step or the unsigned offsets could overflow.
TEST(FormatKernels, ImplementationsAgree) {
  if (runnable_isas().size() < 2) GTEST_SKIP() << "only the portable kernels run on this CPU";
  const IsaGuard guard;
  at::manual_seed(22);
  const int64_t n = 777;
  // +-1 everywhere: every block's weights quantize to +-127 (int8) or -8 and 7 (int4), the input to +-127.
  const at::Tensor signs = at::where(at::rand({1, n}) < 0.5, at::full({1, n}, -1.0f), at::full({1, n}, 1.0f));
  const std::vector<std::pair<at::Tensor, at::Tensor>> cases = {{at::randn({1, n}), at::randn({n})}, {signs, signs[0] * -3.0f}};
  for (const auto& [w, x] : cases) {
    for (const WeightFormat format : {WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4}) {
      const at::Tensor stored = to_weight_format(w, format);
      const cpu::KernelInput input(x.data_ptr<float>(), n, cpu::needs_blocks(format));
      cpu::use_isa(cpu::FormatIsa::portable);
      const float portable = cpu::row_dot(format, stored.data_ptr(), input);
      for (const cpu::FormatIsa isa : runnable_isas()) {
        cpu::use_isa(isa);
        const float got = cpu::row_dot(format, stored.data_ptr(), input);
        EXPECT_NEAR(portable, got, 1e-5 * (1 + std::fabs(portable))) << cpu::to_string(isa) << " " << to_string(format);
      }
    }
  }
}

// The input's int8 blocks are the same bits from every implementation (whole blocks take the vector
// quantizer), ties and values beyond the clamp included.
TEST(FormatKernels, InputBlocksAreIdenticalOnEveryImplementation) {
  const IsaGuard guard;
  at::manual_seed(25);
  const int64_t n = 32 * 9 + 7;
  at::Tensor x = at::randn({n}) * 5;
  x.narrow(0, 32, 32).copy_(at::arange(-16, 16).to(at::kFloat) * 0.5f);  // halves: round-to-even ties
  x[70] = 0;
  x.narrow(0, 96, 32).zero_();  // an all-zero block
  cpu::use_isa(cpu::FormatIsa::portable);
  const cpu::KernelInput want(x.data_ptr<float>(), n, true);
  at::Tensor want_rounded = x.clone();
  cpu::round_to_input_blocks(want_rounded.data_ptr<float>(), n);
  const int64_t blocks = (n + 31) / 32;
  for (const cpu::FormatIsa isa : runnable_isas()) {
    cpu::use_isa(isa);
    at::Tensor rounded = x.clone();
    cpu::round_to_input_blocks(rounded.data_ptr<float>(), n);
    EXPECT_TRUE(rounded.equal(want_rounded)) << cpu::to_string(isa) << ": the general path's rounding differs";
    const cpu::KernelInput got(x.data_ptr<float>(), n, true);
    for (int64_t b = 0; b < blocks; ++b) {
      EXPECT_EQ(got.block_scales()[b], want.block_scales()[b]) << cpu::to_string(isa) << " block " << b;
      EXPECT_EQ(got.block_sums()[b], want.block_sums()[b]) << cpu::to_string(isa) << " block " << b;
      for (int64_t i = 0; i < 32; ++i) ASSERT_EQ(got.block_quants()[b * 32 + i], want.block_quants()[b * 32 + i]) << cpu::to_string(isa) << " block " << b << " " << i;
    }
  }
}

// The vector implementations of int4 compute the same int32 lanes (maddubs and madd, or vpdpbusd,
// both from the offsets in lanes 0 and 4 of each pair of blocks) and the same float operations on them
// in the same order (AVX-512's one accumulator is AVX2's two side by side), so they agree bit for bit.
// (int8's do not: AVX-512's lanes carry 128 times the input quants beside the products, taken off in
// one lane per block.)
TEST(FormatKernels, VectorInt4ImplementationsAgreeBitForBit) {
  std::vector<cpu::FormatIsa> vector_isas;
  for (const cpu::FormatIsa isa : runnable_isas())
    if (isa != cpu::FormatIsa::portable) vector_isas.push_back(isa);
  if (vector_isas.size() < 2) GTEST_SKIP() << "fewer than two vector implementations run on this CPU";
  const IsaGuard guard;
  at::manual_seed(26);
  for (const int64_t n : kLengths) {
    const at::Tensor w = at::randn({3, n}), x = at::randn({n}) * 2;
    const at::Tensor stored = to_weight_format(w, WeightFormat::int4);
    const cpu::KernelInput input(x.data_ptr<float>(), n, true);
    std::vector<float> want(3), got(3);
    cpu::use_isa(vector_isas[0]);
    cpu::rows_dot(WeightFormat::int4, stored.data_ptr(), 0, 3, input, want.data());
    for (size_t i = 1; i < vector_isas.size(); ++i) {
      cpu::use_isa(vector_isas[i]);
      cpu::rows_dot(WeightFormat::int4, stored.data_ptr(), 0, 3, input, got.data());
      for (int r = 0; r < 3; ++r)
        EXPECT_EQ(got[r], want[r]) << cpu::to_string(vector_isas[i]) << " vs " << cpu::to_string(vector_isas[0]) << " n " << n << " row " << r;
    }
  }
}

// The group layout of the int4 kernels is the block quants reordered (groups of four blocks, a last
// pair), its offsets -8 * each block's sum; int8's offsets -128 * each block's sum.
TEST(FormatKernels, InputGroupsReorderTheBlocks) {
  at::manual_seed(27);
  for (const int64_t n : {int64_t{31}, int64_t{64}, int64_t{100}, int64_t{200}, int64_t{288}, int64_t{320}}) {
    const at::Tensor x = at::randn({n});
    const cpu::KernelInput input(x.data_ptr<float>(), n, true);
    const int64_t blocks = (n + 31) / 32, pairs = blocks / 2;
    for (int64_t b = 0; b < 2 * pairs; ++b) {
      const int64_t first = b / 4 * 4, width = std::min<int64_t>(4, 2 * pairs - first);
      for (int64_t half = 0; half < 2; ++half) {
        const int8_t* want = input.block_quants() + b * 32 + half * 16;
        const int8_t* got = input.quad_quants() + first * 32 + (half * width + b - first) * 16;
        for (int64_t i = 0; i < 16; ++i) ASSERT_EQ(got[i], want[i]) << "n " << n << " block " << b << " half " << half;
      }
      EXPECT_EQ(input.pair_offsets()[4 * (b / 2) + 2 * (b % 2)], -8 * input.block_sums()[b]) << "n " << n << " block " << b;
      EXPECT_EQ(input.pair_offsets()[4 * (b / 2) + 2 * (b % 2) + 1], 0) << "n " << n << " block " << b;
    }
    for (int64_t b = 0; b < blocks; ++b) EXPECT_EQ(input.int8_offsets()[b], -128 * input.block_sums()[b]) << "n " << n << " block " << b;
  }
}

TEST(FormatKernels, GemvStoredMatchesTheWidenedMatrix) {
  const IsaGuard guard;
  at::manual_seed(23);
  for (const cpu::FormatIsa isa : runnable_isas()) {
    cpu::use_isa(isa);
    for (const WeightFormat format : {WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4}) {
      for (const auto& [out, in] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 33}, {300, 17}, {1408, 512}, {512, 1408}, {33, 1000}, {64, 288}, {37, 14336}}) {
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

// A row's value does not depend on the rows around it: every format, lengths on both sides of where
// bf16 starts taking rows four at a time (8,192 columns) with each of its tails, and 1-9 rows at once
// (groups of four, a short last group), each row bit for bit what it gives alone and near its float64
// sum.
TEST(FormatKernels, RowsDotGivesEachRowWhatItGivesAlone) {
  const IsaGuard guard;
  at::manual_seed(28);
  for (const cpu::FormatIsa isa : runnable_isas()) {
    cpu::use_isa(isa);
    for (const WeightFormat format : {WeightFormat::fp32, WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4}) {
      for (const int64_t n : {int64_t{100}, int64_t{128}, int64_t{256}, int64_t{8191}, int64_t{8192}, int64_t{8203}, int64_t{8208}, int64_t{9000}}) {
        const at::Tensor w = at::randn({9, n}), x = at::randn({n});
        const at::Tensor stored = to_weight_format(w, format);
        const cpu::KernelInput input(x.data_ptr<float>(), n, cpu::needs_blocks(format));
        const at::Tensor want = at::mv(widen_weight(stored, n).to(at::kDouble), seen_input(x, format).to(at::kDouble));
        const int64_t row_bytes = weight_row_bytes(format, n);
        std::vector<float> alone(9);
        for (int64_t r = 0; r < 9; ++r) {
          alone[r] = cpu::row_dot(format, static_cast<const uint8_t*>(stored.data_ptr()) + r * row_bytes, input);
          const double expected = want[r].item<double>();
          EXPECT_NEAR(alone[r], expected, 2e-6 * std::sqrt(static_cast<double>(n)) * (1 + std::fabs(expected)))
              << cpu::to_string(isa) << " " << to_string(format) << " n " << n << " row " << r;
        }
        for (int64_t count = 1; count <= 9; ++count) {
          std::vector<float> got(static_cast<size_t>(count), std::nanf(""));
          cpu::rows_dot(format, stored.data_ptr(), 9 - count, 9, input, got.data());
          for (int64_t r = 0; r < count; ++r)
            EXPECT_EQ(got[r], alone[9 - count + r]) << cpu::to_string(isa) << " " << to_string(format) << " n " << n << " rows " << count << " row " << r;
        }
      }
    }
  }
}

// The block formats in groups of four rows (model/row_groups.h), on every implementation: each row
// near its float64 sum, and the same bits whether its group is read whole, or the range starts or
// ends inside the group (the rows then read one by one).
TEST(FormatKernels, RowGroupsGiveEachRowTheSameBitsWhereverARangeCuts) {
  const IsaGuard guard;
  at::manual_seed(29);
  const int64_t rows = 12;
  for (const cpu::FormatIsa isa : runnable_isas()) {
    cpu::use_isa(isa);
    for (const WeightFormat format : {WeightFormat::int8, WeightFormat::int4}) {
      for (const int64_t n : {int64_t{1}, int64_t{31}, int64_t{32}, int64_t{33}, int64_t{64}, int64_t{96}, int64_t{100}, int64_t{257}, int64_t{1000}}) {
        const at::Tensor w = at::randn({rows, n}), x = at::randn({n}) * 3;
        const at::Tensor row_major = to_weight_format(w, format);
        const at::Tensor grouped = group_rows(row_major, format, n);
        const cpu::KernelInput input(x.data_ptr<float>(), n, true);
        const at::Tensor want = at::mv(widen_weight(row_major, n).to(at::kDouble), seen_input(x, format).to(at::kDouble));
        std::vector<float> all(rows);
        cpu::rows_dot(format, grouped.data_ptr(), 0, rows, input, all.data(), cpu::RowLayout::groups);
        for (int64_t r = 0; r < rows; ++r) {
          const double expected = want[r].item<double>();
          EXPECT_NEAR(all[r], expected, 2e-6 * std::sqrt(static_cast<double>(n)) * (1 + std::fabs(expected)))
              << cpu::to_string(isa) << " " << to_string(format) << " n " << n << " row " << r;
        }
        for (const auto& [first, last] : std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {3, 4}, {1, 7}, {2, 12}, {5, 6}, {3, 9}, {4, 8}}) {
          std::vector<float> part(static_cast<size_t>(last - first));
          cpu::rows_dot(format, grouped.data_ptr(), first, last, input, part.data(), cpu::RowLayout::groups);
          for (int64_t r = first; r < last; ++r)
            EXPECT_EQ(part[r - first], all[r]) << cpu::to_string(isa) << " " << to_string(format) << " n " << n << " rows [" << first << ", "
                                               << last << ") row " << r;
        }
      }
    }
  }
}

// An input built without the int4 pair layout serves row groups of both formats and row-major int8,
// and refuses row-major int4 in one clear error rather than reading what was not built.
TEST(FormatKernels, InputsWithoutInt4PairsServeWhatDoesNotReadThem) {
  at::manual_seed(31);
  const int64_t rows = 8, n = 100;
  const at::Tensor w = at::randn({rows, n}), x = at::randn({n});
  const cpu::KernelInput full(x.data_ptr<float>(), n, true), lean(x.data_ptr<float>(), n, true, false);
  EXPECT_TRUE(full.has_int4_pairs());
  EXPECT_FALSE(lean.has_int4_pairs());
  std::vector<float> want(rows), got(rows);
  for (const WeightFormat format : {WeightFormat::int8, WeightFormat::int4}) {
    const at::Tensor row_major = to_weight_format(w, format), grouped = group_rows(row_major, format, n);
    cpu::rows_dot(format, grouped.data_ptr(), 0, rows, full, want.data(), cpu::RowLayout::groups);
    cpu::rows_dot(format, grouped.data_ptr(), 0, rows, lean, got.data(), cpu::RowLayout::groups);
    EXPECT_EQ(got, want) << to_string(format);
  }
  const at::Tensor int8_rows = to_weight_format(w, WeightFormat::int8);
  cpu::rows_dot(WeightFormat::int8, int8_rows.data_ptr(), 0, rows, full, want.data());
  cpu::rows_dot(WeightFormat::int8, int8_rows.data_ptr(), 0, rows, lean, got.data());
  EXPECT_EQ(got, want);
  EXPECT_FALSE(cpu::needs_int4_pairs(WeightFormat::int4, cpu::RowLayout::groups));
  EXPECT_TRUE(cpu::needs_int4_pairs(WeightFormat::int4, cpu::RowLayout::rows));
  const at::Tensor int4_rows = to_weight_format(w, WeightFormat::int4);
  EXPECT_THROW(cpu::rows_dot(WeightFormat::int4, int4_rows.data_ptr(), 0, rows, lean, got.data()), InvalidArgument);
  EXPECT_THROW(cpu::gemv_stored(WeightFormat::int4, int4_rows.data_ptr(), lean, got.data(), rows), InvalidArgument);
}

// gemv_stored over row groups, the rows split over the threads at multiples of four: the row-major
// matrix's values to float rounding.
TEST(FormatKernels, GemvStoredOverRowGroupsMatchesTheWidenedMatrix) {
  const IsaGuard guard;
  at::manual_seed(30);
  for (const cpu::FormatIsa isa : runnable_isas()) {
    cpu::use_isa(isa);
    for (const WeightFormat format : {WeightFormat::int8, WeightFormat::int4}) {
      for (const auto& [out, in] : std::vector<std::pair<int64_t, int64_t>>{{4, 1}, {8, 33}, {300, 17}, {1408, 512}, {512, 1408}, {64, 288}, {36, 14336}}) {
        const at::Tensor w = at::randn({out, in}), x = at::randn({in});
        const at::Tensor row_major = to_weight_format(w, format);
        at::Tensor y = at::full({out}, std::nanf(""));
        cpu::gemv_stored(format, group_rows(row_major, format, in).data_ptr(), cpu::KernelInput(x.data_ptr<float>(), in, true), y.data_ptr<float>(),
                         out, cpu::RowLayout::groups);
        const at::Tensor want = at::mv(widen_weight(row_major, in).to(at::kDouble), seen_input(x, format).to(at::kDouble)).to(at::kFloat);
        EXPECT_TRUE(at::allclose(y, want, 1e-4, 1e-4 * std::sqrt(static_cast<double>(in))))
            << cpu::to_string(isa) << " " << to_string(format) << " " << out << "x" << in << ": max error " << (y - want).abs().max().item<float>();
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
    int32_t sum = 0;
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
      sum += q;
      EXPECT_LE(std::fabs(x[first + i].item<float>() - scale * q), 0.5f * scale * 1.0001f);
    }
    EXPECT_EQ(input.block_sums()[b], sum) << "block " << b;
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
