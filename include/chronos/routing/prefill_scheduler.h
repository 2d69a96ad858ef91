// PrefillScheduler (docs/offload.md "Predictive decode"): turns the predictor's hot set into prefetch
// requests for the expert store, issued before the prompt's forward so the reads and copies run
// while the prefill computes and the first decode step finds the set resident. Cluster-aware: where
// at least `cluster_fraction` of a cluster's members are in the hot set, its most urgent request
// asks for the whole cluster (sequential runs into RAM) instead of one read per expert.
// Deadlines: the compute-tier set is wanted by the first decode step (`deadline_step`), the RAM set
// by the step after it, so the prefill's own demand reads go first and the compute set before the
// RAM set; begin_step() cancels whatever is still queued once its step has passed.
#pragma once

#include <cstdint>
#include <vector>

#include "chronos/routing/expert_predictor.h"
#include "chronos/store/cluster_manifest.h"
#include "chronos/store/prefetch_queue.h"

namespace chronos {

class ExpertStore;

struct PrefillSchedulerConfig {
  int64_t deadline_step = 1;      // step that needs the compute set (step 0 is the prefill itself)
  double cluster_fraction = 0.5;  // a cluster is read whole when at least this share of it is hot; > 1: never
  // Throws ConfigError naming the field.
  void validate() const;
};

struct PrefillPlan {
  std::vector<PrefetchRequest> requests;  // compute set first, then RAM set, each most likely first
  int64_t compute = 0;                    // requests targeting the compute tier
  int64_t ram = 0;                        // requests targeting RAM
  int64_t whole_clusters = 0;             // clusters asked for whole
};

// The requests for `hot` over the cache described by `manifest` (no store needed: tests use it).
PrefillPlan plan_prefill(const HotSet& hot, const ClusterManifest& manifest, const PrefillSchedulerConfig& config = {});

class PrefillScheduler {
 public:
  PrefillScheduler(ExpertStore& store, PrefillSchedulerConfig config = {});
  // Plans for `hot` and hands the requests to the store (never blocks on I/O); returns the plan.
  PrefillPlan schedule(const HotSet& hot);

 private:
  ExpertStore& store_;
  PrefillSchedulerConfig config_;
};

}  // namespace chronos
