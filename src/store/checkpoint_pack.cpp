#include "chronos/store/checkpoint_pack.h"

#include <algorithm>
#include <filesystem>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/core/memory.h"
#include "chronos/model/pretrained.h"
#include "chronos/store/expert_store.h"
#include "store/checkpoint_experts.h"

namespace chronos {
namespace fs = std::filesystem;

PackResult pack_checkpoint(const std::string& model_dir, const std::vector<std::vector<int64_t>>& sequences,
                           const PackOptions& options, const BoundedPackOptions& bounded, const BoundedPackProgress& progress) {
  options.validate();
  require_model_directory(model_dir);
  const ModelConfig config = ModelConfig::load((fs::path(model_dir) / "config.json").string());
  if (!config.use_moe) throw InvalidArgument(cat(model_dir, ": the model has no routed experts (use_moe is false)"));
  check_cluster_budget(options, config);
  check_pack_folder(options.out_dir);

  // The layer-ordered cache keeps the checkpoint's own dtype, so that tracing routes exactly as the model does.
  const ExpertStorage staged = ExpertStorage::dense(stored_expert_dtype(model_dir));
  const uint64_t staged_bytes = packed_expert_bytes(config, staged);
  const uint64_t compute_bytes = packed_expert_bytes(config, ExpertStorage::dense(c10::kFloat));
  const uint64_t budget = static_cast<uint64_t>(std::max<int64_t>(0, bounded.ram_budget_bytes));
  const uint64_t minimum = 4 * std::max({staged_bytes, compute_bytes, packed_expert_bytes(config, options.storage)});
  if (budget < minimum)
    throw ConfigError(cat("pack.ram_budget_bytes must hold at least four experts as stored and in float32 (got ", budget,
                          " bytes, need ", minimum, ")"));

  const CheckpointExperts checkpoint(model_dir, config);
  const ExpertReader read = [&](ExpertKey key) { return checkpoint.read(key); };
  const auto files_progress = [&](const char* stage) {
    return [&progress, stage](size_t done, size_t total) {
      if (progress) progress(stage, static_cast<int64_t>(done), static_cast<int64_t>(total), "cluster files");
    };
  };

  // 1. Layer-ordered cache: consecutive experts, as many per file as the budget and the cap allow.
  const int64_t L = config.num_hidden_layers, E = config.num_experts;
  const int64_t per_file = static_cast<int64_t>(std::max<uint64_t>(1, std::min<uint64_t>(options.cluster_bytes, budget / 2) / staged_bytes));
  ExpertClusters layer_ordered;
  for (int64_t u = 0; u < L * E; ++u) {
    if (u % per_file == 0) layer_ordered.emplace_back();
    layer_ordered.back().push_back(ExpertKey::from_index(u, E));
  }
  log::info(cat("pack: staging ", L * E, " experts from ", model_dir, " in ", layer_ordered.size(), " layer-ordered files (",
                staged.name(), ", at most ", budget >> 20, " MiB of experts in memory)"));
  write_expert_cache(config, read, layer_ordered, staged, options.out_dir, files_progress("staged"), options.model_fingerprint);
  log::info(cat("pack: staged; resident ", resident_bytes() >> 20, " MiB, peak ", peak_rss_bytes() >> 20, " MiB"));

  // 2. Trace routing offloaded from it.
  RoutingTrace trace(L, E, config.num_experts_per_tok);
  {
    LoadOptions load;
    load.skip_routed_experts = true;
    ChronosForCausalLM model = load_pretrained(model_dir, load);
    OffloadConfig offload;
    offload.cache_dir = options.out_dir;
    offload.ram_budget_bytes = static_cast<int64_t>(budget - budget / 4);
    offload.compute_budget_bytes = static_cast<int64_t>(budget / 4);
    offload.miss_policy = MissPolicy::wait;
    offload.io_threads = bounded.io_threads;
    ExpertStore store(offload, config);
    RoutingOptions routing = bounded.routing;
    routing.expert_source = &store;
    trace = record_routing(*model, sequences, routing, [&](int64_t done, int64_t total) {
      if (progress) progress("routed", done, total, "tokens");
    });
    log::info(cat("pack: routed offloaded; resident ", resident_bytes() >> 20, " MiB, peak ", peak_rss_bytes() >> 20, " MiB"));
  }

  // 3. Louvain clusters, the experts streamed again; a cluster file's members are in memory while
  // it is written, so its cap is at most half the budget.
  PackOptions final_options = options;
  final_options.cluster_bytes = std::min<uint64_t>(options.cluster_bytes, budget / 2);
  if (final_options.cluster_bytes < options.cluster_bytes)
    log::info(cat("pack: cluster files capped at ", final_options.cluster_bytes >> 20, " MiB (half the RAM budget)"));
  return pack_expert_cache(config, read, trace, final_options, files_progress("wrote"));
}

}  // namespace chronos
