// The expert store's counters, their arithmetic (totals over runs, deltas over a step) and their
// one JSON form, shared by chronos-generate, the metrics bus and the offload benchmark.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>

namespace chronos {

struct StoreStats {
  int64_t hits = 0;                   // requested experts that were HOT at use
  int64_t warm_hits = 0;              // WARM or COPYING at use (a copy, no SSD read, on the critical path)
  int64_t cold_misses = 0;            // COLD or READING at use
  int64_t fallbacks = 0;              // answered unavailable (miss policy fallback)
  int64_t io_errors = 0;              // failed reads: short read, EIO, checksum mismatch
  int64_t ssd_reads = 0;              // positional reads issued (one per expert or per run of a cluster)
  int64_t ssd_bytes = 0;              // bytes read from the cluster files
  int64_t copies = 0;                 // host -> compute copies completed
  int64_t copy_bytes = 0;             // their source bytes (what crosses PCIe on a GPU)
  int64_t prefetch_requests = 0;      // requests passed to prefetch()
  int64_t prefetch_deduplicated = 0;  // dropped: already HOT/WARM or in flight toward the same or a higher tier
  int64_t prefetch_cancelled = 0;     // superseded by a newer request, or stale at begin_step()
  int64_t prefetch_dropped = 0;       // dropped from a full queue (the least urgent)
  int64_t evictions_ram = 0;          // host slots taken from a WARM expert
  int64_t evictions_compute = 0;      // compute slots taken from a HOT expert
  double stall_seconds = 0;           // time acquire() spent waiting
  // Peaks, not counts: a sum keeps the larger, a difference the later one's.
  int64_t most_experts_reading = 0;     // most experts READING at once (how far reads overlap)
  int64_t ram_high_water_bytes = 0;     // most host slot bytes in use at once (<= ram budget)
  int64_t compute_high_water_bytes = 0; // most compute slot bytes in use at once (<= compute budget)

  int64_t uses() const { return hits + warm_hits + cold_misses; }  // experts asked for at use
  double hit_rate() const;   // hits / uses (1 with no uses)
  double warm_rate() const;  // warm_hits / uses (0 with no uses)
  double cold_rate() const;  // cold_misses / uses (0 with no uses)

  // Every count summed; the peaks keep the larger of the two.
  StoreStats& operator+=(const StoreStats& other);
  // The counts since `earlier` (a snapshot of the same store); the peaks are this snapshot's.
  StoreStats operator-(const StoreStats& earlier) const;
};

// The counters as JSON: every field by its name, the rates, and with `tokens` > 0 the per-token
// figures (stall_ms_per_token, ssd_mb_per_token, copied_mb_per_token, fallbacks_per_token).
nlohmann::json to_json(const StoreStats& stats, int64_t tokens = 0);

}  // namespace chronos
