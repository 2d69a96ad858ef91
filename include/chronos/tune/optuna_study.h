// An Optuna study driven through Optuna's own command line (create-study, ask, tell, trials,
// best-trials, study set-user-attr; Debian's python3-optuna 3.1) over a SQLite file, so a tuning run
// can stop and resume and anyone can inspect the study with Optuna itself.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace chronos {

struct OptunaTrial {
  int64_t number = -1;
  nlohmann::json params = nlohmann::json::object();
  std::string state;           // RUNNING, COMPLETE, FAIL, PRUNED, WAITING
  std::vector<double> values;  // COMPLETE: one per direction
};

class OptunaStudy {
 public:
  // `storage_file`: the SQLite file (created when missing); `directions`: "minimize" / "maximize"
  // per objective; `program`: the optuna executable (searched on PATH).
  OptunaStudy(std::string storage_file, std::string study_name, std::vector<std::string> directions, std::string program = "optuna");

  // Creates the study unless it exists. Throws ConfigError when an existing study's directions
  // differ from these.
  void create();
  // A new trial from `sampler` (an Optuna sampler class, e.g. TPESampler, with its keyword arguments
  // as JSON) over `search_space` (optuna_search_space).
  OptunaTrial ask(const nlohmann::json& search_space, const std::string& sampler, const nlohmann::json& sampler_kwargs);
  void tell(int64_t number, const std::vector<double>& values);
  // Marks the trial failed and keeps `reason` in the study's user attribute "fail_reason_<number>".
  void tell_failed(int64_t number, const std::string& reason);
  std::vector<OptunaTrial> trials();
  std::vector<OptunaTrial> best_trials();  // the Pareto front as Optuna computes it
  // The study's user attributes (e.g. the failure reasons).
  nlohmann::json user_attrs();

  std::string storage_url() const;
  const std::vector<std::string>& directions() const { return directions_; }

 private:
  // Runs `optuna <command> --storage URL --study-name NAME <args>`; IoError with its stderr on failure.
  std::string run(const std::string& command, const std::vector<std::string>& args);
  std::vector<OptunaTrial> parse_trials(const std::string& json_text, const std::string& command);

  std::string storage_file_, study_name_;
  std::vector<std::string> directions_;
  std::string program_;
};

}  // namespace chronos
