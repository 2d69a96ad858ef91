// chronos-tune against Optuna's real command line with a fake trainer: the ask/tell round trip,
// failed trials recorded with their reason, resuming after the tuner was killed mid-trial, and
// --apply-best. Exits 77 (a ctest skip) when the optuna program is missing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <thread>

#include "chronos/core/error.h"
#include "chronos/core/subprocess.h"
#include "chronos/io/json_file.h"
#include "chronos/tune/optuna_study.h"
#include "chronos/tune/tuner.h"
#include "support/temp_dir.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

namespace fs = std::filesystem;

TuneOptions small_tune(const std::string& dir, int64_t trials) {
  TuneOptions o;
  o.base = testing::tiny_config();
  o.space = {"lambda_balance", "num_experts"};
  o.trials = trials;
  o.out_dir = dir;
  o.startup_trials = 2;
  return o;
}

// Values that follow the parameters, so the front means something: more experts are faster here
// and a larger balance weight costs perplexity.
TrialOutcome fake_outcome(const ModelConfig& c) {
  TrialOutcome t;
  t.perplexity = 100 + 1000 * c.lambda_balance + static_cast<double>(c.num_experts);
  t.second = 10.0 * static_cast<double>(c.num_experts) - 100 * c.lambda_balance;
  t.details = {{"fake", true}};
  return t;
}

TEST(OptunaTune, AskTellRoundTrip) {
  testing::TempDir dir;
  std::vector<ModelConfig> seen;
  const nlohmann::json summary = run_tune(small_tune(dir.path(), 2), [&](const ModelConfig& c, const std::string& trial_dir) {
    EXPECT_TRUE(fs::is_regular_file(fs::path(trial_dir) / "config.json"));
    seen.push_back(c);
    return fake_outcome(c);
  });
  ASSERT_EQ(seen.size(), 2u);
  ASSERT_EQ(summary["trials"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const nlohmann::json& t = summary["trials"][i];
    EXPECT_EQ(t["state"], "COMPLETE");
    EXPECT_EQ(t["params"]["num_experts"].get<int64_t>(), seen[i].num_experts);
    EXPECT_DOUBLE_EQ(t["values"][0].get<double>(), fake_outcome(seen[i]).perplexity);
    EXPECT_DOUBLE_EQ(t["values"][1].get<double>(), fake_outcome(seen[i]).second);
    EXPECT_EQ(t["figures"]["fake"], true);
  }
  // What Optuna itself holds: the same trials and values, and the same front.
  OptunaStudy study((fs::path(dir.path()) / "study.db").string(), "chronos", {"minimize", "maximize"});
  const std::vector<OptunaTrial> trials = study.trials();
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_EQ(trials[1].state, "COMPLETE");
  EXPECT_DOUBLE_EQ(trials[1].values[0], fake_outcome(seen[1]).perplexity);
  std::vector<int64_t> optuna_front;
  for (const OptunaTrial& t : study.best_trials()) optuna_front.push_back(t.number);
  std::vector<int64_t> ours = summary["pareto"].get<std::vector<int64_t>>();
  std::sort(ours.begin(), ours.end());
  EXPECT_EQ(ours, optuna_front);
  EXPECT_EQ(read_json_file(dir.file("tune.json"))["trials"].size(), 2u);
  // A study of another objective cannot be continued in the same folder.
  TuneOptions other = small_tune(dir.path(), 3);
  other.objective = TuneObjective::ssd_mb_per_token;
  EXPECT_THROW(run_tune(other, [](const ModelConfig& c, const std::string&) { return fake_outcome(c); }), ConfigError);
}

TEST(OptunaTune, FailedTrialsAreToldAsFailedWithTheirReason) {
  testing::TempDir dir;
  int call = 0;
  const nlohmann::json summary = run_tune(small_tune(dir.path(), 3), [&](const ModelConfig& c, const std::string&) -> TrialOutcome {
    ++call;
    if (call == 1) throw ConfigError("hidden_size 130 is not a multiple of num_attention_heads 4");
    if (call == 2) {
      TrialOutcome nan = fake_outcome(c);
      nan.perplexity = std::nan("");
      return nan;
    }
    return fake_outcome(c);
  });
  ASSERT_EQ(summary["trials"].size(), 3u);
  EXPECT_EQ(summary["trials"][0]["state"], "FAIL");
  EXPECT_NE(summary["trials"][0]["reason"].get<std::string>().find("not a multiple"), std::string::npos);
  EXPECT_EQ(summary["trials"][1]["state"], "FAIL");
  EXPECT_NE(summary["trials"][1]["reason"].get<std::string>().find("non-finite"), std::string::npos);
  EXPECT_EQ(summary["trials"][2]["state"], "COMPLETE");
  EXPECT_EQ(summary["pareto"], nlohmann::json::array({2}));
  // The reason is in the study, for anyone reading it with Optuna.
  OptunaStudy study((fs::path(dir.path()) / "study.db").string(), "chronos", {"minimize", "maximize"});
  EXPECT_TRUE(study.user_attrs().contains("fail_reason_0"));
  EXPECT_EQ(study.trials()[0].state, "FAIL");
}

TEST(OptunaTune, ResumesAfterTheTunerWasKilledMidTrial) {
  testing::TempDir dir;
  const std::string marker = dir.file("second_trial_started");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the tuner that gets killed: its second trial never ends
    int call = 0;
    run_tune(small_tune(dir.path(), 3), [&](const ModelConfig& c, const std::string&) {
      if (++call == 2) {
        testing::write_bytes(marker, "x");
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      return fake_outcome(c);
    });
    ::_exit(0);
  }
  for (int i = 0; i < 1200 && !fs::exists(marker); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(fs::exists(marker)) << "the first tuner never reached its second trial";

  int calls = 0;
  const nlohmann::json summary = run_tune(small_tune(dir.path(), 3), [&](const ModelConfig& c, const std::string&) {
    ++calls;
    return fake_outcome(c);
  });
  EXPECT_EQ(calls, 1);  // trial 0 was done, trial 1 is closed as interrupted, trial 2 is new
  ASSERT_EQ(summary["trials"].size(), 3u);
  EXPECT_EQ(summary["trials"][0]["state"], "COMPLETE");
  EXPECT_EQ(summary["trials"][1]["state"], "FAIL");
  EXPECT_NE(summary["trials"][1]["reason"].get<std::string>().find("interrupted"), std::string::npos);
  EXPECT_EQ(summary["trials"][2]["state"], "COMPLETE");
}

TEST(OptunaTune, ApplyBestWritesTheChosenTrialsConfig) {
  testing::TempDir dir;
  EXPECT_THROW(apply_best(dir.path(), "knee", TuneObjective::offload_tokens_per_s), IoError);  // no study yet
  const nlohmann::json summary =
      run_tune(small_tune(dir.path(), 4), [](const ModelConfig& c, const std::string&) { return fake_outcome(c); });
  const nlohmann::json knee = apply_best(dir.path(), "knee", TuneObjective::offload_tokens_per_s);
  EXPECT_EQ(knee["trial"], summary["knee"]);
  const ModelConfig written = ModelConfig::load(dir.file("config.json"));
  for (const nlohmann::json& t : summary["trials"])
    if (t["number"] == summary["knee"]) EXPECT_EQ(written.num_experts, t["params"]["num_experts"].get<int64_t>());
  EXPECT_EQ(read_json_file(dir.file("tune.json"))["chosen"], summary["knee"]);
  const nlohmann::json first = apply_best(dir.path(), "0", TuneObjective::offload_tokens_per_s);
  EXPECT_EQ(first["trial"], summary["pareto"][0]);
  EXPECT_THROW(apply_best(dir.path(), std::to_string(summary["pareto"].size()), TuneObjective::offload_tokens_per_s), InvalidArgument);
  EXPECT_THROW(apply_best(dir.path(), "best", TuneObjective::offload_tokens_per_s), InvalidArgument);
}

bool optuna_available() {
  try {
    return run_process({"optuna", "--version"}).exit_code == 0;
  } catch (const IoError&) {
    return false;
  }
}

}  // namespace
}  // namespace chronos

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!chronos::optuna_available()) {
    std::cout << "skipped: the optuna program is missing (tools/setup_deps.sh installs python3-optuna)" << std::endl;
    return 77;
  }
  return RUN_ALL_TESTS();
}
