// Data-parallel pieces in one process: the global-batch normalisation, data shards, the torchrun
// environment, and two ranks over Gloo on loopback (one thread each) for the process group and the
// bucketed gradient sum.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <thread>

#include "chronos/core/error.h"
#include "chronos/train/chronos_losses.h"
#include "chronos/train/data.h"
#include "chronos/train/global_batch.h"
#include "chronos/train/gradient_sync.h"
#include "chronos/train/launcher.h"
#include "chronos/train/preference_losses.h"
#include "chronos/train/process_group.h"
#include "chronos/train/sequence_log_probs.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

// Two ranks with the same batch: every count over the ranks is twice the local one.
const GlobalBatchReducer kTwinRanks{[](const at::Tensor& t) { return t * 2; }, [](int64_t v) { return v; }};

RouterLossInputs router_inputs(int64_t B, int64_t S, int64_t E, int64_t L, int64_t K) {
  at::manual_seed(3);
  RouterLossInputs in;
  for (int64_t l = 0; l < L; ++l) {
    in.router_probs.push_back(at::softmax(at::randn({B, S, E}, at::kDouble), -1));
    in.selected.push_back(std::get<1>(in.router_probs.back().topk(2, -1)));
  }
  in.lookahead_probs = at::softmax(at::randn({B, S, K + 1, E}, at::kDouble), -1);
  in.mask = at::ones({B, S}, at::kLong);
  in.mask[1].narrow(0, S - 3, 3).zero_();  // padding
  in.reference_router_probs = at::softmax(at::randn({B, S, E}, at::kDouble), -1);
  in.top_k = 2;
  return in;
}

TEST(GlobalBatch, EveryLossTermIsTheRanksShareOfTheGlobalMean) {
  const RouterLossInputs in = router_inputs(2, 9, 6, 3, 3);
  RouterLossWeights w;
  w.router_anchor = 0.1;
  const RouterLossTerms alone = chronos_router_losses(in, w);
  RouterLossTerms share;
  {
    const GlobalBatchScope scope(&kTwinRanks);
    share = chronos_router_losses(in, w);
  }
  for (auto [a, s] : {std::pair{alone.balance, share.balance}, {alone.temporal, share.temporal}, {alone.locality, share.locality},
                      {alone.lookahead, share.lookahead}, {alone.lookahead_topk, share.lookahead_topk},
                      {alone.lookahead_union, share.lookahead_union}, {alone.anchor, share.anchor}, {alone.total, share.total}}) {
    EXPECT_GT(a.item<double>(), 0);
    EXPECT_NEAR(s.item<double>() * 2, a.item<double>(), 1e-12);
  }
  // The language-model loss and the preference losses follow the same rule.
  const at::Tensor logits = at::randn({2, 5, 11}, at::kDouble);
  const at::Tensor labels = at::tensor({0, 3, 4, -100, 5, 1, 2, 2, -100, -100}, at::kLong).reshape({2, 5});
  const double ce = causal_lm_loss(logits, labels).item<double>();
  const at::Tensor pc = at::randn({4}, at::kDouble), pr = at::randn({4}, at::kDouble), rc = at::randn({4}, at::kDouble), rr = at::randn({4}, at::kDouble);
  const double dpo = dpo_loss(pc, pr, rc, rr, DpoConfig{}).loss.item<double>();
  const GlobalBatchScope scope(&kTwinRanks);
  EXPECT_NEAR(causal_lm_loss(logits, labels).item<double>() * 2, ce, 1e-12);
  EXPECT_NEAR(dpo_loss(pc, pr, rc, rr, DpoConfig{}).loss.item<double>() * 2, dpo, 1e-12);
}

TEST(GlobalBatch, BatchesPadToTheLongestSequenceOfAnyRank) {
  const std::vector<Example> examples = {{{5, 6, 7}, {5, 6, 7}}};
  EXPECT_EQ(make_batch(examples, 0).input_ids.size(1), 3);
  const GlobalBatchReducer longer_elsewhere{[](const at::Tensor& t) { return t; }, [](int64_t v) { return std::max<int64_t>(v, 8); }};
  const GlobalBatchScope scope(&longer_elsewhere);
  const Batch batch = make_batch(examples, 0);
  EXPECT_EQ(batch.input_ids.size(1), 8);
  EXPECT_EQ(batch.attention_mask.sum().item<int64_t>(), 3);
  EXPECT_EQ(batch.labels[0][7].item<int64_t>(), -100);
}

std::string write_records(const testing::TempDir& dir, int n) {
  const std::string path = dir.file("records.jsonl");
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) out << "{\"i\": " << i << "}\n";
  return path;
}

int64_t id_of(RecordStream& s) {
  return s.next([](const nlohmann::json& r, const std::string&) { return r.at("i").get<int64_t>(); });
}

TEST(DataShards, RanksReadDisjointInterleavedPartsOfTheSameOrder) {
  testing::TempDir dir;
  const std::string path = write_records(dir, 11);
  RecordStream all(path, 7, true, false);
  std::vector<int64_t> order;
  for (int i = 0; i < 11; ++i) order.push_back(id_of(all));
  RecordStream r0(path, 7, true, false), r1(path, 7, true, false);
  r0.set_shard({0, 2});
  r1.set_shard({1, 2});
  EXPECT_EQ(r0.records_per_epoch(), 5u);
  for (int i = 0; i < 5; ++i) {  // 11 records: 5 each, the 11th of this epoch's order sits out
    EXPECT_EQ(id_of(r0), order[static_cast<size_t>(2 * i)]);
    EXPECT_EQ(id_of(r1), order[static_cast<size_t>(2 * i + 1)]);
  }
  id_of(r0);
  EXPECT_EQ(r0.cursor().epoch, 1);  // both move to the next epoch together
  RecordStream too_many(path, 7, true, false);
  EXPECT_THROW(too_many.set_shard({0, 12}), InvalidArgument);
  EXPECT_THROW(too_many.set_shard({2, 2}), InvalidArgument);
}

TEST(DataShards, AnotherWorldSizeKeepsTheShareOfTheEpoch) {
  const nlohmann::json saved = {{"epoch", 2}, {"position", 10}, {"bad_records", 1}, {"carry", {4, 5}}, {"without_targets", 3}};
  const nlohmann::json resharded = reshard_data_state(saved, 2, 4);
  EXPECT_EQ(resharded.at("epoch"), 2);
  EXPECT_EQ(resharded.at("position"), 5);
  EXPECT_EQ(resharded.at("without_targets"), 3);
  EXPECT_FALSE(resharded.contains("carry"));
  EXPECT_EQ(reshard_data_state(saved, 2, 1).at("position"), 20);
  EXPECT_THROW(reshard_data_state(saved, 0, 1), InvalidArgument);
}

// Sets environment variables for one test and puts the old values back.
class Environment {
 public:
  explicit Environment(std::vector<std::pair<std::string, std::string>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      if (value.empty()) {
        ::unsetenv(name.c_str());
      } else {
        ::setenv(name.c_str(), value.c_str(), 1);
      }
    }
  }
  ~Environment() {
    for (const auto& [name, value] : saved_) value ? (void)::setenv(name.c_str(), value->c_str(), 1) : (void)::unsetenv(name.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

std::string env_error(std::vector<std::pair<std::string, std::string>> vars) {
  const Environment env(std::move(vars));
  try {
    DistEnvironment::from_environment();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(DistEnvironment, FollowsTorchrunsConventionsAndNamesTheBadVariable) {
  {
    const Environment single({{"WORLD_SIZE", ""}, {"RANK", ""}});
    EXPECT_FALSE(DistEnvironment::from_environment().distributed());
  }
  {
    const Environment job({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29400"}});
    const DistEnvironment env = DistEnvironment::from_environment();
    EXPECT_TRUE(env.distributed());
    EXPECT_EQ(env.rank, 3);
    EXPECT_EQ(env.local_rank, 1);
    EXPECT_EQ(env.master_addr, "node0");
    EXPECT_EQ(env.port, 29400);
  }
  const std::vector<std::pair<std::string, std::string>> ok = {{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1234"}};
  auto with = [&](const std::string& name, const std::string& value) {
    auto vars = ok;
    for (auto& [n, v] : vars)
      if (n == name) v = value;
    return vars;
  };
  EXPECT_NE(env_error(with("MASTER_PORT", "abc")).find("MASTER_PORT must be a port number"), std::string::npos);
  EXPECT_NE(env_error(with("MASTER_PORT", "70000")).find("MASTER_PORT"), std::string::npos);
  EXPECT_NE(env_error(with("MASTER_ADDR", "")).find("MASTER_ADDR is not set"), std::string::npos);
  EXPECT_NE(env_error(with("RANK", "2")).find("RANK must be in [0, 2)"), std::string::npos);
  EXPECT_NE(env_error(with("RANK", "")).find("RANK is not set"), std::string::npos);
  EXPECT_NE(env_error(with("WORLD_SIZE", "two")).find("WORLD_SIZE must be an integer"), std::string::npos);
  EXPECT_THROW(parse_dist_backend("mpi"), ConfigError);
  EXPECT_EQ(parse_dist_backend("auto"), DistBackend::automatic);
}

TEST(Launcher, OptionsNameTheBadField) {
  LaunchOptions o;
  o.command = {"/bin/true"};
  o.nproc = 0;
  EXPECT_THROW(o.validate(), ConfigError);
  o.nproc = 2;
  o.nnodes = 2;
  const Environment no_master({{"MASTER_ADDR", ""}, {"MASTER_PORT", "x"}});
  EXPECT_THROW(o.validate(), ConfigError);  // several nodes need rank 0's address
  o.nnodes = 1;
  EXPECT_THROW(o.resolved(), InvalidArgument);  // MASTER_PORT=x
}

TEST(Launcher, ReportsTheRankThatFailed) {
  LaunchOptions o;
  o.nproc = 3;
  o.grace_s = 5;
  o.command = {"/bin/sh", "-c", "[ \"$RANK\" != 2 ] || exit 7; [ \"$WORLD_SIZE\" = 3 ] && [ -n \"$MASTER_PORT\" ]"};
  std::vector<std::string> lines;
  EXPECT_EQ(launch_ranks(o, [&](const std::string& line) { lines.push_back(line); }), 7);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("rank 2 exited with status 7"), std::string::npos) << lines.front();
  o.command = {"/bin/sh", "-c", "[ \"$LOCAL_RANK\" = \"$RANK\" ]"};
  EXPECT_EQ(launch_ranks(o, [](const std::string&) {}), 0);
}

// Runs `body(rank, group)` on two ranks, one thread each, over Gloo on loopback.
template <typename Body>
void on_two_ranks(Body body) {
  const int port = free_local_port();
  auto rank = [&](int64_t r) {
    DistEnvironment env;
    env.rank = r;
    env.world_size = 2;
    env.port = port;
    std::unique_ptr<DataParallelGroup> group = DataParallelGroup::connect(env, {DistBackend::gloo, c10::kCPU, 30});
    body(r, *group);
  };
  auto other = std::async(std::launch::async, rank, 1);
  rank(0);
  other.get();
}

TEST(DataParallelGroup, CollectivesAcrossTwoRanks) {
  on_two_ranks([](int64_t rank, DataParallelGroup& group) {
    EXPECT_EQ(group.world_size(), 2);
    EXPECT_STREQ(group.backend_name(), "gloo");
    EXPECT_TRUE(at::equal(group.sum(at::full({3}, static_cast<double>(rank + 1))), at::full({3}, 3.0)));
    EXPECT_EQ(group.max(rank * 10 + 4), 14);
    std::vector<at::Tensor> tensors = {at::full({2, 2}, static_cast<float>(rank)), at::full({5}, static_cast<double>(rank + 7))};
    group.broadcast(tensors, 1);
    EXPECT_TRUE(at::equal(tensors[0], at::ones({2, 2})));
    EXPECT_TRUE(at::equal(tensors[1], at::full({5}, 8.0)));
    const std::vector<std::string> all = group.gather("from " + std::to_string(rank));
    const std::vector<std::string> expected = rank == 0 ? std::vector<std::string>{"from 0", "from 1"} : std::vector<std::string>{};
    EXPECT_EQ(all, expected);
    const GlobalBatchScope scope(&group.global_batch_reducer());
    EXPECT_EQ(max_over_ranks(rank), 1);
    EXPECT_EQ(sum_over_ranks(at::ones({2})).sum().item<double>(), 4.0);
    group.barrier();
  });
}

TEST(GradientSync, SumsTheRanksGradientsInBucketsAndLeavesUnreachedParametersAlone) {
  on_two_ranks([](int64_t rank, DataParallelGroup& group) {
    const double r = static_cast<double>(rank);
    std::vector<at::Tensor> params = {
        at::zeros({4, 4}, at::kDouble).requires_grad_(),  // both ranks, both micro-batches
        at::zeros({3}, at::kDouble).requires_grad_(),     // both ranks
        at::zeros({5}, at::kDouble).requires_grad_(),     // rank 0 only (an expert rank 1's tokens skipped)
        at::zeros({2}, at::kDouble).requires_grad_(),     // nobody
        at::zeros({6}, at::kDouble).requires_grad_(),     // rank 1's first micro-batch only
    };
    GradientSync sync(group, params, /*bucket_bytes=*/64);  // several buckets
    EXPECT_EQ(sync.buckets(), 3);  // [p4 p3] [p2 p1] [p0], backward's order
    for (int step = 0; step < 2; ++step) {
      // Micro-batch 1 of 2: accumulates locally.
      at::Tensor first = (params[0] * (r + 1)).sum();
      if (rank == 1) first = first + (params[4] * 3).sum();
      first.backward();
      // Micro-batch 2: reduced during its backward.
      at::Tensor second = (params[0] * 2).sum() + (params[1] * (r + 5)).sum();
      if (rank == 0) second = second + (params[2] * 4).sum();
      sync.prepare(second);
      second.backward();
      const GradientSyncTiming timing = sync.finish();
      EXPECT_TRUE(at::allclose(params[0].grad(), at::full({4, 4}, 1.0 + 2.0 + 2.0 + 2.0, at::kDouble)));  // (1 + 2) + (2 + 2)
      EXPECT_TRUE(at::allclose(params[1].grad(), at::full({3}, 5.0 + 6.0, at::kDouble)));
      EXPECT_TRUE(at::allclose(params[2].grad(), at::full({5}, 4.0, at::kDouble)));
      EXPECT_FALSE(params[3].grad().defined());
      EXPECT_TRUE(at::allclose(params[4].grad(), at::full({6}, 3.0, at::kDouble)));
      EXPECT_EQ(timing.buckets, sync.buckets());
      EXPECT_EQ(timing.bytes, (16 + 3 + 5 + 2 + 6) * 8);
      EXPECT_GE(timing.all_reduce, 0);
      EXPECT_LE(timing.overlapped, timing.all_reduce);
      for (auto& p : params) p.mutable_grad() = at::Tensor();
    }
    EXPECT_THROW(sync.finish(), InvalidArgument);  // no prepare() for this step
  });
}

}  // namespace
}  // namespace chronos
