// The offload flags of chronos-generate and chronos-bench: where the expert cache is, the two
// budgets, the miss policy, I/O threads, the SSD throttle, the prefetch eviction rule and a
// simulated host-to-device link; turned into an open ExpertStore.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "chronos/store/expert_store.h"
#include "common/runtime_flags.h"

namespace chronos::tools {

struct OffloadFlags {
  std::string cache_dir;              // --offload; empty: all experts resident
  std::string ram_budget = "50%";     // --ram-budget
  std::string compute_budget = "25%"; // --compute-budget
  std::string miss_policy = "wait";   // --miss-policy
  int io_threads = 4;                 // --io-threads
  double ssd_ms = 0;                  // --ssd-ms (CHRONOS_SIM_SSD_MS overrides when set)
  double ssd_mbps = 0;                // --ssd-mbps (CHRONOS_SIM_SSD_MBPS overrides when set)
  std::string verify = "checksum";    // --verify size|checksum
  std::string prefetch_eviction = "deadline";  // --prefetch-eviction deadline|protect
  double pcie_gbps = 0;               // --pcie-gbps: copy to compute slots over a simulated link (zero copy off)
  double pcie_ms = 0;                 // --pcie-ms: its latency per copy
};

// Adds the flags; `with_cache_flag` adds --offload itself (a tool may locate the cache otherwise).
void add_offload_flags(CLI::App& app, OffloadFlags& flags, bool with_cache_flag = true);

// Resolves the budgets (percentages of the routed experts' bytes: the cache's bytes for RAM, the
// compute dtype's for the compute tier) and opens the store over `cache_dir`, checking that the
// cache was packed from the checkpoint in `model_dir`.
std::unique_ptr<ExpertStore> open_expert_store(const OffloadFlags& flags, const std::string& cache_dir, const std::string& model_dir,
                                               const ModelConfig& model, const Runtime& runtime);

// One line: budgets in MiB and slots, the miss policy, the throttle.
std::string describe_store(const ExpertStore& store);

}  // namespace chronos::tools
