// libFuzzer target: any byte string given as cluster_manifest.json must either give a manifest
// whose every expert has one location inside the layer x expert grid, with ranges inside their
// files, or raise a chronos::Error. Nothing else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"
#include "chronos/store/cluster_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chronos::ClusterManifest manifest;
  try {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    manifest = chronos::parse_cluster_manifest(chronos::parse_json(text, "cluster_manifest.json"), "cluster_manifest.json");
  } catch (const chronos::Error&) {
    return 0;
  }
  const std::vector<chronos::ExpertLocation> where = chronos::index_experts(manifest);
  if (static_cast<int64_t>(where.size()) != manifest.num_layers * manifest.num_experts) std::abort();
  for (const chronos::ExpertLocation& at : where) {
    if (at.cluster < 0 || static_cast<size_t>(at.cluster) >= manifest.clusters.size()) std::abort();
    const chronos::ClusterFile& file = manifest.clusters[static_cast<size_t>(at.cluster)];
    if (at.member < 0 || static_cast<size_t>(at.member) >= file.experts.size()) std::abort();
    const chronos::ExpertRange& range = file.experts[static_cast<size_t>(at.member)];
    if (range.offset + range.read_length() > file.size_bytes || range.length != manifest.expert_bytes()) std::abort();
  }
  return 0;
}
