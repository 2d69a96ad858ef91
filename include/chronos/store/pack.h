// Packing a model's routed experts into an expert cache (chronos-pack, docs/offload.md "Packing the
// expert cache"): co-activation graph of a routing trace -> seeded Louvain clusters capped in bytes ->
// one cluster file per cluster, cluster_build_summary.json, and cluster_manifest.json last.
#pragma once

#include <c10/core/ScalarType.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "chronos/store/cluster_manifest.h"
#include "chronos/store/clustering.h"
#include "chronos/store/expert_cache_writer.h"
#include "chronos/store/routing_trace.h"

namespace chronos {

struct ModelConfig;

struct PackOptions {
  std::string out_dir;                     // the cache folder: new, empty, or holding an earlier cache (replaced)
  uint64_t seed = 0;                       // Louvain seed
  uint64_t cluster_bytes = 64ull << 20;    // most expert bytes per cluster file (members x 4 KiB-aligned expert size)
  ExpertStorage storage;                   // how the weights are stored: fp32, fp16, bf16, int8 or int4
  int64_t window = 4;                      // adjacent tokens paired at each layer (CoactivationOptions::window)
  double resolution = 1.0;                 // Louvain resolution
  std::string model_fingerprint;           // expert_weights_fingerprint of the model's folder, for the manifest

  // Throws ConfigError naming the field (empty out_dir, cluster_bytes 0, window < 0, resolution <= 0,
  // a storage dtype that is not fp32/fp16/bf16).
  void validate() const;
};

// Bytes one expert occupies in a cluster file: gate|up|down as stored, rounded up to kExpertAlignment.
uint64_t packed_expert_bytes(const ModelConfig& config, const ExpertStorage& storage);

// Throws ConfigError when options.cluster_bytes cannot hold one expert of this model as options.storage says.
void check_cluster_budget(const PackOptions& options, const ModelConfig& config);

// Throws IoError when `dir` exists and is not a folder, or holds anything other than an expert cache
// (cluster_manifest.json, cluster_build_summary.json, cluster_NNN.ctsr and their temporary files),
// so that packing never deletes unrelated files.
void check_pack_folder(const std::string& dir);

// The dtype a model directory stores its routed expert weights in (layer 0, expert 0 of
// model.safetensors or of the file model.safetensors.index.json names): IoError / FormatError
// naming the file when there is none.
c10::ScalarType stored_expert_dtype(const std::string& model_dir);

struct PackResult {
  ClusterManifest manifest;  // as written
  Clustering clustering;
  nlohmann::json summary;    // the contents of cluster_build_summary.json
};

// Clusters the trace's co-activation graph and writes the cache into options.out_dir: the earlier
// manifest is removed first, then the summary and cluster files are written, the manifest last
// (atomically), so an interrupted run never leaves a folder that opens as a valid cache. `progress`
// is called after each cluster file. Throws ConfigError (options, budget), InvalidArgument (a trace
// for another model shape) or IoError.
PackResult pack_expert_cache(ChronosForCausalLMImpl& model, const RoutingTrace& trace, const PackOptions& options,
                             const PackProgress& progress = {});

// The same for a model of `config` whose experts come from `read` (one cluster in memory at a time).
PackResult pack_expert_cache(const ModelConfig& config, const ExpertReader& read, const RoutingTrace& trace, const PackOptions& options,
                             const PackProgress& progress = {});

}  // namespace chronos
