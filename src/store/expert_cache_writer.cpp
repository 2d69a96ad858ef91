#include "chronos/store/expert_cache_writer.h"

#include <algorithm>
#include <filesystem>

#include "chronos/core/error.h"
#include "chronos/io/atomic_file.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/decoder_layer.h"
#include "chronos/model/moe.h"
#include "chronos/store/cluster_file.h"
#include "model/row_groups.h"

namespace chronos {

ClusterManifest write_expert_cache(ChronosForCausalLMImpl& model, const ExpertClusters& clusters, const ExpertStorage& storage,
                                   const std::string& dir, const PackProgress& progress, const std::string& model_fingerprint) {
  for (int64_t l = 0; l < model.config().num_hidden_layers; ++l)
    if (!model.layer(l).moe) throw InvalidArgument(cat("write_expert_cache: layer ", l, " has no routed experts (use_moe is off)"));
  const ExpertReader read = [&](ExpertKey key) { return model.layer(key.layer).moe->expert_weights(key.expert); };
  return write_expert_cache(model.config(), read, clusters, storage, dir, progress, model_fingerprint);
}

ClusterManifest write_expert_cache(const ModelConfig& config, const ExpertReader& read, const ExpertClusters& clusters,
                                   const ExpertStorage& storage, const std::string& dir, const PackProgress& progress,
                                   const std::string& model_fingerprint) {
  if (!config.use_moe) throw InvalidArgument("write_expert_cache: the model has no routed experts (use_moe is off)");
  const int64_t L = config.num_hidden_layers, E = config.num_experts;
  std::vector<int> seen(static_cast<size_t>(L * E), 0);
  for (const auto& cluster : clusters) {
    if (cluster.empty()) throw InvalidArgument("write_expert_cache: a cluster is empty");
    for (ExpertKey key : cluster) {
      if (key.layer < 0 || key.layer >= L || key.expert < 0 || key.expert >= E)
        throw InvalidArgument(cat("write_expert_cache: expert ", key.name(), " is outside the model (", L, " layers, ", E, " experts)"));
      if (seen[static_cast<size_t>(key.index(E))]++) throw InvalidArgument(cat("write_expert_cache: expert ", key.name(), " is in two clusters"));
    }
  }
  for (int64_t u = 0; u < L * E; ++u)
    if (!seen[static_cast<size_t>(u)])
      throw InvalidArgument(cat("write_expert_cache: expert ", ExpertKey::from_index(u, E).name(), " is in no cluster"));

  make_directories(dir);
  // An older manifest would describe files about to be replaced: drop it first.
  std::error_code ignored;
  std::filesystem::remove(std::filesystem::path(dir) / "cluster_manifest.json", ignored);
  ClusterManifest manifest;
  manifest.num_layers = L;
  manifest.num_experts = E;
  manifest.hidden_size = config.hidden_size;
  manifest.moe_intermediate_size = config.resolved_moe_intermediate_size();
  manifest.storage = storage;
  // Row groups where both matrices' rows allow.
  manifest.storage.row_groups =
      storage.row_groups && storage.is_quantized() && manifest.hidden_size % kGroupRows == 0 && manifest.moe_intermediate_size % kGroupRows == 0;
  manifest.model_fingerprint = model_fingerprint;
  for (size_t c = 0; c < clusters.size(); ++c) {
    std::vector<std::pair<ExpertKey, ExpertWeights>> members;
    for (ExpertKey key : clusters[c]) members.emplace_back(key, read(key));
    const int64_t id = static_cast<int64_t>(c);
    manifest.clusters.push_back(write_cluster_file(dir, cluster_file_name(id), id, members, manifest.storage));
    if (progress) progress(c + 1, clusters.size());
  }
  write_cluster_manifest(manifest, dir);
  // Cluster files of an earlier, larger packing are no longer referenced.
  for (const auto& entry : std::filesystem::directory_iterator(dir, ignored)) {
    const std::string name = entry.path().filename().string();
    const bool listed = std::any_of(manifest.clusters.begin(), manifest.clusters.end(), [&](const ClusterFile& f) { return f.file == name; });
    if (!listed && name.rfind("cluster_", 0) == 0 && entry.path().extension() == ".ctsr") std::filesystem::remove(entry.path(), ignored);
  }
  return manifest;
}

}  // namespace chronos
