// Block-quantized expert weights: the byte layout, round-trip error bounds, the fused batch-1 SwiGLU
// that computes straight from the quantized bytes (the row kernels themselves: format_kernels_test),
// and the batch path's SwiGLU.
#include "chronos/model/quantized.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "chronos/core/error.h"
#include "chronos/model/feed_forward.h"
#include "chronos/model/weight_format.h"
#include "model/cpu_kernels.h"
#include "model/format_kernels.h"

namespace chronos {
namespace {

const std::vector<int64_t> kWidths = {1, 7, 16, 31, 32, 33, 64, 95, 257};

float scale_of(const uint8_t* block) { return c10::detail::fp16_ieee_to_fp32_value(static_cast<uint16_t>(block[0] | (block[1] << 8))); }

TEST(Quantized, RowBytesCountWholeBlocks) {
  EXPECT_EQ(quantized_row_bytes(QuantFormat::int8, 32), 34);
  EXPECT_EQ(quantized_row_bytes(QuantFormat::int8, 33), 68);
  EXPECT_EQ(quantized_row_bytes(QuantFormat::int4, 64), 36);
  EXPECT_EQ(quantized_row_bytes(QuantFormat::int4, 1), 18);
  EXPECT_EQ(quantized_row_bytes(QuantFormat::none, 64), 0);
}

// The documented layout: an fp16 scale, then the quants; int4 keeps weight j in the low nibble and
// weight j + 16 in the high nibble of byte j, each as q + 8, with the largest magnitude at -8.
TEST(Quantized, BlockLayoutIsTheDocumentedOne) {
  std::vector<float> w(32, 0.0f);
  w[0] = -4.0f;   // the extreme: maps to -8 with d = 0.5
  w[16] = 3.5f;   // q = 7
  w[1] = 1.0f;    // q = 2
  std::vector<uint8_t> q4(static_cast<size_t>(quantized_row_bytes(QuantFormat::int4, 32)));
  quantize_row(QuantFormat::int4, w.data(), 32, q4.data());
  EXPECT_EQ(scale_of(q4.data()), 0.5f);
  EXPECT_EQ(q4[2] & 0x0f, 0);       // weight 0: -8 + 8
  EXPECT_EQ(q4[2] >> 4, 15);        // weight 16: 7 + 8
  EXPECT_EQ(q4[3] & 0x0f, 8 + 2);   // weight 1: 1.0 / 0.5 = 2
  EXPECT_EQ(q4[3] >> 4, 8);         // weight 17: 0

  std::vector<uint8_t> q8(static_cast<size_t>(quantized_row_bytes(QuantFormat::int8, 32)));
  quantize_row(QuantFormat::int8, w.data(), 32, q8.data());
  const float d = scale_of(q8.data());
  EXPECT_NEAR(d, 4.0f / 127, 1e-5);
  EXPECT_EQ(static_cast<int8_t>(q8[2]), -127);
  EXPECT_EQ(static_cast<int8_t>(q8[2 + 16]), static_cast<int8_t>(std::nearbyint(3.5f / d)));
}

// |w - d q| is at most half a step for int8, and one step for int4 (the clamp at +7 of a block whose
// extreme is negative), plus the fp16 rounding of the scale.
TEST(Quantized, RoundTripStaysWithinOneStepPerBlock) {
  at::manual_seed(11);
  for (const QuantFormat format : {QuantFormat::int8, QuantFormat::int4}) {
    for (const int64_t cols : kWidths) {
      const at::Tensor w = at::randn({5, cols}) * 0.05;
      const at::Tensor q = quantize_matrix(w, format);
      ASSERT_EQ(q.sizes(), (at::IntArrayRef{5, quantized_row_bytes(format, cols)}));
      const at::Tensor back = dequantize_matrix(q, format, cols);
      for (int64_t r = 0; r < 5; ++r)
        for (int64_t start = 0; start < cols; start += kQuantBlock) {
          const int64_t n = std::min(kQuantBlock, cols - start);
          const float step = std::fabs(scale_of(q[r].data_ptr<uint8_t>() + start / kQuantBlock * quantized_block_bytes(format)));
          const float amax = w[r].narrow(0, start, n).abs().max().item<float>();
          const float bound = (format == QuantFormat::int8 ? 0.5f : 1.0f) * step + 2e-3f * amax + 1e-7f;
          const float err = (w[r].narrow(0, start, n) - back[r].narrow(0, start, n)).abs().max().item<float>();
          EXPECT_LE(err, bound) << to_string(format) << " cols " << cols << " row " << r << " block " << start / kQuantBlock;
        }
    }
  }
  // An all-zero block quantizes to zeros (no division by a zero scale).
  const at::Tensor zeros = at::zeros({2, 40});
  EXPECT_TRUE(at::equal(dequantize_matrix(quantize_matrix(zeros, QuantFormat::int4), QuantFormat::int4, 40), zeros));
}

TEST(Quantized, DequantizeRejectsAShapeThatDoesNotFit) {
  const at::Tensor q = quantize_matrix(at::randn({3, 64}), QuantFormat::int8);
  EXPECT_THROW(dequantize_matrix(q, QuantFormat::int8, 65), std::exception);
  EXPECT_THROW(dequantize_matrix(q, QuantFormat::int4, 64), std::exception);
  EXPECT_THROW(quantize_matrix(at::randn({3, 64}), QuantFormat::none), std::exception);
}

// The float input the integer kernels see: each block of 32 values rounded to its int8 block values.
at::Tensor rounded(const at::Tensor& x) {
  at::Tensor r = x.to(at::kFloat).contiguous().clone();
  const int64_t cols = r.size(-1);
  for (int64_t row = 0; row < r.numel() / cols; ++row) cpu::round_to_input_blocks(r.data_ptr<float>() + row * cols, cols);
  return r;
}

// The fused SwiGLU sum with float and quantized terms mixed, on sizes off the block and vector widths.
// A quantized term sees its input and its inner activation rounded to int8 blocks; a value that lies
// within float rounding of a rounding boundary may go either way, hence the looser bound.
TEST(Quantized, SwigluAccumulateComputesFromQuantizedRows) {
  at::manual_seed(13);
  for (const auto& [hidden, inter] : std::vector<std::pair<int64_t, int64_t>>{{80, 100}, {64, 96}, {17, 3}, {256, 1408}}) {
    const at::Tensor x = at::randn({hidden});
    at::Tensor y = at::randn({hidden});
    at::Tensor expected = y.to(at::kDouble);
    std::vector<at::Tensor> keep;
    std::vector<cpu::SwigluTerm> terms;
    const std::vector<std::pair<float, WeightFormat>> mix = {
        {0.7f, WeightFormat::int8}, {-0.2f, WeightFormat::fp32}, {1.5f, WeightFormat::int4}, {0.4f, WeightFormat::bf16}};
    for (const auto& [coef, format] : mix) {
      const at::Tensor g = at::randn({inter, hidden}) * 0.1, u = at::randn({inter, hidden}) * 0.1, d = at::randn({hidden, inter}) * 0.1;
      const at::Tensor gq = to_weight_format(g, format), uq = to_weight_format(u, format), dq = to_weight_format(d, format);
      keep.insert(keep.end(), {gq, uq, dq});
      terms.push_back({gq.data_ptr(), uq.data_ptr(), dq.data_ptr(), coef, format});
      const bool blocks = cpu::needs_blocks(format);
      const at::Tensor xd = (blocks ? rounded(x) : x).to(at::kDouble);
      const at::Tensor gd = widen_weight(gq, hidden).to(at::kDouble), ud = widen_weight(uq, hidden).to(at::kDouble);
      const at::Tensor h = at::silu(at::mv(gd, xd)) * at::mv(ud, xd);
      const at::Tensor hd = (blocks ? rounded(h) : h).to(at::kDouble);
      expected += coef * at::mv(widen_weight(dq, inter).to(at::kDouble), hd);
    }
    cpu::swiglu_accumulate(terms, x.data_ptr<float>(), y.data_ptr<float>(), hidden, inter);
    const double scale = expected.abs().max().item<double>();
    EXPECT_LT((y.to(at::kDouble) - expected).abs().max().item<double>(), 1e-3 * scale) << hidden << "x" << inter;
  }
}

// Routed terms found while the shared ones run give, bit for bit, the sums of one swiglu_accumulate
// call over the routed terms followed by the shared ones (the same intermediate size), whatever the
// thread count; with another shared intermediate size, the float64 sums. Too many routed terms and
// a routing that throws are errors that leave y untouched.
TEST(Quantized, SwigluAccumulateRoutedGivesTheSumsOfOneCall) {
  at::manual_seed(15);
  const int threads_before = at::get_num_threads();
  const int64_t H = 80;
  std::vector<at::Tensor> keep;
  const auto term = [&](WeightFormat format, int64_t I, float coef) {
    const at::Tensor g = at::randn({I, H}) * 0.1, u = at::randn({I, H}) * 0.1, d = at::randn({H, I}) * 0.1;
    const at::Tensor gq = to_weight_format(g, format), uq = to_weight_format(u, format), dq = to_weight_format(d, format);
    keep.insert(keep.end(), {gq, uq, dq});
    return cpu::SwigluTerm{gq.data_ptr(), uq.data_ptr(), dq.data_ptr(), coef, format};
  };
  for (const WeightFormat format : {WeightFormat::fp32, WeightFormat::int8, WeightFormat::int4}) {
    const std::vector<cpu::SwigluTerm> routed = {term(format, 96, 0.6f), term(format, 96, -0.3f), term(format, 96, 0.2f)};
    const std::vector<cpu::SwigluTerm> shared_same = {term(format, 96, 0.0f), term(format, 96, 0.0f)};
    const std::vector<cpu::SwigluTerm> shared_other = {term(format, 40, 0.0f)};
    const at::Tensor x = at::randn({H}), y0 = at::randn({H});
    const cpu::KernelInput input(x.data_ptr<float>(), H, cpu::needs_blocks(format));
    for (const int threads : {1, 2, 3}) {
      at::set_num_threads(threads);
      SCOPED_TRACE(std::string(to_string(format)) + ", " + std::to_string(threads) + " threads");
      // The same intermediate size: equal to one call over routed then shared.
      std::vector<cpu::SwigluTerm> shared = shared_same;
      at::Tensor got = y0.clone();
      cpu::swiglu_accumulate_routed(
          shared, 4,
          [&](std::vector<cpu::SwigluTerm>& out) {
            out = routed;
            shared[0].coef = 1.25f;
            shared[1].coef = -0.5f;
          },
          input, got.data_ptr<float>(), H, 96, 96);
      std::vector<cpu::SwigluTerm> all = routed;
      all.insert(all.end(), shared.begin(), shared.end());
      at::Tensor want = y0.clone();
      cpu::swiglu_accumulate(all, x.data_ptr<float>(), want.data_ptr<float>(), H, 96);
      EXPECT_TRUE(at::equal(got, want)) << (got - want).abs().max().item<float>();

      // Another shared width, fewer routed terms than allowed: against one call per width (other sums).
      shared = shared_other;
      got = y0.clone();
      cpu::swiglu_accumulate_routed(
          shared, 4,
          [&](std::vector<cpu::SwigluTerm>& out) {
            out.assign(routed.begin(), routed.begin() + 2);
            shared[0].coef = 0.75f;
          },
          input, got.data_ptr<float>(), H, 96, 40);
      want = y0.clone();
      cpu::swiglu_accumulate({routed[0], routed[1]}, x.data_ptr<float>(), want.data_ptr<float>(), H, 96);
      cpu::swiglu_accumulate(shared, x.data_ptr<float>(), want.data_ptr<float>(), H, 40);
      EXPECT_LT((got - want).abs().max().item<float>(), 1e-5 * want.abs().max().item<float>());

      // Errors: y as it was.
      got = y0.clone();
      EXPECT_THROW(cpu::swiglu_accumulate_routed(
                       shared, 2, [&](std::vector<cpu::SwigluTerm>& out) { out = routed; }, input, got.data_ptr<float>(), H, 96, 40),
                   InvalidArgument);
      EXPECT_THROW(cpu::swiglu_accumulate_routed(
                       shared, 4, [&](std::vector<cpu::SwigluTerm>&) { throw InvalidArgument("routing failed"); }, input,
                       got.data_ptr<float>(), H, 96, 40),
                   InvalidArgument);
      EXPECT_TRUE(at::equal(got, y0));
    }
  }
  at::set_num_threads(threads_before);
}

// The batch path on the CPU computes what the kernels compute: the input rounded to its blocks, the
// dequantised weights.
TEST(Quantized, SwigluOfQuantizedWeightsIsSwigluOfTheirValues) {
  at::manual_seed(14);
  const int64_t H = 40, I = 72;
  const ExpertWeights dense{at::randn({I, H}), at::randn({I, H}), at::randn({H, I})};
  for (const QuantFormat format : {QuantFormat::int8, QuantFormat::int4}) {
    const ExpertWeights q{quantize_matrix(dense.gate_proj, format), quantize_matrix(dense.up_proj, format),
                          quantize_matrix(dense.down_proj, format), format};
    const at::Tensor gd = dequantize_matrix(q.gate_proj, format, H), ud = dequantize_matrix(q.up_proj, format, H);
    const at::Tensor dd = dequantize_matrix(q.down_proj, format, I);
    const at::Tensor x = at::randn({3, H});
    const at::Tensor xr = rounded(x);
    const at::Tensor want = at::mm(rounded(at::silu(at::mm(xr, gd.t())) * at::mm(xr, ud.t())), dd.t());
    const at::Tensor got = swiglu(x, q);
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-3 * want.abs().max().item<float>()) << to_string(format);
  }
}

}  // namespace
}  // namespace chronos
