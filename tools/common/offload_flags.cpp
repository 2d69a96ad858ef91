#include "common/flag_checks.h"
#include "common/offload_flags.h"

#include <unistd.h>

#include <cmath>
#include <iomanip>
#include <sstream>
#include <utility>

#include "chronos/core/error.h"
#include "common/environment.h"

namespace chronos::tools {

void add_offload_flags(CLI::App& app, OffloadFlags& flags, bool with_cache_flag) {
  if (with_cache_flag)
    app.add_option("--offload", flags.cache_dir, "Serve routed experts from this expert cache (chronos-pack's output) instead of RAM");
  app.add_option("--ram-budget", flags.ram_budget, "Host RAM for staged experts: bytes with K/M/G, or a percentage of the routed experts")
      ->capture_default_str();
  app.add_option("--compute-budget", flags.compute_budget, "Compute-tier memory for experts in use: bytes with K/M/G, or a percentage")
      ->capture_default_str();
  app.add_option("--miss-policy", flags.miss_policy, "wait (exact: load missing experts) or fallback (shared expert stands in)")
      ->capture_default_str();
  app.add_option("--io-threads", flags.io_threads, "SSD reader threads")->capture_default_str()->check(tools::number_in(1, 64, "in [1, 64]"));
  app.add_option("--ssd-ms", flags.ssd_ms, "Simulated SSD latency per read in ms (tests, benchmarks; CHRONOS_SIM_SSD_MS)")
      ->capture_default_str()->check(tools::non_negative());
  app.add_option("--ssd-mbps", flags.ssd_mbps, "Simulated SSD bandwidth cap in MB/s, 0 = none (CHRONOS_SIM_SSD_MBPS)")
      ->capture_default_str()->check(tools::non_negative());
  app.add_option("--verify", flags.verify, "Open-time check of the cache files: size or checksum (reads every byte once)")
      ->capture_default_str();
  app.add_option("--prefetch-eviction", flags.prefetch_eviction,
                 "deadline (a prefetch may evict a predicted expert due later than its own) or protect (never a predicted one)")
      ->capture_default_str();
  app.add_option("--pcie-gbps", flags.pcie_gbps,
                 "Copy experts from RAM to separate compute slots over a simulated link of this many GB/s (stands in for PCIe; "
                 "turns zero copy off), 0 = serve RAM slots directly")
      ->capture_default_str()->check(tools::non_negative());
  app.add_option("--pcie-ms", flags.pcie_ms, "Latency per copy of that simulated link in ms (also turns zero copy off)")
      ->capture_default_str()->check(tools::non_negative());
}

namespace {

double mib(double bytes) { return std::round(bytes / 1048576.0 * 10) / 10; }

// A budget beyond what the cache can use, or beyond the machine, is a mistake (a unit typo, a
// flag meant for another machine): refuse it rather than reserve memory that cannot be had.
void check_budgets(const OffloadConfig& config, const ClusterManifest& manifest, int64_t compute_total) {
  const double units = static_cast<double>(manifest.num_layers * manifest.num_experts);
  const double host_total = units * static_cast<double>(manifest.clusters.front().experts.front().read_length());
  if (static_cast<double>(config.ram_budget_bytes) > host_total)
    throw InvalidArgument(cat("--ram-budget ", mib(config.ram_budget_bytes), " MiB is more than the ", mib(host_total),
                              " MiB that every expert of the cache takes in RAM (100% holds them all)"));
  if (config.compute_budget_bytes > compute_total)
    throw InvalidArgument(cat("--compute-budget ", mib(config.compute_budget_bytes), " MiB is more than the ", mib(compute_total),
                              " MiB that every expert takes in the compute tier (100% holds them all)"));
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  const double memory = static_cast<double>(pages) * static_cast<double>(page);
  if (pages > 0 && page > 0 && static_cast<double>(config.ram_budget_bytes) > memory)
    throw InvalidArgument(cat("--ram-budget ", mib(config.ram_budget_bytes), " MiB is more than this machine's ", mib(memory), " MiB of memory"));
}

}  // namespace

std::unique_ptr<ExpertStore> open_expert_store(const OffloadFlags& flags, const std::string& cache_dir, const std::string& model_dir,
                                               const ModelConfig& model, const Runtime& runtime) {
  ClusterManifest manifest = read_cluster_manifest(cache_dir);
  OffloadConfig config;
  config.cache_dir = cache_dir;
  config.model_dir = model_dir;
  config.ram_budget_bytes = parse_byte_size(flags.ram_budget, static_cast<int64_t>(manifest.total_expert_bytes()), "--ram-budget");
  const int64_t compute_total =
      static_cast<int64_t>(manifest.compute_expert_bytes(runtime.dtype)) * manifest.num_layers * manifest.num_experts;
  config.compute_budget_bytes = parse_byte_size(flags.compute_budget, compute_total, "--compute-budget");
  check_budgets(config, manifest, compute_total);
  config.miss_policy = parse_miss_policy(flags.miss_policy);
  config.io_threads = flags.io_threads;
  config.throttle = ssd_throttle_from_env({flags.ssd_ms, flags.ssd_mbps});
  if (flags.verify == "size") {
    config.verify = VerifyLevel::size;
  } else if (flags.verify != "checksum") {
    throw InvalidArgument(cat("--verify: expected size or checksum (got \"", flags.verify, "\")"));
  }
  config.prefetch_eviction = parse_prefetch_eviction(flags.prefetch_eviction);
  config.device = runtime.device;
  config.compute_dtype = runtime.dtype;
  std::unique_ptr<TransferEngine> engine;
  if (flags.pcie_gbps > 0 || flags.pcie_ms > 0) {
    if (!runtime.device.is_cpu()) throw InvalidArgument("--pcie-gbps / --pcie-ms simulate a link on the CPU; drop them on a GPU");
    config.zero_copy = false;
    engine = make_transfer_engine(runtime.device, TransferThrottle{flags.pcie_ms, flags.pcie_gbps});
  }
  return std::make_unique<ExpertStore>(config, model, std::move(manifest), std::move(engine));  // checks it against the model
}

std::string describe_store(const ExpertStore& store) {
  const OffloadConfig& c = store.config();
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << "expert store " << c.cache_dir << ": RAM " << c.ram_budget_bytes / 1048576.0 << " MiB ("
      << store.ram_slots() << " slots), compute " << c.compute_budget_bytes / 1048576.0 << " MiB (" << store.compute_slots()
      << " slots) of " << store.manifest().total_expert_bytes() / 1048576.0 << " MiB of routed experts, miss policy "
      << to_string(c.miss_policy) << (store.direct_io() ? ", O_DIRECT" : ", buffered reads");
  if (c.throttle.enabled()) out << ", simulated SSD " << c.throttle.latency_ms << " ms + " << c.throttle.mbps << " MB/s";
  if (!store.zero_copy()) out << ", copies to compute slots";
  if (c.prefetch_eviction == PrefetchEviction::protect) out << ", prefetches never evict predicted experts";
  return out.str();
}

}  // namespace chronos::tools
