// ExpertStore: the offload ExpertSource (docs/offload.md "Expert store").
// Tiers: SSD (the cluster files) -> host RAM (a fixed pool of 4 KiB-aligned slots with its own
// byte budget) -> compute (a fixed pool of gate|up|down slots in the compute dtype, with its own
// budget; on the CPU that pool is ordinary memory). Each (layer, expert) moves
// COLD -> READING -> WARM -> COPYING -> HOT, and every transition carries a ReadyEvent.
//  - Reads: I/O threads pread (O_DIRECT) an expert's byte range, or runs of a cluster, into host
//    slots and check each expert's checksum. Copies: the TransferEngine, host slot -> compute slot.
//    Zero copy (OffloadConfig::zero_copy, on the CPU when the cache dtype is the compute dtype):
//    there is no separate device memory, so a HOT expert is served from its host slot; the compute
//    pool then holds no memory and only bounds how many experts are HOT, and a host slot is not
//    evicted while the model holds its expert (evicting it otherwise also ends its HOT state).
//  - Eviction: one policy per tier (LRU). Never evicted: experts acquired and not yet released,
//    slots being read or copied into, and the host copy of an expert acquire() is waiting for.
//    Deadline-aware: an expert a prefetch named for a step still ahead (or for this step, at a
//    layer not yet run) is "wanted", and due at the earliest (step, layer) named. Unwanted experts
//    go first (LRU). Then, under PrefetchEviction::deadline, a prefetch may evict the wanted
//    expert due last if that is later than its own expert is due (Belady's rule over the
//    predictions), so a layer-ahead request for this step is not starved by guesses for later
//    steps; under PrefetchEviction::protect a prefetch never evicts a wanted expert. Demand evicts
//    the wanted expert due last when nothing unwanted is left.
//    No write-back: the weights are immutable. Budgets are never exceeded (pools are fixed).
//  - Prefetch: a queue ordered by (deadline, layer, -probability) with dedup against the states and the
//    work in flight, supersession, begin_step() cancellation, and a bound that drops the least
//    urgent request. Demand (acquire, announce) goes ahead of every prefetch.
//  - Miss policy: `wait` blocks until the experts are HOT (identical output to the resident
//    model); `fallback` answers "unavailable" for non-HOT experts (soft gating) and fetches them.
//  - Errors: a bad cache fails at open time naming the file; an I/O error later (short read, EIO,
//    checksum mismatch) is counted in io_errors and, under `wait`, thrown from acquire() as IoError
//    naming the file; under `fallback` the expert falls back. Failed events wake waiters: no hang.
// Threading: acquire/release/announce/prefetch/begin_step come from the thread running the model;
// state(), stats() and prefetch() are safe from any thread.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "chronos/model/config.h"
#include "chronos/model/expert_source.h"
#include "chronos/store/cluster_manifest.h"
#include "chronos/store/offload_config.h"
#include "chronos/store/prefetch_queue.h"
#include "chronos/store/store_stats.h"
#include "chronos/store/transfer_engine.h"

namespace chronos {

enum class ExpertState { cold, reading, warm, copying, hot };
const char* to_string(ExpertState state);

// Counters since open (or reset_stats). Hits, misses, stalls and fallbacks are recorded in acquire(),
// at the point of use.
class ExpertStore : public ExpertSource {
 public:
  // Reads the manifest, checks it against the model, verifies the cluster files (config.verify),
  // opens them, allocates both pools and starts the threads. A missing or damaged manifest, a
  // missing, truncated or corrupted cluster file, or a cache for another model shape: one error
  // naming the file (IoError / FormatError / ConfigError). Budgets too small for one expert:
  // ConfigError naming the budget field and the size needed. `engine` moves experts to the compute
  // tier and owns the pools' memory; none: make_transfer_engine(config.device) (a throttled CPU
  // engine stands in for PCIe in tests and benchmarks). It must be for config.device.
  ExpertStore(const OffloadConfig& config, const ModelConfig& model, std::unique_ptr<TransferEngine> engine = nullptr);
  // The same with the manifest already read from config.cache_dir (a caller that needed it to size
  // the budgets does not read it twice).
  ExpertStore(const OffloadConfig& config, const ModelConfig& model, ClusterManifest manifest,
              std::unique_ptr<TransferEngine> engine = nullptr);
  // Stops the readers and the copy thread and joins them, also with work queued or throttled.
  ~ExpertStore() override;
  ExpertStore(const ExpertStore&) = delete;
  ExpertStore& operator=(const ExpertStore&) = delete;

  // ExpertSource. The answer has one entry per requested expert: its compute slot's weights
  // (valid until release(layer)) or, under `fallback`, nothing for an expert that is not HOT.
  // At most max_batch() experts may be held (acquired, not released) at once.
  std::vector<std::optional<ExpertWeights>> acquire(int64_t layer, const std::vector<int64_t>& experts) override;
  void release(int64_t layer) override;
  // The number of compute slots (at most the experts per layer).
  size_t max_batch() const override;
  // Starts reading every expert the layer will acquire, ahead of any prefetch; the first
  // max_batch() of them are also copied to compute slots.
  void announce(int64_t layer, const std::vector<int64_t>& experts) override;

  // Queues prefetch requests; never blocks on I/O. Throws InvalidArgument for a key outside the model.
  void prefetch(const std::vector<PrefetchRequest>& requests);
  // Starts decode step `step`: queued requests with deadline_step < step are cancelled.
  void begin_step(int64_t step);

  ExpertState state(ExpertKey key) const;
  // Blocks until no read or copy is queued or running (prefetches included, but not those waiting
  // for a slot only wanted experts hold), or `seconds` pass; returns whether it became idle. For
  // tests and benchmarks.
  bool wait_idle(double seconds = 60) const;
  // Checks, under the store's lock, that every expert's state agrees with its slots, events, pins
  // and queue entries, that each slot has one owner, that the eviction policies hold exactly the
  // resident experts and that the counters of work in flight match; throws std::logic_error naming
  // the first expert or counter that does not. Safe from any thread, at any time (the threaded
  // tests call it while reads and copies run).
  void check_invariants() const;

  StoreStats stats() const;
  void reset_stats();
  const ClusterManifest& manifest() const;
  const OffloadConfig& config() const;
  int64_t ram_slots() const;
  int64_t compute_slots() const;
  // Whether reads bypass the page cache (O_DIRECT accepted by every cluster file).
  bool direct_io() const;
  // Whether HOT experts are served from their host slots (OffloadConfig::zero_copy took effect).
  bool zero_copy() const;

 private:
  struct Impl;  // src/store/expert_store_impl.h
  std::unique_ptr<Impl> impl_;
};

}  // namespace chronos
