#include "chronos/core/timing.h"

#include <gtest/gtest.h>

namespace chronos {
namespace {

TEST(Timing, Median) {
  EXPECT_EQ(median({}), 0.0);
  EXPECT_EQ(median({3, 1, 2}), 2.0);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
}

TEST(Timing, StopwatchIsMonotonic) {
  Stopwatch watch;
  const double a = watch.seconds();
  const double b = watch.seconds();
  EXPECT_LE(a, b);
  EXPECT_GE(a, 0.0);
}

}  // namespace
}  // namespace chronos
