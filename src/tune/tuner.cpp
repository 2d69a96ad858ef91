#include "chronos/tune/tuner.h"

#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/model/causal_lm.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/tune/optuna_study.h"
#include "chronos/tune/search_space.h"

namespace fs = std::filesystem;

namespace chronos {

const char* to_string(TuneObjective objective) {
  return objective == TuneObjective::offload_tokens_per_s ? "offload_tokens_per_s" : "ssd_mb_per_token";
}

TuneObjective parse_tune_objective(const std::string& name) {
  if (name == "offload_tokens_per_s") return TuneObjective::offload_tokens_per_s;
  if (name == "ssd_mb_per_token") return TuneObjective::ssd_mb_per_token;
  throw InvalidArgument(cat("objective '", name, "': expected offload_tokens_per_s or ssd_mb_per_token"));
}

void TuneOptions::validate() const {
  base.validate();
  optuna_search_space(space);  // names known, none twice
  if (trials < 1) throw ConfigError(cat("tune.trials must be >= 1 (got ", trials, ")"));
  if (startup_trials < 0) throw ConfigError(cat("tune.startup_trials must not be negative (got ", startup_trials, ")"));
  if (out_dir.empty()) throw ConfigError("tune.out_dir must not be empty");
  if (optuna.empty()) throw ConfigError("tune.optuna must name the Optuna executable");
}

namespace {

const char* kStudyName = "chronos";

std::vector<std::string> directions(TuneObjective objective) {
  return {"minimize", objective == TuneObjective::offload_tokens_per_s ? "maximize" : "minimize"};
}

OptunaStudy open_study(const std::string& out_dir, TuneObjective objective, const std::string& optuna) {
  return OptunaStudy((fs::absolute(out_dir) / "study.db").string(), kStudyName, directions(objective), optuna);
}

std::string trial_dir(const std::string& out_dir, int64_t number) {
  std::ostringstream name;
  name << std::setw(4) << std::setfill('0') << number;
  return (fs::path(out_dir) / "trials" / name.str()).string();
}

bool finished(const OptunaTrial& t) { return t.state == "COMPLETE" || t.state == "FAIL" || t.state == "PRUNED"; }

// Whether a is at least as good as b in every objective and better in one.
bool dominates(const std::vector<double>& a, const std::vector<double>& b, const std::vector<std::string>& dirs) {
  bool better = false;
  for (size_t i = 0; i < dirs.size(); ++i) {
    const double x = dirs[i] == "minimize" ? a[i] : -a[i], y = dirs[i] == "minimize" ? b[i] : -b[i];
    if (x > y) return false;
    better |= x < y;
  }
  return better;
}

}  // namespace

std::vector<size_t> pareto_front(const std::vector<std::vector<double>>& points, const std::vector<std::string>& dirs) {
  std::vector<size_t> front;
  for (size_t i = 0; i < points.size(); ++i) {
    if (points[i].size() != dirs.size()) throw InvalidArgument(cat("pareto front: point ", i, " has ", points[i].size(), " values for ", dirs.size(), " objectives"));
    bool dominated = false;
    for (size_t j = 0; j < points.size() && !dominated; ++j) dominated = j != i && dominates(points[j], points[i], dirs);
    if (!dominated) front.push_back(i);
  }
  std::stable_sort(front.begin(), front.end(), [&](size_t a, size_t b) {
    return dirs[0] == "minimize" ? points[a][0] < points[b][0] : points[a][0] > points[b][0];
  });
  return front;
}

size_t knee_point(const std::vector<std::vector<double>>& points, const std::vector<size_t>& front, const std::vector<std::string>& dirs) {
  if (front.empty()) throw InvalidArgument("knee point: the front is empty");
  size_t best = front.front();
  double best_distance = std::numeric_limits<double>::infinity();
  for (size_t p : front) {
    double distance = 0;
    for (size_t i = 0; i < dirs.size(); ++i) {
      double low = std::numeric_limits<double>::infinity(), high = -low;
      for (size_t q : front) low = std::min(low, points[q][i]), high = std::max(high, points[q][i]);
      const double ideal = dirs[i] == "minimize" ? low : high;
      const double scaled = high > low ? std::abs(points[p][i] - ideal) / (high - low) : 0.0;
      distance += scaled * scaled;
    }
    if (distance < best_distance) best_distance = distance, best = p;
  }
  return best;
}

nlohmann::json tune_summary(const std::string& out_dir, TuneObjective objective, const std::string& optuna) {
  if (!fs::is_regular_file(fs::path(out_dir) / "study.db")) throw IoError(cat(out_dir, ": no study.db (run chronos-tune into this folder first)"));
  OptunaStudy study = open_study(out_dir, objective, optuna);
  const std::vector<OptunaTrial> trials = study.trials();
  const nlohmann::json reasons = study.user_attrs();
  nlohmann::json out = {{"study", study.storage_url()},
                        {"study_name", kStudyName},
                        {"objectives", {"perplexity", to_string(objective)}},
                        {"directions", study.directions()},
                        {"trials", nlohmann::json::array()}};
  std::vector<std::vector<double>> points;
  std::vector<int64_t> numbers;
  for (const OptunaTrial& t : trials) {
    nlohmann::json j = {{"number", t.number}, {"state", t.state}, {"params", t.params}, {"values", t.values},
                        {"config", fs::relative(trial_dir(out_dir, t.number), out_dir).string() + "/config.json"}};
    const std::string key = cat("fail_reason_", t.number);
    if (reasons.contains(key)) j["reason"] = reasons[key];
    const fs::path result = fs::path(trial_dir(out_dir, t.number)) / "result.json";
    if (t.state == "COMPLETE" && fs::is_regular_file(result)) j["figures"] = read_json_file(result.string()).value("figures", nlohmann::json());
    out["trials"].push_back(j);
    if (t.state == "COMPLETE" && t.values.size() == 2) {
      points.push_back(t.values);
      numbers.push_back(t.number);
    }
  }
  out["pareto"] = nlohmann::json::array();
  out["knee"] = nullptr;
  if (!points.empty()) {
    const std::vector<size_t> front = pareto_front(points, study.directions());
    for (size_t i : front) out["pareto"].push_back(numbers[i]);
    out["knee"] = numbers[knee_point(points, front, study.directions())];
  }
  const fs::path previous = fs::path(out_dir) / "tune.json";
  if (fs::is_regular_file(previous)) {  // keep an earlier --apply-best choice
    const nlohmann::json earlier = read_json_file(previous.string());
    if (earlier.contains("chosen")) out["chosen"] = earlier["chosen"];
  }
  write_json_file(previous.string(), out);
  return out;
}

nlohmann::json run_tune(const TuneOptions& options, const TrialEvaluator& evaluate) {
  options.validate();
  fs::create_directories(fs::path(options.out_dir) / "trials");
  OptunaStudy study = open_study(options.out_dir, options.objective, options.optuna);
  study.create();
  const auto say = [&](const std::string& line) {
    if (options.on_trial) options.on_trial(line);
  };
  // A trial a killed run left open can never be told: close it as failed.
  std::vector<OptunaTrial> trials = study.trials();
  for (const OptunaTrial& t : trials)
    if (t.state == "RUNNING") {
      study.tell_failed(t.number, "interrupted: the tuner stopped during this trial");
      say(cat("trial ", t.number, ": left open by an interrupted run, told as failed"));
    }
  const nlohmann::json space = optuna_search_space(options.space);
  int64_t asked = static_cast<int64_t>(trials.size());
  int64_t done = static_cast<int64_t>(std::count_if(trials.begin(), trials.end(), [](const OptunaTrial& t) { return finished(t) || t.state == "RUNNING"; }));
  nlohmann::json summary;
  while (done < options.trials) {
    // A fresh process per ask: the sampler's seed must move on with the study, or its random start repeats.
    const nlohmann::json kwargs = {{"seed", options.seed + static_cast<uint64_t>(asked)}, {"n_startup_trials", options.startup_trials}};
    const OptunaTrial trial = study.ask(space, "TPESampler", kwargs);
    ++asked;
    const std::string dir = trial_dir(options.out_dir, trial.number);
    fs::create_directories(dir);
    say(cat("trial ", trial.number, " (", done + 1, " of ", options.trials, "): ", trial.params.dump()));
    nlohmann::json result = {{"number", trial.number}, {"params", trial.params}};
    try {
      const ModelConfig config = apply_trial_params(options.base, trial.params);
      config.save((fs::path(dir) / "config.json").string());
      const TrialOutcome outcome = evaluate(config, dir);
      if (!std::isfinite(outcome.perplexity) || !std::isfinite(outcome.second))
        throw InvalidArgument(cat("non-finite objective (perplexity ", outcome.perplexity, ", ", to_string(options.objective), " ",
                                  outcome.second, "): the training diverged"));
      result["state"] = "COMPLETE";
      result["values"] = {outcome.perplexity, outcome.second};
      result["figures"] = outcome.details;
      write_json_file((fs::path(dir) / "result.json").string(), result);
      study.tell(trial.number, {outcome.perplexity, outcome.second});
      say(cat("trial ", trial.number, ": perplexity ", outcome.perplexity, ", ", to_string(options.objective), " ", outcome.second));
    } catch (const std::exception& e) {
      // One line: a reason, not a traceback.
      std::string reason = e.what();
      if (const size_t nl = reason.find('\n'); nl != std::string::npos) reason.resize(nl);
      result["state"] = "FAIL";
      result["reason"] = reason;
      write_json_file((fs::path(dir) / "result.json").string(), result);
      study.tell_failed(trial.number, reason);
      say(cat("trial ", trial.number, ": failed: ", reason));
    }
    ++done;
    summary = tune_summary(options.out_dir, options.objective, options.optuna);  // tune.json after every trial
  }
  return summary.is_null() ? tune_summary(options.out_dir, options.objective, options.optuna) : summary;
}

nlohmann::json apply_best(const std::string& out_dir, const std::string& choice, TuneObjective objective, const std::string& optuna) {
  nlohmann::json summary = tune_summary(out_dir, objective, optuna);
  const nlohmann::json& front = summary["pareto"];
  if (front.empty()) throw InvalidArgument(cat(out_dir, ": no completed trial yet, so no front to choose from"));
  int64_t number = -1;
  if (choice == "knee" || choice == "KNEE") {
    number = summary["knee"].get<int64_t>();
  } else {
    size_t used = 0;
    int64_t index = -1;
    try {
      index = std::stoll(choice, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != choice.size() || index < 0 || index >= static_cast<int64_t>(front.size()))
      throw InvalidArgument(cat("--apply-best ", choice, ": expected knee or an index 0..", front.size() - 1, " into the front of ", front.size(),
                                " trials (sorted by perplexity)"));
    number = front[static_cast<size_t>(index)].get<int64_t>();
  }
  const std::string config = (fs::path(trial_dir(out_dir, number)) / "config.json").string();
  const ModelConfig chosen = ModelConfig::load(config);
  chosen.save((fs::path(out_dir) / "config.json").string());
  nlohmann::json values;
  for (const nlohmann::json& t : summary["trials"])
    if (t["number"] == number) values = t["values"];
  summary["chosen"] = number;
  write_json_file((fs::path(out_dir) / "tune.json").string(), summary);
  return {{"trial", number}, {"choice", choice}, {"values", values}, {"config", (fs::path(out_dir) / "config.json").string()}};
}

TrialEvaluator compare_trial_evaluator(const CompareOptions& compare, TuneObjective objective) {
  return [compare, objective](const ModelConfig& config, const std::string& dir) {
    CompareOptions o = compare;
    o.config = config;
    o.out_dir = dir;
    o.validate();
    const Tokenizer tokenizer = Tokenizer::from_file(o.tokenizer);
    if (tokenizer.vocab_size() > config.vocab_size)
      throw ConfigError(cat(o.tokenizer, ": ", tokenizer.vocab_size(), " tokens do not fit vocab_size ", config.vocab_size));
    torch::manual_seed(o.seed);
    ChronosForCausalLM model(config);
    const SideTraining trained = train_compare_side(o, CompareSide::chronos, *model, tokenizer);
    std::vector<std::vector<int64_t>> tokens;
    nlohmann::json figures = measure_model(*model, trained.model_dir, tokenizer, compare_measure_options(o), /*predictive=*/true, tokens);
    figures["stages"] = trained.stages;
    // The trial keeps its final model; the starting weights and the expert cache are rebuilt on demand.
    std::error_code ignored;
    fs::remove_all(fs::path(dir) / "chronos" / "init", ignored);
    fs::remove_all(fs::path(trained.model_dir) / "expert_cache", ignored);
    TrialOutcome outcome;
    outcome.perplexity = figures["perplexity"].is_number() ? figures["perplexity"].get<double>() : std::nan("");
    const char* key = objective == TuneObjective::offload_tokens_per_s ? "offload_tokens_per_s" : "ssd_mb_per_token";
    outcome.second = figures[key].is_number() ? figures[key].get<double>() : std::nan("");
    outcome.details = figures;
    return outcome;
  };
}

}  // namespace chronos
