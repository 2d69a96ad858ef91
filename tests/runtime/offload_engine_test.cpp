#include "chronos/runtime/offload_engine.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "chronos/core/error.h"
#include "chronos/runtime/metrics.h"
#include "store/store_fixture.h"

namespace chronos {
namespace {

std::vector<int64_t> test_prompt() {
  std::vector<int64_t> prompt;
  for (int i = 0; i < 9; ++i) prompt.push_back((i * 11 + 5) % 97);
  return prompt;
}

GenerationOptions greedy(int64_t tokens) {
  GenerationOptions o;
  o.sampling.greedy = true;
  o.max_new_tokens = tokens;
  return o;
}

TEST(OffloadEngineTest, PredictionNeverChangesTheGreedyOutput) {
  testing::StoreFixture fx;
  const auto prompt = test_prompt();
  const GenerationResult resident = generate(*fx.model, prompt, greedy(20));
  for (PredictMode mode : {PredictMode::none, PredictMode::lookahead, PredictMode::intent, PredictMode::both}) {
    ExpertStore store(fx.offload(0.25, 0.5), fx.config);
    OffloadEngineConfig config;
    config.predict = mode;
    OffloadEngine engine(*fx.model, store, config);
    for (int round = 0; round < 2; ++round) {  // the second round has a frequency-based hot set
      const GenerationResult offloaded = engine.generate(prompt, greedy(20));
      EXPECT_EQ(offloaded.tokens, resident.tokens) << to_string(mode) << " round " << round;
      EXPECT_EQ(engine.metrics().tokens().size(), offloaded.tokens.size());
    }
    if (mode == PredictMode::intent || mode == PredictMode::both) {
      EXPECT_GT(engine.last_prefill().requests.size(), 0u);  // the second round planned from the frequency
    }
  }
}

TEST(OffloadEngineTest, OnlyTheChosenPredictorsPrefetch) {
  testing::StoreFixture fx;
  const auto prompt = test_prompt();
  auto requests = [&](PredictMode mode) {
    ExpertStore store(fx.offload(0.5, 0.75), fx.config);
    OffloadEngineConfig config;
    config.predict = mode;
    OffloadEngine engine(*fx.model, store, config);
    engine.generate(prompt, greedy(8));
    return store.stats().prefetch_requests;
  };
  EXPECT_EQ(requests(PredictMode::none), 0);
  EXPECT_EQ(requests(PredictMode::intent), 0);  // no classifier and nothing observed yet: no hot set
  // Token-ahead twice a step (after block 0 and at the end), at most the RAM tier's slots each time;
  // layer-ahead k experts for each of the next `distance` layers, from every layer of a decode step.
  ExpertStore sizing(fx.offload(0.5, 0.75), fx.config);
  const int64_t L = fx.config.num_hidden_layers, k = fx.config.num_experts_per_tok;
  const int64_t layer_ahead = ((L - 1) + (L - 2)) * k;
  const int64_t lookahead = requests(PredictMode::lookahead);
  EXPECT_GT(lookahead, 8);
  EXPECT_LE(lookahead, 8 * (2 * sizing.ram_slots() + layer_ahead));
}

TEST(OffloadEngineTest, ReplayedTraceGivesTheLiveHitAndMissCounts) {
  testing::StoreFixture fx;
  const auto offload = [&] {  // one reader: reads finish in request order, so LRU order is reproducible
    OffloadConfig c = fx.offload(0.25, 0.5);
    c.io_threads = 1;
    return c;
  };
  const auto prompt = test_prompt();
  OffloadEngineConfig config;
  config.predict = PredictMode::both;
  config.trace = {/*record=*/true, /*settle=*/true, /*forward_announce=*/false};
  ExpertStore live_store(offload(), fx.config);
  OffloadEngine engine(*fx.model, live_store, config);
  engine.generate(prompt, greedy(12));  // teaches the frequency predictor, so the second run has a prefill plan
  live_store.reset_stats();
  engine.generate(prompt, greedy(12));
  const StoreStats live = live_store.stats();
  ASSERT_GT(engine.trace().acquires(), 0u);
  ASSERT_GT(engine.last_prefill().requests.size(), 0u);

  // The replay store starts from the state the first run left: the same first generation, unrecorded.
  ExpertStore replay_store(offload(), fx.config);
  {
    OffloadEngineConfig first = config;
    first.trace.record = false;
    OffloadEngine primer(*fx.model, replay_store, first);
    primer.generate(prompt, greedy(12));
  }
  replay_store.reset_stats();
  const StoreStats replayed = replay_trace(engine.trace(), replay_store, config.trace);
  EXPECT_EQ(replayed.hits, live.hits);
  EXPECT_EQ(replayed.warm_hits, live.warm_hits);
  EXPECT_EQ(replayed.cold_misses, live.cold_misses);
  EXPECT_EQ(replayed.prefetch_requests, live.prefetch_requests);
  EXPECT_GT(live.hits + live.warm_hits + live.cold_misses, 0);

  // And from a cold start: the first run's trace on a fresh store.
  ExpertStore cold_live(offload(), fx.config), cold_replay(offload(), fx.config);
  OffloadEngine cold_engine(*fx.model, cold_live, config);
  cold_engine.generate(prompt, greedy(12));
  const StoreStats a = cold_live.stats(), b = replay_trace(cold_engine.trace(), cold_replay, config.trace);
  EXPECT_EQ(a.hits, b.hits);
  EXPECT_EQ(a.warm_hits + a.cold_misses, b.warm_hits + b.cold_misses);
}

TEST(MetricsTest, PrecisionAndRecallOnAHandMadeCase) {
  // Predicted 4 pairs, 3 used, of which 2 were predicted.
  const PrecisionRecall pr = compare_expert_sets({{0, 1}, {0, 2}, {1, 1}, {1, 1}, {3, 0}}, {{0, 1}, {1, 1}, {2, 3}});
  EXPECT_EQ(pr.predicted, 4);
  EXPECT_EQ(pr.actual, 3);
  EXPECT_EQ(pr.correct, 2);
  EXPECT_DOUBLE_EQ(pr.precision(), 0.5);
  EXPECT_DOUBLE_EQ(pr.recall(), 2.0 / 3.0);
  EXPECT_TRUE(std::isnan(compare_expert_sets({}, {{0, 0}}).precision()));

  MetricsBus bus;
  TokenMetrics a, b;
  a.hits = 3;
  a.cold = 1;
  a.ssd_bytes = 2000000;
  a.lookahead = {PrecisionRecall{}, PrecisionRecall{}};
  b.step = 1;
  b.hits = 4;
  b.stall_ms = 2;
  b.lookahead = {pr, PrecisionRecall{}};
  bus.record(a);
  bus.record(b);
  const MetricsSummary s = bus.summary();
  EXPECT_EQ(s.tokens, 2);
  EXPECT_DOUBLE_EQ(s.hit_rate, 7.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.stall_ms_per_token, 1.0);
  EXPECT_DOUBLE_EQ(s.ssd_mb_per_token, 1.0);
  EXPECT_DOUBLE_EQ(s.lookahead[0].recall(), 2.0 / 3.0);
  const std::string line = to_json_line(b);
  EXPECT_NE(line.find("\"lookahead_recall\":[0.6666"), std::string::npos) << line;
  EXPECT_NE(line.find("null"), std::string::npos) << line;
}

TEST(MetricsTest, EngineScoresEachStepAgainstThePreviousStepsPredictions) {
  testing::StoreFixture fx;
  ExpertStore store(fx.offload(0.25, 0.5), fx.config);
  OffloadEngine engine(*fx.model, store);
  const GenerationResult r = engine.generate(test_prompt(), greedy(6));
  const auto& tokens = engine.metrics().tokens();
  ASSERT_EQ(tokens.size(), r.tokens.size());
  const int64_t L = fx.config.num_hidden_layers, k = fx.config.num_experts_per_tok;
  EXPECT_EQ(tokens[0].lookahead[0].predicted, 0);  // nothing predicted the prefill
  // Step 0 had no routing history and this random router is under the floor: nothing predicted.
  EXPECT_EQ(tokens[1].lookahead[0].predicted, 0);
  EXPECT_EQ(tokens[1].lookahead[0].actual, L * k);
  EXPECT_EQ(tokens[1].router[0].predicted, L * k);  // the router's top-k ids in every layer
  EXPECT_EQ(tokens[1].lookahead[1].predicted, 0);  // t+2 predictions start at step 2
  EXPECT_GT(tokens[3].lookahead[1].predicted, 0);
  // From step 2 on the prediction holds the previous token's experts, so each layer has >= k.
  for (size_t t = 2; t < tokens.size(); ++t) EXPECT_GE(tokens[t].lookahead[0].predicted, L * k) << t;
  // Layer-ahead: every decode step predicts k experts of layers d..L-1 at distance d = 1, 2, scored
  // against what those layers routed to.
  EXPECT_TRUE(tokens[0].layer_ahead.empty());  // the prefill is not predicted layer by layer
  for (size_t t = 1; t < tokens.size(); ++t) {
    ASSERT_EQ(tokens[t].layer_ahead.size(), 2u) << t;
    for (int64_t d = 1; d <= 2; ++d) {
      const PrecisionRecall& pr = tokens[t].layer_ahead[static_cast<size_t>(d - 1)];
      EXPECT_EQ(pr.predicted, (L - d) * k) << t;
      EXPECT_EQ(pr.actual, (L - d) * k) << t;
      EXPECT_LE(pr.correct, pr.actual);
    }
  }
  int64_t uses = 0;
  for (const auto& t : tokens) uses += t.hits + t.warm + t.cold;
  EXPECT_GT(uses, 0);
  // Without prediction every expert that was not in RAM is an unpredicted miss.
  ExpertStore plain_store(fx.offload(0.25, 0.5), fx.config);
  OffloadEngineConfig none;
  none.predict = PredictMode::none;
  OffloadEngine plain(*fx.model, plain_store, none);
  plain.generate(test_prompt(), greedy(6));
  const MetricsSummary s = plain.metrics().summary();
  EXPECT_GT(s.unpredicted, 0);
  EXPECT_EQ(s.late + s.not_started, 0);
  EXPECT_THROW(parse_predict_mode("sometimes"), InvalidArgument);
  EXPECT_EQ(parse_predict_mode("lookahead"), PredictMode::lookahead);
}

}  // namespace
}  // namespace chronos
