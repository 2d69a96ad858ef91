// Packing the expert cache of a checkpoint whose routed experts are larger than memory
// (chronos-pack --ram-budget; docs/offload.md "Packing in bounded memory"). Never more than the
// budget of routed experts is in memory at once:
//  1. the experts stream from the checkpoint files (read one at a time, dropped after) into a
//     layer-ordered cache in the output folder, one cluster file's members in memory at a time;
//  2. the routing of the calibration sequences is traced by running the model offloaded from that
//     cache: the dense weights load, the expert store holds at most the budget (3/4 in its RAM
//     tier, 1/4 in its compute tier), waiting for every miss so the routing is exact;
//  3. the trace is clustered (Louvain, as pack_expert_cache) and the folder rewritten with the
//     experts streamed from the checkpoint again; an interrupted run leaves the layer-ordered
//     cache, which is itself a valid cache, or no manifest at all.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chronos/store/pack.h"
#include "chronos/store/routing_trace.h"

namespace chronos {

struct BoundedPackOptions {
  int64_t ram_budget_bytes = 0;  // most bytes of routed experts in memory at once (> 0)
  int io_threads = 2;            // the expert store's readers while tracing
  RoutingOptions routing;        // batch size of the traced forward passes (its expert_source is set here)
};

// Called with the stage ("staged", "routed", "wrote"), the work done and in all, and its unit.
using BoundedPackProgress = std::function<void(const char* stage, int64_t done, int64_t total, const char* unit)>;

// Packs the routed experts of the model directory `model_dir` into options.out_dir. Throws
// ConfigError when the budget cannot hold the store's minimum (four experts as stored and in
// float32), and what load_pretrained, record_routing and pack_expert_cache throw.
PackResult pack_checkpoint(const std::string& model_dir, const std::vector<std::vector<int64_t>>& sequences,
                           const PackOptions& options, const BoundedPackOptions& bounded, const BoundedPackProgress& progress = {});

}  // namespace chronos
