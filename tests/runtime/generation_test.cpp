#include "chronos/runtime/generation.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>

#include "chronos/core/error.h"
#include "chronos/routing/router_control.h"
#include "chronos/runtime/decode_run.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

struct GenerationFixture : ::testing::Test {
  void SetUp() override {
    at::manual_seed(0);
    config = testing::tiny_config();  // window 8
    model = ChronosForCausalLM(config);
    model->eval();
    for (int i = 0; i < 10; ++i) prompt.push_back((i * 7 + 3) % config.vocab_size);
  }
  ModelConfig config;
  ChronosForCausalLM model{nullptr};
  std::vector<int64_t> prompt;
};

TEST(GenerationOptions, ValidateNamesTheField) {
  const auto expect_field = [](const GenerationOptions& o, const std::string& fragment) {
    try {
      o.validate();
      FAIL() << "accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  EXPECT_NO_THROW(GenerationOptions{}.validate());
  GenerationOptions o;
  o.max_new_tokens = -1;
  expect_field(o, "generation.max_new_tokens");
  o = {};
  o.stop_ids = {2, -5};
  expect_field(o, "generation.stop_ids holds -5");
  o = {};
  o.sampling.temperature = std::numeric_limits<double>::infinity();
  expect_field(o, "temperature must be a finite number");
}

TEST_F(GenerationFixture, CachedGreedyEqualsRecomputeFarPastTheWindow) {
  GenerationOptions o;
  o.sampling.greedy = true;
  o.max_new_tokens = 30;  // 40 positions: five windows
  const GenerationResult cached = generate(*model, prompt, o);
  o.use_kv_cache = false;
  const GenerationResult recomputed = generate(*model, prompt, o);
  EXPECT_EQ(cached.tokens.size(), 30u);
  EXPECT_EQ(cached.tokens, recomputed.tokens);
  EXPECT_EQ(cached.stop_reason, "max_new_tokens");
}

TEST_F(GenerationFixture, StepsOfADecodeRunAreGenerate) {
  GenerationOptions o;
  o.max_new_tokens = 7;
  o.sampling.greedy = true;
  const GenerationResult whole = generate(*model, prompt, o);
  DecodeRun run(*model, prompt, o);
  std::vector<int64_t> tokens;
  while (!run.done()) tokens.push_back(run.step());
  EXPECT_EQ(tokens, whole.tokens);
  EXPECT_EQ(run.result().stop_reason, "max_new_tokens");
  EXPECT_EQ(run.result().stats.generated_tokens, 7);
  EXPECT_EQ(run.sequence().size(), prompt.size() + 7);
  EXPECT_THROW(run.step(), InvalidArgument);
  // Two runs stepped in turn keep their own caches.
  DecodeRun a(*model, prompt, o), b(*model, std::vector<int64_t>(prompt.rbegin(), prompt.rend()), o);
  std::vector<int64_t> from_a;
  while (!a.done()) {
    from_a.push_back(a.step());
    if (!b.done()) b.step();
  }
  EXPECT_EQ(from_a, whole.tokens);
}

// A Chronovisor at pressure_scale 0 ticks at every step and changes no token; a strong one steers
// the routers, so the tokens change.
TEST_F(GenerationFixture, ChronovisorTicksEveryStepAndSteersOnlyWithPressure) {
  GenerationOptions o;
  o.max_new_tokens = 20;
  o.sampling.greedy = true;
  o.record_logprobs = true;
  const GenerationResult plain = generate(*model, prompt, o);
  RouterControlOptions control_options;
  control_options.kind = RouterControlKind::chronovisor;
  control_options.chronovisor.pressure_scale = 0;
  control_options.chronovisor.micro_period = 1;
  control_options.chronovisor.macro_period = 2;
  RouterControl silent(control_options, config.num_hidden_layers, config.num_experts);
  int64_t records = 0;
  silent.on_tick = [&](const nlohmann::json& record) { EXPECT_EQ(record["tick"], ++records); };
  o.router_control = &silent;
  const GenerationResult controlled = generate(*model, prompt, o);
  EXPECT_EQ(controlled.tokens, plain.tokens);
  EXPECT_EQ(controlled.logprobs, plain.logprobs);
  EXPECT_EQ(silent.ticks(), 20);  // the prompt's forward, then one per later token
  EXPECT_EQ(records, 20);

  control_options.chronovisor.pressure_scale = 1e3;
  RouterControl strong(control_options, config.num_hidden_layers, config.num_experts);
  o.router_control = &strong;
  const GenerationResult steered = generate(*model, prompt, o);
  EXPECT_NE(strong.bias(), nullptr);
  EXPECT_NE(steered.logprobs, plain.logprobs);
  // Frozen, the steering stays but nothing ticks.
  strong.freeze();
  generate(*model, prompt, o);
  EXPECT_EQ(strong.ticks(), 20);
}

TEST_F(GenerationFixture, StoppingARunNamesTheReason) {
  GenerationOptions o;
  o.max_new_tokens = 50;
  o.sampling.greedy = true;
  DecodeRun run(*model, prompt, o);
  run.step();
  run.stop("cancelled");
  EXPECT_TRUE(run.done());
  EXPECT_EQ(run.result().stop_reason, "cancelled");
  EXPECT_EQ(run.result().tokens.size(), 1u);
  o.max_new_tokens = 0;
  EXPECT_TRUE(DecodeRun(*model, prompt, o).done());
}

TEST_F(GenerationFixture, TeacherForcingEmitsTheGivenTokensAndScoresThem) {
  GenerationOptions o;
  o.sampling.greedy = true;
  o.max_new_tokens = 6;
  o.record_logprobs = true;
  const GenerationResult free_run = generate(*model, prompt, o);
  ASSERT_EQ(free_run.logprobs.size(), 6u);
  EXPECT_TRUE(free_run.sampled.empty());
  o.forced_tokens = free_run.tokens;
  const GenerationResult same = generate(*model, prompt, o);
  EXPECT_EQ(same.tokens, free_run.tokens);
  EXPECT_EQ(same.sampled, free_run.tokens);
  for (size_t i = 0; i < same.logprobs.size(); ++i) {
    EXPECT_NEAR(same.logprobs[i], free_run.logprobs[i], 1e-5);
    EXPECT_LT(same.logprobs[i], 0);
  }
  // Other tokens: emitted as given, scored under the model, and generation ends after them.
  o.forced_tokens = {5, 6, 7};
  o.max_new_tokens = 10;
  const GenerationResult forced = generate(*model, prompt, o);
  EXPECT_EQ(forced.tokens, o.forced_tokens);
  EXPECT_EQ(forced.sampled.size(), 3u);
  EXPECT_EQ(forced.sampled[0], free_run.tokens[0]);
  const at::Tensor logits = model->forward(at::tensor(prompt).unsqueeze(0)).logits.select(0, 0).select(0, -1);
  EXPECT_NEAR(forced.logprobs[0], at::log_softmax(logits, 0)[5].item<double>(), 1e-4);
  o.forced_tokens = {config.vocab_size};
  EXPECT_THROW(generate(*model, prompt, o), InvalidArgument);
}

TEST_F(GenerationFixture, SeededSamplingIsReproducible) {
  GenerationOptions o;
  o.max_new_tokens = 12;
  o.sampling.seed = 7;
  EXPECT_EQ(generate(*model, prompt, o).tokens, generate(*model, prompt, o).tokens);
}

TEST_F(GenerationFixture, StopsAtAStopId) {
  GenerationOptions o;
  o.sampling.greedy = true;
  o.max_new_tokens = 8;
  const auto free_run = generate(*model, prompt, o);
  o.stop_ids = {free_run.tokens[3]};
  const auto stopped = generate(*model, prompt, o);
  const auto first = std::find(free_run.tokens.begin(), free_run.tokens.end(), free_run.tokens[3]) - free_run.tokens.begin();
  EXPECT_EQ(stopped.tokens.size(), static_cast<size_t>(first + 1));
  EXPECT_EQ(stopped.stop_reason, "stop_id");
}

TEST_F(GenerationFixture, CallbackSeesEveryTokenAndCanStop) {
  GenerationOptions o;
  o.sampling.greedy = true;
  o.max_new_tokens = 10;
  std::vector<int64_t> seen;
  const auto result = generate(*model, prompt, o, [&](int64_t t) {
    seen.push_back(t);
    return seen.size() < 4;
  });
  EXPECT_EQ(seen, result.tokens);
  EXPECT_EQ(result.tokens.size(), 4u);
  EXPECT_EQ(result.stop_reason, "callback");
  EXPECT_GT(result.stats.prefill_seconds, 0.0);
  EXPECT_GT(result.stats.peak_rss_bytes, 0);
}

TEST_F(GenerationFixture, RespectsTheContext) {
  GenerationOptions o;
  o.sampling.greedy = true;
  o.max_context = 12;
  o.max_new_tokens = 100;
  const auto result = generate(*model, prompt, o);
  EXPECT_EQ(result.tokens.size(), 2u);
  EXPECT_EQ(result.stop_reason, "context");
  o.max_context = 10;
  EXPECT_THROW(generate(*model, prompt, o), InvalidArgument);
  EXPECT_THROW(generate(*model, {}, o), InvalidArgument);
  o.max_context = 0;
  EXPECT_THROW(generate(*model, {config.vocab_size}, o), InvalidArgument);
}

}  // namespace
}  // namespace chronos
