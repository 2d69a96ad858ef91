// chronos-compare's training half: the vanilla config, the shared initialisation, the stages both
// sides train with, and the run that ties training to the measurements (compare_measure.cpp).
#include "chronos/eval/compare.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "chronos/core/error.h"
#include "chronos/eval/compare_measure.h"
#include "chronos/io/json_file.h"
#include "chronos/io/atomic_file.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/pretrained.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/train/jsonl.h"

namespace fs = std::filesystem;

namespace chronos {

ModelConfig vanilla_config(const ModelConfig& chronos, double tolerance) {
  if (!chronos.is_chronos()) throw ConfigError(cat("compare: model_type must be chronos (got ", chronos.model_type, ")"));
  if (!chronos.use_moe) throw ConfigError("compare: the config must be a MoE (use_moe true)");
  if (!(tolerance >= 0 && tolerance < 1)) throw ConfigError(cat("compare: parameter tolerance must be in [0, 1) (got ", tolerance, ")"));
  ModelConfig v = chronos;
  v.lookahead_router = false;
  v.lambda_lookahead = v.lambda_lookahead_topk = v.lambda_lookahead_union = 0;
  v.use_hybrid_attention = false;
  v.fallback_mask_prob = 0;
  v.lambda_temporal = v.lambda_router_locality = v.lambda_router_anchor = 0;
  const double target = static_cast<double>(count_parameters(chronos));
  const auto gap = [&](const ModelConfig& c) { return (static_cast<double>(count_parameters(c)) - target) / target; };
  if (std::abs(gap(v)) > tolerance && v.num_shared_experts > 0) {
    // Parameters are linear in the shared width: one step of it is worth `per_unit` parameters.
    const int64_t width = v.resolved_shared_intermediate_size();
    ModelConfig wider = v;
    wider.shared_expert_intermediate_size = width + 1;
    const double per_unit = static_cast<double>(count_parameters(wider) - count_parameters(v));
    const double wanted = static_cast<double>(width) - gap(v) * target / per_unit;
    v.shared_expert_intermediate_size = std::max<int64_t>(1, std::llround(wanted));
  }
  if (std::abs(gap(v)) > tolerance)
    throw ConfigError(cat("compare: the vanilla model has ", count_parameters(v), " parameters against the Chronos model's ",
                          count_parameters(chronos), " (", gap(v) * 100, "%), beyond the ", tolerance * 100,
                          "% allowed, and no shared-expert width closes the gap"));
  v.validate();
  return v;
}

const char* to_string(CompareSide side) { return side == CompareSide::vanilla ? "vanilla" : "chronos"; }

void CompareOptions::validate() const {
  config.validate();
  if (out_dir.empty()) throw ConfigError("compare.out_dir must not be empty");
  if (stages.empty()) throw ConfigError("compare.stages must name at least one stage");
  for (size_t i = 0; i < stages.size(); ++i) {
    const CompareStage& s = stages[i];
    const std::string name = cat("compare stage ", i + 1, " (", train_stage_name(s.stage), ")");
    if (s.data.empty()) throw ConfigError(cat(name, ": no training data given"));
    if (!fs::is_regular_file(s.data)) throw IoError(cat(s.data, ": training data of ", name, " not found"));
    if (s.steps <= 0) throw ConfigError(cat(name, ": steps must be > 0 (got ", s.steps, ")"));
    if (s.batch_size < 0 || s.max_seq_len < 0 || !(s.lr >= 0))
      throw ConfigError(cat(name, ": batch size, sequence length and learning rate must not be negative"));
    if (s.max_seq_len > config.max_position_embeddings)
      throw ConfigError(cat(name, ": max_seq_len ", s.max_seq_len, " is beyond the model's context of ", config.max_position_embeddings));
    if (s.stage == TrainStage::Distill) throw ConfigError(cat(name, ": distillation needs a teacher; compare does not train one"));
  }
  if (!fs::is_regular_file(tokenizer)) throw IoError(cat(tokenizer.empty() ? std::string("(none)") : tokenizer, ": compare.tokenizer file not found"));
  if (grad_accum < 1) throw ConfigError(cat("compare.grad_accum must be >= 1 (got ", grad_accum, ")"));
  if (log_every < 0) throw ConfigError(cat("compare.log_every must not be negative (got ", log_every, ")"));
  measure.validate();
  if (measure.max_prompt_tokens + measure.max_new_tokens > config.max_position_embeddings)
    throw ConfigError(cat("compare: max_prompt_tokens + max_new_tokens (", measure.max_prompt_tokens + measure.max_new_tokens,
                          ") exceed the model's context of ", config.max_position_embeddings));
}

ComparePair make_compare_models(const ModelConfig& chronos_config, uint64_t seed) {
  const ModelConfig vanilla = vanilla_config(chronos_config);
  ComparePair pair;
  torch::manual_seed(seed);
  pair.chronos = ChronosForCausalLM(chronos_config).ptr();
  torch::manual_seed(seed);
  pair.vanilla = ChronosForCausalLM(vanilla).ptr();
  // Module order differs between the two (no LookaheadRouter, other attention), so the same seed
  // alone would give the experts different draws: copy what both have.
  at::NoGradGuard no_grad;
  const auto source = pair.chronos->named_parameters();
  for (auto& item : pair.vanilla->named_parameters()) {
    const at::Tensor* from = source.find(item.key());
    if (from && from->sizes() == item.value().sizes()) item.value().copy_(*from);
  }
  return pair;
}

std::unique_ptr<TrainingStage> make_compare_stage(const CompareOptions& options, size_t stage_index, CompareSide side,
                                                  const ModelConfig& side_config, const Tokenizer& tokenizer,
                                                  const std::string& previous_model_dir) {
  const CompareStage& s = options.stages.at(stage_index);
  const StageDefaults& d = stage_defaults(s.stage);
  StageRecipe recipe;
  recipe.stage = s.stage;
  recipe.data = s.data;
  recipe.batch_size = s.batch_size > 0 ? s.batch_size : d.batch_size;
  recipe.seed = options.seed + stage_index;
  RouterWeightOverrides overrides = options.lambdas;
  if (side == CompareSide::vanilla) {
    // The balance loss is the one router term a plain MoE trains with.
    const std::optional<double> balance = overrides.balance;
    overrides = RouterWeightOverrides{};
    overrides.balance = balance;
    overrides.anchor = 0.0;
  }
  recipe.weights = stage_router_weights(s.stage, side_config, overrides);
  const int64_t seq = s.max_seq_len > 0 ? s.max_seq_len : d.max_seq_len;
  const EncoderOptions encoder{std::min(seq, side_config.max_position_embeddings), static_cast<TokenId>(side_config.bos_token_id),
                               static_cast<TokenId>(side_config.eos_token_id), nullptr};
  std::shared_ptr<ChronosForCausalLMImpl> reference;
  if (stage_needs_reference(recipe)) {
    if (previous_model_dir.empty())
      throw ConfigError(cat("compare: stage ", train_stage_name(s.stage), " needs a starting model as its reference; put a stage before it"));
    reference = load_pretrained(previous_model_dir).ptr();
    for (auto& p : reference->parameters()) p.requires_grad_(false);
    reference->eval();
  }
  return make_training_stage(recipe, tokenizer, encoder, side_config.vocab_size, reference);
}

namespace {

void copy_tokenizer(const std::string& tokenizer, const std::string& dir) {
  fs::copy_file(tokenizer, fs::path(dir) / "tokenizer.json", fs::copy_options::overwrite_existing);
  const fs::path side = fs::path(tokenizer).parent_path() / "tokenizer_config.json";
  if (fs::is_regular_file(side)) fs::copy_file(side, fs::path(dir) / "tokenizer_config.json", fs::copy_options::overwrite_existing);
}

// The figure each stage is judged by, among the terms its log lines carry.
const char* stage_metric(TrainStage stage) {
  switch (stage) {
    case TrainStage::Pretrain:
    case TrainStage::Sft: return "ce";
    case TrainStage::Dpo: return "reward_margin";
    case TrainStage::Orpo: return "log_odds_ratio";
    case TrainStage::Grpo: return "reward";
    case TrainStage::Distill: return "kd";
  }
  return "loss";
}

// Mean of each scalar term over the last quarter of a run's log lines (at least one line): the
// stage's end state, less noisy than its last line.
nlohmann::json tail_means(const std::string& log_jsonl) {
  const JsonlFile file(log_jsonl);
  std::vector<nlohmann::json> lines;
  for (size_t i = 0; i < file.size(); ++i) {
    nlohmann::json j = file.parse(i);
    if (j.is_object() && j.contains("loss")) lines.push_back(std::move(j));  // not a router-control tick
  }
  nlohmann::json means = nlohmann::json::object();
  if (lines.empty()) return means;
  const size_t first = lines.size() - std::max<size_t>(1, lines.size() / 4);
  for (const auto& [key, value] : lines.back().items()) {
    if (!value.is_number() || key == "step" || key == "total_steps") continue;
    double sum = 0;
    size_t n = 0;
    for (size_t i = first; i < lines.size(); ++i)
      if (lines[i].contains(key) && lines[i][key].is_number()) sum += lines[i][key].get<double>(), ++n;
    if (n > 0) means[key] = sum / static_cast<double>(n);
  }
  return means;
}

nlohmann::json stages_json(const CompareOptions& options) {
  nlohmann::json stages = nlohmann::json::array();
  for (const CompareStage& s : options.stages) {
    const StageDefaults& d = stage_defaults(s.stage);
    stages.push_back({{"stage", train_stage_name(s.stage)},
                      {"data", s.data},
                      {"steps", s.steps},
                      {"batch_size", s.batch_size > 0 ? s.batch_size : d.batch_size},
                      {"max_seq_len", s.max_seq_len > 0 ? s.max_seq_len : d.max_seq_len},
                      {"lr", s.lr > 0 ? s.lr : d.lr}});
  }
  return stages;
}

// The loss weights given on top of the config's (null: the config's or the stage's).
nlohmann::json lambda_overrides_json(const RouterWeightOverrides& o) {
  const auto value = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {{"balance", value(o.balance)},   {"temporal", value(o.temporal)}, {"locality", value(o.locality)},
          {"lookahead", value(o.lookahead)}, {"anchor", value(o.anchor)}};
}

}  // namespace

SideTraining train_compare_side(const CompareOptions& options, CompareSide side, ChronosForCausalLMImpl& model, const Tokenizer& tokenizer) {
  SideTraining run;
  const ModelConfig config = model.config();
  const std::string root = (fs::path(options.out_dir) / to_string(side)).string();
  fs::create_directories(root);
  std::string previous = (fs::path(root) / "init").string();
  save_pretrained(model, previous);
  copy_tokenizer(options.tokenizer, previous);
  for (size_t i = 0; i < options.stages.size(); ++i) {
    const CompareStage& s = options.stages[i];
    const StageDefaults& d = stage_defaults(s.stage);
    const std::string name = train_stage_name(s.stage);
    const std::string key = run.stages.contains(name) ? cat(name, "_", i + 1) : name;  // a stage run twice
    if (options.on_phase) options.on_phase(cat(to_string(side), ": ", name, ", ", s.steps, " steps"));
    model.set_fallback_mask_prob(side == CompareSide::vanilla ? 0.0 : stage_fallback_mask_prob(s.stage, config));
    const std::unique_ptr<TrainingStage> stage = make_compare_stage(options, i, side, config, tokenizer, previous);

    TrainerOptions trainer;
    trainer.out_dir = (fs::path(root) / cat(i + 1, "_", name)).string();
    trainer.steps = s.steps;
    trainer.grad_accum = options.grad_accum;
    trainer.seed = options.seed + i;
    trainer.log_every = options.log_every > 0 ? options.log_every : std::max<int64_t>(1, s.steps / 20);
    trainer.log_jsonl = trainer.out_dir + ".jsonl";
    trainer.adamw.lr = s.lr > 0 ? s.lr : d.lr;
    trainer.autocast = c10::kFloat;
    trainer.on_progress = options.on_progress;
    std::error_code ignored;
    fs::remove(trainer.log_jsonl, ignored);  // a rerun into the same folder starts its log over
    torch::manual_seed(options.seed + i);    // dropout and expert-miss draws, alike on both sides
    const TrainingSummary summary = run_training(model, *stage, trainer);
    copy_tokenizer(options.tokenizer, trainer.out_dir);
    run.data_states.push_back(stage->data_state());

    nlohmann::json terms = tail_means(trainer.log_jsonl);
    const char* metric = stage_metric(s.stage);
    run.stages[key] = {{"metric", metric},
                        {"value", terms.contains(metric) ? terms[metric] : nlohmann::json(nullptr)},
                        {"final_terms", terms},
                        {"steps", summary.steps},
                        {"skipped_steps", summary.skipped_steps},
                        {"seconds", summary.seconds},
                        {"tokens_per_s", summary.tokens_per_s},
                        {"log", fs::relative(trainer.log_jsonl, options.out_dir).string()}};
    previous = trainer.out_dir;
  }
  run.model_dir = previous;
  return run;
}

MeasureOptions compare_measure_options(const CompareOptions& options) {
  MeasureOptions measure = options.measure;
  if (measure.calibration_data.empty() && !options.stages.empty()) measure.calibration_data = options.stages.front().data;
  measure.on_phase = options.on_phase;
  return measure;
}

nlohmann::json run_compare(const CompareOptions& options) {
  options.validate();
  fs::create_directories(options.out_dir);
  const Tokenizer tokenizer = Tokenizer::from_file(options.tokenizer);
  if (tokenizer.vocab_size() > options.config.vocab_size)
    throw ConfigError(cat(options.tokenizer, ": ", tokenizer.vocab_size(), " tokens do not fit the model's vocab_size ", options.config.vocab_size));

  const ComparePair pair = make_compare_models(options.config, options.seed);
  const SideTraining vanilla = train_compare_side(options, CompareSide::vanilla, *pair.vanilla, tokenizer);
  const SideTraining chronos = train_compare_side(options, CompareSide::chronos, *pair.chronos, tokenizer);

  const MeasureOptions measure = compare_measure_options(options);
  nlohmann::json out;
  std::vector<std::vector<int64_t>> vanilla_tokens, chronos_tokens;
  out["vanilla"] = measure_model(*pair.vanilla, vanilla.model_dir, tokenizer, measure, /*predictive=*/false, vanilla_tokens);
  out["vanilla"]["stages"] = vanilla.stages;
  out["chronos"] = measure_model(*pair.chronos, chronos.model_dir, tokenizer, measure, /*predictive=*/true, chronos_tokens);
  out["chronos"]["stages"] = chronos.stages;
  out["greedy_agreement"] = greedy_agreement_json(vanilla_tokens, chronos_tokens);

  const ModelConfig& plain = pair.vanilla->config();
  const ModelConfig& full = pair.chronos->config();
  out["settings"] = {{"chronos_config", full.to_json()},
                     {"vanilla_config", plain.to_json()},
                     {"parameter_ratio", static_cast<double>(count_parameters(plain)) / static_cast<double>(count_parameters(full))},
                     {"stages", stages_json(options)},
                     {"identical_data_order", vanilla.data_states == chronos.data_states},
                     {"lambda_overrides", lambda_overrides_json(options.lambdas)},
                     {"seed", options.seed},
                     {"grad_accum", options.grad_accum},
                     {"tokenizer", options.tokenizer},
                     {"heldout", measure.heldout},
                     {"prompts", measure.prompts},
                     {"calibration_data", measure.calibration_data},
                     {"eval_records", measure.eval_records},
                     {"eval_seq_len", measure.eval_seq_len},
                     {"num_prompts", measure.num_prompts},
                     {"max_prompt_tokens", measure.max_prompt_tokens},
                     {"max_new_tokens", measure.max_new_tokens},
                     {"ram_budget", measure.ram_budget},
                     {"compute_budget", measure.compute_budget},
                     {"ssd_ms", measure.throttle.latency_ms},
                     {"ssd_mbps", measure.throttle.mbps},
                     {"io_threads", measure.io_threads},
                     {"threads", at::get_num_threads()}};
  write_json_file((fs::path(options.out_dir) / "compare.json").string(), out);
  write_file_atomic((fs::path(options.out_dir) / "compare.md").string(), compare_markdown(out));
  return out;
}

}  // namespace chronos
