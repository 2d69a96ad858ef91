// Writing a whole expert cache folder from a model and a partition of its routed experts:
// one cluster file per group, then the manifest last, so an interrupted write never leaves a
// folder that opens as a valid cache.
#pragma once

#include <c10/core/ScalarType.h>

#include <functional>
#include <string>
#include <vector>

#include "chronos/model/feed_forward.h"
#include "chronos/store/cluster_manifest.h"

namespace chronos {

class ChronosForCausalLMImpl;
struct ModelConfig;

// Clusters of (layer, expert) keys; together they must hold every routed expert exactly once.
using ExpertClusters = std::vector<std::vector<ExpertKey>>;

// Called after each cluster file with (files written, files in all).
using PackProgress = std::function<void(size_t done, size_t total)>;

// One routed expert's weights, wherever they come from: a model in memory, a checkpoint streamed
// from disk. Read when its cluster file is written, dropped after.
using ExpertReader = std::function<ExpertWeights(ExpertKey key)>;

// Writes dir/cluster_NNN.ctsr for each cluster (members in the given order, ids 0..n-1) and then
// dir/cluster_manifest.json; creates dir. Throws InvalidArgument when the clusters are not a
// partition of the model's routed experts. `model_fingerprint` (expert_weights_fingerprint of the
// checkpoint the model was loaded from) goes into the manifest. Returns the manifest written.
ClusterManifest write_expert_cache(ChronosForCausalLMImpl& model, const ExpertClusters& clusters, const ExpertStorage& storage,
                                   const std::string& dir, const PackProgress& progress = {},
                                   const std::string& model_fingerprint = {});

// The same with the experts of a model of `config` from `read`: only one cluster's members are in
// memory at a time.
ClusterManifest write_expert_cache(const ModelConfig& config, const ExpertReader& read, const ExpertClusters& clusters,
                                   const ExpertStorage& storage, const std::string& dir, const PackProgress& progress = {},
                                   const std::string& model_fingerprint = {});

}  // namespace chronos
