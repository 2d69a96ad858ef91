#include "model/cpu_kernels.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "chronos/model/linear.h"
#include "chronos/model/rmsnorm.h"
#include "chronos/model/weight_format.h"
#include "model/format_kernels.h"
#include "model/row_groups.h"
// The vector exp's test passes 64-byte vectors by value in baseline x86-64 code, which GCC notes
// as an ABI change; nothing here crosses a library boundary.
#pragma GCC diagnostic ignored "-Wpsabi"
#include "model/float_vectors.h"

namespace chronos {
namespace {

// Shapes cover the 64-wide main loop, the 16-wide and scalar tails, a single row, rows that split
// over the threads and rows that do not.
TEST(CpuGemv, MatchesMatrixVectorProduct) {
  at::manual_seed(3);
  for (const auto& [out, in] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {7, 3}, {5, 16}, {9, 80}, {64, 64}, {300, 17}, {1408, 512}, {512, 1408}, {6400, 512}, {33, 1000}}) {
    const at::Tensor w = at::randn({out, in});
    const at::Tensor x = at::randn({in});
    at::Tensor y = at::full({out}, std::nanf(""));
    cpu::gemv(w.data_ptr<float>(), x.data_ptr<float>(), y.data_ptr<float>(), out, in);
    const at::Tensor expected = at::mv(w.to(at::kDouble), x.to(at::kDouble)).to(at::kFloat);
    EXPECT_TRUE(at::allclose(y, expected, 1e-4, 1e-4 * std::sqrt(static_cast<double>(in))))
        << out << "x" << in << ": max error " << (y - expected).abs().max().item<float>();
  }
}

// The rows in one call sum each row exactly as dot() sums it alone, wherever a call starts and ends.
TEST(CpuGemv, MatrixRowsDotGivesEachRowWhatDotGives) {
  at::manual_seed(29);
  for (const int64_t n : {int64_t{1}, int64_t{15}, int64_t{64}, int64_t{100}, int64_t{256}, int64_t{1000}}) {
    const at::Tensor w = at::randn({9, n}), x = at::randn({n});
    const float* rows = w.data_ptr<float>();
    for (int64_t first = 0; first < 9; first += 4) {
      std::vector<float> got(static_cast<size_t>(9 - first), std::nanf(""));
      cpu::matrix_rows_dot(rows + first * n, n, 9 - first, x.data_ptr<float>(), got.data());
      for (int64_t r = first; r < 9; ++r)
        EXPECT_EQ(got[static_cast<size_t>(r - first)], cpu::dot(rows + r * n, x.data_ptr<float>(), n)) << "n " << n << " row " << r;
    }
  }
}

// The fused SwiGLU sum adds to y; sizes off the vector widths, with more and fewer rows than threads.
TEST(CpuSwiglu, AccumulatesTheWeightedSumOfFeedForwards) {
  at::manual_seed(5);
  for (const auto& [hidden, inter] : std::vector<std::pair<int64_t, int64_t>>{{80, 100}, {64, 1408}, {17, 3}}) {
    const at::Tensor x = at::randn({hidden});
    at::Tensor y = at::randn({hidden});
    at::Tensor expected = y.to(at::kDouble);
    std::vector<at::Tensor> keep;
    std::vector<cpu::SwigluTerm> terms;
    for (float coef : {0.7f, -0.2f, 1.5f}) {
      const at::Tensor g = at::randn({inter, hidden}), u = at::randn({inter, hidden}), d = at::randn({hidden, inter});
      keep.insert(keep.end(), {g, u, d});
      terms.push_back({g.data_ptr<float>(), u.data_ptr<float>(), d.data_ptr<float>(), coef});
      const at::Tensor xd = x.to(at::kDouble);
      expected += coef * at::mv(d.to(at::kDouble), at::silu(at::mv(g.to(at::kDouble), xd)) * at::mv(u.to(at::kDouble), xd));
    }
    cpu::swiglu_accumulate(terms, x.data_ptr<float>(), y.data_ptr<float>(), hidden, inter);
    const double scale = expected.abs().max().item<double>();
    EXPECT_LT((y.to(at::kDouble) - expected).abs().max().item<double>(), 1e-5 * scale) << hidden << "x" << inter;
  }
}

// Distance in units in the last place between two finite floats of one sign.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, sizeof ia);
  std::memcpy(&ib, &b, sizeof ib);
  return std::llabs(static_cast<int64_t>(ia) - static_cast<int64_t>(ib));
}

// The vector exp over its whole finite range and at its edges, against std::exp.
TEST(CpuVectorExp, WithinTwoUlpOfStdExpAndKeepsItsSpecialValues) {
  std::vector<float> xs;
  for (float x = -87.3f; x <= 88.7f; x += 0.000731f) xs.push_back(x);
  for (const float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 1.0f, -1.0f, 0.34657359f, -0.34657359f, 88.72f, -87.33f}) xs.push_back(x);
  int64_t worst = 0;
  float worst_at = 0;
  for (size_t i = 0; i < xs.size(); i += cpu::vectors::kLanes) {
    float in[cpu::vectors::kLanes] = {}, out[cpu::vectors::kLanes];
    const size_t n = std::min<size_t>(cpu::vectors::kLanes, xs.size() - i);
    std::copy(xs.begin() + static_cast<int64_t>(i), xs.begin() + static_cast<int64_t>(i + n), in);
    cpu::vectors::store(out, cpu::vectors::exp(cpu::vectors::load(in)));
    for (size_t j = 0; j < n; ++j) {
      const float want = std::exp(in[j]);
      ASSERT_TRUE(std::isfinite(out[j])) << in[j];
      const int64_t d = std::fpclassify(want) == FP_NORMAL ? ulps(out[j], want) : 0;
      if (d > worst) worst = d, worst_at = in[j];
    }
  }
  EXPECT_LE(worst, 2) << "at x = " << worst_at;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  float in[cpu::vectors::kLanes] = {inf, -inf, nan, 89.0f, -88.0f, -1000.0f, 1000.0f}, out[cpu::vectors::kLanes];
  cpu::vectors::store(out, cpu::vectors::exp(cpu::vectors::load(in)));
  EXPECT_EQ(out[0], inf);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], inf);
  EXPECT_EQ(out[4], 0.0f);  // below 2^-126: flushed
  EXPECT_EQ(out[5], 0.0f);
  EXPECT_EQ(out[6], inf);
}

// Softmax and SwiGLU's silu(gate) * up on lengths off the vector width, against float64.
TEST(CpuVectorExp, SoftmaxAndSiluTimesMatchFloat64) {
  at::manual_seed(9);
  for (const int64_t n : {1, 5, 16, 17, 64, 100, 257}) {
    const at::Tensor x = at::randn({n}) * 8, up = at::randn({n});
    at::Tensor scores = x.clone();
    cpu::softmax_in_place(scores.data_ptr<float>(), n);
    EXPECT_TRUE(at::allclose(scores.to(at::kDouble), at::softmax(x.to(at::kDouble), 0), 1e-6, 1e-7)) << n;
    at::Tensor gate = x.clone();
    cpu::silu_times(gate.data_ptr<float>(), up.data_ptr<float>(), n);
    EXPECT_TRUE(at::allclose(gate.to(at::kDouble), at::silu(x.to(at::kDouble)) * up.to(at::kDouble), 1e-6, 1e-7)) << n;
  }
}

// The softmax's first half, as attention over a slice of its keys keeps it: the scores' maximum, each
// score's exp(score - max) and their sum, against float64; the softmax is those values over the sum.
TEST(CpuVectorExp, ExpShiftedKeepsTheMaximumTheExponentialsAndTheirSum) {
  at::manual_seed(10);
  for (const int64_t n : {1, 5, 16, 17, 64, 100, 257}) {
    const at::Tensor x = at::randn({n}) * 8;
    at::Tensor scores = x.clone();
    float sum = -1;
    const float top = cpu::exp_shifted_in_place(scores.data_ptr<float>(), n, &sum);
    EXPECT_EQ(top, x.max().item<float>()) << n;
    const at::Tensor want = at::exp(x.to(at::kDouble) - x.max().item<double>());
    EXPECT_TRUE(at::allclose(scores.to(at::kDouble), want, 1e-6, 1e-7)) << n;
    EXPECT_NEAR(sum, want.sum().item<double>(), 1e-6 * want.sum().item<double>()) << n;
    at::Tensor softmax = x.clone();
    cpu::softmax_in_place(softmax.data_ptr<float>(), n);
    EXPECT_TRUE(at::allclose(softmax, scores / sum, 1e-6, 1e-7)) << n;
  }
}

// The softmax subtracts the true maximum wherever it sits (in either set of vector lanes or in the
// tail): with scores near 1000, any smaller one would overflow exp to infinity.
TEST(CpuVectorExp, SoftmaxSubtractsTheMaximumWhereverItSits) {
  for (const int64_t n : {7, 16, 40, 67}) {
    for (int64_t at_index = 0; at_index < n; ++at_index) {
      at::Tensor x = at::linspace(900, 990, n);
      x[at_index] = 1000.0f;
      x[(at_index + 1) % n] = -std::numeric_limits<float>::infinity();
      at::Tensor scores = x.clone();
      cpu::softmax_in_place(scores.data_ptr<float>(), n);
      ASSERT_TRUE(at::allclose(scores.to(at::kDouble), at::softmax(x.to(at::kDouble), 0), 1e-6, 1e-7)) << "n " << n << ", max at " << at_index;
    }
  }
}

// Greedy decoding's pick: the index at::argmax gives (the first of equal maxima, the first NaN), on
// lengths off the vector width, with the special values in the vector part and in the tail.
TEST(CpuFirstMax, PicksWhatArgmaxPicks) {
  at::manual_seed(4);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (const int64_t n : {1, 7, 8, 9, 16, 23, 6400}) {
    std::vector<at::Tensor> cases;
    const at::Tensor x = at::randn({n});
    cases.push_back(x);
    cases.push_back(at::full({n}, -inf));
    cases.push_back(x.round());  // many ties
    for (const int64_t at : {int64_t{0}, n / 2, n - 1}) {
      for (const float special : {nan, inf, -inf}) {
        at::Tensor y = x.clone();
        y[at] = special;
        cases.push_back(y.clone());  // a copy: y takes a second special value below
        if (n > 2) {
          y[n - 1 - at / 2] = special;  // a second one later
          cases.push_back(y.clone());
        }
      }
    }
    for (const at::Tensor& v : cases)
      EXPECT_EQ(cpu::first_max(v.data_ptr<float>(), n), v.argmax().item<int64_t>()) << "n " << n << ": " << v.slice(0, 0, std::min<int64_t>(n, 12));
  }
}

// The attention kernels over both row types a KV cache holds: float32 and bfloat16 (KvDtype::bf16).
template <typename Row>
class CpuAttentionRows : public ::testing::Test {
 protected:
  static at::ScalarType dtype() { return std::is_same_v<Row, float> ? at::kFloat : at::kBFloat16; }
  // Standard normal values, stored as Row.
  static at::Tensor rows(std::initializer_list<int64_t> shape) { return at::randn(shape).to(dtype()); }
};
using RowTypes = ::testing::Types<float, c10::BFloat16>;
TYPED_TEST_SUITE(CpuAttentionRows, RowTypes);

// One head's scores and weighted sum over strided cache rows, lengths off the vector widths, against
// float64 over the rows' stored values.
TYPED_TEST(CpuAttentionRows, DotRowsAndWeightedSumMatchFloat64) {
  using Row = TypeParam;
  at::manual_seed(6);
  for (const int64_t n : {1, 15, 16, 32, 33, 64, 100, 128, 130}) {
    const int64_t count = 37, stride = 3 * n;
    const at::Tensor rows = this->rows({count, stride}), q = at::randn({n}), p = at::rand({count});
    const at::Tensor used = rows.narrow(1, n, n).to(at::kDouble);  // each row's second run of n values
    std::vector<float> scores(count, 1.0f);
    cpu::dot_rows(q.data_ptr<float>(), rows.template data_ptr<Row>() + n, stride, count, n, 0.5f, scores.data(), /*accumulate=*/true);
    const at::Tensor want = 1.0 + 0.5 * at::mv(used, q.to(at::kDouble));
    for (int64_t t = 0; t < count; ++t) EXPECT_NEAR(scores[t], want[t].item<double>(), 1e-4 * std::sqrt(static_cast<double>(n))) << n;
    std::vector<float> out(n, 2.0f);
    cpu::weighted_row_sum(p.data_ptr<float>(), rows.template data_ptr<Row>() + n, stride, count, n, out.data());
    const at::Tensor sum = 2.0 + at::mv(used.t(), p.to(at::kDouble));
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(out[i], sum[i].item<double>(), 1e-4) << n;
  }
}

// Keys in blocks of four and one at a time sum alike: a score does not depend on where its key falls.
TYPED_TEST(CpuAttentionRows, ScoresOfBlockedKeysEqualSingleKeysBitForBit) {
  using Row = TypeParam;
  at::manual_seed(7);
  for (const int64_t n : {16, 33, 64, 96, 130}) {
    const int64_t count = 11;
    const at::Tensor rows = this->rows({count, n}), q = at::randn({n});
    const Row* r = rows.template data_ptr<Row>();
    std::vector<float> blocked(count), single(count);
    cpu::dot_rows(q.data_ptr<float>(), r, n, count, n, 0.25f, blocked.data());
    for (int64_t t = 0; t < count; ++t) cpu::dot_rows(q.data_ptr<float>(), r + t * n, n, 1, n, 0.25f, &single[t]);
    for (int64_t t = 0; t < count; ++t) EXPECT_EQ(blocked[t], single[t]) << "n " << n << ", key " << t;
  }
}

// Two heads over the same rows give, bit for bit, what each gives alone: scores (with and without
// accumulating, odd and even key counts) and weighted sums, lengths off the vector widths.
TYPED_TEST(CpuAttentionRows, TwoHeadsAtOnceEqualOneAtATimeBitForBit) {
  using Row = TypeParam;
  at::manual_seed(30);
  for (const int64_t n : {1, 15, 16, 32, 33, 64, 96, 130}) {
    for (const int64_t count : {1, 2, 7, 12}) {
      const int64_t stride = 2 * n;
      const at::Tensor rows = this->rows({count, stride}), q = at::randn({2, n}), p = at::rand({2, count});
      const Row* r = rows.template data_ptr<Row>() + n;
      for (const bool accumulate : {false, true}) {
        std::vector<float> pair0(count, 0.5f), pair1(count, -1.0f), single0(count, 0.5f), single1(count, -1.0f);
        cpu::dot_rows2(q[0].data_ptr<float>(), q[1].data_ptr<float>(), r, stride, count, n, 0.25f, pair0.data(), pair1.data(), accumulate);
        cpu::dot_rows(q[0].data_ptr<float>(), r, stride, count, n, 0.25f, single0.data(), accumulate);
        cpu::dot_rows(q[1].data_ptr<float>(), r, stride, count, n, 0.25f, single1.data(), accumulate);
        EXPECT_EQ(pair0, single0) << "n " << n << " count " << count;
        EXPECT_EQ(pair1, single1) << "n " << n << " count " << count;
      }
      std::vector<float> sum0(n, 1.0f), sum1(n, 2.0f), alone0(n, 1.0f), alone1(n, 2.0f);
      cpu::weighted_row_sum2(p[0].data_ptr<float>(), p[1].data_ptr<float>(), r, stride, count, n, sum0.data(), sum1.data());
      cpu::weighted_row_sum(p[0].data_ptr<float>(), r, stride, count, n, alone0.data());
      cpu::weighted_row_sum(p[1].data_ptr<float>(), r, stride, count, n, alone1.data());
      EXPECT_EQ(sum0, alone0) << "n " << n << " count " << count;
      EXPECT_EQ(sum1, alone1) << "n " << n << " count " << count;
    }
  }
}

// RMSNorm's one-token loop (no gradient) against its tensor formula, and the formula kept where a
// gradient is wanted.
TEST(RMSNormModule, OneTokenLoopMatchesTheFormulaAndGradientsStillFlow) {
  at::manual_seed(8);
  RMSNorm norm(48, 1e-5);
  {
    torch::NoGradGuard no_grad;
    norm->weight.uniform_(0.5, 1.5);
  }
  const at::Tensor x = at::randn({1, 1, 48});
  const at::Tensor formula = x * at::rsqrt(x.square().mean(-1, true) + 1e-5) * norm->weight.detach();
  {
    torch::NoGradGuard no_grad;
    EXPECT_LT((norm(x) - formula).abs().max().item<float>(), 1e-6);
  }
  const at::Tensor y = norm(x);  // the weight wants a gradient: the general path
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(norm->weight.grad().defined());
}

TEST(CpuGemv, AppliesOnlyToContiguousFloatRowsWithoutGradient) {
  const at::Tensor w = at::randn({8, 4});
  const at::Tensor x = at::randn({4});
  at::NoGradGuard no_grad;
  EXPECT_TRUE(cpu::gemv_applies(x, w));
  EXPECT_TRUE(cpu::gemv_applies(x.view({1, 1, 4}), w));
  EXPECT_FALSE(cpu::gemv_applies(at::randn({2, 4}), w));                 // two rows: a GEMM
  EXPECT_FALSE(cpu::gemv_applies(x.to(at::kDouble), w.to(at::kDouble)));  // not float32
  EXPECT_FALSE(cpu::gemv_applies(x, w.t().contiguous().t()));            // column-major weight
  EXPECT_FALSE(cpu::gemv_applies(at::randn({8}).slice(0, 0, 8, 2), w));  // strided input
}

TEST(CpuGemv, NeedsNoGradientToApply) {
  const at::Tensor w = at::randn({8, 4}).requires_grad_();
  const at::Tensor x = at::randn({4});
  EXPECT_FALSE(cpu::gemv_applies(x, w));
  at::NoGradGuard no_grad;
  EXPECT_TRUE(cpu::gemv_applies(x, w));
}

// Several rows against a stored matrix (the general path: a prompt) equal the product with the
// widened matrix, the block formats' input rounded to its int8 blocks as the kernels see it; with
// more rows than a tile of the widened buffer (1,024 rows of 1,024 columns), so that the last tile
// is partial.
TEST(CpuGemv, SeveralRowsAgainstAStoredMatrixMeetItsWidenedRows) {
  at::manual_seed(5);
  const int64_t out = 1100, in = 1024;
  const at::Tensor weights = at::randn({out, in}) * 0.05;
  const at::Tensor x = at::randn({2, 3, in});
  at::NoGradGuard no_grad;
  for (const WeightFormat format : {WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4}) {
    SCOPED_TRACE(to_string(format));
    at::Tensor stored = to_weight_format(weights, format);
    if (format != WeightFormat::bf16) stored = group_rows(stored, format, in);
    at::Tensor input = x.clone();
    if (cpu::needs_blocks(format))
      for (int64_t r = 0; r < 6; ++r) cpu::round_to_input_blocks(input.data_ptr<float>() + r * in, in);
    const at::Tensor reference = at::matmul(input, widen_weight(stored, in).t());
    const at::Tensor y = project(x, stored);
    ASSERT_EQ(y.sizes(), reference.sizes());
    EXPECT_TRUE(at::allclose(y, reference, 1e-4, 1e-4)) << (y - reference).abs().max().item<float>();
  }
}

// project() keeps autograd for a single row that needs a gradient, and agrees with the GEMM path.
TEST(CpuGemv, ProjectAgreesWithLinearWithAndWithoutGradient) {
  at::manual_seed(4);
  const at::Tensor w = at::randn({96, 80}).requires_grad_();
  const at::Tensor x = at::randn({1, 1, 80});
  const at::Tensor reference = at::linear(x, w).detach();
  const at::Tensor with_grad = project(x, w);
  ASSERT_TRUE(with_grad.requires_grad());
  with_grad.sum().backward();
  EXPECT_TRUE(at::allclose(w.grad(), x.reshape({1, 80}).expand({96, 80})));
  at::NoGradGuard no_grad;
  const at::Tensor fast = project(x, w);
  EXPECT_EQ(fast.sizes(), reference.sizes());
  EXPECT_TRUE(at::allclose(fast, reference, 1e-5, 1e-5));
}

}  // namespace
}  // namespace chronos
