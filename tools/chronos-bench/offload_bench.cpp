// chronos-bench offload: one model, one prompt file, one set of budgets, several ways of serving the
// routed experts, measured in one run (docs/offload.md "Benchmark"):
//   resident          all experts in memory (the reference for speed and for the tokens)
//   reactive          the expert store, loads on demand with LRU, no prediction (--predict none)
//   lookahead         + token-ahead and layer-ahead prefetch (--predict lookahead)
//   lookahead_intent  + the intent hot set loaded during the prefill (--predict both)
//   <mode>_int8, <mode>_int4: an offloaded mode on an int8 / int4 expert cache (expert_cache_int8,
//                     expert_cache_int4 in the model directory, packed first when missing)
//   <mode>_protect:   a predictive mode whose prefetches never evict a predicted expert (the
//                     eviction rule before the deadline rule; before any _int8 / _int4)
// The disk's own direct read rate (dd iflag=direct over the cache files) is measured in the same run.
// Each offloaded mode opens a fresh store (cold RAM tier) and keeps it, with its engine, across the
// prompts, as a server would. Under `wait` the greedy tokens must equal the resident ones; under
// `fallback` every mode is teacher-forced on the resident tokens, which gives the greedy agreement
// (how often the offloaded argmax is the resident token) and the perplexity of those tokens.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "chronos-bench/bench_common.h"
#include "chronos-bench/modes.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/eval/compare_measure.h"
#include "chronos/io/json_number.h"
#include "chronos/model/pretrained.h"
#include "chronos/routing/intent_classifier.h"
#include "chronos/routing/router_control.h"
#include "chronos/runtime/generation.h"
#include "chronos/runtime/offload_engine.h"
#include "chronos/store/pack.h"
#include "chronos/store/routing_trace.h"
#include "chronos/tokenizer/tokenizer.h"
#include "common/flag_checks.h"
#include "common/offload_flags.h"
#include "common/progress_line.h"
#include "common/runtime_flags.h"

namespace fs = std::filesystem;

namespace chronos::bench {
namespace {

const std::vector<std::string> kModes = {"resident", "reactive", "lookahead", "lookahead_intent"};
const std::vector<std::string> kStorages = {"int8", "int4"};  // suffixes of a mode: _int8, _int4

// A mode name split into its serving mode, the prefetch eviction rule and the expert cache's
// storage ("" for the model's own).
struct ModeName {
  std::string base, storage;
  bool protect = false;
};

bool strip_suffix(std::string& name, const std::string& suffix) {
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  name.resize(name.size() - suffix.size());
  return true;
}

ModeName split_mode(const std::string& name) {
  ModeName parts{name, ""};
  for (const std::string& s : kStorages)
    if (strip_suffix(parts.base, "_" + s)) {
      parts.storage = s;
      break;
    }
  parts.protect = strip_suffix(parts.base, "_protect");
  return parts;
}

struct OffloadBenchFlags {
  std::string model;
  std::string prompts;
  int64_t max_new_tokens = 64;
  int64_t max_prompt_tokens = 128;
  int64_t num_prompts = 0;  // 0: all
  std::string modes = "resident,reactive,lookahead,lookahead_intent,lookahead_intent_int8,lookahead_intent_int4";
  bool json = false;
  tools::OffloadFlags offload;
  tools::RuntimeFlags runtime;
};

// Totals of one mode over the prompts.
struct ModeTotals {
  int64_t prompts = 0, generated = 0, decode_tokens = 0;
  double decode_seconds = 0, ttft_seconds = 0;
  StoreStats store;  // summed per prompt
  MetricsSummary metrics;
  std::vector<PrecisionRecall> lookahead, router, layer_ahead;
  double lead_ms_sum = 0;
  int64_t late = 0, not_started = 0, unpredicted = 0;
  int64_t lead_tokens = 0;
  // The prefill (step 0) apart from the decode steps: a prompt's first reads are no prediction's.
  int64_t prefill_uses = 0, prefill_misses = 0;  // misses: not HOT at use (warm + cold)
  int64_t decode_steps = 0, decode_uses = 0, decode_hits = 0;
  int64_t decode_late = 0, decode_not_started = 0, decode_unpredicted = 0;
  int64_t same_tokens = 0;  // prompts whose tokens equal the resident ones (free-running modes)
  int64_t agree = 0, forced = 0;  // teacher-forced: argmax == resident token
  double logprob_sum = 0;
};

nlohmann::json mode_json(const ModeTotals& t, bool teacher_forced) {
  // The store's counters (rates, per generated token) and the bench's own figures beside them.
  nlohmann::json m = to_json(t.store, std::max<int64_t>(1, t.generated));
  m.update(nlohmann::json{
      {"tokens_per_s", t.decode_seconds > 0 ? t.decode_tokens / t.decode_seconds : 0},
      {"ttft_ms", t.prompts > 0 ? t.ttft_seconds * 1e3 / t.prompts : 0},
      {"generated_tokens", t.generated},
      {"prompts", t.prompts},
      {"prefill_misses_per_prompt", t.prompts > 0 ? static_cast<double>(t.prefill_misses) / t.prompts : 0.0},
      {"prefill_hit_rate", t.prefill_uses > 0 ? 1.0 - static_cast<double>(t.prefill_misses) / t.prefill_uses : 1.0},
      {"decode_hit_rate", t.decode_uses > 0 ? static_cast<double>(t.decode_hits) / t.decode_uses : 1.0}});
  if (teacher_forced) {
    m["greedy_agreement"] = t.forced > 0 ? static_cast<double>(t.agree) / t.forced : 1.0;
    m["perplexity"] = t.forced > 0 ? std::exp(-t.logprob_sum / t.forced) : 0.0;
  } else {
    m["same_tokens_as_resident"] = t.prompts > 0 ? static_cast<double>(t.same_tokens) / t.prompts : 1.0;
  }
  if (!t.lookahead.empty()) {
    m["lookahead_recall"] = nlohmann::json::array();
    m["lookahead_precision"] = nlohmann::json::array();
    m["router_recall"] = nlohmann::json::array();
    for (const PrecisionRecall& pr : t.lookahead) {
      m["lookahead_recall"].push_back(json_number(pr.recall()));
      m["lookahead_precision"].push_back(json_number(pr.precision()));
    }
    for (const PrecisionRecall& pr : t.router) m["router_recall"].push_back(json_number(pr.recall()));
    // Entry d-1: layer-ahead prediction from the MoE input d layers earlier.
    m["layer_ahead_recall"] = nlohmann::json::array();
    m["layer_ahead_precision"] = nlohmann::json::array();
    for (const PrecisionRecall& pr : t.layer_ahead) {
      m["layer_ahead_recall"].push_back(json_number(pr.recall()));
      m["layer_ahead_precision"].push_back(json_number(pr.precision()));
    }
    m["prefetch_lead_ms"] = t.lead_tokens > 0 ? t.lead_ms_sum / t.lead_tokens : 0.0;
    // Experts not in RAM when their layer came, per generated token, by why (TokenMetrics).
    const double per_token = t.generated > 0 ? 1.0 / static_cast<double>(t.generated) : 0;
    m["misses_per_token"] = {{"late", t.late * per_token}, {"not_started", t.not_started * per_token},
                             {"unpredicted", t.unpredicted * per_token}};
    // The same over the decode steps only, per decode step.
    const double per_step = t.decode_steps > 0 ? 1.0 / static_cast<double>(t.decode_steps) : 0;
    m["decode_misses_per_token"] = {{"late", t.decode_late * per_step}, {"not_started", t.decode_not_started * per_step},
                                    {"unpredicted", t.decode_unpredicted * per_step}};
  }
  return m;
}

std::vector<std::string> parse_modes(const std::string& list) {
  std::vector<std::string> modes;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    const ModeName parts = split_mode(name);
    if (std::find(kModes.begin(), kModes.end(), parts.base) == kModes.end() || (parts.base == "resident" && !parts.storage.empty()) ||
        (parts.protect && parts.base.rfind("lookahead", 0) != 0))
      throw InvalidArgument(cat("--modes: unknown mode \"", name,
                                "\" (expected resident, reactive, lookahead, lookahead_intent; offloaded ones may end in _int8 or _int4, "
                                "predictive ones in _protect before that)"));
    if (std::find(modes.begin(), modes.end(), name) == modes.end()) modes.push_back(name);
  }
  if (modes.empty()) throw InvalidArgument("--modes: no mode given");
  return modes;
}

// The model directory's expert_cache (storage "": the model's own dtype) or expert_cache_int8 /
// _int4, packed first (calibrated on the prompts) when missing.
std::string ensure_expert_cache(const OffloadBenchFlags& flags, const std::vector<std::vector<int64_t>>& prompts, const tools::Runtime& rt,
                                const std::string& storage) {
  const std::string name = storage.empty() ? "expert_cache" : "expert_cache_" + storage;
  const std::string dir = (fs::path(flags.model) / name).string();
  if (fs::exists(fs::path(dir) / "cluster_manifest.json")) return dir;
  log::info(cat("chronos-bench offload: ", flags.model, " has no ", name, "; packing it, calibrated on the prompts"));
  ChronosForCausalLM model = load_pretrained(flags.model, tools::load_options(rt, c10::kFloat));
  PackOptions options;
  options.out_dir = dir;
  options.storage = storage.empty() ? ExpertStorage::dense(stored_expert_dtype(flags.model)) : ExpertStorage::parse(storage);
  options.model_fingerprint = expert_weights_fingerprint(flags.model, model->config());  // as chronos-pack: the store checks it
  options.validate();
  check_cluster_budget(options, model->config());
  check_pack_folder(dir);
  pack_expert_cache(*model, record_routing(*model, prompts), options);
  return dir;
}

class OffloadBench {
 public:
  OffloadBench(const OffloadBenchFlags& flags, const tools::Runtime& rt, std::vector<std::vector<int64_t>> prompts, int64_t eos)
      : flags_(flags), rt_(rt), prompts_(std::move(prompts)), eos_(eos) {
    if (std::optional<RouterControl> control = load_router_control(flags_.model)) {
      control->freeze();
      router_control_ = std::make_unique<RouterControl>(std::move(*control));
    }
  }

  nlohmann::json run(const std::vector<std::string>& modes) {
    const bool fallback = parse_miss_policy(flags_.offload.miss_policy) == MissPolicy::fallback;
    // The resident tokens are the reference of every mode, so the resident run always happens.
    ModeTotals resident = run_resident(fallback);
    nlohmann::json out;
    out["modes"] = nlohmann::json::object();
    if (std::find(modes.begin(), modes.end(), "resident") != modes.end()) out["modes"]["resident"] = mode_json(resident, fallback);
    std::map<std::string, std::string> caches;  // by storage suffix
    for (const std::string& mode : modes) {
      if (mode == "resident") continue;
      const ModeName name = split_mode(mode);
      if (!caches.count(name.storage)) caches[name.storage] = ensure_expert_cache(flags_, prompts_, rt_, name.storage);
      const ModeTotals t = run_offloaded(mode, caches[name.storage], fallback);
      out["modes"][mode] = mode_json(t, fallback);
      if (name.base != "reactive" && !t.lookahead.empty() && !out.contains("lookahead_recall_t1")) {
        out["lookahead_recall_t1"] = json_number(t.lookahead[0].recall());
        out["lookahead_precision_t1"] = json_number(t.lookahead[0].precision());
        out["router_recall_t1"] = json_number(t.router[0].recall());
        out["layer_ahead_recall"] = out["modes"][mode]["layer_ahead_recall"];
        out["layer_ahead_precision"] = out["modes"][mode]["layer_ahead_precision"];
      }
    }
    const auto tps = [&](const std::string& m) { return out["modes"].contains(m) ? out["modes"][m]["tokens_per_s"].get<double>() : 0.0; };
    const double resident_tps = resident.decode_seconds > 0 ? resident.decode_tokens / resident.decode_seconds : 0;
    if (tps("lookahead_intent") > 0) {
      out["lookahead_intent_vs_resident"] = resident_tps > 0 ? tps("lookahead_intent") / resident_tps : 0.0;
      if (tps("reactive") > 0) out["lookahead_intent_vs_reactive"] = tps("lookahead_intent") / tps("reactive");
    }
    // The fastest predictive mode, quantized ones included, against resident and reactive decode.
    std::string best;
    for (const std::string& mode : modes)
      if (split_mode(mode).base.rfind("lookahead", 0) == 0 && (best.empty() || tps(mode) > tps(best))) best = mode;
    if (!best.empty()) {
      out["best_predictive_mode"] = best;
      out["best_vs_resident"] = resident_tps > 0 ? tps(best) / resident_tps : 0.0;
      if (tps("reactive") > 0) out["best_vs_reactive"] = tps(best) / tps("reactive");
    }
    // The disk itself, in this run: dd's direct read rate over the files the modes read (null where
    // the file system refuses O_DIRECT, as tmpfs does).
    for (const auto& [storage, dir] : caches) {
      const std::string name = storage.empty() ? "expert_cache" : "expert_cache_" + storage;
      try {
        double bytes = 0, seconds = 0;
        for (const ClusterFile& file : read_cluster_manifest(dir).clusters) {
          bytes += static_cast<double>(file.size_bytes);
          seconds += static_cast<double>(file.size_bytes) / dd_bytes_per_second(dir + "/" + file.file);
        }
        out["dd_direct_mb_per_s"][name] = seconds > 0 ? bytes / seconds / 1e6 : 0.0;
      } catch (const IoError& e) {
        log::warn(cat("chronos-bench offload: ", e.what()));
        out["dd_direct_mb_per_s"][name] = nullptr;
      }
    }
    out["setup"] = {{"model", flags_.model},
                    {"prompts_file", flags_.prompts},
                    {"prompts", prompts_.size()},
                    {"max_new_tokens", flags_.max_new_tokens},
                    {"compute_budget", flags_.offload.compute_budget},
                    {"ram_budget", flags_.offload.ram_budget},
                    {"miss_policy", flags_.offload.miss_policy},
                    {"ssd_ms", flags_.offload.ssd_ms},
                    {"ssd_mbps", flags_.offload.ssd_mbps},
                    {"prefetch_eviction", flags_.offload.prefetch_eviction},
                    {"pcie_gbps", flags_.offload.pcie_gbps},
                    {"pcie_ms", flags_.offload.pcie_ms},
                    {"io_threads", flags_.offload.io_threads},
                    {"device", rt_.device.str()},
                    {"threads", rt_.threads}};
    if (!store_line_.empty()) out["setup"]["store"] = store_line_;
    return out;
  }

 private:
  GenerationOptions options(size_t prompt, bool teacher_forced) const {
    GenerationOptions o;
    o.max_new_tokens = flags_.max_new_tokens;
    o.stop_ids = {eos_};
    o.sampling.greedy = true;
    o.router_control = router_control_.get();  // a trained router control's bias, frozen
    if (teacher_forced) {
      o.forced_tokens = reference_[prompt];
      o.record_logprobs = true;
    }
    return o;
  }

  void account(ModeTotals& t, size_t prompt, const GenerationResult& r, bool teacher_forced) {
    ++t.prompts;
    t.generated += r.stats.generated_tokens;
    t.decode_tokens += std::max<int64_t>(0, r.stats.generated_tokens - 1);
    t.decode_seconds += r.stats.decode_seconds;
    t.ttft_seconds += r.stats.time_to_first_token;
    if (teacher_forced) {
      for (size_t i = 0; i < r.sampled.size(); ++i) t.agree += r.sampled[i] == reference_[prompt][i];
      t.forced += static_cast<int64_t>(r.logprobs.size());
      for (double lp : r.logprobs) t.logprob_sum += lp;
    } else {
      t.same_tokens += r.tokens == reference_[prompt];
    }
  }

  ModeTotals run_resident(bool teacher_forced) {
    ChronosForCausalLM model = load_pretrained(flags_.model, tools::load_options(rt_, rt_.dtype));
    model->eval();
    generate(*model, prompts_[0], GenerationOptions{4});  // warm-up: first-call allocations
    tools::ProgressLine progress;
    ModeTotals t;
    for (size_t i = 0; i < prompts_.size(); ++i) {
      GenerationOptions o = options(i, false);
      o.record_logprobs = teacher_forced;
      const GenerationResult r = generate(*model, prompts_[i], o);
      reference_.push_back(r.tokens);
      account(t, i, r, false);
      if (teacher_forced) {  // the resident model on its own tokens: the perplexity the others compare with
        t.forced += static_cast<int64_t>(r.logprobs.size());
        t.agree += static_cast<int64_t>(r.logprobs.size());
        for (double lp : r.logprobs) t.logprob_sum += lp;
      }
      progress.update("resident", static_cast<int64_t>(i + 1), static_cast<int64_t>(prompts_.size()), "prompts");
    }
    progress.done();
    return t;
  }

  ModeTotals run_offloaded(const std::string& mode, const std::string& cache, bool teacher_forced) {
    LoadOptions load = tools::load_options(rt_, rt_.dtype);
    load.skip_routed_experts = true;
    ChronosForCausalLM model = load_pretrained(flags_.model, load);
    model->eval();
    std::optional<IntentClassifier> classifier;
    OffloadEngineConfig config;
    const ModeName name = split_mode(mode);
    const std::string& base = name.base;
    config.predict = base == "reactive" ? PredictMode::none : base == "lookahead" ? PredictMode::lookahead : PredictMode::both;
    if (config.predict == PredictMode::both) classifier = load_intent_classifier(flags_.model, model->config());
    tools::OffloadFlags offload = flags_.offload;
    offload.verify = "size";  // the bench opens the cache once per mode; checksums are still checked on every read
    if (name.protect) offload.prefetch_eviction = "protect";
    {  // warm-up on a store of its own, so each mode starts with a cold RAM tier
      const std::unique_ptr<ExpertStore> store = tools::open_expert_store(offload, cache, flags_.model, model->config(), rt_);
      OffloadEngine engine(*model, *store, config, classifier ? classifier->get() : nullptr);
      engine.generate(prompts_[0], GenerationOptions{4});
    }
    const std::unique_ptr<ExpertStore> store = tools::open_expert_store(offload, cache, flags_.model, model->config(), rt_);
    if (store_line_.empty()) store_line_ = tools::describe_store(*store);
    OffloadEngine engine(*model, *store, config, classifier ? classifier->get() : nullptr);
    tools::ProgressLine progress;
    ModeTotals t;
    for (size_t i = 0; i < prompts_.size(); ++i) {
      store->reset_stats();
      const GenerationResult r = engine.generate(prompts_[i], options(i, teacher_forced));
      account(t, i, r, teacher_forced);
      t.store += store->stats();
      const MetricsSummary m = engine.metrics().summary();
      pool(t.lookahead, m.lookahead);
      pool(t.router, m.router);
      pool(t.layer_ahead, m.layer_ahead);
      t.late += m.late;
      t.not_started += m.not_started;
      t.unpredicted += m.unpredicted;
      for (const TokenMetrics& token : engine.metrics().tokens()) {
        t.lead_ms_sum += token.prefetch_lead_ms * static_cast<double>(token.prefetched_used);
        t.lead_tokens += token.prefetched_used;
        const int64_t uses = token.hits + token.warm + token.cold;
        if (token.step == 0) {
          t.prefill_uses += uses;
          t.prefill_misses += token.warm + token.cold;
          continue;
        }
        ++t.decode_steps;
        t.decode_uses += uses;
        t.decode_hits += token.hits;
        t.decode_late += token.late;
        t.decode_not_started += token.not_started;
        t.decode_unpredicted += token.unpredicted;
      }
      progress.update(mode.c_str(), static_cast<int64_t>(i + 1), static_cast<int64_t>(prompts_.size()), "prompts");
    }
    progress.done();
    if (config.predict == PredictMode::none) t.lookahead.clear();  // nothing was prefetched: recall is not this mode's
    return t;
  }

  const OffloadBenchFlags& flags_;
  tools::Runtime rt_;
  std::vector<std::vector<int64_t>> prompts_;
  int64_t eos_;
  std::vector<std::vector<int64_t>> reference_;  // the resident greedy tokens per prompt
  std::string store_line_;
  std::unique_ptr<RouterControl> router_control_;  // the model directory's trained one (frozen), if any
};

void print_table(const nlohmann::json& out, const std::vector<std::string>& modes, bool teacher_forced) {
  const double resident = out["modes"].contains("resident") ? out["modes"]["resident"]["tokens_per_s"].get<double>() : 0;
  std::cout << out["setup"].value("store", std::string()) << "\n"
            << out["setup"]["prompts"] << " prompts, " << out["setup"]["max_new_tokens"] << " new tokens each, greedy\n\n";
  std::cout << "| mode | tokens/s | vs resident | hit rate | warm | cold | stall ms/token | SSD MB/token | copied MB/token | TTFT ms |"
            << (teacher_forced ? " greedy agreement | perplexity |" : " same tokens |") << "\n"
            << "|---|---|---|---|---|---|---|---|---|---|" << (teacher_forced ? "---|---|" : "---|") << "\n";
  std::cout << std::fixed;
  for (const std::string& name : modes) {
    if (!out["modes"].contains(name)) continue;
    const nlohmann::json& m = out["modes"][name];
    const double tps = m["tokens_per_s"].get<double>();
    std::cout << std::setprecision(1) << "| " << name << " | " << tps << " | " << std::setprecision(2)
              << (resident > 0 ? tps / resident : 0) << "x | " << m["hit_rate"].get<double>() << " | " << m["warm_rate"].get<double>()
              << " | " << m["cold_rate"].get<double>() << " | " << m["stall_ms_per_token"].get<double>() << " | "
              << m["ssd_mb_per_token"].get<double>() << " | " << m["copied_mb_per_token"].get<double>() << " | " << std::setprecision(1)
              << m["ttft_ms"].get<double>() << " |" << std::setprecision(3);
    if (teacher_forced) std::cout << " " << m["greedy_agreement"].get<double>() << " | " << m["perplexity"].get<double>() << " |";
    else std::cout << " " << m["same_tokens_as_resident"].get<double>() << " |";
    std::cout << "\n";
  }
  std::cout << std::setprecision(3);
  if (out.contains("lookahead_recall_t1"))
    std::cout << "\nlookahead prediction of the t+1 experts: recall " << out["lookahead_recall_t1"] << ", precision "
              << out["lookahead_precision_t1"] << " (the LookaheadRouter alone: recall " << out["router_recall_t1"] << ")\n";
  if (out.contains("lookahead_intent_vs_resident"))
    std::cout << "lookahead_intent: " << out["lookahead_intent_vs_resident"] << "x resident"
              << (out.contains("lookahead_intent_vs_reactive") ? cat(", ", out["lookahead_intent_vs_reactive"].get<double>(), "x reactive") : "")
              << "\n";
  if (out.contains("layer_ahead_recall"))
    std::cout << "layer-ahead prediction (1, 2, ... layers early): recall " << out["layer_ahead_recall"] << ", precision "
              << out["layer_ahead_precision"] << "\n";
  if (out.contains("best_predictive_mode"))
    std::cout << "best predictive mode " << out["best_predictive_mode"].get<std::string>() << ": " << out["best_vs_resident"] << "x resident"
              << (out.contains("best_vs_reactive") ? cat(", ", out["best_vs_reactive"].get<double>(), "x reactive") : "") << "\n";
  if (out.contains("dd_direct_mb_per_s")) std::cout << "dd iflag=direct over the cache files, MB/s: " << out["dd_direct_mb_per_s"] << "\n";
}

int run_offload(const OffloadBenchFlags& flags) {
  const tools::Runtime rt = tools::apply_runtime_flags(flags.runtime);
  const std::vector<std::string> modes = parse_modes(flags.modes);
  parse_miss_policy(flags.offload.miss_policy);  // a bad value fails before any work
  const ModelConfig config = ModelConfig::load((fs::path(flags.model) / "config.json").string());
  require_model_directory(flags.model);
  const std::string tokenizer_path = (fs::path(flags.model) / "tokenizer.json").string();
  if (!fs::is_regular_file(tokenizer_path)) throw IoError(cat(flags.model, ": the model directory has no tokenizer.json"));
  const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path);
  std::vector<std::vector<int64_t>> prompts = read_prompt_ids(flags.prompts, tokenizer, flags.max_prompt_tokens, flags.num_prompts);
  for (size_t i = 0; i < prompts.size(); ++i)
    if (static_cast<int64_t>(prompts[i].size()) + flags.max_new_tokens > config.max_position_embeddings)
      throw InvalidArgument(cat(flags.prompts, ": prompt ", i + 1, " (", prompts[i].size(), " tokens) + --max-new-tokens ",
                                flags.max_new_tokens, " exceed the model's context of ", config.max_position_embeddings));
  OffloadBench bench(flags, rt, std::move(prompts), config.eos_token_id);
  const nlohmann::json out = bench.run(modes);
  const bool teacher_forced = parse_miss_policy(flags.offload.miss_policy) == MissPolicy::fallback;
  if (flags.json) std::cout << out.dump() << std::endl;
  else print_table(out, modes, teacher_forced);
  return 0;
}

}  // namespace

tools::Subcommand add_offload_mode(CLI::App& app) {
  auto flags = std::make_shared<OffloadBenchFlags>();
  CLI::App* cmd = app.add_subcommand("offload", "Decode from offloaded experts: resident vs reactive vs lookahead vs lookahead + intent");
  cmd->add_option("--model", flags->model, "Model directory (its expert_cache is packed first when missing)")->required();
  cmd->add_option("--prompts", flags->prompts, "JSONL prompts: {\"text\": ...} or chat records ({\"conversations\": [...]})")->required();
  cmd->add_option("--max-new-tokens", flags->max_new_tokens, "Greedy tokens generated per prompt")->capture_default_str()->check(tools::positive());
  cmd->add_option("--max-prompt-tokens", flags->max_prompt_tokens, "Keep the last this many tokens of each prompt")
      ->capture_default_str()->check(tools::positive());
  cmd->add_option("--num-prompts", flags->num_prompts, "Use the first N prompts (0: all)")->capture_default_str()->check(tools::non_negative());
  cmd->add_option("--modes", flags->modes, "Comma-separated modes to run")->capture_default_str();
  cmd->add_flag("--json", flags->json, "Print one JSON object instead of the table");
  tools::add_offload_flags(*cmd, flags->offload, /*with_cache_flag=*/false);
  tools::add_runtime_flags(*cmd, flags->runtime);
  return {cmd, [flags] { return run_offload(*flags); }};
}

}  // namespace chronos::bench
