// A tiny model and its expert cache on disk, shared by the expert store tests.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "chronos/model/causal_lm.h"
#include "chronos/store/expert_cache_writer.h"
#include "chronos/store/offload_config.h"
#include "support/temp_dir.h"
#include "support/tiny_config.h"

namespace chronos::testing {

// 4 layers x 4 experts (top-2), hidden 64, expert width 96: one expert is 73728 bytes in fp32.
class StoreFixture {
 public:
  explicit StoreFixture(int64_t clusters = 3, ExpertStorage storage = {}) {
    at::manual_seed(7);
    config = tiny_config();
    model = ChronosForCausalLM(config);
    model->eval();
    // Clusters mix layers: key i of the flat order goes to cluster i % n.
    ExpertClusters groups(static_cast<size_t>(clusters));
    for (int64_t u = 0; u < config.num_hidden_layers * config.num_experts; ++u)
      groups[static_cast<size_t>(u % clusters)].push_back(ExpertKey::from_index(u, config.num_experts));
    manifest = write_expert_cache(*model, groups, storage, dir.path());
  }

  // Budgets as fractions of all routed experts' bytes (as stored).
  OffloadConfig offload(double compute_fraction = 0.25, double ram_fraction = 0.5, MissPolicy policy = MissPolicy::wait) const {
    OffloadConfig c;
    c.cache_dir = dir.path();
    const double total = static_cast<double>(manifest.total_expert_bytes());
    c.compute_budget_bytes = static_cast<int64_t>(compute_fraction * total);
    c.ram_budget_bytes = static_cast<int64_t>(ram_fraction * total);
    c.miss_policy = policy;
    c.io_threads = 2;
    return c;
  }

  std::string cluster_path(size_t cluster) const { return dir.file(manifest.clusters.at(cluster).file); }

  TempDir dir;
  ModelConfig config;
  ChronosForCausalLM model{nullptr};
  ClusterManifest manifest;
};

}  // namespace chronos::testing
