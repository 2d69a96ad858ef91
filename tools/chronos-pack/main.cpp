// chronos-pack: packs a model's routed experts into an expert cache (cluster_NNN.ctsr files and
// cluster_manifest.json) grouped by how often they are routed to together on calibration text.

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "chronos/core/dtype.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/core/memory.h"
#include "chronos/core/timing.h"
#include "chronos/eval/calibration.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/model/config.h"
#include "chronos/model/pretrained.h"
#include "chronos/store/checkpoint_pack.h"
#include "chronos/store/offload_config.h"
#include "chronos/store/pack.h"
#include "chronos/store/routing_trace.h"
#include "chronos/tokenizer/tokenizer.h"
#include "common/flag_checks.h"
#include "common/runtime_flags.h"
#include "common/progress_line.h"
#include "common/tool_main.h"

namespace fs = std::filesystem;
using namespace chronos;

namespace {

struct Flags {
  std::string model;
  std::string data;
  std::string out;  // empty: MODEL/expert_cache
  std::string tokenizer;
  int64_t max_tokens = 65536;
  uint64_t seed = 0;
  std::string cluster_bytes = "64M";
  std::string dtype = "auto";
  int64_t window = 4;
  int64_t seq_len = 256;
  int64_t batch = 8;
  std::string ram_budget;  // --ram-budget: stream the experts, never more than this of them in memory
  tools::RuntimeFlags runtime;
};

// Physical memory in bytes, 0 where unknown.
int64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page_size > 0 ? static_cast<int64_t>(pages) * page_size : 0;
}

// "4096", "512K", "64M", "1.5G", "2GiB": the library's byte-size parser, without its percentages
// (a cluster file's cap is not a share of anything).
uint64_t parse_cluster_bytes(const std::string& text) {
  if (text.find('%') != std::string::npos)
    throw InvalidArgument(cat("--cluster-bytes: '", text, "' is a percentage; give a size such as 4096, 512K, 64M or 1G"));
  return static_cast<uint64_t>(parse_byte_size(text, 0, "--cluster-bytes"));
}

int run(const Flags& flags) {
  const Stopwatch total_watch;
  const tools::Runtime rt = tools::apply_runtime_flags(flags.runtime);
  require_model_directory(flags.model);
  const ModelConfig config = ModelConfig::load((fs::path(flags.model) / "config.json").string());
  if (!config.use_moe) throw ConfigError(cat(flags.model, "/config.json: use_moe is false, the model has no routed experts to pack"));

  PackOptions options;
  options.out_dir = flags.out.empty() ? (fs::path(flags.model) / "expert_cache").string() : flags.out;
  options.seed = flags.seed;
  options.cluster_bytes = parse_cluster_bytes(flags.cluster_bytes);
  options.window = flags.window;
  options.model_fingerprint = expert_weights_fingerprint(flags.model, config);
  const c10::ScalarType stored = stored_expert_dtype(flags.model);
  try {
    options.storage = flags.dtype == "auto" ? ExpertStorage::dense(stored) : ExpertStorage::parse(flags.dtype);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(cat("--dtype: ", e.what()));
  }
  options.validate();
  try {
    check_cluster_budget(options, config);
  } catch (const ConfigError& e) {
    throw ConfigError(cat("--cluster-bytes ", flags.cluster_bytes, ": ", e.what()));
  }
  check_pack_folder(options.out_dir);

  const std::string tokenizer_path = flags.tokenizer.empty() ? (fs::path(flags.model) / "tokenizer.json").string() : flags.tokenizer;
  if (!fs::is_regular_file(tokenizer_path))
    throw IoError(cat(flags.model, ": the model directory has no tokenizer.json (give --tokenizer FILE)"));
  const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path);
  if (tokenizer.vocab_size() > config.vocab_size)
    throw ConfigError(cat(tokenizer_path, ": ", tokenizer.vocab_size(), " tokens do not fit the model's vocab_size ", config.vocab_size));
  const std::vector<std::vector<int64_t>> sequences = read_calibration_sequences(flags.data, tokenizer, config, flags.seq_len, flags.max_tokens);

  // Experts that would take more than half the machine's memory in float32 are streamed.
  const int64_t memory = physical_memory_bytes();
  const int64_t expert_values = static_cast<int64_t>(config.num_hidden_layers * config.num_experts * 3) * config.hidden_size *
                                config.resolved_moe_intermediate_size();
  const int64_t expert_bytes = expert_values * 4;
  const int64_t stored_bytes = expert_values * static_cast<int64_t>(c10::elementSize(stored));
  int64_t budget = flags.ram_budget.empty() ? 0 : parse_byte_size(flags.ram_budget, memory, "--ram-budget");
  if (budget == 0 && memory > 0 && expert_bytes > memory / 2) {
    budget = memory / 4;
    log::info(cat("chronos-pack: the experts (", expert_bytes >> 20, " MiB in float32) exceed half of this machine's memory: streaming them with "
                  "--ram-budget ", budget >> 20, "M"));
  }
  if (!flags.ram_budget.empty() && budget <= 0) throw ConfigError(cat("--ram-budget must be > 0 (got ", flags.ram_budget, ")"));
  log::info(cat("chronos-pack: model ", flags.model, " (", config.model_type, ", ", config.num_hidden_layers, " layers x ", config.num_experts,
                " experts, top-", config.num_experts_per_tok, "), data ", flags.data, " (", sequences.size(), " sequences), out ",
                options.out_dir, ", dtype ", options.storage.name(), ", cluster_bytes ", options.cluster_bytes, ", window ", options.window,
                ", seed ", options.seed, ", device ", rt.device.str(), budget > 0 ? cat(", ram budget ", budget >> 20, " MiB") : ""));
  const int64_t rss_at_start = resident_bytes();

  tools::ProgressLine progress;
  RoutingOptions routing;
  routing.batch_size = flags.batch;
  PackResult result;
  int64_t tokens = 0;
  if (budget > 0) {
    if (!rt.device.is_cpu()) throw ConfigError("--ram-budget packs on the CPU (drop --device)");
    // Expert-sized buffers are allocated and freed all the time; glibc's dynamic mmap threshold
    // would move them onto the heap after the first free, where fragmentation keeps them resident
    // (measured: +25 MiB on a 384 MiB checkpoint). A fixed threshold returns each one to the system.
    ::mallopt(M_MMAP_THRESHOLD, 256 << 10);
    BoundedPackOptions bounded;
    bounded.ram_budget_bytes = budget;
    bounded.routing = routing;
    result = pack_checkpoint(flags.model, sequences, options, bounded, [&](const char* stage, int64_t done, int64_t total, const char* unit) {
      progress.update(stage, done, total, unit);
      if (done == total) progress.done();
    });
    for (const auto& s : sequences) tokens += static_cast<int64_t>(s.size());
  } else {
    LoadOptions load = tools::load_options(rt, c10::kFloat);
    load.weights_format = WeightFormat::fp32;  // a converted directory's experts widened: --dtype decides how they are stored
    ChronosForCausalLM model = load_pretrained(flags.model, load);
    const RoutingTrace trace = record_routing(*model, sequences, routing,
                                              [&](int64_t done, int64_t total) { progress.update("routed", done, total, "tokens"); });
    progress.done();
    result = pack_expert_cache(*model, trace, options, [&](size_t done, size_t total) {
      progress.update("wrote", static_cast<int64_t>(done), static_cast<int64_t>(total), "clusters");
    });
    progress.done();
    tokens = trace.tokens();
  }

  uint64_t bytes = 0;
  for (const auto& file : result.manifest.clusters) bytes += file.size_bytes;
  const Clustering& c = result.clustering;
  const double mib = 1 << 20;
  std::cout << std::fixed << std::setprecision(3) << "packed " << tokens << " tokens: " << result.manifest.clusters.size()
            << " clusters of " << config.num_hidden_layers * config.num_experts << " experts, modularity " << c.modularity
            << ", co-activation inside clusters " << c.inside_mass << " (random " << c.random_inside_mass << "), "
            << std::setprecision(1) << static_cast<double>(bytes) / mib << " MiB " << options.storage.name() << " in "
            << options.out_dir << ", " << total_watch.seconds() << " s" << std::endl;
  const double dense_bytes = 4.0 * static_cast<double>(count_parameters(config, /*routed_experts=*/false));
  std::cout << "peak RSS " << static_cast<double>(peak_rss_bytes()) / mib << " MiB (" << static_cast<double>(rss_at_start) / mib
            << " MiB before packing; dense weights " << dense_bytes / mib << " MiB in float32; routed experts "
            << static_cast<double>(stored_bytes) / mib << " MiB in " << dtype_name(stored)
            << (budget > 0 ? cat(", budget ", static_cast<double>(budget) / mib, " MiB") : std::string()) << ")" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tools::configure_openmp_waiting(argv);
  return tools::run_tool("chronos-pack", [&] {
    Flags flags;
    CLI::App app{"chronos-pack: pack a model's experts into co-activation clusters (an expert cache for offloading)"};
    app.add_option("--model", flags.model, "Model directory (config.json, model.safetensors, tokenizer.json)")->required();
    app.add_option("--data", flags.data, "Calibration JSONL: {\"text\": ...} or {\"conversations\": [...]} records")->required();
    app.add_option("--out", flags.out, "Cache folder (default: MODEL/expert_cache); new, empty or an earlier cache");
    app.add_option("--tokenizer", flags.tokenizer, "tokenizer.json to use instead of the model directory's");
    app.add_option("--max-tokens", flags.max_tokens, "Most calibration tokens to route")->capture_default_str()->check(tools::positive());
    app.add_option("--seed", flags.seed, "Seed of the Louvain clustering")->capture_default_str();
    app.add_option("--cluster-bytes", flags.cluster_bytes, "Most expert bytes per cluster file (K/M/G suffixes, binary)")->capture_default_str();
    app.add_option("--dtype", flags.dtype, "Storage: auto (as the model stores its weights), fp32, fp16, bf16, or int8 / int4 (blocks of 32 weights with an fp16 scale, "
                   "quantized from the model's weights)")
        ->capture_default_str();
    app.add_option("--window", flags.window, "Adjacent tokens paired at each layer in the co-activation graph")
        ->capture_default_str()
        ->check(tools::non_negative());
    app.add_option("--seq-len", flags.seq_len, "Tokens per calibration sequence (longer records are cut)")
        ->capture_default_str()
        ->check(tools::positive());
    app.add_option("--batch", flags.batch, "Sequences per forward pass")->capture_default_str()->check(tools::positive());
    app.add_option("--ram-budget", flags.ram_budget,
                   "Stream the experts from the checkpoint, never holding more than this many bytes of them (K/M/G or a % of "
                   "memory); the default streams with 25% when the experts exceed half the memory in float32");
    tools::add_runtime_flags(app, flags.runtime, /*with_dtype=*/false);
    if (auto code = tools::parse_command_line(app, argc, argv, "chronos-pack")) return *code;
    return run(flags);
  });
}
