// The training loop on tiny generated fixtures: losses fall, a resumed run equals a straight one,
// checkpoints are pruned, non-finite losses are skipped and then stop the run.
#include "chronos/train/trainer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <cmath>
#include <functional>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/model/pretrained.h"
#include "chronos/routing/router_control.h"
#include "chronos/train/checkpoint.h"
#include "chronos/train/lm_stages.h"
#include "chronos/train/preference_stages.h"
#include "chronos/train/rl_stages.h"
#include "support/temp_dir.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

namespace fs = std::filesystem;
const std::string kMiniMind = std::string(CHRONOS_SOURCE_DIR) + "/tests/data/minimind/tokenizer.json";

// Corpora in the style of the reference's tests: seeded word salads over a small vocabulary.
const std::vector<std::string> kWords = {"the", "quick", "brown", "fox", "machine", "learning", "model", "expert", "router",
                                         "cluster", "memory", "cache", "prefetch", "latency", "tensor", "token"};

std::string words(std::mt19937& rng, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += (i ? " " : "") + kWords[rng() % kWords.size()];
  return out;
}

void write_pretrain(const std::string& path, int records) {
  std::mt19937 rng(20260421);
  std::ofstream out(path);
  for (int i = 0; i < records; ++i) out << nlohmann::json({{"text", words(rng, 24)}}).dump() << "\n";
}

void write_sft(const std::string& path, int records) {
  std::mt19937 rng(20260422);
  std::ofstream out(path);
  for (int i = 0; i < records; ++i) {
    nlohmann::json conv = {{{"role", "user"}, {"content", "name " + words(rng, 3)}}, {{"role", "assistant"}, {"content", words(rng, 6)}}};
    out << nlohmann::json({{"conversations", conv}}).dump() << "\n";
  }
}

void write_preference(const std::string& path, int records) {
  std::mt19937 rng(20260423);
  const std::vector<std::string> noise = {"zzz", "qqq", "@@@", "###", "%%%", "&&&", "***"};
  std::ofstream out(path);
  for (int i = 0; i < records; ++i) {
    const std::string prompt = "pick " + words(rng, 2);
    std::string bad;
    for (int w = 0; w < 6; ++w) bad += (w ? " " : "") + noise[rng() % noise.size()];
    auto side = [&](const std::string& answer) {
      return nlohmann::json::array({{{"role", "user"}, {"content", prompt}}, {{"role", "assistant"}, {"content", answer}}});
    };
    out << nlohmann::json({{"chosen", side(words(rng, 6))}, {"rejected", side(bad)}}).dump() << "\n";
  }
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kMiniMind)) GTEST_SKIP() << "MiniMind tokenizer not found";
    tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_file(kMiniMind));
    config = testing::tiny_config();
    config.vocab_size = 6400;
    write_pretrain(dir.file("pretrain.jsonl"), 64);
    write_sft(dir.file("sft.jsonl"), 64);
    write_preference(dir.file("pref.jsonl"), 64);
  }

  // First and last `n` logged values of `key`, averaged.
  std::pair<double, double> start_end(const std::string& log, const std::string& key, size_t n) {
    std::ifstream in(log);
    std::vector<double> v;
    std::string line;
    while (std::getline(in, line)) v.push_back(nlohmann::json::parse(line)[key].get<double>());
    EXPECT_GE(v.size(), 2 * n);
    double a = 0, b = 0;
    for (size_t i = 0; i < n; ++i) a += v[i] / n, b += v[v.size() - 1 - i] / n;
    return {a, b};
  }

  ChronosForCausalLM fresh_model() {
    at::manual_seed(0);
    return ChronosForCausalLM(config);
  }

  TrainerOptions options(const std::string& out, int64_t steps) {
    TrainerOptions o;
    o.out_dir = dir.file(out);
    o.steps = steps;
    o.adamw.lr = 3e-3;
    o.log_every = 1000;
    return o;
  }

  LmStageOptions stage_options(const std::string& data) {
    LmStageOptions s;
    s.data_path = dir.file(data);
    s.batch_size = 4;
    return s;
  }

  // The largest absolute difference between two models' parameters.
  static double max_parameter_difference(ChronosForCausalLMImpl& x, ChronosForCausalLMImpl& y) {
    const auto a = x.parameters(), b = y.parameters();
    EXPECT_EQ(a.size(), b.size());
    double worst = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
    return worst;
  }

  // A pretraining run of `steps` (grad-accum 2) into `out`, stopped after `stop_at` (0: none), or
  // resumed from the newest checkpoint there.
  ChronosForCausalLM pretrain_run(const std::string& out, int64_t steps, int64_t stop_at, int64_t save_every, bool resume,
                                  const RouterControlOptions& control) {
    ChronosForCausalLM model = fresh_model();
    std::string checkpoint;
    if (resume) {
      checkpoint = latest_checkpoint(dir.file(out)).value();
      model = load_pretrained(checkpoint);
    }
    PretrainStage stage(*tokenizer, {32, 1, 2}, stage_options("pretrain.jsonl"));
    TrainerOptions o = options(out, steps);
    o.grad_accum = 2;
    o.stop_at = stop_at;
    o.save_every = save_every;
    o.resume_checkpoint = checkpoint;
    o.router_control = control;
    run_training(*model, stage, o);
    return model;
  }

  // Mean CE of the first and last `n` logged steps (read back from --log-jsonl).
  std::pair<double, double> ce_start_end(const std::string& log, size_t n) {
    std::ifstream in(log);
    std::vector<double> ce;
    std::string line;
    while (std::getline(in, line)) ce.push_back(nlohmann::json::parse(line)["ce"].get<double>());
    EXPECT_GE(ce.size(), 2 * n);
    double a = 0, b = 0;
    for (size_t i = 0; i < n; ++i) a += ce[i] / n, b += ce[ce.size() - 1 - i] / n;
    return {a, b};
  }

  std::unique_ptr<Tokenizer> tokenizer;
  ModelConfig config;
  testing::TempDir dir;
};

TEST_F(TrainerTest, PretrainLossFalls) {
  ChronosForCausalLM model = fresh_model();
  PretrainStage stage(*tokenizer, {32, 1, 2}, stage_options("pretrain.jsonl"));
  TrainerOptions o = options("pre", 30);
  o.log_every = 1;
  o.log_jsonl = dir.file("pre.jsonl");
  const TrainingSummary s = run_training(*model, stage, o);
  EXPECT_TRUE(s.finished);
  EXPECT_EQ(s.steps, 30);
  // The run's own rate: every token trained on over the run's time (30 steps of 4 x 32 here at most).
  EXPECT_GT(s.tokens_per_s, 0);
  EXPECT_LE(s.tokens_per_s * s.seconds, 30.0 * 4 * 32 + 1e-6);
  auto [first, last] = ce_start_end(dir.file("pre.jsonl"), 5);
  EXPECT_LT(last, first - 1.0) << "CE " << first << " -> " << last;
  EXPECT_NO_THROW(require_model_directory(dir.file("pre")));
  EXPECT_NO_THROW(load_pretrained(dir.file("pre")));
}

TEST_F(TrainerTest, SftLossFallsAndAnchorIsLogged) {
  ChronosForCausalLM model = fresh_model();
  save_pretrained(*model, dir.file("start"));
  std::shared_ptr<ChronosForCausalLMImpl> reference = load_pretrained(dir.file("start")).ptr();
  LmStageOptions so = stage_options("sft.jsonl");
  so.weights.router_anchor = 0.01;
  SftStage stage(*tokenizer, {64, 1, 2}, so, reference);
  TrainerOptions o = options("sft", 30);
  o.log_every = 1;
  o.log_jsonl = dir.file("sft.log");
  run_training(*model, stage, o);
  auto [first, last] = ce_start_end(dir.file("sft.log"), 5);
  EXPECT_LT(last, first - 1.0) << "CE " << first << " -> " << last;
  std::ifstream in(dir.file("sft.log"));
  std::string line;
  std::getline(in, line);
  EXPECT_TRUE(nlohmann::json::parse(line).contains("anchor"));
}

TEST_F(TrainerTest, ResumeEqualsAStraightRun) {
  auto run = [&](const std::string& out, int64_t stop_at, int64_t save_every, bool resume) {
    return pretrain_run(out, 20, stop_at, save_every, resume, {});
  };
  ChronosForCausalLM straight = run("straight", 0, 0, false);
  run("resumed", 10, 10, false);
  ChronosForCausalLM resumed = run("resumed", 0, 0, true);
  EXPECT_LE(max_parameter_difference(*straight, *resumed), 1e-6);
}

// The Chronovisor at pressure_scale 0 ticks every step (one log line each) and changes no weight.
TEST_F(TrainerTest, ChronovisorAtZeroPressureChangesNothing) {
  auto run = [&](const std::string& out, const RouterControlOptions& control) {
    ChronosForCausalLM model = fresh_model();
    PretrainStage stage(*tokenizer, {32, 1, 2}, stage_options("pretrain.jsonl"));
    TrainerOptions o = options(out, 8);
    o.router_control = control;
    o.log_jsonl = dir.file(out + ".log");
    run_training(*model, stage, o);
    return model;
  };
  ChronosForCausalLM plain = run("plain", {});
  RouterControlOptions silent_control;
  silent_control.kind = RouterControlKind::chronovisor;
  silent_control.chronovisor.pressure_scale = 0;
  silent_control.chronovisor.micro_period = 1;
  silent_control.chronovisor.macro_period = 2;
  ChronosForCausalLM silent = run("silent", silent_control);
  const auto a = plain->parameters(), b = silent->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << "parameter " << i;

  std::ifstream in(dir.file("silent.log"));
  std::string line;
  int64_t ticks = 0;
  while (std::getline(in, line)) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (!record.contains("chronovisor")) continue;
    EXPECT_EQ(record["step"], ++ticks);
    EXPECT_EQ(record["chronovisor"]["tick"], ticks);
    EXPECT_EQ(record["chronovisor"]["coherence"].size(), static_cast<size_t>(config.num_hidden_layers));
    EXPECT_EQ(record["chronovisor"]["lens"][0].size(), static_cast<size_t>(config.num_experts));
  }
  EXPECT_EQ(ticks, 8);
  EXPECT_TRUE(fs::exists(dir.file("silent/router_control.json")));
  EXPECT_FALSE(fs::exists(dir.file("plain/router_control.json")));
}

// A run with a router control stopped and resumed equals a straight one, the controller's state
// included; resuming it without the control, or a plain run with one, is refused.
TEST_F(TrainerTest, RouterControlResumeEqualsAStraightRun) {
  for (const RouterControlKind kind : {RouterControlKind::chronovisor, RouterControlKind::aux_free}) {
    RouterControlOptions control;
    control.kind = kind;
    control.chronovisor.pressure_scale = 0.5;
    control.chronovisor.micro_period = 2;
    control.chronovisor.macro_period = 4;
    control.aux_free_step = 0.01;
    const std::string tag = to_string(kind);
    auto run = [&](const std::string& out, int64_t stop_at, int64_t save_every, bool resume, const RouterControlOptions& c) {
      return pretrain_run(out, 12, stop_at, save_every, resume, c);
    };
    ChronosForCausalLM straight = run(tag + "_straight", 0, 0, false, control);
    run(tag + "_resumed", 7, 7, false, control);
    EXPECT_TRUE(fs::exists(dir.file(tag + "_resumed/checkpoints/step_00000007/router_control.json")));
    try {
      run(tag + "_resumed", 0, 0, true, {});
      ADD_FAILURE() << "resumed without the router control";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("router control " + tag), std::string::npos) << e.what();
    }
    ChronosForCausalLM resumed = run(tag + "_resumed", 0, 0, true, control);
    EXPECT_LE(max_parameter_difference(*straight, *resumed), 1e-6) << tag;
    const nlohmann::json end_straight = read_json_file(dir.file(tag + "_straight/router_control.json"));
    EXPECT_EQ(end_straight["ticks"], 12);
    EXPECT_EQ(end_straight, read_json_file(dir.file(tag + "_resumed/router_control.json"))) << tag;
    EXPECT_NE(RouterControl::from_state(end_straight).bias(), nullptr) << tag << ": the control never biased the routers";
  }
  pretrain_run("plain_stop", 4, 2, 2, false, {});
  RouterControlOptions aux_free;
  aux_free.kind = RouterControlKind::aux_free;
  EXPECT_THROW(pretrain_run("plain_stop", 4, 0, 0, true, aux_free), InvalidArgument);
}

TEST_F(TrainerTest, KeepsTheNewestCheckpoints) {
  ChronosForCausalLM model = fresh_model();
  PretrainStage stage(*tokenizer, {16, 1, 2}, stage_options("pretrain.jsonl"));
  TrainerOptions o = options("ckpt", 6);
  o.save_every = 1;
  o.keep = 2;
  run_training(*model, stage, o);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.file("ckpt/checkpoints"))) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"step_00000005", "step_00000006"}));
  const TrainerState state = read_trainer_state(dir.file("ckpt/checkpoints/step_00000006"));
  EXPECT_EQ(state.step, 6);
  EXPECT_EQ(state.stage, "pretrain");
}

// A trainer_state.json edited by hand (or damaged) is refused with the field at fault, never
// resumed at a nonsense step or data position.
TEST_F(TrainerTest, TamperedTrainerStateIsRefused) {
  ChronosForCausalLM model = fresh_model();
  PretrainStage stage(*tokenizer, {16, 1, 2}, stage_options("pretrain.jsonl"));
  TrainerOptions o = options("tamper", 2);
  o.save_every = 2;
  run_training(*model, stage, o);
  const std::string checkpoint = dir.file("tamper/checkpoints/step_00000002");
  const std::string path = checkpoint + "/trainer_state.json";
  const nlohmann::json good = read_json_file(path);
  const auto expect_refused = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& fragment, bool at_resume) {
    nlohmann::json state = good;
    edit(state);
    write_json_file(path, state);
    try {
      if (!at_resume) {
        read_trainer_state(checkpoint);
      } else {
        PretrainStage again(*tokenizer, {16, 1, 2}, stage_options("pretrain.jsonl"));
        TrainerOptions resume = options("tamper", 2);
        resume.resume_checkpoint = checkpoint;
        run_training(*model, again, resume);
      }
      FAIL() << "accepted " << state.dump();
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_refused([](nlohmann::json& s) { s["step"] = 99; }, "step 99 is past total_steps 2", false);
  expect_refused([](nlohmann::json& s) { s["step"] = -1; }, "field 'step' must be an integer >= 0", false);
  expect_refused([](nlohmann::json& s) { s["total_steps"] = "many"; }, "field 'total_steps' must be an integer >= 1", false);
  expect_refused([](nlohmann::json& s) { s.erase("seed"); }, "field 'seed' is missing", false);
  expect_refused([](nlohmann::json& s) { s["data"]["position"] = 1 << 30; }, "does not fit the 64 records", true);
  expect_refused([](nlohmann::json& s) { s["data"]["epoch"] = -4; }, "data.epoch must be a non-negative integer", true);
  expect_refused([](nlohmann::json& s) { s["data"]["carry"] = {1, 2, 1 << 30}; }, "data.carry must be a list of token ids below 6400", true);
}

TEST(TrainerOptions, ValidateNamesTheField) {
  const auto expect_field = [](const std::function<void(TrainerOptions&)>& edit, const std::string& fragment) {
    TrainerOptions o;
    o.out_dir = "out";
    o.steps = 10;
    edit(o);
    try {
      o.validate();
      FAIL() << "accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_field([](TrainerOptions& o) { o.out_dir.clear(); }, "trainer.out_dir");
  expect_field([](TrainerOptions& o) { o.steps = 0; }, "trainer.steps or epochs must be > 0");
  expect_field([](TrainerOptions& o) { o.grad_accum = 0; }, "trainer.grad_accum must be >= 1 (got 0)");
  expect_field([](TrainerOptions& o) { o.grad_clip = -1; }, "trainer.grad_clip");
  expect_field([](TrainerOptions& o) { o.adamw.lr = std::nan(""); }, "trainer.adamw.lr");
  expect_field([](TrainerOptions& o) { o.log_every = 0; }, "trainer.log_every");
}

// A log that cannot be written ends the run with an error instead of a silently truncated file.
TEST_F(TrainerTest, UnwritableLogFailsTheRun) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  ChronosForCausalLM model = fresh_model();
  PretrainStage stage(*tokenizer, {16, 1, 2}, stage_options("pretrain.jsonl"));
  TrainerOptions o = options("full", 2);
  o.log_every = 1;
  o.log_jsonl = "/dev/full";
  EXPECT_THROW(run_training(*model, stage, o), IoError);
}

TEST_F(TrainerTest, DpoAndOrpoMarginsRise) {
  for (bool orpo : {false, true}) {
    ChronosForCausalLM model = fresh_model();
    save_pretrained(*model, dir.file("pref_start"));
    std::shared_ptr<ChronosForCausalLMImpl> reference = load_pretrained(dir.file("pref_start")).ptr();
    PreferenceStageOptions po;
    po.data = stage_options("pref.jsonl");
    po.orpo = orpo;
    po.orpo_config.beta = 1.0;
    PreferenceStage stage(*tokenizer, {64, 1, 2}, po, reference);
    EXPECT_EQ(stage.name(), orpo ? "orpo" : "dpo");
    TrainerOptions o = options(orpo ? "orpo" : "dpo", 25);
    o.adamw.lr = 1e-3;
    o.log_every = 1;
    o.log_jsonl = dir.file(orpo ? "orpo.log" : "dpo.log");
    run_training(*model, stage, o);
    auto [first, last] = start_end(o.log_jsonl, orpo ? "log_odds_ratio" : "reward_margin", 5);
    EXPECT_GT(last, first + 0.5) << (orpo ? "orpo" : "dpo") << ": " << first << " -> " << last;
  }
}

TEST_F(TrainerTest, GrpoRaisesTheToyReward) {
  ChronosForCausalLM model = fresh_model();
  save_pretrained(*model, dir.file("grpo_start"));
  std::shared_ptr<ChronosForCausalLMImpl> reference = load_pretrained(dir.file("grpo_start")).ptr();
  GrpoStageOptions go;
  go.data = stage_options("sft.jsonl");  // only the user turns are used
  go.group_size = 8;
  go.max_new_tokens = 16;
  go.loss.objective = PolicyObjective::ClippedRatio;
  GrpoStage stage(*tokenizer, {64, 1, 2}, go, reference, make_reward("toy"));
  TrainerOptions o = options("grpo", 60);
  o.adamw.lr = 1e-2;
  o.log_every = 1;
  o.log_jsonl = dir.file("grpo.log");
  run_training(*model, stage, o);
  auto [first, last] = start_end(o.log_jsonl, "reward", 10);
  EXPECT_GT(last, first + 0.05) << "mean toy reward " << first << " -> " << last;
  EXPECT_THROW(make_reward("llm"), InvalidArgument);
}

TEST_F(TrainerTest, DistillLossFallsWithALargerTeacher) {
  ModelConfig teacher_config = config;
  teacher_config.hidden_size = 96;  // another size, same vocabulary
  teacher_config.num_attention_heads = 6;
  teacher_config.num_key_value_heads = 2;
  at::manual_seed(5);
  std::shared_ptr<ChronosForCausalLMImpl> teacher = ChronosForCausalLM(teacher_config).ptr();
  teacher->eval();
  ChronosForCausalLM model = fresh_model();
  DistillStage stage(*tokenizer, {64, 1, 2}, stage_options("sft.jsonl"), DistillConfig{}, teacher, nullptr);
  TrainerOptions o = options("distill", 30);
  o.log_every = 1;
  o.log_jsonl = dir.file("distill.log");
  run_training(*model, stage, o);
  auto [first, last] = start_end(o.log_jsonl, "kd", 5);
  EXPECT_LT(last, first * 0.7) << "KD " << first << " -> " << last;
}

TEST_F(TrainerTest, AnchorKeepsRoutingCloserToTheStart) {
  ChronosForCausalLM start = fresh_model();
  save_pretrained(*start, dir.file("anchor_start"));
  std::shared_ptr<ChronosForCausalLMImpl> reference = load_pretrained(dir.file("anchor_start")).ptr();
  const at::Tensor probe = at::randint(3, 6400, {2, 24});
  auto router_kl = [&](double anchor) {
    ChronosForCausalLM model = load_pretrained(dir.file("anchor_start"));
    LmStageOptions so = stage_options("sft.jsonl");
    so.weights.router_anchor = anchor;
    SftStage stage(*tokenizer, {64, 1, 2}, so, reference);
    TrainerOptions o = options(anchor > 0 ? "anchored" : "free", 25);
    run_training(*model, stage, o);
    at::NoGradGuard no_grad;
    model->eval();
    const at::Tensor p = mean_router_probs(model->forward(probe).router_probs);
    const at::Tensor q = mean_router_probs(reference->forward(probe).router_probs);
    return router_anchor_kl(p, q).item<double>();
  };
  const double free = router_kl(0.0), anchored = router_kl(1.0);
  EXPECT_LT(anchored, free) << "router KL to the start: anchored " << anchored << ", free " << free;
}

// A stage whose loss is NaN: every step is skipped, and the run stops after max_bad_steps.
class NanStage : public TrainingStage {
 public:
  void set_data_shard(const DataShard&) override {}
  std::string name() const override { return "nan"; }
  MicroStep micro_step(ChronosForCausalLMImpl& model) override {
    MicroStep m;
    m.loss = model.lm_head_weight().sum() * std::numeric_limits<double>::quiet_NaN();
    return m;
  }
  int64_t micro_batches_per_epoch() override { return 1; }
  nlohmann::json data_state() const override { return {}; }
  void restore_data_state(const nlohmann::json&) override {}
};

TEST_F(TrainerTest, NonFiniteStepsAreSkippedThenStopTheRun) {
  ChronosForCausalLM model = fresh_model();
  const at::Tensor before = model->lm_head_weight().clone();
  NanStage stage;
  TrainerOptions o = options("nan", 10);
  o.max_bad_steps = 3;
  try {
    run_training(*model, stage, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 non-finite steps in a row"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(at::equal(before, model->lm_head_weight()));  // no update was applied
}

TEST_F(TrainerTest, EpochsApplyTheLastPartialWindow) {
  ChronosForCausalLM model = fresh_model();
  write_sft(dir.file("five.jsonl"), 5);
  LmStageOptions so = stage_options("five.jsonl");
  so.batch_size = 1;
  SftStage stage(*tokenizer, {64, 1, 2}, so, nullptr);
  TrainerOptions o = options("epochs", 0);
  o.epochs = 1;
  o.grad_accum = 2;  // 5 micro-batches: steps of 2, 2 and a last one of 1
  const TrainingSummary s = run_training(*model, stage, o);
  EXPECT_EQ(s.steps, 3);
  EXPECT_TRUE(s.finished);
}

}  // namespace
}  // namespace chronos
