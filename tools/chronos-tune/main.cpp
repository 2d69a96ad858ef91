// chronos-tune: Optuna's TPE over the Chronos config (chronos/tune/tuner.h), each trial trained and
// measured as chronos-compare measures the Chronos side; a Pareto front of held-out perplexity
// against offloaded decode speed (or SSD traffic). --apply-best writes the chosen trial's config.
#include <iostream>
#include <sstream>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/tune/search_space.h"
#include "chronos/tune/tuner.h"
#include "common/compare_flags.h"
#include "common/flag_checks.h"
#include "common/progress_line.h"
#include "common/runtime_flags.h"
#include "common/tool_main.h"

using namespace chronos;

namespace {

struct Flags {
  tools::CompareFlags compare;
  int64_t trials = 20;
  int64_t startup_trials = 5;
  std::string space;  // empty: every tunable parameter
  std::string objective = "offload_tokens_per_s";
  std::string optuna = "optuna";
  std::string apply_best;
  tools::RuntimeFlags runtime;
};

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> names;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');)
    if (!name.empty()) names.push_back(name);
  return names;
}

void print_front(const nlohmann::json& summary) {
  std::cout << "| front | trial | perplexity | " << summary["objectives"][1].get<std::string>() << " | parameters |\n|---|---|---|---|---|\n";
  size_t index = 0;
  for (const nlohmann::json& number : summary["pareto"])
    for (const nlohmann::json& t : summary["trials"])
      if (t["number"] == number)
        std::cout << "| " << index++ << (number == summary["knee"] ? " (knee)" : "") << " | " << number << " | " << t["values"][0] << " | "
                  << t["values"][1] << " | " << t["params"].dump() << " |\n";
  int64_t failed = 0;
  for (const nlohmann::json& t : summary["trials"]) failed += t["state"] == "FAIL";
  std::cout << "\n" << summary["trials"].size() << " trials, " << failed << " failed; study " << summary["study"].get<std::string>() << "\n";
}

int run(const Flags& f) {
  const tools::Runtime rt = tools::apply_runtime_flags(f.runtime);
  if (!rt.device.is_cpu()) log::warn("chronos-tune trains and measures on the CPU; --device is not used");
  const TuneObjective objective = parse_tune_objective(f.objective);
  if (f.compare.out.empty()) throw InvalidArgument("give --out DIR (the study's folder)");
  if (!f.apply_best.empty()) {
    const nlohmann::json chosen = apply_best(f.compare.out, f.apply_best, objective, f.optuna);
    std::cout << "trial " << chosen["trial"] << " (" << f.apply_best << "): perplexity " << chosen["values"][0] << ", " << f.objective << " "
              << chosen["values"][1] << "; config written to " << chosen["config"].get<std::string>() << std::endl;
    return 0;
  }
  for (const auto& [flag, value] : {std::pair<const char*, const std::string&>{"--config", f.compare.config},
                                    {"--data", f.compare.data}, {"--tokenizer", f.compare.tokenizer},
                                    {"--heldout", f.compare.measure.heldout}, {"--prompts", f.compare.measure.prompts}})
    if (value.empty()) throw InvalidArgument(cat("give ", flag, " (or --apply-best alone to choose from a finished study)"));
  if (f.compare.steps <= 0) throw InvalidArgument("give --steps N (pretraining steps per trial)");

  CompareOptions compare = tools::compare_options(f.compare);
  tools::ProgressLine progress;
  compare.on_phase = [&](const std::string& phase) {
    progress.done();
    log::debug(cat("tune: ", phase));
  };
  compare.on_progress = [&](const TrainingProgress& p) { progress.show(describe(p)); };
  TuneOptions options;
  options.base = compare.config;
  options.space = f.space.empty() ? tunable_parameters() : split_list(f.space);
  options.trials = f.trials;
  options.out_dir = f.compare.out;
  options.seed = f.compare.seed;
  options.startup_trials = f.startup_trials;
  options.objective = objective;
  options.optuna = f.optuna;
  options.on_trial = [&](const std::string& line) {
    progress.done();
    log::info(line);
  };
  const nlohmann::json summary = run_tune(options, compare_trial_evaluator(compare, objective));
  progress.done();
  print_front(summary);
  std::cout << "written: " << f.compare.out << "/tune.json (plot: tools/plot.py tune " << f.compare.out
            << "; choose: chronos-tune --out " << f.compare.out << " --apply-best knee)" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tools::configure_openmp_waiting(argv);
  return tools::run_tool("chronos-tune", [&] {
    Flags f;
    CLI::App app{"chronos-tune: Optuna TPE over the Chronos config; a Pareto front of held-out perplexity against offloaded decode"};
    tools::add_compare_flags(app, f.compare, /*required=*/false);
    std::string known;
    for (const std::string& n : tunable_parameters()) known += (known.empty() ? "" : ", ") + n;
    app.add_option("--trials", f.trials, "Finished trials the study should hold (a resumed run adds the rest)")->capture_default_str()->check(tools::positive(1e6));
    app.add_option("--startup-trials", f.startup_trials, "Random trials before TPE models the results")->capture_default_str()->check(tools::non_negative(1e6));
    app.add_option("--space", f.space, "Comma-separated parameters to tune (default: all of " + known + ")");
    app.add_option("--objective", f.objective, "Second objective: offload_tokens_per_s (maximised) or ssd_mb_per_token (minimised)")
        ->capture_default_str()
        ->check(CLI::IsMember({"offload_tokens_per_s", "ssd_mb_per_token"}));
    app.add_option("--optuna", f.optuna, "The Optuna command-line program")->capture_default_str();
    app.add_option("--apply-best", f.apply_best, "knee, or an index into the Pareto front (sorted by perplexity): write that trial's config to OUT/config.json");
    tools::add_runtime_flags(app, f.runtime, /*with_dtype=*/false);
    if (auto code = tools::parse_command_line(app, argc, argv, "chronos-tune")) return *code;
    return run(f);
  });
}
