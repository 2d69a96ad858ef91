#include "chronos/routing/prefill_scheduler.h"

#include <cmath>
#include <unordered_map>

#include "chronos/core/error.h"
#include "chronos/store/expert_store.h"

namespace chronos {

void PrefillSchedulerConfig::validate() const {
  if (deadline_step < 0) throw ConfigError(cat("PrefillSchedulerConfig.deadline_step must be >= 0 (got ", deadline_step, ")"));
  if (!(cluster_fraction > 0) || !std::isfinite(cluster_fraction))
    throw ConfigError(cat("PrefillSchedulerConfig.cluster_fraction must be > 0 (got ", cluster_fraction, ")"));
}

PrefillPlan plan_prefill(const HotSet& hot, const ClusterManifest& manifest, const PrefillSchedulerConfig& config) {
  config.validate();
  const std::vector<ExpertLocation> where = index_experts(manifest);
  const auto cluster_of = [&](ExpertKey key) -> int32_t {
    const int64_t index = key.index(manifest.num_experts);
    if (key.layer < 0 || key.layer >= manifest.num_layers || key.expert < 0 || key.expert >= manifest.num_experts)
      throw InvalidArgument(cat("plan_prefill: expert ", key.name(), " is outside the cache's model"));
    return where[static_cast<size_t>(index)].cluster;
  };
  std::unordered_map<int32_t, int64_t> hot_members;
  for (const auto* set : {&hot.compute, &hot.ram})
    for (const ScoredExpert& s : *set) ++hot_members[cluster_of(s.key)];

  PrefillPlan plan;
  std::unordered_map<int32_t, bool> whole_asked;
  const auto add = [&](const ScoredExpert& s, Tier target, int64_t deadline) {
    PrefetchRequest r;
    r.key = s.key;
    r.deadline_step = deadline;
    r.probability = s.probability;
    r.target = target;
    const int32_t cluster = cluster_of(s.key);
    const double members = static_cast<double>(manifest.clusters.at(static_cast<size_t>(cluster)).experts.size());
    if (members > 1 && hot_members[cluster] >= config.cluster_fraction * members && !whole_asked[cluster]) {
      whole_asked[cluster] = true;
      r.whole_cluster = true;
      ++plan.whole_clusters;
    }
    plan.requests.push_back(r);
    ++(target == Tier::compute ? plan.compute : plan.ram);
  };
  for (const ScoredExpert& s : hot.compute) add(s, Tier::compute, config.deadline_step);
  for (const ScoredExpert& s : hot.ram) add(s, Tier::ram, config.deadline_step + 1);
  return plan;
}

PrefillScheduler::PrefillScheduler(ExpertStore& store, PrefillSchedulerConfig config) : store_(store), config_(config) {
  config_.validate();
}

PrefillPlan PrefillScheduler::schedule(const HotSet& hot) {
  PrefillPlan plan = plan_prefill(hot, store_.manifest(), config_);
  if (!plan.requests.empty()) store_.prefetch(plan.requests);
  return plan;
}

}  // namespace chronos
