// Writing one cluster file (`cluster_NNN.ctsr`): a plain safetensors file whose header is padded so
// the data starts on a 4 KiB boundary, with the members' weights in the given order, each member's
// gate_proj|up_proj|down_proj contiguous and padded to 4 KiB by a U8 tensor named `pad_<n>` (readers
// keyed on `l<layer>_e<expert>__` ignore it, and the data section stays fully indexed as
// safetensors requires). Tensor keys: `l{layer}_e{expert}__{gate_proj,up_proj,down_proj}.weight`.
#pragma once

#include <c10/core/ScalarType.h>

#include <string>
#include <utility>
#include <vector>

#include "chronos/model/feed_forward.h"
#include "chronos/store/cluster_manifest.h"

namespace chronos {

// The tensor key of one weight of one expert, e.g. "l3_e12__down_proj.weight".
std::string expert_tensor_name(ExpertKey key, const char* param);

// Writes dir/file atomically with the members' weights stored as `storage` says (cast to its dtype,
// or quantized into uint8 [rows, quantized row bytes] tensors; contiguous CPU copies are made as
// needed) and returns its manifest entry: size, whole-file checksum and each member's
// range and checksum. All members must have the same shapes.
ClusterFile write_cluster_file(const std::string& dir, const std::string& file, int64_t cluster_id,
                               const std::vector<std::pair<ExpertKey, ExpertWeights>>& members, const ExpertStorage& storage);

// "cluster_007.ctsr" for cluster 7 (three digits at least, plain decimal beyond).
std::string cluster_file_name(int64_t cluster_id);

}  // namespace chronos
