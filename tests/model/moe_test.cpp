#include "chronos/model/moe.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "chronos/core/error.h"
#include "chronos/model/config.h"
#include "support/tensors.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

// The routed-expert formula of docs/architecture.md, one token at a time.
at::Tensor naive_moe(MoEImpl& moe, const ModelConfig& c, const at::Tensor& x, const std::vector<bool>& available) {
  const at::Tensor flat = x.reshape({-1, x.size(-1)});
  std::vector<at::Tensor> rows;
  for (int64_t n = 0; n < flat.size(0); ++n) {
    const at::Tensor xn = flat[n].unsqueeze(0);
    const at::Tensor p = at::softmax(at::linear(xn, moe.gate->weight), -1)[0];
    auto [w, idx] = p.topk(c.num_experts_per_tok);
    if (c.norm_topk_prob) w = w / (w.sum() + 1e-20);
    at::Tensor shared = at::zeros_like(xn);
    for (int64_t s = 0; s < c.num_shared_experts; ++s)
      shared = shared + moe.shared_experts->at<FeedForwardImpl>(s).forward(xn) / static_cast<double>(c.num_shared_experts);
    at::Tensor y = shared;
    for (int64_t j = 0; j < idx.size(0); ++j) {
      const int64_t e = idx[j].item<int64_t>();
      y = y + w[j] * (available[e] ? swiglu(xn, moe.expert_weights(e)) : shared);
    }
    rows.push_back(y);
  }
  return at::cat(rows).view(x.sizes());
}

struct MoEFixture : ::testing::Test {
  void SetUp() override {
    at::manual_seed(0);
    config = testing::tiny_config();
    moe = MoE(config);
    moe->eval();
    x = at::randn({2, 5, config.hidden_size});
  }
  ModelConfig config;
  MoE moe{nullptr};
  at::Tensor x;
};

TEST_F(MoEFixture, MatchesThePerTokenFormula) {
  at::NoGradGuard no_grad;
  const MoEOutput out = moe->forward(x, {});
  EXPECT_LT((out.output - naive_moe(*moe, config, x, {true, true, true, true})).abs().max().item<float>(), 1e-5);
  EXPECT_EQ(out.router_probs.sizes(), (std::vector<int64_t>{2, 5, 4}));
  EXPECT_EQ(out.selected.sizes(), (std::vector<int64_t>{2, 5, 2}));
  EXPECT_EQ(out.aux_raw.item<float>(), 0.0f);  // eval
}

TEST_F(MoEFixture, SoftGatingMovesMissedWeightOntoSharedExperts) {
  at::NoGradGuard no_grad;
  MoECall call;
  call.availability = testing::bool_mask({1, 0, 1, 0});
  const MoEOutput out = moe->forward(x, call);
  EXPECT_LT((out.output - naive_moe(*moe, config, x, {true, false, true, false})).abs().max().item<float>(), 1e-5);
}

TEST_F(MoEFixture, AllAvailableEqualsNoMask) {
  at::NoGradGuard no_grad;
  MoECall call;
  call.availability = at::ones({4}, at::kBool);
  EXPECT_TRUE(at::equal(moe->forward(x, call).output, moe->forward(x, {}).output));
}

TEST_F(MoEFixture, WithoutSharedExpertsMissedWeightIsLost) {
  at::NoGradGuard no_grad;
  config.num_shared_experts = 0;
  at::manual_seed(0);
  MoE bare(config);
  bare->eval();
  MoECall call;
  call.availability = testing::bool_mask({0, 1, 1, 1});
  EXPECT_LT((bare->forward(x, call).output - naive_moe(*bare, config, x, {false, true, true, true})).abs().max().item<float>(), 1e-5);
}

// A source that serves some experts from the module and reports the rest missing.
class RecordingSource : public ExpertSource {
 public:
  RecordingSource(MoEImpl& moe, std::vector<bool> serve) : moe_(moe), serve_(std::move(serve)) {}
  std::vector<std::optional<ExpertWeights>> acquire(int64_t layer, const std::vector<int64_t>& experts) override {
    calls.push_back({layer, experts});
    std::vector<std::optional<ExpertWeights>> out;
    for (int64_t e : experts) out.push_back(serve_[e] ? std::optional<ExpertWeights>(moe_.expert_weights(e)) : std::nullopt);
    return out;
  }
  void release(int64_t layer) override { ++releases; }
  size_t max_batch() const override { return batch; }
  void announce(int64_t layer, const std::vector<int64_t>& experts) override { announced.push_back(experts); }
  std::vector<std::pair<int64_t, std::vector<int64_t>>> calls;
  std::vector<std::vector<int64_t>> announced;
  int releases = 0;
  size_t batch = SIZE_MAX;

 private:
  MoEImpl& moe_;
  std::vector<bool> serve_;
};

TEST_F(MoEFixture, AsksTheSourceOnceForTheRoutedExperts) {
  at::NoGradGuard no_grad;
  RecordingSource source(*moe, {true, true, false, true});
  MoECall call;
  call.layer = 3;
  call.source = &source;
  const MoEOutput out = moe->forward(x, call);
  ASSERT_EQ(source.calls.size(), 1u);
  EXPECT_EQ(source.releases, 1);
  EXPECT_EQ(source.calls[0].first, 3);
  const at::Tensor routed = std::get<0>(at::_unique(out.selected.flatten()));
  EXPECT_EQ(source.calls[0].second.size(), static_cast<size_t>(routed.numel()));
  EXPECT_TRUE(std::is_sorted(source.calls[0].second.begin(), source.calls[0].second.end()));
  EXPECT_LT((out.output - naive_moe(*moe, config, x, {true, true, false, true})).abs().max().item<float>(), 1e-5);
}

TEST_F(MoEFixture, SmallBatchesAreAcquiredAndReleasedInTurn) {
  at::NoGradGuard no_grad;
  RecordingSource source(*moe, {true, false, true, true});
  source.batch = 1;
  MoECall call;
  call.source = &source;
  const MoEOutput out = moe->forward(x, call);
  ASSERT_EQ(source.announced.size(), 1u);
  ASSERT_EQ(source.calls.size(), source.announced[0].size());
  EXPECT_EQ(source.releases, static_cast<int>(source.calls.size()));
  for (size_t i = 0; i < source.calls.size(); ++i) EXPECT_EQ(source.calls[i].second, std::vector<int64_t>{source.announced[0][i]});
  EXPECT_LT((out.output - naive_moe(*moe, config, x, {true, false, true, true})).abs().max().item<float>(), 1e-5);
}

// Batch-1 decoding takes its own path (host routing, fused kernel): the same outputs, token by token,
// as the per-token formula and as the general path, under every way an expert can be missing.
struct OneTokenCase {
  std::vector<bool> available;  // availability mask
  std::vector<bool> served;     // what a source serves (empty: no source)
  size_t batch = SIZE_MAX;      // the source's max_batch
  bool strided = false;         // the source serves non-contiguous weights (general SwiGLU inside the path)
};

class OneTokenSource : public RecordingSource {
 public:
  OneTokenSource(MoEImpl& moe, std::vector<bool> serve, bool strided) : RecordingSource(moe, std::move(serve)), strided_(strided) {}
  std::vector<std::optional<ExpertWeights>> acquire(int64_t layer, const std::vector<int64_t>& experts) override {
    auto out = RecordingSource::acquire(layer, experts);
    if (strided_)
      for (auto& w : out)
        if (w) w = ExpertWeights{w->gate_proj.t().contiguous().t(), w->up_proj.t().contiguous().t(), w->down_proj.t().contiguous().t()};
    return out;
  }

 private:
  bool strided_;
};

void expect_one_token_path_matches(MoEImpl& moe, const ModelConfig& c, const at::Tensor& x, const OneTokenCase& k) {
  const at::Tensor tokens = x.reshape({-1, 1, 1, x.size(-1)});
  for (int64_t n = 0; n < tokens.size(0); ++n) {
    const at::Tensor token = tokens[n].contiguous();
    std::optional<OneTokenSource> source;
    if (!k.served.empty()) source.emplace(moe, k.served, k.strided);
    if (source) source->batch = k.batch;
    MoECall call;
    call.availability = at::zeros({static_cast<int64_t>(k.available.size())}, at::kBool);
    for (size_t e = 0; e < k.available.size(); ++e) call.availability[static_cast<int64_t>(e)] = static_cast<bool>(k.available[e]);
    call.source = source ? &*source : nullptr;
    std::vector<bool> present = k.available;
    for (size_t e = 0; e < present.size(); ++e) present[e] = present[e] && (k.served.empty() || k.served[e]);

    at::NoGradGuard no_grad;
    ASSERT_TRUE(moe.one_token_path_applies(token));
    const MoEOutput fast = moe.forward(token, call);
    EXPECT_LT((fast.output - naive_moe(moe, c, token, present)).abs().max().item<float>(), 1e-5) << "token " << n;
    // The general path: the same call with two copies of the token in a batch.
    std::optional<OneTokenSource> general_source;
    if (!k.served.empty()) general_source.emplace(moe, k.served, false);
    call.source = general_source ? &*general_source : nullptr;
    const MoEOutput general = moe.forward(at::cat({token, token}), call);
    EXPECT_LT((fast.router_probs[0] - general.router_probs[0]).abs().max().item<float>(), 1e-6);
    EXPECT_TRUE(at::equal(std::get<0>(fast.selected[0].sort(-1)), std::get<0>(general.selected[0].sort(-1))));
    if (source && general_source) {
      EXPECT_EQ(source->announced, general_source->announced);
      EXPECT_EQ(source->releases, static_cast<int>(source->calls.size()));
    }
  }
}

TEST_F(MoEFixture, OneTokenPathMatchesTheFormula) {
  expect_one_token_path_matches(*moe, config, x, {{true, true, true, true}, {}});
  expect_one_token_path_matches(*moe, config, x, {{true, false, true, false}, {}});
  expect_one_token_path_matches(*moe, config, x, {{true, true, true, true}, {true, false, true, true}});
  expect_one_token_path_matches(*moe, config, x, {{true, true, false, true}, {false, true, true, true}, 1});
  expect_one_token_path_matches(*moe, config, x, {{true, true, true, true}, {true, true, false, true}, 1, true});
}

TEST_F(MoEFixture, OneTokenPathWithOtherSharedCountsAndUnnormalisedWeights) {
  for (const auto& [shared, norm] : std::vector<std::pair<int64_t, bool>>{{0, true}, {2, true}, {1, false}}) {
    ModelConfig c = config;
    c.num_shared_experts = shared;
    c.norm_topk_prob = norm;
    at::manual_seed(5);
    MoE other(c);
    other->eval();
    expect_one_token_path_matches(*other, c, x, {{true, false, true, true}, {}});
  }
}

// A routed expert that was never loaded, chosen while a pool thread runs the shared expert: the one
// clear error, and the next tokens decode as before.
TEST_F(MoEFixture, OneTokenPathWithAnUnloadedRoutedExpertFailsCleanly) {
  const int threads_before = at::get_num_threads();
  at::set_num_threads(2);
  at::NoGradGuard no_grad;
  const at::Tensor token = x.narrow(0, 0, 1).narrow(1, 0, 1).contiguous();
  const MoEOutput before = moe->forward(token, {});
  at::Tensor& weight = moe->experts->at<FeedForwardImpl>(before.selected[0][0][0].item<int64_t>()).gate_proj->weight;
  const at::Tensor kept = weight.data().clone();
  weight.set_data(at::empty({0}));
  try {
    moe->forward(token, {});
    ADD_FAILURE() << "an unloaded expert was used";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("was not loaded"), std::string::npos) << e.what();
  }
  weight.set_data(kept);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(at::equal(moe->forward(token, {}).output, before.output));
  at::set_num_threads(threads_before);
}

TEST_F(MoEFixture, OneTokenPathNeedsOneFloatTokenWithoutGradient) {
  const at::Tensor token = x.narrow(0, 0, 1).narrow(1, 0, 1).contiguous();
  EXPECT_FALSE(moe->one_token_path_applies(token));  // gradient mode on
  at::NoGradGuard no_grad;
  EXPECT_TRUE(moe->one_token_path_applies(token));
  EXPECT_FALSE(moe->one_token_path_applies(x));
  EXPECT_FALSE(moe->one_token_path_applies(token.to(at::kDouble)));
  moe->train();
  EXPECT_FALSE(moe->one_token_path_applies(token));
  moe->eval();
}

TEST_F(MoEFixture, MaskedExpertsAreNotRequested) {
  at::NoGradGuard no_grad;
  RecordingSource source(*moe, {true, true, true, true});
  MoECall call;
  call.source = &source;
  call.availability = testing::bool_mask({0, 1, 1, 1});
  moe->forward(x, call);
  for (int64_t e : source.calls.at(0).second) EXPECT_NE(e, 0);
}

TEST_F(MoEFixture, BalanceLossMatchesHandComputation) {
  moe->train();
  MoECall call;
  call.availability = at::ones({4}, at::kBool);  // no miss simulation
  const MoEOutput out = moe->forward(x, call);
  const at::Tensor p = out.router_probs.reshape({-1, 4}).detach();
  const at::Tensor sel = out.selected.reshape({-1});
  double expected = 0;
  for (int64_t e = 0; e < 4; ++e) {
    const double f = (sel == e).sum().item<double>() / p.size(0);
    expected += f * p.select(1, e).mean().item<double>();
  }
  EXPECT_NEAR(out.aux_raw.item<double>(), 4 * expected, 1e-5);
  out.aux_raw.backward();
  EXPECT_GT(moe->gate->weight.grad().abs().sum().item<float>(), 0.0f);
}

TEST_F(MoEFixture, BalanceLossIgnoresMaskedTokens) {
  moe->train();
  MoECall call;
  call.availability = at::ones({4}, at::kBool);
  call.loss_mask = at::ones({2, 5});
  call.loss_mask[1] = 0;  // second sequence is padding
  const double masked = moe->forward(x, call).aux_raw.item<double>();
  MoECall first_only;
  first_only.availability = call.availability;
  const double alone = moe->forward(x.narrow(0, 0, 1), first_only).aux_raw.item<double>();
  EXPECT_NEAR(masked, alone, 1e-5);
}

TEST_F(MoEFixture, TrainingMissSimulationKeepsAtLeastOneExpert) {
  at::NoGradGuard no_grad;
  config.fallback_mask_prob = 1.0;  // every expert dropped, then one is put back
  at::manual_seed(0);
  MoE dropping(config);
  dropping->train();
  RecordingSource source(*dropping, {true, true, true, true});
  MoECall call;
  call.source = &source;
  for (int i = 0; i < 5; ++i) dropping->forward(x, call);
  for (const auto& c : source.calls) EXPECT_LE(c.second.size(), 1u);
}

TEST_F(MoEFixture, GradientsReachTheExperts) {
  moe->train();
  MoECall call;
  call.availability = at::ones({4}, at::kBool);
  moe->forward(x, call).output.sum().backward();
  for (int64_t e = 0; e < 4; ++e) {
    const at::Tensor g = moe->expert_weights(e).down_proj.grad();
    EXPECT_TRUE(g.defined()) << "expert " << e;
  }
}

}  // namespace
}  // namespace chronos
