#include "chronos/model/attention_core.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

namespace chronos {
namespace {

const c10::Device kCpu(c10::kCPU);

bool visible(const at::Tensor& mask, int64_t q, int64_t k) { return mask[q][k].item<float>() == 0.0f; }

TEST(AttentionMask, BottomRightCausalWithAbsolutePositions) {
  // Three new queries at positions 2..4 over keys 0..4.
  const at::Tensor m = causal_band_mask(3, 5, {2, 0, 0, {}}, kCpu);
  ASSERT_TRUE(m.defined());
  for (int64_t q = 0; q < 3; ++q)
    for (int64_t k = 0; k < 5; ++k) EXPECT_EQ(visible(m, q, k), k <= q + 2) << q << "," << k;
}

TEST(AttentionMask, BandKeepsTheLastWindowKeys) {
  const at::Tensor m = causal_band_mask(4, 4, {0, 0, 2, {}}, kCpu);
  for (int64_t q = 0; q < 4; ++q)
    for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(visible(m, q, k), k <= q && k > q - 2) << q << "," << k;
}

TEST(AttentionMask, NoMaskWhenEverythingIsVisible) {
  EXPECT_FALSE(causal_band_mask(1, 6, {5, 0, 0, {}}, kCpu).defined());   // one decode step, no window
  EXPECT_FALSE(causal_band_mask(1, 3, {9, 7, 3, {}}, kCpu).defined());   // decode step inside the window
  EXPECT_TRUE(causal_band_mask(1, 4, {9, 6, 3, {}}, kCpu).defined());    // key 6 is out of the window
}

// Reference attention: KV heads repeated, one head at a time.
at::Tensor naive(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  const int64_t B = q.size(0), S = q.size(1), nH = q.size(2), D = q.size(3), rep = nH / k.size(2);
  const at::Tensor kr = k.repeat_interleave(rep, 2), vr = v.repeat_interleave(rep, 2);
  std::vector<at::Tensor> heads;
  for (int64_t h = 0; h < nH; ++h) {
    at::Tensor s = at::matmul(q.select(2, h), kr.select(2, h).transpose(1, 2)) / std::sqrt(static_cast<double>(D));
    if (mask.defined()) s = s + mask;
    heads.push_back(at::matmul(at::softmax(s, -1), vr.select(2, h)));
  }
  return at::stack(heads, 2).reshape({B, S, -1});
}

TEST(Attention, GroupedHeadsMatchRepeatedKv) {
  at::manual_seed(0);
  const at::Tensor q = at::randn({2, 3, 4, 8}), k = at::randn({2, 5, 2, 8}), v = at::randn({2, 5, 2, 6});
  const AttentionMasking masking{2, 0, 0, {}};
  const at::Tensor got = attend(q, k, v, masking, 8, 0.0, false);
  const at::Tensor want = naive(q, k, v, causal_band_mask(3, 5, masking, kCpu));
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-5);
}

TEST(Attention, PaddedKeysGetNoWeight) {
  at::manual_seed(1);
  const at::Tensor q = at::randn({1, 2, 2, 4}), k = at::randn({1, 4, 1, 4}), v = at::randn({1, 4, 1, 4});
  AttentionMasking padded{2, 0, 0, at::tensor({0, 1, 1, 1}).view({1, 4})};  // key 0 is padding
  const at::Tensor got = attend(q, k, v, padded, 4, 0.0, false);
  const at::Tensor want = attend(q, k.narrow(1, 1, 3), v.narrow(1, 1, 3), {2, 1, 0, {}}, 4, 0.0, false);
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-5);
}

}  // namespace
}  // namespace chronos
