#include "store/eviction_policy.h"

#include <gtest/gtest.h>

#include "chronos/core/error.h"
#include "store/slot_pool.h"

namespace chronos {
namespace {

TEST(LruPolicy, EvictsTheLeastRecentlyUsedAllowedEntry) {
  auto lru = make_eviction_policy("lru");
  EXPECT_EQ(lru->name(), "lru");
  const auto any = [](ExpertKey) { return true; };
  EXPECT_FALSE(lru->victim(any));
  lru->insert({0, 0});
  lru->insert({0, 1});
  lru->insert({0, 2});
  EXPECT_EQ(*lru->victim(any), (ExpertKey{0, 0}));
  lru->touch({0, 0});
  EXPECT_EQ(*lru->victim(any), (ExpertKey{0, 1}));
  // Pinned or busy entries are skipped.
  EXPECT_EQ(*lru->victim([](ExpertKey k) { return k.expert != 1; }), (ExpertKey{0, 2}));
  EXPECT_FALSE(lru->victim([](ExpertKey) { return false; }));
  lru->erase({0, 1});
  lru->erase({0, 1});  // absent: ignored
  lru->touch({3, 3});  // absent: ignored
  EXPECT_EQ(lru->size(), 2u);
  EXPECT_EQ(*lru->victim(any), (ExpertKey{0, 2}));
  lru->insert({0, 2});  // re-insert moves it to the MRU end
  EXPECT_EQ(*lru->victim(any), (ExpertKey{0, 0}));
  EXPECT_EQ(lru->size(), 2u);
}

TEST(LruPolicy, UnknownNameIsRejected) {
  EXPECT_THROW(make_eviction_policy("random"), InvalidArgument);
  EXPECT_TRUE(is_eviction_policy("lru"));
  EXPECT_FALSE(is_eviction_policy("LRU"));
}

TEST(SlotPool, CountsSlotsWithinTheBudgetAndTracksTheHighWaterMark) {
  auto engine = make_transfer_engine(c10::kCPU);
  HostSlotPool host(*engine, 3 * 8192 + 100, 8192);
  EXPECT_EQ(host.count(), 3);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(host.data(0)) % 4096, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(host.data(1)) % 4096, 0u);
  const auto a = host.take(), b = host.take(), c = host.take();
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(host.take());
  EXPECT_EQ(host.high_water_bytes(), 3 * 8192);
  host.put(*b);
  EXPECT_THROW(host.put(*b), InvalidArgument);
  EXPECT_EQ(*host.take(), *b);  // lowest free slot first
  host.put(*a);
  host.reset_high_water();
  EXPECT_EQ(host.high_water_bytes(), 2 * 8192);
  EXPECT_THROW(HostSlotPool(*engine, 8192, 1000), InvalidArgument);

  ComputeSlotPool compute(*engine, 5 * 3 * 4 * 6 * 4, 4, 6, c10::kFloat);
  EXPECT_EQ(compute.count(), 5);
  EXPECT_EQ(compute.slot_bytes(), 3u * 4 * 6 * 4);
  const ExpertWeights& w = compute.weights(2);
  EXPECT_EQ(w.gate_proj.sizes(), (c10::IntArrayRef{6, 4}));
  EXPECT_EQ(w.down_proj.sizes(), (c10::IntArrayRef{4, 6}));
  EXPECT_EQ(w.gate_proj.data_ptr(), compute.data(2));
  EXPECT_EQ(static_cast<char*>(w.down_proj.data_ptr()) - static_cast<char*>(w.gate_proj.data_ptr()), 2 * 6 * 4 * 4);
}

}  // namespace
}  // namespace chronos
