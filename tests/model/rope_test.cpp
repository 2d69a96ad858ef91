#include "chronos/model/rope.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "chronos/model/config.h"

namespace chronos {
namespace {

// Index range where YaRN left the frequency alone (lo) and fully divided it by 16 (hi).
std::pair<int64_t, int64_t> yarn_ramp(int64_t width) {
  ModelConfig plain, yarn;
  plain.max_position_embeddings = yarn.max_position_embeddings = 32768;
  yarn.inference_rope_scaling = true;
  const at::Tensor a = RotaryTable(plain, width).inv_freq(), b = RotaryTable(yarn, width).inv_freq();
  const at::Tensor ratio = b / a;
  int64_t lo = -1, hi = -1;
  for (int64_t i = 0; i < width / 2; ++i) {
    const float r = ratio[i].item<float>();
    if (std::abs(r - 1.0f) < 1e-6f) lo = i;
    if (hi < 0 && std::abs(r - 1.0f / 16) < 1e-6f) hi = i;
  }
  return {lo, hi};
}

TEST(Rope, YarnRampMatchesTheSpecCheckValues) {
  EXPECT_EQ(yarn_ramp(96), (std::pair<int64_t, int64_t>{8, 21}));
  EXPECT_EQ(yarn_ramp(64), (std::pair<int64_t, int64_t>{5, 14}));
  EXPECT_EQ(yarn_ramp(16), (std::pair<int64_t, int64_t>{1, 4}));
}

TEST(Rope, YarnIsDecidedFromTheConfiguredMaximum) {
  ModelConfig c;
  c.inference_rope_scaling = true;
  c.max_position_embeddings = 512;  // below 2048: no YaRN, however long the table grows [Q12]
  RotaryTable table(c, 64);
  const at::Tensor before = table.inv_freq().clone();
  table.rows(0, 5000, c10::Device(c10::kCPU));
  EXPECT_GE(table.length(), 5000);
  EXPECT_TRUE(at::equal(before, table.inv_freq()));
  EXPECT_FALSE(c.yarn_enabled());
}

TEST(Rope, TableHoldsRepeatedFrequencies) {
  ModelConfig c;
  RotaryTable table(c, 8);
  auto [cos, sin] = table.rows(3, 1, c10::Device(c10::kCPU));
  for (int64_t i = 0; i < 4; ++i) {
    const double f = 1.0 / std::pow(1e6, 2.0 * i / 8);
    EXPECT_NEAR(cos[0][i].item<float>(), std::cos(3 * f), 1e-6);
    EXPECT_NEAR(cos[0][i + 4].item<float>(), std::cos(3 * f), 1e-6);
    EXPECT_NEAR(sin[0][i].item<float>(), std::sin(3 * f), 1e-6);
  }
}

TEST(Rope, GrowsOnDemand) {
  ModelConfig c;
  c.max_position_embeddings = 16;
  RotaryTable table(c, 8);
  EXPECT_EQ(table.length(), 16);
  auto [cos, sin] = table.rows(10, 20, c10::Device(c10::kCPU));
  EXPECT_EQ(cos.size(0), 20);
  EXPECT_EQ(table.length(), 32);  // max(30, 2 * 16)
}

TEST(Rope, CpuRowIsTheTablesRowAndGrowsItOnDemand) {
  ModelConfig c;
  c.max_position_embeddings = 16;
  RotaryTable table(c, 8);
  for (const int64_t position : {0, 7, 15, 40}) {
    const auto [cos_row, sin_row] = table.cpu_row(position);
    auto [cos, sin] = table.rows(position, 1, c10::Device(c10::kCPU));
    for (int64_t i = 0; i < 8; ++i) {
      EXPECT_EQ(cos_row[i], cos[0][i].item<float>()) << position;
      EXPECT_EQ(sin_row[i], sin[0][i].item<float>()) << position;
    }
  }
  EXPECT_EQ(table.length(), 41);  // max(41, 2 * 16)
}

TEST(Rope, FullWidthIsARelativeRotation) {
  ModelConfig c;
  c.rope_theta = 10000;
  RotaryTable table(c, 16);
  at::manual_seed(0);
  const at::Tensor q = at::randn({1, 1, 1, 16}), k = at::randn({1, 1, 1, 16});
  auto dot_at = [&](int64_t pq, int64_t pk) {
    auto [cq, sq] = table.rows(pq, 1, c10::Device(c10::kCPU));
    auto [ck, sk] = table.rows(pk, 1, c10::Device(c10::kCPU));
    return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum().item<float>();
  };
  EXPECT_NEAR(dot_at(5, 2), dot_at(13, 10), 1e-4);  // depends on the offset only
  auto [c0, s0] = table.rows(7, 1, c10::Device(c10::kCPU));
  EXPECT_NEAR(apply_rope(q, c0, s0).norm().item<float>(), q.norm().item<float>(), 1e-5);
}

TEST(Rope, ReferencePairingOnAPrefixOfColumns) {
  // MLA takes the first r columns of the head_dim table [Q1]: element j pairs with j + r/2 but
  // uses frequency f_j, and element j + r/2 uses f_{j+r/2}.
  ModelConfig c;
  RotaryTable table(c, 16);
  const at::Tensor x = at::arange(1, 5, at::kFloat).view({1, 1, 1, 4});  // r = 4
  auto [cos, sin] = table.rows(2, 1, c10::Device(c10::kCPU));
  const at::Tensor y = apply_rope(x, cos, sin);
  const double f0 = 1.0, f2 = 1.0 / std::pow(1e6, 4.0 / 16);
  EXPECT_NEAR(y[0][0][0][0].item<float>(), 1 * std::cos(2 * f0) - 3 * std::sin(2 * f0), 1e-5);
  EXPECT_NEAR(y[0][0][0][2].item<float>(), 3 * std::cos(2 * f2) + 1 * std::sin(2 * f2), 1e-5);
}

}  // namespace
}  // namespace chronos
