#include "chronos/store/store_stats.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace chronos {
namespace {

StoreStats sample(int64_t base) {
  StoreStats s;
  s.hits = base + 6;
  s.warm_hits = base + 1;
  s.cold_misses = base + 3;
  s.ssd_bytes = 1000 * base;
  s.prefetch_dropped = base;
  s.stall_seconds = 0.5 * static_cast<double>(base);
  s.most_experts_reading = base;
  s.ram_high_water_bytes = 10 * base;
  return s;
}

TEST(StoreStats, SumsCountsAndKeepsThePeaks) {
  StoreStats total = sample(2);
  total += sample(5);
  EXPECT_EQ(total.hits, 19);
  EXPECT_EQ(total.ssd_bytes, 7000);
  EXPECT_EQ(total.prefetch_dropped, 7);  // every count, not a chosen few
  EXPECT_DOUBLE_EQ(total.stall_seconds, 3.5);
  EXPECT_EQ(total.most_experts_reading, 5);
  EXPECT_EQ(total.ram_high_water_bytes, 50);
  EXPECT_EQ(total.uses(), 19 + 9 + 13);
}

TEST(StoreStats, DifferenceIsTheCountsSinceAndTheLaterPeaks) {
  const StoreStats step = sample(5) - sample(2);
  EXPECT_EQ(step.hits, 3);
  EXPECT_EQ(step.prefetch_dropped, 3);
  EXPECT_DOUBLE_EQ(step.stall_seconds, 1.5);
  EXPECT_EQ(step.most_experts_reading, 5);
}

TEST(StoreStats, RatesAndJson) {
  EXPECT_DOUBLE_EQ(StoreStats{}.hit_rate(), 1.0);  // nothing asked for: nothing missed
  const StoreStats s = sample(0);                  // 6 hits, 1 warm, 3 cold
  EXPECT_DOUBLE_EQ(s.hit_rate(), 0.6);
  EXPECT_DOUBLE_EQ(s.warm_rate(), 0.1);
  EXPECT_DOUBLE_EQ(s.cold_rate(), 0.3);
  const nlohmann::json j = to_json(sample(4), 2);
  EXPECT_EQ(j.at("uses"), 22);
  EXPECT_EQ(j.at("prefetch_dropped"), 4);
  EXPECT_DOUBLE_EQ(j.at("ssd_mb_per_token").get<double>(), 0.002);
  EXPECT_DOUBLE_EQ(j.at("stall_ms_per_token").get<double>(), 1000.0);
  EXPECT_FALSE(to_json(s).contains("ssd_mb_per_token"));  // per-token figures only with a token count
}

}  // namespace
}  // namespace chronos
