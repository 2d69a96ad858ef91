// Incremental decoding with the caches must give the logits of recomputing the whole sequence,
// also well past the sliding window (the reference gets this wrong: Q2, Q3, Q4).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "chronos/model/causal_lm.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

struct Variant {
  const char* name;
  bool hybrid;
  bool proper_rope;
  int64_t heads = 0;  // with kv_heads and hidden, instead of the tiny config's (0: keep them)
  int64_t kv_heads = 0;
  int64_t hidden = 0;
  double clip_qkv = 0;  // > 0: q, k and v clamped (OLMoE's clip_qkv), with the per-head norm
};
void PrintTo(const Variant& v, std::ostream* out) { *out << v.name; }

class Incremental : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    at::manual_seed(0);
    config = testing::tiny_config();  // window 8
    config.use_hybrid_attention = GetParam().hybrid;
    config.mla_proper_rope = GetParam().proper_rope;
    if (GetParam().heads > 0) {
      config.num_attention_heads = GetParam().heads;
      config.num_key_value_heads = GetParam().kv_heads;
      config.hidden_size = GetParam().hidden;
    }
    config.clip_qkv = GetParam().clip_qkv;
    model = ChronosForCausalLM(config);
    model->eval();
    ids = at::randint(config.vocab_size, {2, 30});  // > 3x the window
  }

  // Logits at every position from one pass over the whole sequence.
  at::Tensor full_logits() {
    at::NoGradGuard no_grad;
    return model->forward(ids).logits;
  }

  // Logits fed chunk by chunk through the cache.
  at::Tensor chunked_logits(const std::vector<int64_t>& chunks) {
    return chunked_logits(chunks, ids);
  }

  at::Tensor chunked_logits(const std::vector<int64_t>& chunks, const at::Tensor& ids, KvDtype kv = KvDtype::fp32) {
    at::NoGradGuard no_grad;
    KVCache cache = model->make_cache(kv);
    ForwardOptions options;
    options.cache = &cache;
    std::vector<at::Tensor> parts;
    int64_t start = 0;
    for (int64_t len : chunks) {
      parts.push_back(model->forward(ids.narrow(1, start, len), options).logits);
      start += len;
    }
    EXPECT_EQ(start, ids.size(1));
    EXPECT_EQ(cache.position(), ids.size(1));
    return at::cat(parts, 1);
  }

  ModelConfig config;
  ChronosForCausalLM model{nullptr};
  at::Tensor ids;
};

TEST_P(Incremental, TokenByTokenEqualsFullRecompute) {
  const at::Tensor full = full_logits();
  const at::Tensor step = chunked_logits(std::vector<int64_t>(30, 1));
  EXPECT_LE((full - step).abs().max().item<float>(), 1e-4);
}

TEST_P(Incremental, LongPrefillThenSingleSteps) {
  std::vector<int64_t> chunks = {12};  // longer than the window
  for (int i = 0; i < 18; ++i) chunks.push_back(1);
  EXPECT_LE((full_logits() - chunked_logits(chunks)).abs().max().item<float>(), 1e-4);
}

TEST_P(Incremental, MultiTokenChunksOnACache) {
  EXPECT_LE((full_logits() - chunked_logits({5, 11, 3, 1, 10})).abs().max().item<float>(), 1e-4);
}

// One sequence, one token at a time: the batch-1 decoding paths of both attention kinds and the MoE
// (host loops, absorbed MLA, in-place cache) against the general path over the whole sequence,
// from an empty cache and after a prefill longer than the window.
TEST_P(Incremental, OneSequenceTakesTheOneTokenPathsAndAgrees) {
  const at::Tensor one = ids.narrow(0, 1, 1).contiguous();
  at::Tensor full;
  {
    at::NoGradGuard no_grad;
    full = model->forward(one).logits;
    const at::Tensor token = at::randn({1, 1, config.hidden_size});
    KVCache cache = model->make_cache();
    AttentionContext context;
    context.cache = &cache.layer(0);
    DecoderLayerImpl& first = model->layer(0);
    EXPECT_TRUE(first.is_mla() ? first.mla->one_token_path_applies(token, context)
                               : first.window->one_token_path_applies(token, context));
    EXPECT_TRUE(model->layer(1).moe->one_token_path_applies(token));
  }
  EXPECT_LE((full - chunked_logits(std::vector<int64_t>(30, 1), one)).abs().max().item<float>(), 1e-4);
  std::vector<int64_t> chunks = {12};
  for (int i = 0; i < 18; ++i) chunks.push_back(1);
  EXPECT_LE((full - chunked_logits(chunks, one)).abs().max().item<float>(), 1e-4);
}

// A bfloat16 cache: one sequence token by token (the one-token paths, reading bfloat16 rows) against
// two sequences token by token (the general path, the same rounded keys and values read back as
// float32) agree as closely as float32's paths do; both move off the float32 cache's logits, by
// little.
TEST_P(Incremental, Bfloat16CacheTakesTheOneTokenPathsAndAgreesWithTheGeneralPath) {
  const at::Tensor one = ids.narrow(0, 1, 1).contiguous();
  {
    at::NoGradGuard no_grad;
    KVCache cache = model->make_cache(KvDtype::bf16);
    ForwardOptions options;
    options.cache = &cache;
    model->forward(one.narrow(1, 0, 1), options);
    ASSERT_EQ(cache.layer(0).first.scalar_type(), at::kBFloat16);
    AttentionContext context;
    context.cache = &cache.layer(0);
    const at::Tensor token = at::randn({1, 1, config.hidden_size});
    DecoderLayerImpl& first = model->layer(0);
    EXPECT_TRUE(first.is_mla() ? first.mla->one_token_path_applies(token, context)
                               : first.window->one_token_path_applies(token, context));
  }
  const std::vector<int64_t> steps(30, 1);
  const at::Tensor one_token = chunked_logits(steps, one, KvDtype::bf16);
  const at::Tensor general = chunked_logits(steps, ids, KvDtype::bf16).narrow(0, 1, 1);
  // (2e-4: float32's two paths differ by 1e-4 at most; a bfloat16 cache's slightly more in one variant.)
  EXPECT_LE((one_token - general).abs().max().item<float>(), 2e-4);

  // The drift from the float32 cache, measured where routing makes no discrete choice (every expert
  // chosen): a flipped top-k choice in this random tiny model would move the logits by far more
  // than the rounding itself does.
  config.num_experts_per_tok = config.num_experts;
  at::manual_seed(0);
  model = ChronosForCausalLM(config);
  model->eval();
  const at::Tensor rounded = chunked_logits(steps, one, KvDtype::bf16), float_cache = chunked_logits(steps, one);
  const float moved = (rounded - float_cache).abs().max().item<float>();
  EXPECT_GT(moved, 0.0f);  // the cache did round
  EXPECT_LE(moved, 1e-2 * float_cache.abs().max().item<float>());
}

// Past 64 cached positions, with three threads, the one-token paths split a layer's positions into
// slices, one a thread, and merge their softmaxes: token by token against the general path over the
// whole sequence, with a window long enough to be sliced too.
TEST_P(Incremental, PositionSlicesOverThreadsAgreeWithTheGeneralPath) {
  const int threads_before = at::get_num_threads();
  at::set_num_threads(3);
  config.sliding_window_size = 100;
  config.max_position_embeddings = 256;
  at::manual_seed(0);
  model = ChronosForCausalLM(config);
  model->eval();
  const at::Tensor one = at::randint(config.vocab_size, {1, 160});
  at::Tensor full;
  {
    at::NoGradGuard no_grad;
    full = model->forward(one).logits;
  }
  std::vector<int64_t> chunks = {70};  // already two slices at the first single token
  for (int i = 0; i < 90; ++i) chunks.push_back(1);
  const at::Tensor stepped = chunked_logits(chunks, one);
  at::set_num_threads(threads_before);
  EXPECT_LE((full - stepped).abs().max().item<float>(), 1e-4);
}

TEST_P(Incremental, WindowCacheStaysBounded) {
  at::NoGradGuard no_grad;
  KVCache cache = model->make_cache();
  ForwardOptions options;
  options.cache = &cache;
  model->forward(ids, options);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const int64_t held = cache.layer(l).length();
    if (config.layer_has_window(l)) {
      EXPECT_EQ(held, config.sliding_window_size) << "layer " << l;
    } else {
      EXPECT_EQ(held, 30) << "layer " << l;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, Incremental,
                         ::testing::Values(Variant{"hybrid", true, false}, Variant{"hybrid_proper_rope", true, true},
                                           Variant{"plain_gqa", false, false},
                                           // Head pairs across two key-value groups, and an odd last head.
                                           Variant{"hybrid_six_heads_two_groups", true, false, 6, 2, 96},
                                           Variant{"hybrid_three_heads_one_group", true, false, 3, 1, 48},
                                           // Each key-value group of three heads (a pair and a single head) clipped.
                                           Variant{"hybrid_six_heads_two_groups_clipped", true, false, 6, 2, 96, 0.05}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace chronos
