// chronos-tune (docs/results.md "Tuning"): Optuna's TPE asks for a trial, the trial is trained and
// measured, its values are told back; two objectives (held-out perplexity, minimised, and offloaded
// decode tokens/s, maximised, or SSD MB/token, minimised), so the result is a Pareto front. The
// study lives in OUT/study.db: a run stops and resumes, and a trial a killed run left open is told
// failed. OUT/tune.json holds every trial, the front and its knee.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chronos/eval/compare.h"
#include "chronos/model/config.h"

namespace chronos {

enum class TuneObjective { offload_tokens_per_s, ssd_mb_per_token };
const char* to_string(TuneObjective objective);
TuneObjective parse_tune_objective(const std::string& name);  // InvalidArgument naming the choices

// What one trial gave: the two objective values and whatever else it measured.
struct TrialOutcome {
  double perplexity = 0;
  double second = 0;  // offloaded tokens/s or SSD MB/token, as TuneOptions::objective says
  nlohmann::json details = nlohmann::json::object();
};
// Trains and measures a trial's config in its own folder; throws (ConfigError, a NaN, out of memory)
// when the trial cannot give values, which is then told as failed with the message as its reason.
using TrialEvaluator = std::function<TrialOutcome(const ModelConfig& config, const std::string& trial_dir)>;

struct TuneOptions {
  ModelConfig base;                    // the config the trials vary
  std::vector<std::string> space;      // tunable_parameters() names
  int64_t trials = 20;                 // finished trials (complete or failed) the study should hold
  std::string out_dir;                 // study.db, tune.json, trials/NNNN/
  uint64_t seed = 0;                   // TPE's seed (offset by the trial count, so resumed runs draw anew)
  int64_t startup_trials = 5;          // TPE's random start
  TuneObjective objective = TuneObjective::offload_tokens_per_s;
  std::string optuna = "optuna";       // the Optuna executable
  std::function<void(const std::string& line)> on_trial;  // a line per trial started and ended
  // Throws ConfigError naming the field.
  void validate() const;
};

// Runs trials until the study holds options.trials finished ones; returns (and writes) tune.json.
nlohmann::json run_tune(const TuneOptions& options, const TrialEvaluator& evaluate);

// tune.json of the study in out_dir as it stands (trials, failure reasons, front, knee).
nlohmann::json tune_summary(const std::string& out_dir, TuneObjective objective, const std::string& optuna = "optuna");

// The Pareto front of `points` (one vector of objective values each) under `directions`
// ("minimize"/"maximize"), as indices sorted by the first objective, best first.
std::vector<size_t> pareto_front(const std::vector<std::vector<double>>& points, const std::vector<std::string>& directions);
// The front point nearest the ideal corner once each objective is scaled to [0, 1] over the front.
size_t knee_point(const std::vector<std::vector<double>>& points, const std::vector<size_t>& front, const std::vector<std::string>& directions);

// --apply-best: "knee" or an index into the front (sorted by perplexity). Copies that trial's
// config.json to out_dir/config.json and returns {"trial", "choice", "values", "config"}. Throws
// InvalidArgument for an index outside the front or an empty front.
nlohmann::json apply_best(const std::string& out_dir, const std::string& choice, TuneObjective objective, const std::string& optuna = "optuna");

// The real evaluator: the trial's config trained through `compare.stages` (compare.out_dir is
// replaced by the trial's folder) and measured as chronos-compare measures the Chronos side.
TrialEvaluator compare_trial_evaluator(const CompareOptions& compare, TuneObjective objective);

}  // namespace chronos
