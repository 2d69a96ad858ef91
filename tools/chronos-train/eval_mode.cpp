// chronos-train eval: held-out cross-entropy and perplexity per domain (or any string field), for the
// model's own experts and, with --expert-cache, for experts served from expert caches (e.g. int8 and
// int4 ones), each against the resident model in the same run.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>

#include "chronos-train/modes.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/eval/perplexity.h"
#include "chronos/io/json_number.h"
#include "chronos/model/pretrained.h"
#include "chronos/routing/router_control.h"
#include "chronos/store/expert_store.h"
#include "chronos/tokenizer/tokenizer.h"
#include "common/flag_checks.h"
#include "common/runtime_flags.h"

namespace fs = std::filesystem;

namespace chronos::train_cli {
namespace {

struct EvalFlags {
  std::string model, data;
  std::vector<std::string> caches;
  PerplexityOptions options;
  bool json = false;
  std::string weights_dtype;
  tools::RuntimeFlags runtime;
};

nlohmann::json report_json(const PerplexityReport& r) {
  nlohmann::json groups = nlohmann::json::object();
  for (const GroupLoss& g : r.groups)
    groups[g.group] = {{"records", g.records},
                       {"tokens", g.tokens},
                       {"cross_entropy", json_number(g.cross_entropy())},
                       {"perplexity", json_number(g.perplexity())},
                       {"expert_counts", g.expert_counts}};
  return {{"groups", groups},
          {"total", {{"records", r.total.records}, {"tokens", r.total.tokens}, {"cross_entropy", json_number(r.total.cross_entropy())},
                     {"perplexity", json_number(r.total.perplexity())}}}};
}

// Experts from `cache` for every layer, all of them held in RAM, `wait` policy: the cache's stored
// values, nothing else changed.
std::unique_ptr<ExpertStore> open_whole_cache(const std::string& cache, const std::string& model_dir, const ModelConfig& config,
                                              const tools::Runtime& rt) {
  ClusterManifest manifest = read_cluster_manifest(cache);
  OffloadConfig offload;
  offload.cache_dir = cache;
  offload.model_dir = model_dir;
  offload.ram_budget_bytes = static_cast<int64_t>(manifest.total_expert_bytes() + 2 * kExpertAlignment * manifest.num_layers * manifest.num_experts);
  offload.compute_budget_bytes = static_cast<int64_t>(manifest.compute_expert_bytes(rt.dtype)) * manifest.num_layers * manifest.num_experts;
  offload.device = rt.device;
  offload.compute_dtype = rt.dtype;
  return std::make_unique<ExpertStore>(offload, config, std::move(manifest));
}

int run_eval(EvalFlags f) {
  const tools::Runtime rt = tools::apply_runtime_flags(f.runtime);
  f.options.validate();
  require_model_directory(f.model);
  const std::string tokenizer_path = (fs::path(f.model) / "tokenizer.json").string();
  if (!fs::is_regular_file(tokenizer_path)) throw IoError(cat(f.model, ": no tokenizer.json in the model directory"));
  if (!fs::is_regular_file(f.data)) throw IoError(cat(f.data, ": evaluation data not found"));
  for (const std::string& cache : f.caches)
    if (!fs::is_regular_file(fs::path(cache) / "cluster_manifest.json")) throw IoError(cat(cache, ": not an expert cache (no cluster_manifest.json)"));
  const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path);
  LoadOptions load = tools::load_options(rt, rt.dtype);
  load.weights_format = tools::parse_weights_dtype(f.weights_dtype);
  ChronosForCausalLM model = load_pretrained(f.model, load);
  if (f.options.max_seq_len > model->config().max_position_embeddings)
    throw InvalidArgument(cat("--max-seq-len ", f.options.max_seq_len, " is beyond the model's context of ",
                              model->config().max_position_embeddings, " tokens (max_position_embeddings)"));

  // A model trained with a router control routes with its bias as trained.
  const std::optional<RouterControl> control = load_router_control(f.model);
  if (control) {
    f.options.router_bias = control->bias();
    log::info(cat(f.model, ": routing with the bias of its trained router control (", to_string(control->kind()), ")"));
  }
  std::vector<std::pair<std::string, PerplexityReport>> runs;
  runs.emplace_back("resident", evaluate_perplexity(*model, tokenizer, f.data, f.options));
  log::info(cat("resident: ", runs.back().second.total.records, " records, cross-entropy ", runs.back().second.total.cross_entropy()));
  for (const std::string& cache : f.caches) {
    const std::unique_ptr<ExpertStore> store = open_whole_cache(cache, f.model, model->config(), rt);
    PerplexityOptions options = f.options;
    options.expert_source = store.get();
    const std::string name = cat(fs::path(cache).filename().string(), " (", store->manifest().storage.name(), ")");
    runs.emplace_back(name, evaluate_perplexity(*model, tokenizer, f.data, options));
    log::info(cat(name, ": cross-entropy ", runs.back().second.total.cross_entropy()));
  }

  if (f.json) {
    nlohmann::json out = {{"data", f.data}, {"max_seq_len", f.options.max_seq_len}, {"runs", nlohmann::json::object()}};
    for (const auto& [name, report] : runs) out["runs"][name] = report_json(report);
    std::cout << out.dump() << std::endl;
    return 0;
  }
  const PerplexityReport& base = runs.front().second;
  std::cout << "held-out " << f.data << " (" << base.total.records << " records, " << base.total.tokens << " tokens predicted)\n\n";
  std::cout << "| " << (f.options.group_key.empty() ? "all" : f.options.group_key) << " | records | tokens |";
  for (const auto& run : runs) std::cout << " " << run.first << " CE | perplexity |" << (&run == &runs.front() ? "" : " vs resident |");
  std::cout << "\n|---|---|---|";
  for (size_t i = 0; i < runs.size(); ++i) std::cout << (i == 0 ? "---|---|" : "---|---|---|");
  std::cout << "\n" << std::fixed;
  const auto row = [&](const std::string& name, const auto& pick) {
    const GroupLoss& b = pick(base);
    std::cout << "| " << name << " | " << b.records << " | " << b.tokens << " |";
    for (const auto& run : runs) {
      const GroupLoss& g = pick(run.second);
      std::cout << std::setprecision(3) << " " << g.cross_entropy() << " | " << std::setprecision(2) << g.perplexity() << " |";
      if (&run != &runs.front()) std::cout << " " << std::showpos << (g.perplexity() / b.perplexity() - 1) * 100 << std::noshowpos << "% |";
    }
    std::cout << "\n";
  };
  for (size_t i = 0; i < base.groups.size(); ++i)
    row(base.groups[i].group.empty() ? "(none)" : base.groups[i].group, [&](const PerplexityReport& r) -> const GroupLoss& { return r.groups[i]; });
  row("all", [](const PerplexityReport& r) -> const GroupLoss& { return r.total; });
  return 0;
}

}  // namespace

tools::Subcommand add_eval_mode(CLI::App& app) {
  auto flags = std::make_shared<EvalFlags>();
  EvalFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand("eval", "Held-out cross-entropy and perplexity per domain, resident and from expert caches");
  cmd->add_option("--model", f.model, "Model directory")->required();
  cmd->add_option("--data", f.data, "Held-out JSONL ({\"text\": ..., \"domain\": ...} records)")->required();
  cmd->add_option("--expert-cache", f.caches, "Also score with the routed experts from this expert cache (repeatable; e.g. int8 / int4 packs)");
  cmd->add_option("--group-by", f.options.group_key, "String field that groups the records (\"\": one group)")->capture_default_str();
  cmd->add_option("--max-seq-len", f.options.max_seq_len, "Tokens scored per record ([bos] and [eos] included)")->capture_default_str()->check(tools::positive(1 << 24));
  cmd->add_option("--batch-size", f.options.batch_size, "Records per forward")->capture_default_str()->check(tools::positive(1 << 16));
  cmd->add_option("--max-records", f.options.max_records, "Score the first N records (0: all)")->capture_default_str()->check(tools::non_negative(1e12));
  cmd->add_flag("--json", f.json, "Print one JSON object instead of the table");
  tools::add_runtime_flags(*cmd, f.runtime);
  tools::add_weights_dtype_flag(*cmd, f.weights_dtype);
  return {cmd, [flags] { return run_eval(*flags); }};
}

}  // namespace chronos::train_cli
