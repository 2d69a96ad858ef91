#include "chronos/store/pack.h"

#include <c10/core/ScalarType.h>

#include <cmath>
#include <filesystem>
#include <regex>

#include "chronos/core/dtype.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/core/timing.h"
#include "chronos/io/atomic_file.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/model/causal_lm.h"
#include "chronos/store/coactivation.h"
#include "model/checkpoint_layout.h"
#include "model/checkpoint_tensors.h"

namespace fs = std::filesystem;

namespace chronos {
namespace {

constexpr const char* kManifest = "cluster_manifest.json";
constexpr const char* kSummary = "cluster_build_summary.json";

// Names an expert cache folder may hold: its files and the temporaries of their atomic writes.
bool is_cache_file(const std::string& name) {
  static const std::regex cache(R"((cluster_manifest\.json|cluster_build_summary\.json|cluster_[0-9]+\.ctsr))");
  static const std::regex temporary(R"(\.(cluster_manifest\.json|cluster_build_summary\.json|cluster_[0-9]+\.ctsr)\.tmp\.[0-9a-f]+)");
  return std::regex_match(name, cache) || std::regex_match(name, temporary);
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? cat(bytes, " B") : cat(std::round(value * 10) / 10, " ", units[unit]);
}

}  // namespace

void PackOptions::validate() const {
  if (out_dir.empty()) throw ConfigError("pack.out_dir must name a folder (got an empty path)");
  if (cluster_bytes == 0) throw ConfigError("pack.cluster_bytes must be > 0 (got 0)");
  if (window < 0) throw ConfigError(cat("pack.window must be >= 0 (got ", window, ")"));
  if (!(resolution > 0) || !std::isfinite(resolution)) throw ConfigError(cat("pack.resolution must be > 0 (got ", resolution, ")"));
  if (!storage.is_quantized() && storage.dtype != c10::kFloat && storage.dtype != c10::kHalf && storage.dtype != c10::kBFloat16)
    throw ConfigError(cat("pack.storage must be fp32, fp16, bf16, int8 or int4 (got ", dtype_name(storage.dtype), ")"));
}

uint64_t packed_expert_bytes(const ModelConfig& config, const ExpertStorage& storage) {
  ExpertRange range;
  range.length = storage.expert_bytes(config.hidden_size, config.resolved_moe_intermediate_size());
  return range.read_length();
}

void check_cluster_budget(const PackOptions& options, const ModelConfig& config) {
  const uint64_t expert = packed_expert_bytes(config, options.storage);
  if (options.cluster_bytes < expert)
    throw ConfigError(cat("pack.cluster_bytes must hold at least one expert (got ", options.cluster_bytes, " bytes < ", expert,
                          " bytes per expert: 3 x ", config.resolved_moe_intermediate_size(), " x ", config.hidden_size, " ",
                          options.storage.name(), ", 4 KiB aligned)"));
}

void check_pack_folder(const std::string& dir) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (!fs::exists(status)) return;
  if (!fs::is_directory(status)) throw IoError(cat(dir, ": exists and is not a folder"));
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!is_cache_file(name) || !entry.is_regular_file())
      throw IoError(cat(dir, ": holds '", name, "', which is not part of an expert cache; give a new or empty folder"));
  }
  if (ec) throw IoError(cat(dir, ": cannot list the folder (", ec.message(), ")"));
}

PackResult pack_expert_cache(ChronosForCausalLMImpl& model, const RoutingTrace& trace, const PackOptions& options,
                             const PackProgress& progress) {
  for (int64_t l = 0; l < model.config().num_hidden_layers; ++l)
    if (!model.layer(l).moe) throw InvalidArgument(cat("pack: layer ", l, " has no routed experts (use_moe is false)"));
  const ExpertReader read = [&](ExpertKey key) { return model.layer(key.layer).moe->expert_weights(key.expert); };
  return pack_expert_cache(model.config(), read, trace, options, progress);
}

PackResult pack_expert_cache(const ModelConfig& config, const ExpertReader& read, const RoutingTrace& trace, const PackOptions& options,
                             const PackProgress& progress) {
  options.validate();
  if (!config.use_moe) throw InvalidArgument("pack: the model has no routed experts (use_moe is false)");
  check_cluster_budget(options, config);
  if (trace.num_layers() != config.num_hidden_layers || trace.num_experts() != config.num_experts)
    throw InvalidArgument(cat("pack: the routing trace has ", trace.num_layers(), " layers x ", trace.num_experts(),
                              " experts, the model ", config.num_hidden_layers, " x ", config.num_experts));
  check_pack_folder(options.out_dir);
  const Stopwatch watch;

  CoactivationOptions graph_options;
  graph_options.window = options.window;
  const CoactivationGraph graph = build_coactivation_graph(trace, graph_options);
  const uint64_t expert_bytes = packed_expert_bytes(config, options.storage);
  ClusteringOptions cluster_options;
  cluster_options.seed = options.seed;
  cluster_options.resolution = options.resolution;
  cluster_options.max_members = static_cast<int64_t>(options.cluster_bytes / expert_bytes);
  PackResult result;
  result.clustering = cluster_experts(graph, cluster_options);
  const Clustering& clustering = result.clustering;
  log::info(cat("pack: ", trace.tokens(), " tokens, ", graph.num_nodes(), " experts -> ", clustering.clusters.size(),
                " clusters (", clustering.communities, " Louvain communities, ", clustering.split_communities, " split, ",
                clustering.cold_nodes, " never co-activated), modularity ", clustering.modularity, " in ", watch.seconds(), " s"));

  const int64_t E = config.num_experts;
  ExpertClusters clusters;
  std::vector<int64_t> sizes;
  std::vector<uint64_t> bytes;
  for (const auto& members : clustering.clusters) {
    std::vector<ExpertKey> keys;
    for (int64_t node : members) keys.push_back(ExpertKey::from_index(node, E));
    clusters.push_back(std::move(keys));
    sizes.push_back(static_cast<int64_t>(members.size()));
    bytes.push_back(static_cast<uint64_t>(members.size()) * expert_bytes);
  }
  result.summary = {{"method", "louvain"},
                    {"seed", options.seed},
                    {"window", options.window},
                    {"resolution", options.resolution},
                    {"dtype", options.storage.name()},
                    {"tokens", trace.tokens()},
                    {"sequences", trace.num_sequences()},
                    {"experts", graph.num_nodes()},
                    {"expert_bytes", expert_bytes},
                    {"cluster_bytes_cap", options.cluster_bytes},
                    {"max_members", cluster_options.max_members},
                    {"clusters", clustering.clusters.size()},
                    {"cluster_sizes", sizes},
                    {"cluster_bytes", bytes},
                    {"louvain_communities", clustering.communities},
                    {"split_communities", clustering.split_communities},
                    {"cold_experts", clustering.cold_nodes},
                    {"modularity", clustering.modularity},
                    {"total_weight", graph.total_weight()},
                    {"inside_mass", clustering.inside_mass},
                    {"random_inside_mass", clustering.random_inside_mass}};

  // write_expert_cache drops the old manifest before any cluster file and writes the new one last;
  // the summary follows the manifest it describes.
  make_directories(options.out_dir);
  std::error_code ec;
  std::vector<fs::path> temporaries;  // of an interrupted run
  for (const auto& entry : fs::directory_iterator(options.out_dir, ec))
    if (entry.path().filename().string().front() == '.') temporaries.push_back(entry.path());
  for (const auto& path : temporaries) fs::remove(path, ec);
  result.manifest = write_expert_cache(config, read, clusters, options.storage, options.out_dir, progress, options.model_fingerprint);
  write_json_file((fs::path(options.out_dir) / kSummary).string(), result.summary);
  uint64_t total = 0;
  for (const auto& file : result.manifest.clusters) total += file.size_bytes;
  log::info(cat("pack: wrote ", result.manifest.clusters.size(), " cluster files (", human_bytes(total), ") and ", kManifest, " to ",
                options.out_dir));
  return result;
}

c10::ScalarType stored_expert_dtype(const std::string& model_dir) {
  const ModelConfig config = ModelConfig::load((fs::path(model_dir) / "config.json").string());
  const std::string name = routed_expert_tensor_name(config, 0, 0, ExpertMatrix::gate);
  const CheckpointTensors checkpoint(model_dir);
  if (!checkpoint.contains(name)) throw FormatError(cat(model_dir, ": checkpoint lacks tensor '", name, "'"));
  const SafetensorsFile& file = checkpoint.file_of(name);
  return to_scalar_type(file.entry(name).dtype, file.path());
}

}  // namespace chronos
