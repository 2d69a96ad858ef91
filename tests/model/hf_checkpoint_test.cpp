// Hugging Face MoE checkpoints (docs/hf-checkpoints.md): tiny random-weight checkpoints of each
// family with the exact config keys, tensor names, shapes and sharding; their forward against an
// independent float64 implementation of transformers' equations written here from the modeling
// files (router, shared-expert gate, q/k norms, clipping, RoPE, sliding window); dtype and sharding
// invariance; offloaded == resident; refusals; the save -> load round trip in the family's layout.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <filesystem>
#include <map>
#include <set>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/model/hf_config.h"
#include "chronos/model/pretrained.h"
#include "chronos/model/random_checkpoint.h"
#include "chronos/store/expert_cache_writer.h"
#include "chronos/store/expert_store.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Each family's config.json as its release writes it, shrunk: the keys transformers reads, with
// values away from the defaults where the semantics depend on them.
json family_config(const std::string& type) {
  json c = {{"model_type", type},       {"vocab_size", 97},         {"hidden_size", 64},
            {"num_hidden_layers", 3},   {"num_attention_heads", 4}, {"num_key_value_heads", 2},
            {"hidden_act", "silu"},     {"max_position_embeddings", 128}, {"rms_norm_eps", 1e-5},
            {"tie_word_embeddings", false}, {"bos_token_id", 1},    {"eos_token_id", 2},
            {"torch_dtype", "bfloat16"}, {"attention_dropout", 0.0}, {"use_cache", true},
            {"transformers_version", "4.46.0"}, {"initializer_range", 0.02}, {"output_router_logits", false}};
  if (type == "mixtral") {
    c.update({{"architectures", {"MixtralForCausalLM"}}, {"intermediate_size", 48}, {"num_local_experts", 6},
              {"num_experts_per_tok", 2}, {"rope_theta", 1e6}, {"sliding_window", nullptr}, {"router_aux_loss_coef", 0.02},
              {"router_jitter_noise", 0.0}});
  } else if (type == "qwen2_moe") {
    c.update({{"architectures", {"Qwen2MoeForCausalLM"}}, {"intermediate_size", 80}, {"moe_intermediate_size", 24},
              {"shared_expert_intermediate_size", 40}, {"num_experts", 8}, {"num_experts_per_tok", 3},
              {"norm_topk_prob", false}, {"rope_theta", 1e6}, {"rms_norm_eps", 1e-6}, {"decoder_sparse_step", 1},
              {"use_sliding_window", false}, {"sliding_window", 4096}, {"max_window_layers", 21}, {"router_aux_loss_coef", 0.001}});
  } else if (type == "qwen3_moe") {
    c.update({{"architectures", {"Qwen3MoeForCausalLM"}}, {"head_dim", 24}, {"intermediate_size", 96},
              {"moe_intermediate_size", 24}, {"num_experts", 8}, {"num_experts_per_tok", 2}, {"norm_topk_prob", true},
              {"attention_bias", false}, {"rope_theta", 1e6}, {"rms_norm_eps", 1e-6}, {"decoder_sparse_step", 1},
              {"mlp_only_layers", json::array()}, {"use_sliding_window", false}, {"sliding_window", nullptr},
              {"max_window_layers", 3}, {"rope_scaling", nullptr}});
  } else if (type == "olmoe") {
    c.update({{"architectures", {"OlmoeForCausalLM"}}, {"intermediate_size", 32}, {"num_experts", 8},
              {"num_experts_per_tok", 3}, {"norm_topk_prob", false}, {"rope_theta", 10000.0}, {"clip_qkv", 1.5},
              {"attention_bias", false}, {"bos_token_id", nullptr}, {"eos_token_id", 50}, {"pad_token_id", 1},
              {"router_aux_loss_coef", 0.01}, {"rope_scaling", nullptr}});
  }
  return c;
}

const std::vector<std::string> kFamilies = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe"};

// ---------------------------------------------------------------------------------------------
// The independent float64 forward, from transformers' modeling files.
struct Reference {
  json config;
  std::map<std::string, at::Tensor> w;  // every tensor by its checkpoint name, float64

  explicit Reference(const std::string& dir) : config(read_json_file((fs::path(dir) / "config.json").string())) {
    const fs::path index = fs::path(dir) / "model.safetensors.index.json";
    std::vector<std::string> files;
    if (fs::exists(index)) {
      const json map = read_json_file(index.string());
      for (const auto& file : map["weight_map"]) files.push_back(file.get<std::string>());
      std::sort(files.begin(), files.end());
      files.erase(std::unique(files.begin(), files.end()), files.end());
    } else {
      files.push_back("model.safetensors");
    }
    for (const auto& file : files)
      for (auto& [name, t] : load_safetensors((fs::path(dir) / file).string())) w[name] = t.to(at::kDouble);
  }
  const at::Tensor& t(const std::string& name) const {
    const auto it = w.find(name);
    if (it == w.end()) throw std::runtime_error("reference: no tensor " + name);
    return it->second;
  }
  int64_t i(const char* key) const { return config.at(key).get<int64_t>(); }

  static at::Tensor rms(const at::Tensor& x, const at::Tensor& weight, double eps) {
    return weight * x * at::rsqrt(x.pow(2).mean(-1, true) + eps);
  }
  static at::Tensor linear(const at::Tensor& x, const at::Tensor& weight) { return at::matmul(x, weight.t()); }

  // Logits [S, V] of the whole sequence.
  at::Tensor logits(const std::vector<int64_t>& ids) const {
    const std::string type = config["model_type"];
    const int64_t S = static_cast<int64_t>(ids.size()), heads = i("num_attention_heads"), kv = i("num_key_value_heads");
    const int64_t H = i("hidden_size");
    const int64_t D = config.contains("head_dim") ? i("head_dim") : H / heads;
    const double eps = config["rms_norm_eps"], theta = config["rope_theta"];
    const int64_t experts = type == "mixtral" ? i("num_local_experts") : i("num_experts"), top_k = i("num_experts_per_tok");
    const bool renorm = type == "mixtral" || config.value("norm_topk_prob", false);
    const int64_t window = type == "mixtral" && config["sliding_window"].is_number() ? i("sliding_window") : 0;
    const double clip = type == "olmoe" && config["clip_qkv"].is_number() ? config["clip_qkv"].get<double>() : 0;
    const bool qkv_bias = type == "qwen2_moe" || config.value("attention_bias", false);
    const bool o_bias = type != "qwen2_moe" && config.value("attention_bias", false);
    const std::string moe = type == "mixtral" ? "block_sparse_moe" : "mlp";

    // RoPE: inv_freq = 1 / theta^(2i/D), cos/sin of cat(freqs, freqs), rotate-half.
    const at::Tensor inv_freq = 1.0 / at::pow(theta, at::arange(0, D, 2, at::kDouble) / static_cast<double>(D));
    const at::Tensor angles = at::outer(at::arange(S, at::kDouble), inv_freq);
    const at::Tensor cos = at::cat({angles, angles}, -1).cos().unsqueeze(1), sin = at::cat({angles, angles}, -1).sin().unsqueeze(1);
    const auto rope = [&](const at::Tensor& x) {  // [S, n, D]
      const at::Tensor rotated = at::cat({-x.narrow(-1, D / 2, D / 2), x.narrow(-1, 0, D / 2)}, -1);
      return x * cos + rotated * sin;
    };
    // Causal, and with a window W a query sees the W most recent keys (itself included).
    at::Tensor mask = at::zeros({S, S}, at::kDouble);
    for (int64_t q = 0; q < S; ++q)
      for (int64_t k = 0; k < S; ++k)
        if (k > q || (window > 0 && k <= q - window)) mask[q][k] = -INFINITY;

    at::Tensor x = t("model.embed_tokens.weight").index_select(0, at::tensor(ids));
    for (int64_t l = 0; l < i("num_hidden_layers"); ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      const at::Tensor h = rms(x, t(p + "input_layernorm.weight"), eps);
      at::Tensor q = linear(h, t(p + "self_attn.q_proj.weight")), k = linear(h, t(p + "self_attn.k_proj.weight"));
      at::Tensor v = linear(h, t(p + "self_attn.v_proj.weight"));
      if (qkv_bias) {
        q = q + t(p + "self_attn.q_proj.bias");
        k = k + t(p + "self_attn.k_proj.bias");
        v = v + t(p + "self_attn.v_proj.bias");
      }
      if (type == "olmoe") {  // OLMoE: norm over the whole projection, then clipping of q, k and v
        q = rms(q, t(p + "self_attn.q_norm.weight"), eps);
        k = rms(k, t(p + "self_attn.k_norm.weight"), eps);
        if (clip > 0) {
          q = q.clamp(-clip, clip);
          k = k.clamp(-clip, clip);
          v = v.clamp(-clip, clip);
        }
      }
      q = q.view({S, heads, D});
      k = k.view({S, kv, D});
      v = v.view({S, kv, D});
      if (type == "qwen3_moe") {  // Qwen3: one norm over head_dim shared by the heads
        q = rms(q, t(p + "self_attn.q_norm.weight"), eps);
        k = rms(k, t(p + "self_attn.k_norm.weight"), eps);
      }
      q = rope(q);
      k = rope(k);
      std::vector<at::Tensor> outs;
      for (int64_t head = 0; head < heads; ++head) {
        const int64_t g = head / (heads / kv);
        const at::Tensor scores = at::matmul(q.select(1, head), k.select(1, g).t()) / std::sqrt(static_cast<double>(D)) + mask;
        outs.push_back(at::matmul(at::softmax(scores, -1), v.select(1, g)));
      }
      at::Tensor attn = linear(at::cat(outs, -1), t(p + "self_attn.o_proj.weight"));
      if (o_bias) attn = attn + t(p + "self_attn.o_proj.bias");
      x = x + attn;

      const at::Tensor h2 = rms(x, t(p + "post_attention_layernorm.weight"), eps);
      const at::Tensor probs = at::softmax(linear(h2, t(p + moe + ".gate.weight")), -1);  // [S, E]
      at::Tensor y = at::zeros_like(h2);
      for (int64_t s = 0; s < S; ++s) {
        auto [top_w, top_i] = probs[s].topk(top_k);
        if (renorm) top_w = top_w / top_w.sum();
        for (int64_t j = 0; j < top_k; ++j) {
          const int64_t e = top_i[j].item<int64_t>();
          const std::string ex = p + moe + ".experts." + std::to_string(e) + ".";
          const at::Tensor row = h2[s];
          at::Tensor out;
          if (type == "mixtral") {  // w1 gate, w3 up, w2 down
            out = linear(at::silu(linear(row, t(ex + "w1.weight"))) * linear(row, t(ex + "w3.weight")), t(ex + "w2.weight"));
          } else {
            out = linear(at::silu(linear(row, t(ex + "gate_proj.weight"))) * linear(row, t(ex + "up_proj.weight")),
                         t(ex + "down_proj.weight"));
          }
          y[s] += top_w[j] * out;
        }
      }
      if (type == "qwen2_moe") {  // the shared expert, scaled by sigmoid(shared_expert_gate . x)
        const std::string se = p + "mlp.shared_expert.";
        const at::Tensor shared = linear(at::silu(linear(h2, t(se + "gate_proj.weight"))) * linear(h2, t(se + "up_proj.weight")),
                                         t(se + "down_proj.weight"));
        y = y + at::sigmoid(linear(h2, t(p + "mlp.shared_expert_gate.weight"))) * shared;
      }
      x = x + y;
    }
    x = rms(x, t("model.norm.weight"), eps);
    const bool tied = config.value("tie_word_embeddings", false);
    return linear(x, tied ? t("model.embed_tokens.weight") : t("lm_head.weight"));
  }
};

// ---------------------------------------------------------------------------------------------

const std::vector<int64_t> kPrompt = {5, 17, 33, 8, 91, 42, 3, 60, 27};

at::Tensor model_logits(ChronosForCausalLMImpl& model) {
  at::NoGradGuard no_grad;
  return model.forward(at::tensor(kPrompt).view({1, -1})).logits[0].to(at::kDouble);
}

// Token by token through the cache: the batch-1 decoding paths.
at::Tensor decoded_logits(ChronosForCausalLMImpl& model, ExpertSource* source = nullptr) {
  at::NoGradGuard no_grad;
  KVCache cache = model.make_cache();
  std::vector<at::Tensor> rows;
  for (int64_t id : kPrompt) {
    ForwardOptions options;
    options.cache = &cache;
    options.expert_source = source;
    rows.push_back(model.forward(at::tensor({id}).view({1, 1}), options).logits[0][0].to(at::kDouble));
  }
  return at::stack(rows);
}

// Whether `address` lies in a mapping of a file whose name ends with `file` (/proc/self/maps).
bool inside_mapping_of(const void* address, const std::string& file) {
  std::ifstream maps("/proc/self/maps");
  const auto at = reinterpret_cast<uintptr_t>(address);
  for (std::string line; std::getline(maps, line);) {
    if (line.size() < file.size() || line.compare(line.size() - file.size(), file.size(), file) != 0) continue;
    uintptr_t begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &begin, &end) == 2 && at >= begin && at < end) return true;
  }
  return false;
}

// The message of the error of type E loading `dir` throws; a test failure and "" when it loads.
template <typename E>
std::string load_error(const std::string& dir) {
  try {
    load_pretrained(dir);
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << dir << " loaded";
  return "";
}

double max_difference(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

LoadOptions plain_load() {
  LoadOptions options;
  options.huge_pages = false;
  return options;
}

class FamilyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyTest, ForwardMatchesTheFloat64Equations) {
  testing::TempDir dir;
  write_random_checkpoint(dir.path(), family_config(GetParam()), {});
  const Reference reference(dir.path());
  const at::Tensor want = reference.logits(kPrompt);
  ChronosForCausalLM model = load_pretrained(dir.path(), plain_load());
  EXPECT_EQ(model->config().model_type, GetParam());
  EXPECT_TRUE(model->model->lookahead_router.is_empty());
  EXPECT_LT(max_difference(model_logits(*model), want), 2e-4) << "whole-sequence path";
  EXPECT_LT(max_difference(decoded_logits(*model), want), 2e-4) << "batch-1 decoding path";
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  EXPECT_EQ(parameters, count_parameters(model->config()));
}

TEST_P(FamilyTest, ShardsAndDtypesGiveIdenticalLogits) {
  testing::TempDir single, sharded, fp32;
  const json config = family_config(GetParam());
  write_random_checkpoint(single.path(), config, {});
  RandomCheckpointOptions shards;
  shards.shard_bytes = 40 << 10;
  write_random_checkpoint(sharded.path(), config, shards);
  RandomCheckpointOptions wide;
  wide.dtype = at::kFloat;
  write_random_checkpoint(fp32.path(), config, wide);
  ASSERT_TRUE(fs::exists(sharded.file("model.safetensors.index.json")));
  std::set<std::string> files;
  const json index = read_json_file(sharded.file("model.safetensors.index.json"));
  for (const auto& entry : index["weight_map"]) files.insert(entry.get<std::string>());
  ASSERT_GE(files.size(), 3u);
  EXPECT_TRUE(files.count(cat("model-00002-of-", std::string(5 - std::to_string(files.size()).size(), '0'), files.size(), ".safetensors")));
  EXPECT_FALSE(fs::exists(sharded.file("model.safetensors")));
  EXPECT_EQ(SafetensorsFile(single.file("model.safetensors")).entry("model.norm.weight").dtype, safetensors::DType::BF16);

  ChronosForCausalLM a = load_pretrained(single.path(), plain_load());
  ChronosForCausalLM b = load_pretrained(sharded.path(), plain_load());
  ChronosForCausalLM c = load_pretrained(fp32.path(), plain_load());
  const at::Tensor want = model_logits(*a);
  EXPECT_EQ(max_difference(model_logits(*b), want), 0.0);
  EXPECT_EQ(max_difference(model_logits(*c), want), 0.0);
}

TEST_P(FamilyTest, ZeroCopyWhenTheDtypeMatches) {
  testing::TempDir dir;
  RandomCheckpointOptions wide;
  wide.dtype = at::kFloat;
  write_random_checkpoint(dir.path(), family_config(GetParam()), wide);
  ChronosForCausalLM model = load_pretrained(dir.path(), plain_load());
  const at::Tensor mapped = SafetensorsFile(dir.file("model.safetensors")).tensor("model.norm.weight");
  const at::Tensor norm = model->model->norm->weight;
  EXPECT_TRUE(at::equal(norm, mapped));
  EXPECT_TRUE(inside_mapping_of(norm.data_ptr(), "model.safetensors"));
  EXPECT_TRUE(inside_mapping_of(model->layer(1).window->q_proj->weight.data_ptr(), "model.safetensors"));
  ChronosForCausalLM gathered = load_pretrained(dir.path(), LoadOptions{});  // huge pages: one copy of everything
  EXPECT_TRUE(at::equal(gathered->model->norm->weight, mapped));
  EXPECT_FALSE(inside_mapping_of(gathered->model->norm->weight.data_ptr(), "model.safetensors"));
}

TEST_P(FamilyTest, OffloadedEqualsResidentUnderWait) {
  testing::TempDir dir, cache;
  write_random_checkpoint(dir.path(), family_config(GetParam()), {});
  ChronosForCausalLM resident = load_pretrained(dir.path(), plain_load());
  const ModelConfig& config = resident->config();
  ExpertClusters groups(3);
  for (int64_t u = 0; u < config.num_hidden_layers * config.num_experts; ++u)
    groups[static_cast<size_t>(u % 3)].push_back(ExpertKey::from_index(u, config.num_experts));
  const ClusterManifest manifest = write_expert_cache(*resident, groups, ExpertStorage{}, cache.path());

  LoadOptions skip = plain_load();
  skip.skip_routed_experts = true;
  ChronosForCausalLM offloaded = load_pretrained(dir.path(), skip);
  EXPECT_EQ(offloaded->layer(0).moe->experts->at<FeedForwardImpl>(0).gate_proj->weight.numel(), 0);
  OffloadConfig offload;
  offload.cache_dir = cache.path();
  const double total = static_cast<double>(manifest.total_expert_bytes());
  offload.compute_budget_bytes = static_cast<int64_t>(0.3 * total);
  offload.ram_budget_bytes = static_cast<int64_t>(0.5 * total);
  offload.miss_policy = MissPolicy::wait;
  offload.io_threads = 2;
  ExpertStore store(offload, config);
  EXPECT_LT(max_difference(decoded_logits(*offloaded, &store), decoded_logits(*resident)), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyTest, ::testing::ValuesIn(kFamilies),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(HfCheckpoint, MixtralSlidingWindowMatchesTheEquations) {
  testing::TempDir dir;
  json config = family_config("mixtral");
  config["sliding_window"] = 4;  // 9 prompt tokens: the window cuts in
  write_random_checkpoint(dir.path(), config, {});
  const at::Tensor want = Reference(dir.path()).logits(kPrompt);
  ChronosForCausalLM model = load_pretrained(dir.path(), plain_load());
  EXPECT_LT(max_difference(model_logits(*model), want), 2e-4);
  EXPECT_LT(max_difference(decoded_logits(*model), want), 2e-4);
}

TEST(HfCheckpoint, Qwen3AttentionBiasAndTiedEmbeddingsMatchTheEquations) {
  testing::TempDir dir;
  json config = family_config("qwen3_moe");
  config["attention_bias"] = true;
  config["tie_word_embeddings"] = true;
  write_random_checkpoint(dir.path(), config, {});
  EXPECT_FALSE(SafetensorsFile(dir.file("model.safetensors")).contains("lm_head.weight"));
  const at::Tensor want = Reference(dir.path()).logits(kPrompt);
  ChronosForCausalLM model = load_pretrained(dir.path(), plain_load());
  EXPECT_LT(max_difference(model_logits(*model), want), 2e-4);
  EXPECT_LT(max_difference(decoded_logits(*model), want), 2e-4);
}

TEST(HfCheckpoint, SaveLoadRoundTripKeepsTheFamilyLayout) {
  for (const std::string& type : kFamilies) {
    SCOPED_TRACE(type);
    testing::TempDir dir, saved;
    write_random_checkpoint(dir.path(), family_config(type), {});
    ChronosForCausalLM model = load_pretrained(dir.path(), plain_load());
    save_pretrained(*model, saved.path());

    const json original = read_json_file(dir.file("config.json")), written = read_json_file(saved.file("config.json"));
    for (const auto& [key, value] : original.items()) EXPECT_EQ(written.at(key), value) << key;
    for (const char* chronos_only : {"lambda_balance", "use_hybrid_attention", "lookahead_steps", "kv_latent_dim", "use_moe"})
      EXPECT_FALSE(written.contains(chronos_only)) << chronos_only;

    const SafetensorsFile before(dir.file("model.safetensors")), after(saved.file("model.safetensors"));
    auto names_before = before.names(), names_after = after.names();
    std::sort(names_before.begin(), names_before.end());
    std::sort(names_after.begin(), names_after.end());
    EXPECT_EQ(names_before, names_after);
    for (const auto& name : names_before) {
      ASSERT_EQ(after.entry(name).dtype, safetensors::DType::BF16) << name;
      ASSERT_TRUE(at::equal(before.tensor(name), after.tensor(name))) << name;
    }
    ChronosForCausalLM reloaded = load_pretrained(saved.path(), plain_load());
    EXPECT_EQ(max_difference(model_logits(*reloaded), model_logits(*model)), 0.0);
  }
}

TEST(HfCheckpoint, FamilyConfigsReadTheirOwnKeys) {
  const ModelConfig mixtral = config_from_hf_json(family_config("mixtral"), "mixtral/config.json");
  EXPECT_EQ(mixtral.num_experts, 6);
  EXPECT_EQ(mixtral.resolved_moe_intermediate_size(), 48);
  EXPECT_TRUE(mixtral.norm_topk_prob);
  EXPECT_EQ(mixtral.num_shared_experts, 0);
  EXPECT_EQ(mixtral.qk_norm, QkNorm::none);
  EXPECT_FALSE(mixtral.has_lookahead_router());
  EXPECT_EQ(mixtral.lambda_balance, 0.0);

  const ModelConfig qwen2 = config_from_hf_json(family_config("qwen2_moe"), "qwen2/config.json");
  EXPECT_TRUE(qwen2.attention_bias);
  EXPECT_FALSE(qwen2.attention_output_bias);
  EXPECT_TRUE(qwen2.shared_expert_gate);
  EXPECT_EQ(qwen2.resolved_shared_intermediate_size(), 40);
  EXPECT_EQ(qwen2.resolved_intermediate_size(), 80);
  EXPECT_FALSE(qwen2.norm_topk_prob);

  const ModelConfig qwen3 = config_from_hf_json(family_config("qwen3_moe"), "qwen3/config.json");
  EXPECT_EQ(qwen3.resolved_head_dim(), 24);
  EXPECT_EQ(qwen3.qk_norm, QkNorm::per_head);

  const ModelConfig olmoe = config_from_hf_json(family_config("olmoe"), "olmoe/config.json");
  EXPECT_EQ(olmoe.qk_norm, QkNorm::full_width);
  EXPECT_DOUBLE_EQ(olmoe.clip_qkv, 1.5);
  EXPECT_EQ(olmoe.bos_token_id, 50);  // no BOS: documents are separated by EOS

  // Defaults as transformers' config classes have them.
  const ModelConfig bare = config_from_hf_json({{"model_type", "qwen2_moe"}}, "bare/config.json");
  EXPECT_EQ(bare.num_experts, 60);
  EXPECT_EQ(bare.num_experts_per_tok, 4);
  EXPECT_EQ(bare.resolved_moe_intermediate_size(), 1408);
  EXPECT_EQ(bare.resolved_shared_intermediate_size(), 5632);
  EXPECT_DOUBLE_EQ(bare.rope_theta, 10000.0);
  const ModelConfig list_eos = config_from_hf_json({{"model_type", "olmoe"}, {"eos_token_id", {7, 9}}}, "x");
  EXPECT_EQ(list_eos.eos_token_id, 7);
  EXPECT_EQ(config_to_hf_json(list_eos)["eos_token_id"], json({7, 9}));
}

// Every feature a config asks for that is not implemented: one line naming the key and the value.
TEST(HfCheckpoint, UnimplementedFeaturesAreRefusedByName) {
  struct Case {
    std::string type, key;
    json value;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"mixtral", "rope_scaling", {{"type", "yarn"}, {"factor", 4.0}}, R"(rope_scaling = {"factor":4.0,"type":"yarn"})"},
      {"qwen3_moe", "rope_scaling", {{"rope_type", "dynamic"}, {"factor", 2.0}}, "rope_scaling"},
      {"mixtral", "rope_parameters", {{"rope_type", "llama3"}, {"rope_theta", 5e5}}, "rope_parameters"},
      {"qwen2_moe", "mlp_only_layers", {0, 2}, "mlp_only_layers = [0,2]"},
      {"qwen3_moe", "decoder_sparse_step", 2, "decoder_sparse_step = 2"},
      {"qwen2_moe", "expert_interval", 2, "expert_interval = 2"},
      {"qwen3_moe", "use_sliding_window", true, "use_sliding_window = true"},
      {"olmoe", "quantization_config", {{"quant_method", "mxfp4"}}, "quantization_config"},
      {"mixtral", "router_jitter_noise", 0.01, "router_jitter_noise = 0.01"},
      {"olmoe", "attention_dropout", 0.1, "attention_dropout = 0.1"},
      {"mixtral", "hidden_act", "gelu", "hidden_act"},
      {"qwen2_moe", "layer_types", {"sliding_attention", "full_attention", "full_attention"}, "layer_types"},
      {"olmoe", "clip_qkv", 0, "clip_qkv = 0"},
      {"deepseek_v2", "model_type", "deepseek_v2", "model_type \"deepseek_v2\" is not supported"},
      {"gpt_oss", "model_type", "gpt_oss", "model_type \"gpt_oss\" is not supported"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    json config = family_config(c.type == "deepseek_v2" || c.type == "gpt_oss" ? "mixtral" : c.type);
    config[c.key] = c.value;
    testing::TempDir dir;
    write_json_file(dir.file("config.json"), config);
    const std::string what = load_error<ConfigError>(dir.path());
    EXPECT_NE(what.find(c.expected), std::string::npos) << what;
    EXPECT_NE(what.find("config.json"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(HfCheckpoint, MissingAndMisshapenTensorsAreNamed) {
  testing::TempDir dir;
  write_random_checkpoint(dir.path(), family_config("qwen2_moe"), {});
  const auto rewrite = [&](const std::function<void(std::map<std::string, at::Tensor>&)>& edit) {
    auto tensors = load_safetensors(dir.file("model.safetensors"));
    edit(tensors);
    save_safetensors(dir.file("model.safetensors"), std::vector<std::pair<std::string, at::Tensor>>(tensors.begin(), tensors.end()));
  };
  const at::Tensor gate = load_safetensors(dir.file("model.safetensors")).at("model.layers.1.mlp.shared_expert_gate.weight");
  rewrite([](auto& t) { t.erase("model.layers.1.mlp.shared_expert_gate.weight"); });
  EXPECT_NE(load_error<FormatError>(dir.path()).find("lacks tensor 'model.layers.1.mlp.shared_expert_gate.weight'"), std::string::npos);
  rewrite([&](auto& t) {
    t["model.layers.1.mlp.shared_expert_gate.weight"] = gate;
    t["model.layers.0.mlp.experts.3.up_proj.weight"] = at::zeros({5, 64}, at::kBFloat16);
  });
  EXPECT_NE(load_error<FormatError>(dir.path()).find("'model.layers.0.mlp.experts.3.up_proj.weight' has shape [5, 64], the config needs [24, 64]"),
            std::string::npos);
}

}  // namespace
}  // namespace chronos
