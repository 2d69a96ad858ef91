// The expert cache on disk (docs/formats.md "Expert cache"): a folder of cluster files
// `cluster_NNN.ctsr` (plain safetensors, one per co-activation cluster) and `cluster_manifest.json`,
// which says where every (layer, expert) lives: its file, its byte range and the checksums that
// let the store reject a damaged cache at open time. Ranges are 4 KiB aligned and padded so that
// one O_DIRECT pread brings one expert, or one preadv a run of a cluster's experts.
#pragma once

#include <c10/core/ScalarType.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "chronos/store/expert_key.h"
#include "chronos/store/expert_storage.h"

namespace chronos {

struct ModelConfig;

// Alignment of every expert range and of the data section (O_DIRECT's block size on our disks).
constexpr uint64_t kExpertAlignment = 4096;

// Where one expert's gate|up|down weights sit inside its cluster file.
struct ExpertRange {
  ExpertKey key;
  uint64_t offset = 0;    // absolute file offset of gate_proj, a multiple of kExpertAlignment
  uint64_t length = 0;    // bytes of gate|up|down together (ExpertStorage::expert_bytes)
  uint64_t checksum = 0;  // XXH3-64 of those `length` bytes
  // Bytes an aligned read covers: length rounded up to kExpertAlignment (the padding is in the file).
  uint64_t read_length() const { return (length + kExpertAlignment - 1) / kExpertAlignment * kExpertAlignment; }
};

struct ClusterFile {
  int64_t cluster_id = 0;
  std::string file;                  // name inside the cache folder, e.g. "cluster_007.ctsr"
  uint64_t size_bytes = 0;           // whole file size
  uint64_t checksum = 0;             // XXH3-64 of the whole file
  std::vector<ExpertRange> experts;  // members in file order (ascending offsets, contiguous)
};

struct ClusterManifest {
  int64_t version = 2;                  // 2: keyed by (layer, expert) with byte ranges (1 was the reference's)
  int64_t num_layers = 0;               // L
  int64_t num_experts = 0;              // E routed experts per layer
  int64_t hidden_size = 0;              // H
  int64_t moe_intermediate_size = 0;    // I
  ExpertStorage storage;                // how every expert weight is stored (fp32/fp16/bf16, int8/int4 blocks)
  std::vector<ClusterFile> clusters;    // sorted by cluster_id
  // expert_weights_fingerprint of the checkpoint packed; empty in caches packed before it existed.
  std::string model_fingerprint;

  // Bytes of one expert's three weights as stored.
  uint64_t expert_bytes() const;
  // Sum of expert_bytes() over all L * E experts: what percentages of budgets refer to.
  uint64_t total_expert_bytes() const { return expert_bytes() * static_cast<uint64_t>(num_layers * num_experts); }
  // Bytes of one expert in the compute tier: quantized experts are computed from their stored bytes,
  // float ones are held in `compute_dtype`.
  uint64_t compute_expert_bytes(c10::ScalarType compute_dtype) const;
};

// Reads and checks dir/cluster_manifest.json: every field present and typed, every (layer, expert)
// in exactly one cluster, ranges aligned, inside their file and not overlapping. Throws FormatError
// naming the manifest and the field at fault, IoError when it is missing.
ClusterManifest read_cluster_manifest(const std::string& dir);
// The same checks on a parsed manifest; `path` names it in messages.
ClusterManifest parse_cluster_manifest(const nlohmann::json& manifest, const std::string& path);

// Writes dir/cluster_manifest.json atomically (with the reference's fields: version, num_experts,
// num_layers, storage_format, clusters and expert_to_cluster, plus ranges and checksums).
void write_cluster_manifest(const ClusterManifest& manifest, const std::string& dir);

// Throws ConfigError when the manifest does not describe this model's routed experts
// (layers, experts, hidden and intermediate sizes), naming the manifest and the mismatch.
void check_manifest_matches(const ClusterManifest& manifest, const ModelConfig& config, const std::string& dir);

// Throws ConfigError when the manifest's model_fingerprint is not `model_fingerprint` (the cache was
// packed from another checkpoint of the same shapes). A manifest without one is accepted with a
// warning (packed before fingerprints existed).
void check_manifest_fingerprint(const ClusterManifest& manifest, const std::string& model_fingerprint, const std::string& dir);

enum class VerifyLevel {
  size,      // each file exists with the recorded size and a header that matches the manifest's ranges
  checksum,  // and the whole-file checksum matches (reads every byte once)
};

// Checks the cluster files against the manifest; throws FormatError/IoError naming the file.
void verify_cluster_files(const ClusterManifest& manifest, const std::string& dir, VerifyLevel level);

// Locates every expert: entry [layer * E + expert] is {cluster index in manifest.clusters, member index}.
struct ExpertLocation {
  int32_t cluster = -1;
  int32_t member = -1;
};
std::vector<ExpertLocation> index_experts(const ClusterManifest& manifest);

}  // namespace chronos
