#include "chronos/store/prefetch_queue.h"

#include <gtest/gtest.h>

#include <cmath>

#include "chronos/core/error.h"

namespace chronos {
namespace {

PrefetchRequest req(int layer, int expert, int64_t deadline, float p) { return {{layer, expert}, deadline, p, Tier::compute, false}; }

TEST(PrefetchQueue, OrdersByDeadlineThenLayerThenProbabilityThenArrival) {
  PrefetchQueue q(16);
  q.push(req(0, 0, 3, 0.9f));
  q.push(req(0, 1, 1, 0.2f));
  q.push(req(0, 2, 1, 0.8f));
  q.push(req(2, 0, 2, 0.9f));  // a later layer than (1, *): after them at the same deadline
  q.push(req(1, 3, 2, 0.5f));
  q.push(req(1, 0, 2, 0.5f));  // ties with (1, 3): arrival decides
  std::vector<int> order;
  while (auto r = q.pop()) order.push_back(r->key.layer * 10 + r->key.expert);
  EXPECT_EQ(order, (std::vector<int>{2, 1, 13, 10, 20, 0}));
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.pop());
}

TEST(PrefetchQueue, NewRequestSupersedesTheQueuedOne) {
  PrefetchQueue q(16);
  EXPECT_FALSE(q.push(req(0, 0, 5, 0.5f)).superseded);
  q.push(req(0, 1, 4, 0.5f));
  const auto result = q.push(req(0, 0, 1, 0.1f));
  EXPECT_TRUE(result.superseded);
  EXPECT_EQ(q.size(), 2u);
  ASSERT_NE(q.find({0, 0}), nullptr);
  EXPECT_EQ(q.find({0, 0})->deadline_step, 1);
  EXPECT_EQ(q.top()->key, (ExpertKey{0, 0}));
  EXPECT_TRUE(q.erase({0, 0}));
  EXPECT_FALSE(q.erase({0, 0}));
  EXPECT_EQ(q.find({0, 0}), nullptr);
}

TEST(PrefetchQueue, CancelsStaleRequests) {
  PrefetchQueue q(16);
  for (int e = 0; e < 6; ++e) q.push(req(0, e, e, 1.0f));
  EXPECT_EQ(q.cancel_before(3), 3u);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.top()->deadline_step, 3);
  EXPECT_EQ(q.cancel_before(3), 0u);
  EXPECT_EQ(q.find({0, 1}), nullptr);
}

TEST(PrefetchQueue, FullQueueDropsTheLeastUrgentNeverTheMostUrgent) {
  PrefetchQueue q(3);
  q.push(req(0, 0, 2, 0.5f));
  q.push(req(0, 1, 3, 0.5f));
  q.push(req(0, 2, 1, 0.5f));
  // More urgent than everything queued: the least urgent queued one goes.
  auto result = q.push(req(0, 3, 0, 0.9f));
  ASSERT_TRUE(result.dropped);
  EXPECT_EQ(result.dropped->key, (ExpertKey{0, 1}));
  // Less urgent than everything queued: the new one itself is dropped.
  result = q.push(req(0, 4, 9, 0.9f));
  ASSERT_TRUE(result.dropped);
  EXPECT_EQ(result.dropped->key, (ExpertKey{0, 4}));
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.top()->key, (ExpertKey{0, 3}));
  // A queue of one keeps the most urgent.
  PrefetchQueue one(1);
  one.push(req(1, 0, 5, 0.5f));
  one.push(req(1, 1, 4, 0.5f));
  one.push(req(1, 2, 6, 0.5f));
  EXPECT_EQ(one.size(), 1u);
  EXPECT_EQ(one.top()->key, (ExpertKey{1, 1}));
}

TEST(PrefetchQueue, RejectsBadInput) {
  EXPECT_THROW(PrefetchQueue(0), InvalidArgument);
  PrefetchQueue q(2);
  EXPECT_THROW(q.push(req(0, 0, 0, std::nanf(""))), InvalidArgument);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace chronos
