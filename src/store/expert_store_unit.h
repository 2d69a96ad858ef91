// The expert store's per-(layer, expert) record, shared by expert_store.cpp (states, copies, the
// ExpertSource side) and expert_store_reads.cpp (reads and the prefetch queue). Private to src/store.
#pragma once

#include <cstdint>
#include <string>

#include "chronos/store/expert_store.h"

namespace chronos {

// Per (layer, expert). The host copy and the compute copy are independent: a HOT expert may or
// may not still have its host copy. All fields are guarded by the store's mutex.
struct ExpertStore::Unit {
  int32_t host_slot = -1;     // >= 0: a host slot holds it, or is being read into (reading)
  bool reading = false;
  ReadyEventPtr read_event;   // READING -> WARM
  int32_t compute_slot = -1;  // >= 0: a compute slot holds it, or is being copied into (copying)
  bool copying = false;
  ReadyEventPtr copy_event;   // COPYING -> HOT
  int32_t pins = 0;           // held by acquire() until release(): never evicted
  bool read_queued = false;   // in demand_reads_
  bool wants_compute = false; // a copy should follow (demand, announce or a compute-target prefetch)
  bool copy_queued = false;   // in pending_copies_
  bool demanded = false;      // acquire() waits for it: host copy protected, the finished copy pins it
  int64_t wanted_until = -1;  // the latest deadline step a prefetch named it for (ExpertStore::is_wanted)
  int64_t failures = 0;       // failed reads or copies so far
  std::string error;          // the last failure
};

// Whether a prefetch request asks for nothing the store does not already have or do.
bool prefetch_satisfied(ExpertState state, const PrefetchRequest& request, bool read_queued, bool wants_compute);

}  // namespace chronos
