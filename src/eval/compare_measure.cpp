#include "chronos/eval/compare_measure.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

#include "chronos/core/error.h"
#include "chronos/eval/calibration.h"
#include "chronos/eval/kv_footprint.h"
#include "chronos/eval/perplexity.h"
#include "chronos/eval/token_agreement.h"
#include "chronos/io/json_number.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/pretrained.h"
#include "chronos/runtime/generation.h"
#include "chronos/runtime/offload_engine.h"
#include "chronos/store/cluster_manifest.h"
#include "chronos/store/expert_store.h"
#include "chronos/store/pack.h"
#include "chronos/store/routing_trace.h"
#include "chronos/train/intent_data.h"
#include "chronos/train/jsonl.h"

namespace fs = std::filesystem;

namespace chronos {

std::vector<std::vector<int64_t>> read_prompt_ids(const std::string& path, const Tokenizer& tokenizer, int64_t max_prompt_tokens,
                                                  int64_t limit) {
  const JsonlFile file(path);
  std::vector<std::vector<int64_t>> prompts;
  for (size_t i = 0; i < file.size() && (limit <= 0 || static_cast<int64_t>(prompts.size()) < limit); ++i) {
    std::vector<int64_t> ids = intent_prompt_ids(tokenizer, file.parse(i), file.where(i), max_prompt_tokens);
    if (ids.empty()) throw FormatError(cat(file.where(i), ": the prompt encodes to no tokens"));
    prompts.push_back(std::move(ids));
  }
  if (prompts.empty()) throw FormatError(cat(path, ": no prompts"));
  return prompts;
}

void MeasureOptions::validate() const {
  for (const auto& [field, path] : {std::pair<const char*, const std::string&>{"heldout", heldout}, {"prompts", prompts}})
    if (!fs::is_regular_file(path)) throw IoError(cat(path.empty() ? std::string("(none)") : path, ": the ", field, " file was not found"));
  if (!calibration_data.empty() && !fs::is_regular_file(calibration_data))
    throw IoError(cat(calibration_data, ": the calibration_data file was not found"));
  if (eval_records < 0 || num_prompts < 0) throw ConfigError("measure: eval_records and num_prompts must not be negative");
  if (eval_seq_len < 2) throw ConfigError(cat("measure.eval_seq_len must be >= 2 (got ", eval_seq_len, ")"));
  if (max_prompt_tokens < 1) throw ConfigError(cat("measure.max_prompt_tokens must be >= 1 (got ", max_prompt_tokens, ")"));
  if (max_new_tokens < 2) throw ConfigError(cat("measure.max_new_tokens must be >= 2 (got ", max_new_tokens, ")"));
  if (kv_contexts.empty()) throw ConfigError("measure.kv_contexts must not be empty");
  for (int64_t c : kv_contexts)
    if (c < 1) throw ConfigError(cat("measure.kv_contexts: every context must be >= 1 (got ", c, ")"));
  parse_byte_size(ram_budget, 1 << 30, "ram_budget");  // the text only; the share is taken of the cache at open
  parse_byte_size(compute_budget, 1 << 30, "compute_budget");
  throttle.validate("measure.throttle");
  if (io_threads < 1 || io_threads > 64) throw ConfigError(cat("measure.io_threads must be in [1, 64] (got ", io_threads, ")"));
  if (calibration_tokens < 1) throw ConfigError(cat("measure.calibration_tokens must be >= 1 (got ", calibration_tokens, ")"));
}

namespace {

void phase(const MeasureOptions& o, const std::string& what) {
  if (o.on_phase) o.on_phase(what);
}

std::string ensure_expert_cache(ChronosForCausalLMImpl& model, const std::string& model_dir, const Tokenizer& tokenizer,
                                const MeasureOptions& o) {
  const std::string dir = (fs::path(model_dir) / "expert_cache").string();
  if (fs::exists(fs::path(dir) / "cluster_manifest.json")) return dir;
  phase(o, cat("packing ", dir));
  PackOptions pack;
  pack.out_dir = dir;
  pack.storage = ExpertStorage::dense(c10::kFloat);
  pack.model_fingerprint = expert_weights_fingerprint(model_dir, model.config());
  pack.validate();
  check_cluster_budget(pack, model.config());
  check_pack_folder(dir);
  const std::vector<std::vector<int64_t>> calibration =
      read_calibration_sequences(o.calibration_data, tokenizer, model.config(), o.eval_seq_len, o.calibration_tokens);
  pack_expert_cache(model, record_routing(model, calibration), pack);
  return dir;
}

struct DecodeTotals {
  int64_t decode_tokens = 0, generated = 0;
  double decode_seconds = 0;
  void add(const GenerationResult& r) {
    generated += r.stats.generated_tokens;
    decode_tokens += std::max<int64_t>(0, r.stats.generated_tokens - 1);
    decode_seconds += r.stats.decode_seconds;
  }
  double tokens_per_s() const { return decode_seconds > 0 ? static_cast<double>(decode_tokens) / decode_seconds : 0; }
};

// A short run before timing: first-call allocations and the OpenMP pool's start.
GenerationOptions warm_up() {
  GenerationOptions g;
  g.max_new_tokens = 4;
  return g;
}

GenerationOptions greedy(const MeasureOptions& o, const ModelConfig& config) {
  GenerationOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.stop_ids = {config.eos_token_id};
  g.sampling.greedy = true;
  return g;
}

// One offloaded mode over the prompts: a fresh store (cold RAM tier) and engine, kept across the
// prompts as a server would, after a warm-up on a store of its own.
nlohmann::json offloaded_decode(const std::string& model_dir, const std::string& cache, PredictMode predict,
                                const std::vector<std::vector<int64_t>>& prompts, const MeasureOptions& o) {
  LoadOptions load;
  load.skip_routed_experts = true;
  ChronosForCausalLM model = load_pretrained(model_dir, load);
  model->eval();
  ClusterManifest manifest = read_cluster_manifest(cache);
  OffloadConfig config;
  config.cache_dir = cache;
  config.model_dir = model_dir;
  config.ram_budget_bytes = parse_byte_size(o.ram_budget, static_cast<int64_t>(manifest.total_expert_bytes()), "ram_budget");
  config.compute_budget_bytes = parse_byte_size(
      o.compute_budget, static_cast<int64_t>(manifest.compute_expert_bytes(c10::kFloat)) * manifest.num_layers * manifest.num_experts,
      "compute_budget");
  config.throttle = o.throttle;
  config.io_threads = o.io_threads;
  config.verify = VerifyLevel::size;  // opened twice; every read is still checksummed
  OffloadEngineConfig engine_config;
  engine_config.predict = predict;
  const GenerationOptions g = greedy(o, model->config());
  {
    ExpertStore store(config, model->config(), manifest);
    OffloadEngine engine(*model, store, engine_config);
    engine.generate(prompts.front(), warm_up());
  }
  ExpertStore store(config, model->config(), std::move(manifest));
  OffloadEngine engine(*model, store, engine_config);
  DecodeTotals totals;
  StoreStats stats;
  std::vector<PrecisionRecall> lookahead;
  for (const std::vector<int64_t>& prompt : prompts) {
    store.reset_stats();
    totals.add(engine.generate(prompt, g));
    stats += store.stats();
    pool(lookahead, engine.metrics().summary().lookahead);
  }
  nlohmann::json m = to_json(stats, std::max<int64_t>(1, totals.generated));
  m["tokens_per_s"] = totals.tokens_per_s();
  if (predict != PredictMode::none) {
    m["lookahead_recall"] = nlohmann::json::array();
    for (const PrecisionRecall& pr : lookahead) m["lookahead_recall"].push_back(json_number(pr.recall()));
  }
  return m;
}

}  // namespace

nlohmann::json measure_model(ChronosForCausalLMImpl& model, const std::string& model_dir, const Tokenizer& tokenizer,
                             const MeasureOptions& o, bool predictive, std::vector<std::vector<int64_t>>& greedy_tokens) {
  const ModelConfig& config = model.config();
  model.eval();
  nlohmann::json m;
  m["params"] = count_parameters(config);
  m["resident_params"] = count_parameters(config, /*routed_experts=*/false);

  phase(o, cat(model_dir, ": held-out perplexity"));
  PerplexityOptions ppl;
  ppl.max_seq_len = o.eval_seq_len;
  ppl.max_records = o.eval_records;
  const PerplexityReport report = evaluate_perplexity(model, tokenizer, o.heldout, ppl);
  m["perplexity"] = json_number(report.total.perplexity());
  m["cross_entropy"] = json_number(report.total.cross_entropy());
  m["heldout_tokens"] = report.total.tokens;
  m["perplexity_by_domain"] = nlohmann::json::object();
  for (const GroupLoss& g : report.groups)
    if (!g.group.empty()) m["perplexity_by_domain"][g.group] = json_number(g.perplexity());

  m["kv_bytes_per_token"] = nlohmann::json::object();
  for (int64_t context : o.kv_contexts) m["kv_bytes_per_token"][std::to_string(context)] = kv_cache_bytes_per_token(config, context);

  phase(o, cat(model_dir, ": resident greedy decode"));
  const std::vector<std::vector<int64_t>> prompts = read_prompt_ids(o.prompts, tokenizer, o.max_prompt_tokens, o.num_prompts);
  for (const auto& p : prompts)
    if (static_cast<int64_t>(p.size()) + o.max_new_tokens > config.max_position_embeddings)
      throw InvalidArgument(cat(o.prompts, ": a prompt of ", p.size(), " tokens + ", o.max_new_tokens,
                                " new tokens exceeds the model's context of ", config.max_position_embeddings));
  const GenerationOptions g = greedy(o, config);
  generate(model, prompts.front(), warm_up());
  DecodeTotals resident;
  greedy_tokens.clear();
  for (const std::vector<int64_t>& prompt : prompts) {
    const GenerationResult r = generate(model, prompt, g);
    resident.add(r);
    greedy_tokens.push_back(r.tokens);
  }
  m["decode_tokens_per_s"] = resident.tokens_per_s();
  m["prompts"] = prompts.size();

  const std::string cache = ensure_expert_cache(model, model_dir, tokenizer, o);
  std::vector<std::pair<std::string, PredictMode>> modes = {{"reactive", PredictMode::none}};
  if (predictive && config.has_lookahead_router()) modes.push_back({"lookahead", PredictMode::lookahead});
  m["offload_modes"] = nlohmann::json::object();
  std::string best;
  for (const auto& [name, predict] : modes) {
    phase(o, cat(model_dir, ": offloaded decode, ", name));
    m["offload_modes"][name] = offloaded_decode(model_dir, cache, predict, prompts, o);
    // Vanilla reports its reactive decode; Chronos its best predictive mode.
    const bool eligible = predictive ? predict != PredictMode::none : true;
    if (eligible && (best.empty() || m["offload_modes"][name]["tokens_per_s"] > m["offload_modes"][best]["tokens_per_s"])) best = name;
  }
  if (best.empty()) best = "reactive";
  const nlohmann::json& chosen = m["offload_modes"][best];
  m["offload_mode"] = best;
  m["offload_tokens_per_s"] = chosen["tokens_per_s"];
  m["hit_rate"] = chosen["hit_rate"];
  m["stall_ms_per_token"] = chosen["stall_ms_per_token"];
  m["ssd_mb_per_token"] = chosen["ssd_mb_per_token"];
  m["lookahead_recall"] = chosen.contains("lookahead_recall") ? chosen["lookahead_recall"] : nlohmann::json(nullptr);
  return m;
}

nlohmann::json greedy_agreement_json(const std::vector<std::vector<int64_t>>& a, const std::vector<std::vector<int64_t>>& b) {
  if (a.size() != b.size()) throw InvalidArgument(cat("greedy agreement: ", a.size(), " against ", b.size(), " generations"));
  TokenAgreement total;
  for (size_t i = 0; i < a.size(); ++i) total += token_agreement(a[i], b[i]);
  return {{"rate", total.rate()},
          {"compared", total.compared},
          {"equal", total.equal},
          {"mean_common_prefix", a.empty() ? 0.0 : static_cast<double>(total.common_prefix) / static_cast<double>(a.size())}};
}

}  // namespace chronos
