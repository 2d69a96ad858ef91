// chronos-bench io: the expert store's SSD read throughput against `dd iflag=direct bs=4M` on the
// same cluster file, alternating the two in one run. The file is a synthetic expert cache of one
// cluster (random fp16 experts of the given shape) written first, so nothing depends on a model.
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "chronos-bench/bench_common.h"
#include "chronos-bench/modes.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/core/timing.h"
#include "chronos/io/atomic_file.h"
#include "chronos/store/cluster_file.h"
#include "chronos/store/expert_store.h"
#include "chronos/store/offload_config.h"
#include "common/environment.h"
#include "common/flag_checks.h"

namespace fs = std::filesystem;

namespace chronos::bench {
namespace {

struct IoFlags {
  std::string dir = "chronos-bench-io";
  std::string size = "1G";
  int64_t hidden = 1024;
  int64_t intermediate = 1024;
  int io_threads = 4;
  int repeat = 3;
  bool keep = false;
  bool json = false;
  std::string log_level;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Writes one cluster file with `count` experts (layer 0, experts 0..count-1) and its manifest.
ClusterManifest write_bench_cache(const IoFlags& flags, int64_t count) {
  make_directories(flags.dir);
  at::manual_seed(0);
  const auto rand = [&](int64_t rows, int64_t cols) { return at::randn({rows, cols}).to(at::kHalf); };
  const ExpertWeights w{rand(flags.intermediate, flags.hidden), rand(flags.intermediate, flags.hidden), rand(flags.hidden, flags.intermediate)};
  std::vector<std::pair<ExpertKey, ExpertWeights>> members;
  for (int64_t e = 0; e < count; ++e) members.emplace_back(ExpertKey{0, static_cast<int32_t>(e)}, w);
  ClusterManifest manifest;
  manifest.num_layers = 1;
  manifest.num_experts = count;
  manifest.hidden_size = flags.hidden;
  manifest.moe_intermediate_size = flags.intermediate;
  manifest.storage = ExpertStorage::dense(at::kHalf);
  manifest.clusters.push_back(write_cluster_file(flags.dir, cluster_file_name(0), 0, members, manifest.storage));
  write_cluster_manifest(manifest, flags.dir);
  return manifest;
}

// Reads every expert of the cache into RAM through the store's prefetch path; returns bytes/s.
double store_bytes_per_second(const IoFlags& flags, const ClusterManifest& manifest, bool whole_cluster, bool& direct) {
  OffloadConfig config;
  config.cache_dir = flags.dir;
  config.ram_budget_bytes = static_cast<int64_t>(manifest.clusters[0].size_bytes);
  config.compute_budget_bytes = static_cast<int64_t>(3 * flags.hidden * flags.intermediate * 4);
  config.io_threads = flags.io_threads;
  config.verify = VerifyLevel::size;
  ModelConfig model;
  model.num_hidden_layers = 1;
  model.num_experts = manifest.num_experts;
  model.hidden_size = flags.hidden;
  model.moe_intermediate_size = flags.intermediate;
  ExpertStore store(config, model);
  direct = store.direct_io();
  std::vector<PrefetchRequest> requests;
  for (int64_t e = 0; e < manifest.num_experts; ++e)
    requests.push_back({ExpertKey{0, static_cast<int32_t>(e)}, 0, 1.0f, Tier::ram, whole_cluster});
  if (whole_cluster) requests.resize(1);  // one request brings the whole cluster
  Stopwatch watch;
  store.prefetch(requests);
  if (!store.wait_idle(600)) throw Error("the store did not finish reading within 600 s");
  const double seconds = watch.seconds();
  const StoreStats stats = store.stats();
  if (stats.io_errors > 0) throw IoError(cat(flags.dir, ": ", stats.io_errors, " read errors"));
  if (stats.ssd_bytes < static_cast<int64_t>(manifest.num_experts * manifest.expert_bytes()))
    throw Error(cat("the store read ", stats.ssd_bytes, " bytes, fewer than the cache holds"));
  return static_cast<double>(stats.ssd_bytes) / seconds;
}

int run_io(const IoFlags& flags) {
  tools::apply_log_level_from_env();
  if (!flags.log_level.empty()) log::set_level(log::parse_level(flags.log_level));
  if (fs::exists(flags.dir)) throw InvalidArgument(cat("--dir ", flags.dir, " exists; give a new folder (the bench creates and removes it)"));
  const int64_t target = parse_byte_size(flags.size, 0, "--size");
  const uint64_t expert_bytes = 3 * static_cast<uint64_t>(flags.hidden * flags.intermediate) * 2;
  const uint64_t read_bytes = (expert_bytes + kExpertAlignment - 1) / kExpertAlignment * kExpertAlignment;
  const int64_t count = std::max<int64_t>(1, (target + static_cast<int64_t>(read_bytes) - 1) / static_cast<int64_t>(read_bytes));
  if (!flags.json)
    std::cerr << "writing " << count << " experts of " << expert_bytes / 1048576.0 << " MiB into " << flags.dir << "/"
              << cluster_file_name(0) << std::endl;
  // The synthetic cache goes away on every exit, errors included, unless --keep.
  const std::unique_ptr<const IoFlags, std::function<void(const IoFlags*)>> cleanup(&flags, [](const IoFlags* f) {
    std::error_code ignored;
    if (!f->keep) fs::remove_all(f->dir, ignored);
  });
  const ClusterManifest manifest = write_bench_cache(flags, count);
  const std::string file = flags.dir + "/" + manifest.clusters[0].file;

  std::vector<double> dd, store, cluster;
  bool direct = false;
  for (int i = 0; i < flags.repeat; ++i) {
    dd.push_back(dd_bytes_per_second(file));
    store.push_back(store_bytes_per_second(flags, manifest, /*whole_cluster=*/false, direct));
    cluster.push_back(store_bytes_per_second(flags, manifest, /*whole_cluster=*/true, direct));
    if (!flags.json)
      std::cerr << "pass " << i + 1 << "/" << flags.repeat << ": dd " << dd.back() / 1e6 << " MB/s, store per expert " << store.back() / 1e6
                << " MB/s, store whole cluster " << cluster.back() / 1e6 << " MB/s" << std::endl;
  }

  const double dd_mbps = median(dd) / 1e6, store_mbps = median(store) / 1e6, cluster_mbps = median(cluster) / 1e6;
  const nlohmann::json out = {{"file_bytes", manifest.clusters[0].size_bytes},
                              {"expert_bytes", expert_bytes},
                              {"experts", count},
                              {"io_threads", flags.io_threads},
                              {"direct_io", direct},
                              {"repeat", flags.repeat},
                              {"dd_mb_per_s", dd_mbps},
                              {"store_mb_per_s", store_mbps},
                              {"store_cluster_mb_per_s", cluster_mbps},
                              {"ratio_to_dd", store_mbps / dd_mbps},
                              {"cluster_ratio_to_dd", cluster_mbps / dd_mbps}};
  if (flags.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << std::fixed << std::setprecision(0) << "file " << manifest.clusters[0].size_bytes / 1048576.0 << " MiB, " << count
              << " experts of " << std::setprecision(2) << expert_bytes / 1048576.0 << " MiB, " << flags.io_threads << " I/O threads"
              << (direct ? ", O_DIRECT" : ", buffered") << "; medians of " << flags.repeat << " passes\n"
              << std::setprecision(0) << "  dd iflag=direct bs=4M   " << dd_mbps << " MB/s\n"
              << "  store, per expert       " << store_mbps << " MB/s  (" << std::setprecision(2) << store_mbps / dd_mbps << "x dd)\n"
              << std::setprecision(0) << "  store, whole cluster    " << cluster_mbps << " MB/s  (" << std::setprecision(2)
              << cluster_mbps / dd_mbps << "x dd)" << std::endl;
  }
  return 0;
}

}  // namespace

tools::Subcommand add_io_mode(CLI::App& app) {
  auto flags = std::make_shared<IoFlags>();
  CLI::App* cmd = app.add_subcommand("io", "Expert store SSD reads vs dd iflag=direct on one cluster file");
  cmd->add_option("--dir", flags->dir, "New folder for the synthetic cluster file, on the disk to measure (removed unless --keep)")
      ->capture_default_str();
  cmd->add_option("--size", flags->size, "Size of the cluster file (K/M/G suffixes)")->capture_default_str();
  cmd->add_option("--hidden", flags->hidden, "Expert hidden size H")->capture_default_str()->check(tools::positive());
  cmd->add_option("--intermediate", flags->intermediate, "Expert intermediate size I")->capture_default_str()->check(tools::positive());
  cmd->add_option("--io-threads", flags->io_threads, "Store reader threads")->capture_default_str()->check(tools::number_in(1, 64, "in [1, 64]"));
  cmd->add_option("--repeat", flags->repeat, "Passes of each reader")->capture_default_str()->check(tools::positive());
  cmd->add_flag("--keep", flags->keep, "Keep the cluster file");
  cmd->add_flag("--json", flags->json, "Print one JSON object");
  cmd->add_option("--log-level", flags->log_level, "trace, debug, info, warn, error or off");
  return {cmd, [flags] { return run_io(*flags); }};
}

}  // namespace chronos::bench
