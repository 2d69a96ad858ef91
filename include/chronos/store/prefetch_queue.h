// The store's queue of prefetch requests (docs/offload.md "Expert store", replacing the reference's FIFO of
// depth 8 that dropped the most urgent item first). Ordered by (deadline step, layer,
// -probability), then by arrival: within a step an earlier layer's expert is needed sooner. At most one request per expert: a new request for a queued expert supersedes
// the old one. Bounded: when full, the least urgent request is dropped, never the most urgent
// one. Dedup against the store's states and in-flight work is the store's job (it knows them).
// Not thread-safe: the store calls it under its own lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>

#include "chronos/store/expert_key.h"

namespace chronos {

// The tier a request wants an expert brought to.
enum class Tier {
  ram,      // WARM: read into a host slot
  compute,  // HOT: read if needed, then copied into a compute slot
};

struct PrefetchRequest {
  ExpertKey key;
  int64_t deadline_step = 0;    // the decode step that will need it; earlier is more urgent
  float probability = 1;        // predicted probability of use; higher is more urgent at equal deadline
  Tier target = Tier::compute;  // how far to bring it
  bool whole_cluster = false;   // read the rest of its cluster too (into RAM, as slots allow)
};

class PrefetchQueue {
 public:
  explicit PrefetchQueue(size_t capacity);

  struct PushResult {
    bool superseded = false;                 // an older request for the same expert was replaced
    std::optional<PrefetchRequest> dropped;  // the queue was full: this (least urgent) request was dropped
  };
  // Queues `request`. The dropped request can be `request` itself when it is the least urgent.
  PushResult push(const PrefetchRequest& request);

  // The most urgent request, or none.
  const PrefetchRequest* top() const;
  std::optional<PrefetchRequest> pop();
  // Removes the request for `key`; false when none is queued.
  bool erase(ExpertKey key);
  const PrefetchRequest* find(ExpertKey key) const;
  // Removes every request with deadline_step < step; returns how many.
  size_t cancel_before(int64_t step);
  void clear();

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    PrefetchRequest request;
    uint64_t sequence;  // arrival order, the last tie-break
  };
  struct MoreUrgent {
    bool operator()(const Entry& a, const Entry& b) const;
  };
  using Set = std::set<Entry, MoreUrgent>;

  size_t capacity_;
  uint64_t next_sequence_ = 0;
  Set entries_;  // begin(): most urgent
  std::unordered_map<ExpertKey, Set::iterator, ExpertKeyHash> index_;
};

}  // namespace chronos
