// The expert store against the resident model: exact under `wait` with a compute pool of 25% of
// the routed experts, soft-gated under `fallback`, within budgets, with prefetch dedup/cancel.
#include "chronos/store/expert_store.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <thread>
#include <tuple>

#include "chronos/core/error.h"
#include "chronos/model/weight_format.h"
#include "model/row_groups.h"
#include "store/store_fixture.h"

namespace chronos {
namespace {

using testing::StoreFixture;

// Prefill of `prefill` tokens, then single-token decode steps, with the given options.
at::Tensor run_sequence(ChronosForCausalLMImpl& model, const at::Tensor& ids, int64_t prefill, ExpertSource* source,
                        ExpertStore* store = nullptr) {
  at::NoGradGuard no_grad;
  KVCache cache = model.make_cache();
  ForwardOptions options;
  options.cache = &cache;
  options.expert_source = source;
  std::vector<at::Tensor> logits;
  logits.push_back(model.forward(ids.narrow(1, 0, prefill), options).logits);
  for (int64_t t = prefill; t < ids.size(1); ++t) {
    if (store) store->begin_step(t - prefill + 1);
    logits.push_back(model.forward(ids.narrow(1, t, 1), options).logits);
  }
  return at::cat(logits, 1);
}

bool eventually(const std::function<bool()>& condition, double seconds = 10) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return condition();
}

void expect_within_budgets(const ExpertStore& store, const OffloadConfig& config) {
  const StoreStats s = store.stats();
  EXPECT_LE(s.ram_high_water_bytes, config.ram_budget_bytes);
  EXPECT_LE(s.compute_high_water_bytes, config.compute_budget_bytes);
  EXPECT_GT(s.ram_high_water_bytes, 0);
  EXPECT_GT(s.compute_high_water_bytes, 0);
}

// Forwards to the store; records, per forward, which experts of each layer came back empty, and
// checks that every expert served has the model's weights from acquire until release.
class RecordingSource : public ExpertSource {
 public:
  RecordingSource(ExpertStore& store, ChronosForCausalLMImpl& model) : store_(store), model_(model) { reset(); }

  std::vector<std::optional<ExpertWeights>> acquire(int64_t layer, const std::vector<int64_t>& experts) override {
    auto result = store_.acquire(layer, experts);
    for (size_t i = 0; i < experts.size(); ++i) {
      if (!result[i]) masks[static_cast<size_t>(layer)][experts[i]] = false;
      else held_.emplace_back(layer, experts[i], *result[i]);
    }
    check_held("at acquire");
    return result;
  }
  void release(int64_t layer) override {
    check_held("at release");
    held_.clear();
    store_.release(layer);
  }
  size_t max_batch() const override { return store_.max_batch(); }
  void announce(int64_t layer, const std::vector<int64_t>& experts) override { store_.announce(layer, experts); }

  void reset() {
    masks.clear();
    for (int64_t l = 0; l < model_.config().num_hidden_layers; ++l) masks.push_back(at::ones({model_.config().num_experts}, at::kBool));
  }
  std::vector<at::Tensor> masks;  // one [E] per layer: false where the store answered "unavailable"

 private:
  void check_held(const char* when) {
    for (const auto& [layer, expert, w] : held_) {
      const ExpertWeights want = model_.layer(layer).moe->expert_weights(expert);
      EXPECT_TRUE(at::equal(w.gate_proj, want.gate_proj) && at::equal(w.up_proj, want.up_proj) && at::equal(w.down_proj, want.down_proj))
          << "layer " << layer << " expert " << expert << " has the wrong weights " << when;
    }
  }

  ExpertStore& store_;
  ChronosForCausalLMImpl& model_;
  std::vector<std::tuple<int64_t, int64_t, ExpertWeights>> held_;
};

TEST(ExpertStore, WaitPolicyMatchesResidentModelUnderTightBudgets) {
  for (const bool zero_copy : {true, false}) {
  SCOPED_TRACE(zero_copy ? "zero copy" : "copies");
  StoreFixture f;
  OffloadConfig config = f.offload(0.25, 0.5);
  config.zero_copy = zero_copy;
  ExpertStore store(config, f.config);
  EXPECT_EQ(store.zero_copy(), zero_copy);  // fp32 cache, fp32 compute, CPU
  EXPECT_EQ(store.compute_slots(), 4);  // 25% of 16 experts
  EXPECT_EQ(store.ram_slots(), 8);
  EXPECT_EQ(store.max_batch(), 4u);

  at::manual_seed(1);
  const at::Tensor ids = at::randint(f.config.vocab_size, {2, 14});
  const at::Tensor resident = run_sequence(*f.model, ids, 6, nullptr);
  RecordingSource checked(store, *f.model);
  const at::Tensor offloaded = run_sequence(*f.model, ids, 6, &checked, &store);
  EXPECT_LE((resident - offloaded).abs().max().item<float>(), 1e-6);
  for (const at::Tensor& mask : checked.masks) EXPECT_TRUE(mask.all().item<bool>());  // nothing fell back

  const StoreStats s = store.stats();
  EXPECT_GT(s.cold_misses, 0);
  EXPECT_GT(s.evictions_compute, 0);  // the budget really binds
  EXPECT_GT(s.ssd_reads, 0);
  EXPECT_GE(s.ssd_bytes, s.ssd_reads * static_cast<int64_t>(f.manifest.expert_bytes()));
  EXPECT_EQ(s.copy_bytes, s.copies * static_cast<int64_t>(f.manifest.expert_bytes()));
  EXPECT_EQ(s.copies > 0, !zero_copy);
  EXPECT_EQ(s.io_errors, 0);
  EXPECT_EQ(s.fallbacks, 0);
  expect_within_budgets(store, config);
  }
}

TEST(ExpertStore, ZeroCopyServesHostSlotsAndKeepsHeldOnesResident) {
  StoreFixture f;
  ExpertStore store(f.offload(0.25, 0.25), f.config);  // 4 compute slots, 4 RAM slots
  ASSERT_TRUE(store.zero_copy());
  const auto held = store.acquire(0, {0, 1});
  ASSERT_TRUE(held[0] && held[1]);
  EXPECT_TRUE(at::equal(held[1]->down_proj, f.model->layer(0).moe->expert_weights(1).down_proj));
  const at::Tensor before = held[0]->gate_proj.clone();
  // Other experts churn through the two free host slots; the held ones keep theirs.
  for (int32_t l = 1; l < 4; ++l) {
    store.acquire(l, {0, 1});
    store.release(l);
  }
  EXPECT_EQ(store.state({0, 0}), ExpertState::hot);
  EXPECT_TRUE(at::equal(held[0]->gate_proj, before));
  store.release(0);
  const StoreStats s = store.stats();
  EXPECT_EQ(s.copies, 0);
  EXPECT_EQ(s.copy_bytes, 0);
  EXPECT_GT(s.evictions_ram, 0);
  // A half-precision cache cannot be served as fp32: it is copied.
  StoreFixture half(3, ExpertStorage::dense(c10::kHalf));
  EXPECT_FALSE(ExpertStore(half.offload(0.25, 0.5), half.config).zero_copy());
}

TEST(ExpertStore, WaitPolicyWithOneComputeSlotAndOneRamSlot) {
  for (const bool zero_copy : {true, false}) {
  SCOPED_TRACE(zero_copy ? "zero copy" : "copies");
  StoreFixture f(2);
  OffloadConfig config = f.offload(0, 0);
  config.zero_copy = zero_copy;
  config.compute_budget_bytes = static_cast<int64_t>(f.manifest.expert_bytes());
  config.ram_budget_bytes = static_cast<int64_t>(f.manifest.expert_bytes());
  config.io_threads = 3;
  ExpertStore store(config, f.config);
  EXPECT_EQ(store.compute_slots(), 1);
  EXPECT_EQ(store.ram_slots(), 1);
  at::manual_seed(2);
  const at::Tensor ids = at::randint(f.config.vocab_size, {1, 8});
  const at::Tensor resident = run_sequence(*f.model, ids, 4, nullptr);
  EXPECT_LE((resident - run_sequence(*f.model, ids, 4, &store, &store)).abs().max().item<float>(), 1e-6);
  expect_within_budgets(store, config);
  }
}

TEST(ExpertStore, ConcurrentPrefetchDuringDecodeKeepsParity) {
  // A predictor thread floods the store with prefetches (some whole-cluster) while the model
  // decodes under `wait` with small pools: the output stays exact and the budgets hold.
  StoreFixture f(3);
  OffloadConfig config = f.offload(0.25, 0.25);
  config.io_threads = 3;
  config.prefetch_queue_capacity = 8;
  config.throttle.latency_ms = 0.2;
  ExpertStore store(config, f.config);
  std::atomic<bool> stop{false};
  std::thread predictor([&] {
    std::mt19937 rng(5);
    for (int64_t step = 0; !stop; ++step) {
      std::vector<PrefetchRequest> requests;
      for (int i = 0; i < 4; ++i)
        requests.push_back({{static_cast<int32_t>(rng() % 4), static_cast<int32_t>(rng() % 4)}, step % 7, static_cast<float>(rng() % 100) / 100,
                            rng() % 2 ? Tier::ram : Tier::compute, rng() % 5 == 0});
      store.prefetch(requests);
      (void)store.stats();
      try {
        store.check_invariants();
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  at::manual_seed(4);
  const at::Tensor ids = at::randint(f.config.vocab_size, {2, 12});
  const at::Tensor resident = run_sequence(*f.model, ids, 4, nullptr);
  RecordingSource checked(store, *f.model);
  const at::Tensor offloaded = run_sequence(*f.model, ids, 4, &checked, &store);
  stop = true;
  predictor.join();
  EXPECT_LE((resident - offloaded).abs().max().item<float>(), 1e-6);
  EXPECT_GT(store.stats().prefetch_requests, 0);
  expect_within_budgets(store, config);
  store.check_invariants();
}

TEST(ExpertStore, HalfPrecisionCacheConvertsToComputeDtype) {
  StoreFixture f(3, ExpertStorage::dense(c10::kBFloat16));
  ExpertStore store(f.offload(1.0, 1.0), f.config);
  const auto weights = store.acquire(2, {1, 3});
  ASSERT_TRUE(weights[0] && weights[1]);
  const ExpertWeights want = f.model->layer(2).moe->expert_weights(3);
  EXPECT_EQ(weights[1]->down_proj.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(weights[1]->down_proj, want.down_proj.to(at::kBFloat16).to(at::kFloat)));
  EXPECT_TRUE(at::equal(weights[1]->gate_proj, want.gate_proj.to(at::kBFloat16).to(at::kFloat)));
  store.release(2);
}

TEST(ExpertStore, FallbackPolicySoftGatesExpertsThatAreNotHot) {
  StoreFixture f;
  OffloadConfig config = f.offload(0.25, 0.5, MissPolicy::fallback);
  config.throttle.latency_ms = 15;  // slow reads: early steps miss
  ExpertStore store(config, f.config);
  RecordingSource source(store, *f.model);

  at::manual_seed(3);
  const at::Tensor ids = at::randint(f.config.vocab_size, {1, 12});
  at::NoGradGuard no_grad;
  KVCache store_cache = f.model->make_cache(), masked_cache = f.model->make_cache();
  for (int64_t t = 0; t < ids.size(1); ++t) {
    source.reset();
    ForwardOptions with_store;
    with_store.cache = &store_cache;
    with_store.expert_source = &source;
    const at::Tensor got = f.model->forward(ids.narrow(1, t, 1), with_store).logits;
    ForwardOptions masked;
    masked.cache = &masked_cache;
    masked.available_expert_masks = &source.masks;
    const at::Tensor want = f.model->forward(ids.narrow(1, t, 1), masked).logits;
    ASSERT_LE((got - want).abs().max().item<float>(), 1e-6) << "step " << t;
    if (t % 4 == 3) store.wait_idle();  // let reads land so that later steps also hit
  }
  const StoreStats s = store.stats();
  EXPECT_GT(s.fallbacks, 0);
  EXPECT_GT(s.hits, 0);
  EXPECT_EQ(s.fallbacks, s.warm_hits + s.cold_misses);
  expect_within_budgets(store, config);
}

TEST(ExpertStore, StatesMoveThroughTheTiers) {
  StoreFixture f;
  OffloadConfig config = f.offload(0.25, 0.5);
  config.throttle.latency_ms = 100;
  config.zero_copy = false;  // COPYING, copies
  ExpertStore store(config, f.config);
  const ExpertKey key{1, 2};
  EXPECT_EQ(store.state(key), ExpertState::cold);
  store.prefetch({{key, 0, 1.0f, Tier::ram}});
  EXPECT_TRUE(eventually([&] { return store.state(key) == ExpertState::reading; }));
  EXPECT_TRUE(eventually([&] { return store.state(key) == ExpertState::warm; }));
  store.prefetch({{key, 0, 1.0f, Tier::compute}});
  EXPECT_TRUE(eventually([&] { return store.state(key) == ExpertState::hot; }));
  const auto weights = store.acquire(1, {2});
  ASSERT_TRUE(weights[0]);
  EXPECT_TRUE(at::equal(weights[0]->up_proj, f.model->layer(1).moe->expert_weights(2).up_proj));
  store.release(1);
  const StoreStats s = store.stats();
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.ssd_reads, 1);
  EXPECT_EQ(s.copies, 1);
  EXPECT_EQ(s.stall_seconds, 0);
}

TEST(ExpertStore, AcquireRecordsStatsAtThePointOfUse) {
  StoreFixture f;
  ExpertStore store(f.offload(0.5, 0.5), f.config);
  store.acquire(0, {0, 1});  // cold
  store.release(0);
  store.acquire(0, {0, 1});  // hot
  store.release(0);
  StoreStats s = store.stats();
  EXPECT_EQ(s.cold_misses, 2);
  EXPECT_EQ(s.hits, 2);
  EXPECT_GT(s.stall_seconds, 0);
  store.reset_stats();
  s = store.stats();
  EXPECT_EQ(s.hits + s.cold_misses + s.ssd_reads, 0);
}

TEST(ExpertStore, AcquiredExpertsAreNeverEvicted) {
  StoreFixture f;
  OffloadConfig config = f.offload(0.25, 0.25);  // 4 compute slots, 4 RAM slots
  config.zero_copy = false;                      // compute copies of their own, evicted apart from the host ones
  ExpertStore store(config, f.config);
  const auto held = store.acquire(0, {0, 1});
  ASSERT_TRUE(held[0] && held[1]);
  const at::Tensor before = held[0]->gate_proj.clone();
  // Push many experts through the remaining two slots (one step each, so the previous step's
  // prefetches are no longer wanted).
  for (int l = 1; l < 4; ++l) {
    store.begin_step(l);
    store.prefetch({{{l, 0}, l, 1, Tier::compute}, {{l, 1}, l, 1, Tier::compute}, {{l, 2}, l, 1, Tier::compute}});
    store.wait_idle();
  }
  EXPECT_EQ(store.state({0, 0}), ExpertState::hot);
  EXPECT_EQ(store.state({0, 1}), ExpertState::hot);
  EXPECT_TRUE(at::equal(held[0]->gate_proj, before));
  EXPECT_GT(store.stats().evictions_compute, 0);
  store.release(0);
  EXPECT_THROW(store.acquire(1, {0, 1, 2, 3, 0}), InvalidArgument);  // not ascending
  store.acquire(1, {0, 1, 2, 3});
  EXPECT_THROW(store.acquire(2, {0}), InvalidArgument);  // more than max_batch held
  store.release(1);
}

TEST(ExpertStore, PrefetchNeverEvictsWhatAnEarlierPredictionStillWants) {
  StoreFixture f;
  ExpertStore store(f.offload(0.25, 0.25), f.config);  // 4 compute slots, 4 RAM slots
  store.begin_step(1);
  // Step 2 wants the four experts of layer 3: they fill the RAM tier.
  std::vector<PrefetchRequest> wanted;
  for (int32_t e = 0; e < 4; ++e) wanted.push_back({{3, e}, 2, 0.9f, Tier::ram});
  store.prefetch(wanted);
  ASSERT_TRUE(store.wait_idle());
  for (int32_t e = 0; e < 4; ++e) EXPECT_EQ(store.state({3, e}), ExpertState::warm);
  // A later guess finds no slot it may take: it waits (and the store counts as idle).
  store.prefetch({{{0, 0}, 3, 0.5f, Tier::ram}});
  ASSERT_TRUE(store.wait_idle());
  EXPECT_EQ(store.state({0, 0}), ExpertState::cold);
  // Still wanted during step 2, also once its layer 3 is reached.
  store.begin_step(2);
  store.acquire(3, {0, 1});
  store.release(3);
  ASSERT_TRUE(store.wait_idle());
  EXPECT_EQ(store.state({0, 0}), ExpertState::cold);
  EXPECT_EQ(store.stats().evictions_ram, 0);
  // Step 3: layer 3's experts are no longer wanted, and the waiting prefetch goes on.
  store.begin_step(3);
  ASSERT_TRUE(store.wait_idle());
  EXPECT_EQ(store.state({0, 0}), ExpertState::warm);
  EXPECT_EQ(store.stats().evictions_ram, 1);
  // Demand is not bound by predictions, but takes an unwanted slot first: (0, 0) is wanted at step 3.
  store.acquire(1, {1});
  store.release(1);
  EXPECT_EQ(store.state({0, 0}), ExpertState::warm);
  EXPECT_EQ(store.stats().evictions_ram, 2);
  // With only wanted experts left, demand evicts one of them.
  std::vector<PrefetchRequest> all;
  for (int32_t e = 0; e < 4; ++e) all.push_back({{2, e}, 4, 0.9f, Tier::ram});
  store.prefetch(all);
  ASSERT_TRUE(store.wait_idle());
  const StoreStats before = store.stats();
  store.acquire(1, {2});
  store.release(1);
  EXPECT_EQ(store.stats().evictions_ram, before.evictions_ram + 1);
}

TEST(ExpertStore, PrefetchDueSoonerEvictsTheWantedExpertDueLast) {
  for (const PrefetchEviction rule : {PrefetchEviction::deadline, PrefetchEviction::protect}) {
    SCOPED_TRACE(to_string(rule));
    StoreFixture f;
    OffloadConfig config = f.offload(0.25, 0.25);  // 4 RAM slots
    config.prefetch_eviction = rule;
    ExpertStore store(config, f.config);
    store.begin_step(1);
    // Step 3 wants (3, 0) and (3, 1), step 4 wants (3, 2) and (3, 3): RAM is full of wanted experts.
    std::vector<PrefetchRequest> later;
    for (int32_t e = 0; e < 4; ++e) later.push_back({{3, e}, e < 2 ? 3 : 4, 0.9f, Tier::ram});
    store.prefetch(later);
    ASSERT_TRUE(store.wait_idle());
    store.check_invariants();
    // A guess for step 5 may evict none of them; one for step 2 evicts the expert due last.
    store.prefetch({{{0, 0}, 5, 0.9f, Tier::ram}});
    ASSERT_TRUE(store.wait_idle());
    EXPECT_EQ(store.state({0, 0}), ExpertState::cold);
    store.prefetch({{{1, 0}, 2, 0.5f, Tier::ram}});
    ASSERT_TRUE(store.wait_idle());
    store.check_invariants();
    if (rule == PrefetchEviction::deadline) {
      EXPECT_EQ(store.state({1, 0}), ExpertState::warm);
      EXPECT_EQ(store.stats().evictions_ram, 1);
      // One of the two due at step 4 went; both due at step 3 stayed.
      EXPECT_EQ((store.state({3, 2}) == ExpertState::cold) + (store.state({3, 3}) == ExpertState::cold), 1);
      for (int32_t e : {0, 1}) EXPECT_EQ(store.state({3, e}), ExpertState::warm);
    } else {
      EXPECT_EQ(store.state({1, 0}), ExpertState::cold);
      EXPECT_EQ(store.stats().evictions_ram, 0);
    }
    // Within a step, an earlier layer is due sooner: a layer-ahead request for layer 1 of step 3
    // evicts a step-3 expert of layer 3 once nothing due later is left.
    store.prefetch({{{1, 1}, 3, 0.5f, Tier::ram}, {{1, 2}, 3, 0.5f, Tier::ram}});
    ASSERT_TRUE(store.wait_idle());
    store.check_invariants();
    if (rule == PrefetchEviction::deadline) {
      EXPECT_EQ(store.state({1, 1}), ExpertState::warm);  // took the other step-4 expert
      EXPECT_EQ(store.state({1, 2}), ExpertState::warm);  // took (3, 0) or (3, 1), due at step 3 but at layer 3
      EXPECT_EQ(store.state({3, 2}), ExpertState::cold);
      EXPECT_EQ(store.state({3, 3}), ExpertState::cold);
      EXPECT_EQ(store.state({1, 0}), ExpertState::warm);  // due at step 2: kept
      EXPECT_EQ(store.stats().evictions_ram, 3);
    }
  }
}

TEST(ExpertStore, InvariantsHoldThroughEveryTransition) {
  for (const bool zero_copy : {true, false}) {
    SCOPED_TRACE(zero_copy ? "zero copy" : "copies");
    StoreFixture f;
    OffloadConfig config = f.offload(0.25, 0.5);
    config.zero_copy = zero_copy;
    config.throttle.latency_ms = 1;
    ExpertStore store(config, f.config);
    store.check_invariants();
    std::atomic<bool> stop{false};
    std::thread checker([&] {
      try {
        while (!stop) store.check_invariants();  // while reads and copies are in flight
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    });
    at::manual_seed(6);
    const at::Tensor ids = at::randint(f.config.vocab_size, {1, 10});
    const at::Tensor resident = run_sequence(*f.model, ids, 3, nullptr);
    const at::Tensor offloaded = run_sequence(*f.model, ids, 3, &store, &store);
    std::vector<PrefetchRequest> all;
    for (int32_t l = 0; l < 4; ++l)
      for (int32_t e = 0; e < 4; ++e) all.push_back({{l, e}, 9, 0.5f, e % 2 ? Tier::ram : Tier::compute, e == 0});
    store.prefetch(all);
    ASSERT_TRUE(store.wait_idle());
    stop = true;
    checker.join();
    store.check_invariants();
    EXPECT_LE((resident - offloaded).abs().max().item<float>(), 1e-6);
  }
}

TEST(ExpertStore, AnnounceStartsEveryReadAtOnce) {
  StoreFixture f;
  OffloadConfig config = f.offload(0.25, 0.5);
  config.io_threads = 4;
  config.throttle.latency_ms = 100;
  ExpertStore store(config, f.config);
  const auto start = std::chrono::steady_clock::now();
  store.announce(3, {0, 1, 2, 3});
  store.acquire(3, {0, 1, 2, 3});
  store.release(3);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(store.stats().most_experts_reading, 4);  // four reads in parallel, not one after the other
  EXPECT_GE(seconds, 0.1);
}

TEST(ExpertStore, PrefetchDeduplicatesAgainstStatesAndWorkInFlight) {
  StoreFixture f;
  OffloadConfig config = f.offload(0.25, 0.5);
  config.zero_copy = false;
  ExpertStore store(config, f.config);
  store.prefetch({{{0, 0}, 1, 0.9f, Tier::compute}});
  ASSERT_TRUE(store.wait_idle());
  EXPECT_EQ(store.state({0, 0}), ExpertState::hot);
  store.prefetch({{{0, 0}, 1, 0.9f, Tier::compute}, {{0, 0}, 2, 0.5f, Tier::ram}});  // HOT covers both
  StoreStats s = store.stats();
  EXPECT_EQ(s.prefetch_requests, 3);
  EXPECT_EQ(s.prefetch_deduplicated, 2);
  EXPECT_EQ(s.ssd_reads, 1);
  EXPECT_EQ(s.copies, 1);
}

TEST(ExpertStore, PrefetchSupersedesAndCancelsStaleRequests) {
  StoreFixture f;
  OffloadConfig config = f.offload(0.25, 0.5);
  config.io_threads = 1;
  config.throttle.latency_ms = 300;  // the first read keeps the only reader busy
  ExpertStore store(config, f.config);
  store.prefetch({{{0, 0}, 1, 1.0f, Tier::ram}});
  ASSERT_TRUE(eventually([&] { return store.state({0, 0}) == ExpertState::reading; }));
  store.prefetch({{{1, 0}, 2, 0.5f, Tier::ram}, {{1, 1}, 3, 0.5f, Tier::ram}, {{1, 2}, 5, 0.5f, Tier::ram}});
  store.prefetch({{{1, 0}, 4, 0.7f, Tier::ram}});  // supersedes the queued (1, 0)
  store.prefetch({{{0, 0}, 2, 1.0f, Tier::ram}});  // in flight: deduplicated
  store.begin_step(5);                             // (1, 0) at 4 and (1, 1) at 3 are stale
  store.prefetch({{{2, 0}, 4, 1.0f, Tier::ram}});  // already stale
  StoreStats s = store.stats();
  EXPECT_EQ(s.prefetch_requests, 7);
  EXPECT_EQ(s.prefetch_deduplicated, 1);
  EXPECT_EQ(s.prefetch_cancelled, 4);
  ASSERT_TRUE(store.wait_idle());
  EXPECT_EQ(store.state({1, 2}), ExpertState::warm);
  EXPECT_EQ(store.state({1, 0}), ExpertState::cold);
  EXPECT_EQ(store.state({1, 1}), ExpertState::cold);
  EXPECT_EQ(store.stats().ssd_reads, 2);
}

TEST(ExpertStore, FullPrefetchQueueDropsTheLeastUrgent) {
  StoreFixture f;
  OffloadConfig config = f.offload(0.25, 0.5);
  config.io_threads = 1;
  config.prefetch_queue_capacity = 2;
  config.throttle.latency_ms = 300;
  ExpertStore store(config, f.config);
  store.prefetch({{{0, 0}, 0, 1.0f, Tier::ram}});
  ASSERT_TRUE(eventually([&] { return store.state({0, 0}) == ExpertState::reading; }));
  // Queued: (1,1) and (1,2); then the most urgent (1,3) arrives: (1,2), the least urgent, goes.
  store.prefetch({{{1, 1}, 2, 0.9f, Tier::ram}, {{1, 2}, 2, 0.1f, Tier::ram}, {{1, 3}, 1, 0.2f, Tier::ram}});
  EXPECT_EQ(store.stats().prefetch_dropped, 1);
  ASSERT_TRUE(store.wait_idle());
  EXPECT_EQ(store.state({1, 3}), ExpertState::warm);
  EXPECT_EQ(store.state({1, 1}), ExpertState::warm);
  EXPECT_EQ(store.state({1, 2}), ExpertState::cold);
}

TEST(ExpertStore, WholeClusterPrefetchReadsNeighboursInOneRead) {
  StoreFixture f(2);  // 8 experts per cluster file, back to back
  ExpertStore store(f.offload(0.25, 1.0), f.config);
  const ExpertKey key = f.manifest.clusters[0].experts[3].key;
  store.prefetch({{key, 0, 1.0f, Tier::ram, /*whole_cluster=*/true}});
  ASSERT_TRUE(store.wait_idle());
  EXPECT_EQ(store.stats().ssd_reads, 1);
  int warm = 0;
  for (const ExpertRange& r : f.manifest.clusters[0].experts) warm += store.state(r.key) == ExpertState::warm;
  EXPECT_EQ(warm, 8);
  for (const ExpertRange& r : f.manifest.clusters[1].experts) EXPECT_EQ(store.state(r.key), ExpertState::cold);
  // The neighbours' bytes are right: acquiring one of them copies it without another read.
  const ExpertKey other = f.manifest.clusters[0].experts[6].key;
  const auto w = store.acquire(other.layer, {other.expert});
  EXPECT_TRUE(at::equal(w[0]->down_proj, f.model->layer(other.layer).moe->expert_weights(other.expert).down_proj));
  store.release(other.layer);
  EXPECT_EQ(store.stats().ssd_reads, 1);
  EXPECT_EQ(store.stats().warm_hits, 1);
}

// Whole-cluster prefetches whose reads satisfy other queued requests, which the readers then drop
// with no read of their own: the store is idle then, and wait_idle hears of it at once (a reader
// went back to sleep without a word, and wait_idle slept until its timeout: once a whole 60 s).
TEST(ExpertStore, WaitIdleWakesWhenQueuedPrefetchesAreSatisfiedMeanwhile) {
  StoreFixture f(2);  // 8 experts per cluster file, back to back
  // Busy threads on every core, so that a reader loses its core between finishing a read and taking
  // the next job (as on a machine running other tests): the order that lost the wake-up.
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (unsigned i = 0; i < std::max(2u, std::thread::hardware_concurrency()); ++i)
    busy.emplace_back([&] {
      volatile uint64_t spin = 0;
      while (!stop.load(std::memory_order_relaxed)) spin = spin + 1;
    });
  int slow = 0;
  for (int round = 0; round < 40; ++round) {
    ExpertStore store(f.offload(0.25, 1.0), f.config);
    std::vector<PrefetchRequest> requests;
    for (const ClusterFile& cluster : f.manifest.clusters)
      for (size_t i = 0; i < cluster.experts.size(); ++i)
        requests.push_back({cluster.experts[i].key, static_cast<int64_t>(i % 3), 1.0f, Tier::ram, /*whole_cluster=*/i % 4 == 0});
    store.prefetch(requests);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(store.wait_idle(3));
    slow += std::chrono::steady_clock::now() - start > std::chrono::seconds(2) ? 1 : 0;
    for (const ClusterFile& cluster : f.manifest.clusters)
      for (const ExpertRange& r : cluster.experts) EXPECT_EQ(store.state(r.key), ExpertState::warm) << r.key.name();
  }
  stop = true;
  for (std::thread& t : busy) t.join();
  EXPECT_EQ(slow, 0);
}

TEST(ExpertStore, WholeClusterPrefetchStopsAtTheHostPool) {
  StoreFixture f(1);  // one file of 16 experts
  OffloadConfig config = f.offload(0.25, 0.25);  // 4 host slots
  ExpertStore store(config, f.config);
  store.prefetch({{f.manifest.clusters[0].experts[5].key, 0, 1.0f, Tier::ram, true}});
  ASSERT_TRUE(store.wait_idle());
  int warm = 0;
  for (const ExpertRange& r : f.manifest.clusters[0].experts) warm += store.state(r.key) == ExpertState::warm;
  EXPECT_EQ(warm, 4);
  EXPECT_EQ(store.state(f.manifest.clusters[0].experts[5].key), ExpertState::warm);
  EXPECT_EQ(store.stats().evictions_ram, 0);
  EXPECT_EQ(store.stats().ram_high_water_bytes, 4 * static_cast<int64_t>(f.manifest.expert_bytes()));
}

TEST(ExpertStore, WholeClusterPrefetchReadsAroundResidentMembers) {
  StoreFixture f(1);  // one file of 16 experts
  ExpertStore store(f.offload(0.25, 1.0), f.config);
  const auto& members = f.manifest.clusters[0].experts;
  store.prefetch({{members[8].key, 0, 1.0f, Tier::ram}});
  ASSERT_TRUE(store.wait_idle());
  // One request brings the other 15: the run 0..7, then the rest after the resident member 8.
  store.prefetch({{members[0].key, 0, 1.0f, Tier::ram, true}});
  ASSERT_TRUE(store.wait_idle());
  for (const ExpertRange& r : members) EXPECT_EQ(store.state(r.key), ExpertState::warm);
  const StoreStats s = store.stats();
  EXPECT_EQ(s.ssd_bytes, 16 * static_cast<int64_t>(f.manifest.expert_bytes()));
  EXPECT_EQ(s.ssd_reads, 3);
}

// Stores every routed expert's weights of `model` as its `format` cache does: quantized rows in the
// modules themselves (chronos/model/weight_format.h).
void use_quantized_experts(ChronosForCausalLMImpl& model, QuantFormat format) {
  at::NoGradGuard no_grad;
  for (int64_t l = 0; l < model.config().num_hidden_layers; ++l)
    for (int64_t e = 0; e < model.config().num_experts; ++e) {
      const ExpertWeights w = model.layer(l).moe->expert_weights(e);
      for (const at::Tensor& t : {w.gate_proj, w.up_proj, w.down_proj}) {
        at::Tensor& param = const_cast<at::Tensor&>(t);
        param.requires_grad_(false);
        param.set_data(quantize_matrix(t, format));
      }
    }
}

// int8 / int4 caches are served zero-copy as quantized rows, in row groups or row-major (caches packed
// before row groups); decoding from them (the batch-1 kernel path and the batch path) gives the
// logits, and so the greedy tokens, of the resident model whose expert weights are the same quantized
// rows.
TEST(ExpertStore, QuantizedCacheDecodesAsTheDequantisedModel) {
  for (const QuantFormat format : {QuantFormat::int8, QuantFormat::int4}) {
    for (const bool groups : {true, false}) {
      SCOPED_TRACE(std::string(to_string(format)) + (groups ? " in row groups" : " row-major"));
      StoreFixture f(3, ExpertStorage::quantized(format, groups));
      StoreFixture fp32(3);
      EXPECT_LT(f.manifest.expert_bytes() * 3, fp32.manifest.expert_bytes());  // int8: 34 / 128 of fp32, int4: 18 / 128
      ExpertStore store(f.offload(0.25, 0.5), f.config);
      EXPECT_TRUE(store.zero_copy());
      EXPECT_EQ(store.compute_slots(), 4);  // 25% of 16 experts, counted in quantized bytes
      const auto held = store.acquire(1, {2});
      ASSERT_TRUE(held[0]);
      EXPECT_EQ(held[0]->quant, format);
      const at::Tensor row_major = quantize_matrix(f.model->layer(1).moe->expert_weights(2).down_proj, format);
      const WeightFormat weights = format == QuantFormat::int8 ? WeightFormat::int8 : WeightFormat::int4;
      const int64_t I = f.config.resolved_moe_intermediate_size();
      EXPECT_TRUE(at::equal(held[0]->down_proj, groups ? group_rows(row_major, weights, I) : row_major));
      store.release(1);

      at::manual_seed(3);
      for (const int64_t batch : {1, 2}) {
        const at::Tensor ids = at::randint(f.config.vocab_size, {batch, 12});
        const at::Tensor offloaded = run_sequence(*f.model, ids, 5, &store, &store);
        StoreFixture reference(3);
        use_quantized_experts(*reference.model, format);
        const at::Tensor resident = run_sequence(*reference.model, ids, 5, nullptr);
        EXPECT_LE((resident - offloaded).abs().max().item<float>(), 1e-4) << "batch " << batch;
        EXPECT_TRUE(at::equal(resident.argmax(-1), offloaded.argmax(-1))) << "batch " << batch;
      }
      EXPECT_EQ(store.stats().io_errors, 0);
      expect_within_budgets(store, f.offload(0.25, 0.5));
      // Without zero copy there is no compute copy of a quantized expert to make: one clear error.
      OffloadConfig copies = f.offload(0.25, 0.5);
      copies.zero_copy = false;
      EXPECT_THROW(ExpertStore(copies, f.config), ConfigError);
    }
  }
}

// Layer-ahead requests are due the step in flight: more of them than the pools hold never evict the
// experts the current layer holds, and they are served once the model has moved on.
TEST(ExpertStore, LayerAheadRequestsNeverEvictWhatTheStepInFlightHolds) {
  for (const bool zero_copy : {true, false}) {
    SCOPED_TRACE(zero_copy ? "zero copy" : "copies");
    StoreFixture f;
    OffloadConfig config = f.offload(0, 0);
    config.zero_copy = zero_copy;
    config.compute_budget_bytes = static_cast<int64_t>(2 * f.manifest.expert_bytes());
    config.ram_budget_bytes = static_cast<int64_t>(3 * f.manifest.expert_bytes());
    ExpertStore store(config, f.config);
    store.begin_step(1);
    store.announce(1, {0, 3});
    const auto held = store.acquire(1, {0, 3});
    ASSERT_TRUE(held[0] && held[1]);
    std::vector<PrefetchRequest> requests;  // layers 2 and 3 of step 1, as predicted from layer 1's input
    for (int32_t layer : {2, 3})
      for (int32_t e = 0; e < 4; ++e) requests.push_back({{layer, e}, 1, 0.9f, Tier::compute, false});
    store.prefetch(requests);
    store.wait_idle(10);
    EXPECT_EQ(store.state({1, 0}), ExpertState::hot);
    EXPECT_EQ(store.state({1, 3}), ExpertState::hot);
    const ExpertWeights want = f.model->layer(1).moe->expert_weights(3);
    EXPECT_TRUE(at::equal(held[1]->down_proj, want.down_proj) && at::equal(held[1]->gate_proj, want.gate_proj));
    EXPECT_EQ(store.stats().evictions_compute, 0);
    store.release(1);
    // Layer 2 comes: its experts are served (the requests for it were waiting for room).
    store.announce(2, {1, 2});
    const auto next = store.acquire(2, {1, 2});
    EXPECT_TRUE(next[0] && next[1]);
    store.release(2);
    expect_within_budgets(store, config);
  }
}

TEST(ExpertStore, InvalidRequestsThrow) {
  StoreFixture f;
  ExpertStore store(f.offload(), f.config);
  EXPECT_THROW(store.acquire(4, {0}), InvalidArgument);
  EXPECT_THROW(store.acquire(0, {4}), InvalidArgument);
  EXPECT_THROW(store.prefetch({{{0, 9}, 0, 1.0f}}), InvalidArgument);
  EXPECT_THROW(store.state({-1, 0}), InvalidArgument);
  EXPECT_TRUE(store.acquire(0, {}).empty());
}

TEST(ExpertStore, DestructorJoinsWithWorkQueuedAndThrottled) {
  StoreFixture f;
  OffloadConfig config = f.offload(0.25, 0.5);
  config.io_threads = 2;
  // A destructor that waited for these throttled reads would run into the test's timeout.
  config.throttle.latency_ms = 3600e3;
  {
    ExpertStore store(config, f.config);
    std::vector<PrefetchRequest> all;
    for (int l = 0; l < 4; ++l)
      for (int e = 0; e < 4; ++e) all.push_back({{l, e}, l, 1.0f, Tier::compute});
    store.prefetch(all);
    ASSERT_TRUE(eventually([&] { return store.state({0, 0}) == ExpertState::reading; }));
  }
}

}  // namespace
}  // namespace chronos
