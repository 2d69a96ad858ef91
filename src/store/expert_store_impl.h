// ExpertStore's private state and logic (the pimpl of expert_store.h), shared by expert_store.cpp
// (states, slots, copies, the ExpertSource side), expert_store_reads.cpp (reads and the prefetch
// queue) and expert_store_invariants.cpp. Private to src/store.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "chronos/store/expert_store.h"
#include "chronos/store/ready_event.h"
#include "store/eviction_policy.h"
#include "store/io_pool.h"
#include "store/slot_pool.h"

namespace chronos {

// When an expert is needed: a decode step and, within it, a layer. Ordered by step, then layer.
struct Due {
  int64_t step = 0;
  int64_t layer = 0;
  bool operator<(const Due& o) const { return step != o.step ? step < o.step : layer < o.layer; }
};

// Who asks for an expert: the model (acquire, announce), or a prediction.
enum class Requester { demand, prefetch };

struct ExpertStore::Impl final : ReadScheduler {
  // Per (layer, expert); every field is guarded by mutex_. The host copy and the compute copy are
  // independent: without zero copy, a HOT expert may or may not still have its host copy.
  //   COLD     no slot
  //   READING  host slot being read into (read_event pending until the read completes)
  //   WARM     host slot
  //   COPYING  host slot, compute slot being copied into (copy_event)
  //   HOT      compute slot, host slot or not (zero copy: the host slot is the compute copy)
  struct Unit {
    ExpertState state = ExpertState::cold;
    int32_t host_slot = -1;
    int32_t compute_slot = -1;
    HostReadyEventPtr read_event;  // READING -> WARM
    ReadyEventPtr copy_event;      // COPYING -> HOT
    int32_t pins = 0;              // held by acquire() until release(): never evicted
    bool read_queued = false;      // in demand_reads_ (COLD)
    bool wants_compute = false;    // a copy should follow (demand, announce or a compute-target prefetch)
    bool copy_queued = false;      // in pending_copies_
    bool demanded = false;         // acquire() waits for it: host copy protected, the finished copy pins it
    int64_t next_due = -1;         // the earliest deadline step a prefetch named it for, since that step passed
    int64_t wanted_until = -1;     // the latest deadline step a prefetch named it for
    int64_t failures = 0;          // failed reads or copies so far
    std::string error;             // the last failure
  };

  Impl(const OffloadConfig& config, const ModelConfig& model, ClusterManifest manifest, std::unique_ptr<TransferEngine> engine);
  ~Impl() override;

  // ExpertStore's ExpertSource side and prefetch (the model's thread).
  std::vector<std::optional<ExpertWeights>> acquire(int64_t layer, const std::vector<int64_t>& experts);
  void release(int64_t layer);
  void announce(int64_t layer, const std::vector<int64_t>& experts);
  void prefetch(const std::vector<PrefetchRequest>& requests);
  void begin_step(int64_t step);

  // ReadScheduler (I/O threads).
  bool next_read(ReadJob& job) override;
  void read_finished(const ReadJob& job, const ReadOutcome& outcome, uint64_t bytes) override;

  // All below run under mutex_.
  Unit& unit(ExpertKey key) { return units_[static_cast<size_t>(key.index(num_experts_))]; }
  const Unit& unit(ExpertKey key) const { return units_[static_cast<size_t>(key.index(num_experts_))]; }
  ExpertKey checked_key(int64_t layer, int64_t expert, const char* what) const;
  // Experts that may be held at once: the compute slots, at most the experts per layer.
  int64_t max_batch() const { return std::min<int64_t>(compute_pool_->count(), num_experts_); }

  // When the predictions next need `key`; none when no prediction wants it (any more).
  std::optional<Due> due(ExpertKey key) const;
  bool is_wanted(ExpertKey key) const { return due(key).has_value(); }
  void enter_layer(int64_t layer);

  // The one place that decides what an expert still needs to reach `target`: marks the copy that
  // must follow a read or a copy in flight, queues the copy of a WARM expert (demand copies ahead
  // of prefetch ones), and returns whether a read is still to be asked for (COLD, none queued; the
  // copy is marked once the read is asked for, by calling again).
  bool advance(ExpertKey key, Tier target, Requester who);
  // The model needs `key` at `target`: a demand read if it is COLD (`front`: ahead of the other
  // demand reads, also one already queued), then the copy.
  void demand(ExpertKey key, Tier target, bool front);
  // Whether `key` is at `target` or on its way there with nothing left to ask for.
  bool satisfied(ExpertKey key, Tier target) const;

  // A slot for `incoming` (none: demand), free or taken from a victim: an unwanted expert first
  // (LRU), then, for demand or under PrefetchEviction::deadline, the wanted one due last, if it is
  // due after `incoming`. `speculative` (the rest of a cluster run): unwanted victims only.
  std::optional<int32_t> take_host_slot(std::optional<Due> incoming, bool speculative = false);
  std::optional<int32_t> take_compute_slot(std::optional<Due> incoming, bool speculative = false);
  std::optional<ExpertKey> choose_victim(const EvictionPolicy& policy, const std::function<bool(ExpertKey)>& evictable,
                                         std::optional<Due> incoming, bool speculative) const;
  bool host_evictable(ExpertKey key) const;
  bool compute_evictable(ExpertKey key) const;
  void drop_host_copy(ExpertKey key);
  void drop_compute_copy(ExpertKey key);

  // Reads.
  void request_read(ExpertKey key, bool front);
  bool make_read_job(ExpertKey key, bool whole_cluster, Requester who, ReadJob& job);
  void queue_rest_of_cluster(const ReadJob& job);

  // Copies.
  void queue_copy(ExpertKey key, Requester who);
  void pump_copies();
  bool start_copy(ExpertKey key, Requester who);
  void copy_finished(ExpertKey key, int32_t slot, const std::string& error);
  // `key` is HOT in compute slot `slot` (or, with an error, is not): policy, pins, failures.
  void promoted(ExpertKey key, int32_t slot, const std::string& error);

  // Wakes one I/O thread when there is something to read (each one that takes a job wakes the
  // next): waking them all at every layer's acquire and release costs a 2-core machine more than
  // the reads.
  void wake_readers();
  bool idle_locked() const;
  void check_invariants_locked() const;
  bool direct_io() const;

  OffloadConfig config_;
  ClusterManifest manifest_;
  std::vector<ExpertLocation> where_;
  int64_t num_layers_ = 0, num_experts_ = 0;

  std::unique_ptr<TransferEngine> engine_;
  std::unique_ptr<HostSlotPool> host_pool_;
  std::unique_ptr<ComputeSlotPool> compute_pool_;
  std::unique_ptr<EvictionPolicy> host_policy_, compute_policy_;
  bool zero_copy_ = false;
  std::vector<ExpertWeights> host_weights_;  // zero copy: per host slot, views of gate | up | down

  mutable std::mutex mutex_;
  mutable std::condition_variable work_cv_;      // I/O threads: a read or a host slot may be available
  mutable std::condition_variable progress_cv_;  // a read or copy finished (acquire, wait_idle)
  std::vector<Unit> units_;
  std::deque<ExpertKey> demand_reads_;    // acquire / announce reads, ahead of the prefetch queue
  std::deque<ExpertKey> cluster_reads_;   // the rest of whole-cluster requests, next after demand
  std::deque<ExpertKey> demand_copies_;   // WARM experts the model waits for, ahead of prefetch copies
  std::deque<ExpertKey> pending_copies_;  // WARM experts a prefetch wants HOT
  PrefetchQueue queue_;
  std::unordered_map<int64_t, std::vector<ExpertKey>> acquired_;  // layer -> keys pinned by acquire
  int64_t pinned_ = 0;                    // pins held by acquire() in all
  std::vector<ReadyEventPtr> slot_last_use_;  // per compute slot
  int64_t reads_in_flight_ = 0, copies_in_flight_ = 0;
  // The I/O threads found no slot a prefetch may take: until something changes (every change
  // clears it), the queued prefetches wait and the store counts as idle.
  bool prefetch_blocked_ = false;
  int64_t step_ = 0;
  int64_t layer_ = 0;  // the layer of step_ the model last announced or acquired
  bool stopping_ = false;
  StoreStats stats_;

  std::unique_ptr<IoPool> io_;  // last: its threads call back into everything above
};

}  // namespace chronos
