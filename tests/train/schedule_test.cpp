#include "chronos/train/schedule.h"

#include <gtest/gtest.h>

namespace chronos {
namespace {

TEST(LrSchedule, WarmupThenCosineToATenth) {
  LrSchedule s{1.0, 200};
  const int64_t W = s.warmup_steps();
  EXPECT_EQ(W, 10);
  EXPECT_DOUBLE_EQ(s.at(1), 1.0 / W);
  EXPECT_DOUBLE_EQ(s.at(W), 1.0);
  EXPECT_NEAR(s.at(200), 0.1, 1e-12);
  EXPECT_NEAR(s.at((200 + W) / 2), 0.55, 1e-2);  // half way through the decay
  EXPECT_GT(s.at(50), s.at(150));
}

TEST(LrSchedule, ShortAndUnboundedRuns) {
  EXPECT_EQ(LrSchedule({1.0, 5}).warmup_steps(), 1);
  EXPECT_EQ(LrSchedule({1.0, 100000}).warmup_steps(), 500);
  EXPECT_DOUBLE_EQ(LrSchedule({0.3, 0}).at(7), 0.3);
}

}  // namespace
}  // namespace chronos
