#include "chronos/model/config.h"

#include <gtest/gtest.h>

#include <functional>
#include <limits>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "support/temp_dir.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

TEST(ModelConfig, DerivesSizesLikeTheReference) {
  ModelConfig c;  // defaults: H 768, 8 heads
  EXPECT_EQ(c.resolved_head_dim(), 96);
  EXPECT_EQ(c.resolved_intermediate_size(), 2432);
  EXPECT_EQ(c.resolved_moe_intermediate_size(), 2432);
  EXPECT_EQ(c.rope_width(), 32);
  EXPECT_EQ(c.nope_width(), 64);
  EXPECT_EQ(count_parameters(c), 241426816);
}

TEST(ModelConfig, PresetSizesMatchTheSpec) {
  const ModelConfig base = ModelConfig::load(std::string(CHRONOS_SOURCE_DIR) + "/configs/base.json");
  EXPECT_EQ(count_parameters(base), 111111168);
  const ModelConfig small = ModelConfig::load(std::string(CHRONOS_SOURCE_DIR) + "/configs/small.json");
  EXPECT_GE(count_parameters(small), 20000000);
  EXPECT_LE(count_parameters(small), 30000000);
  const ModelConfig tiny = ModelConfig::load(std::string(CHRONOS_SOURCE_DIR) + "/configs/tiny.json");
  EXPECT_EQ(tiny.hidden_size, 64);
  EXPECT_EQ(tiny.num_experts, 4);
  // The fine-grained presets: the quickstart's, and its layout at 3.4 GB of float32 weights (larger
  // than a server CPU's last-level cache; docs/decode.md "A fine-grained model larger than the cache").
  const ModelConfig fine = ModelConfig::load(std::string(CHRONOS_SOURCE_DIR) + "/configs/fine.json");
  EXPECT_EQ(count_parameters(fine), 29168896);
  const ModelConfig fine_large = ModelConfig::load(std::string(CHRONOS_SOURCE_DIR) + "/configs/fine-large.json");
  EXPECT_EQ(count_parameters(fine_large), 846173696);
  EXPECT_EQ(count_parameters(fine_large, /*routed_experts=*/false), 40867328);
  EXPECT_EQ(fine_large.num_experts, 64);
  EXPECT_EQ(fine_large.num_experts_per_tok, 4);
}

TEST(ModelConfig, SmokeConfigSize) {
  ModelConfig c;
  c.hidden_size = 128;
  c.num_hidden_layers = 4;
  c.kv_latent_dim = 16;
  c.rope_dim = 8;
  c.sliding_window_size = 16;
  EXPECT_EQ(c.resolved_head_dim(), 16);
  EXPECT_EQ(c.resolved_intermediate_size(), 448);
  EXPECT_EQ(count_parameters(c), 4439680);
}

TEST(ModelConfig, MissingKeysTakeDefaultsAndUnknownKeysAreKept) {
  const nlohmann::json json = {{"hidden_size", 128}, {"model_type", "chronos"}, {"my_extension", {1, 2}}};
  const ModelConfig c = ModelConfig::from_json(json);
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.num_hidden_layers, 8);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.extra["my_extension"], nlohmann::json({1, 2}));
  EXPECT_EQ(c.to_json()["my_extension"], nlohmann::json({1, 2}));
}

TEST(ModelConfig, AliasesAndNulls) {
  const ModelConfig c = ModelConfig::from_json({{"max_seq_len", 512}, {"num_key_value_heads", nullptr}, {"num_attention_heads", 6},
                                               {"hidden_size", 384}, {"cluster_manifest_path", nullptr}});
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_EQ(c.resolved_kv_heads(), 6);
  EXPECT_TRUE(c.extra.at("cluster_manifest_path").is_null());
}

// The reference's runtime keys are kept as they were and never refused: nothing here reads them.
TEST(ModelConfig, ReferenceOnlyKeysAreKeptAndIgnored) {
  const ModelConfig c = ModelConfig::from_json({{"flash_attn", false}, {"offload_miss_policy_default", "maybe"},
                                               {"storage_format", "gguf"}, {"vram_budget_gb", 2.5}});
  EXPECT_NO_THROW(c.validate());
  const nlohmann::json back = c.to_json();
  EXPECT_EQ(back["flash_attn"], false);
  EXPECT_EQ(back["offload_miss_policy_default"], "maybe");
  EXPECT_EQ(back["storage_format"], "gguf");
  EXPECT_EQ(back["vram_budget_gb"], 2.5);
  EXPECT_FALSE(testing::tiny_config().to_json().contains("flash_attn"));
}

TEST(ModelConfig, WrongTypeNamesTheKey) {
  try {
    ModelConfig::from_json({{"hidden_size", "big"}}, "cfg.json");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.json: key 'hidden_size' must be an integer"), std::string::npos) << e.what();
  }
}

// Sizes are checked before they are converted or multiplied: nothing wraps, nothing over-allocates.
TEST(ModelConfig, HugeNumbersAreRefusedNotWrapped) {
  const auto expect_config_error = [](const nlohmann::json& json, const std::string& fragment) {
    try {
      ModelConfig::from_json(json, "cfg.json").validate();
      FAIL() << "accepted " << json.dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_config_error({{"num_hidden_layers", int64_t{1} << 62}}, "num_hidden_layers must be <= 4096");
  expect_config_error({{"num_hidden_layers", std::numeric_limits<uint64_t>::max()}}, "key 'num_hidden_layers' must be an integer below 2^63");
  expect_config_error({{"hidden_size", 1e300}}, "key 'hidden_size' must be an integer");
  expect_config_error({{"vocab_size", 1 << 30}}, "vocab_size must be <= ");
  // Each size within its bound, the product beyond 2^41 parameters.
  expect_config_error({{"hidden_size", 1 << 16}, {"num_hidden_layers", 1 << 12}, {"num_attention_heads", 64}, {"num_key_value_heads", 64},
                       {"num_experts", 1 << 12}, {"moe_intermediate_size", 1 << 14}},
                      "describes more than 2^41 parameters");
}

// A config that validates but whose parameters cannot fit in this machine's memory is refused
// before anything is allocated, in one line. Over a trillion parameters (4 TB in float32): more than
// any machine this runs on, so the test cannot pass by allocating.
TEST(ModelConfig, UnallocatableModelIsRefusedBeforeAllocating) {
  ModelConfig c = testing::tiny_config();
  c.vocab_size = 1 << 22;
  c.hidden_size = 1 << 16;
  c.num_attention_heads = 64;
  c.num_key_value_heads = 64;
  ASSERT_NO_THROW(c.validate());
  ASSERT_GT(count_parameters(c), int64_t{1} << 38);
  try {
    ChronosForCausalLM model(c);
    FAIL() << "a model of " << count_parameters(c) << " parameters was built";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("more than this machine's"), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, JsonRoundTrip) {
  ModelConfig c = testing::tiny_config();
  c.extra["cluster_manifest_path"] = "expert_cache/cluster_manifest.json";
  c.mla_proper_rope = true;
  const ModelConfig back = ModelConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_EQ(c.to_json()["model_type"], "chronos");
  EXPECT_EQ(c.to_json()["head_dim"], 16);
}

// Found by config_fuzz: a derived head_dim beyond the bound of an explicit one validated, then failed
// to read back from its own JSON. It is refused up front.
TEST(ModelConfig, DerivedHeadDimIsBoundedLikeAnExplicitOne) {
  ModelConfig c = testing::tiny_config();
  c.hidden_size = 64128;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 8;
  c.head_dim = 0;
  try {
    c.validate();
    FAIL() << "accepted a derived head_dim of " << c.resolved_head_dim();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim"), std::string::npos) << e.what();
  }
  c.num_attention_heads = 16;  // 4008: within the bound, and the JSON round trip holds
  c.num_key_value_heads = 16;
  EXPECT_NO_THROW(c.validate());
  EXPECT_NO_THROW(ModelConfig::from_json(c.to_json()).validate());
}

TEST(ModelConfig, SaveAndLoad) {
  testing::TempDir dir;
  const ModelConfig c = testing::tiny_config();
  c.save(dir.file("config.json"));
  EXPECT_EQ(ModelConfig::load(dir.file("config.json")).to_json(), c.to_json());
}

TEST(ModelConfig, LoadNamesTheFileOnBrokenRule) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("config.json"), R"({"num_experts": 4, "num_experts_per_tok": 6})");
  try {
    ModelConfig::load(dir.file("config.json"));
    FAIL();
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(dir.file("config.json")), std::string::npos) << what;
    EXPECT_NE(what.find("num_experts_per_tok"), std::string::npos) << what;
  }
}

// One case per validation rule: a mutation of a valid config and the field the message must name.
struct Rule {
  const char* field;
  std::function<void(ModelConfig&)> breaks;
};

void PrintTo(const Rule& rule, std::ostream* out) { *out << rule.field; }

class ValidationRule : public ::testing::TestWithParam<Rule> {};

TEST_P(ValidationRule, IsReportedByName) {
  ModelConfig c = testing::tiny_config();
  ASSERT_NO_THROW(c.validate());
  GetParam().breaks(c);
  try {
    c.validate();
    FAIL() << "no error for " << GetParam().field;
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(GetParam().field, 0), 0u) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rules, ValidationRule,
    ::testing::Values(
        Rule{"hidden_size", [](ModelConfig& c) { c.hidden_size = 0; }},
        Rule{"num_hidden_layers", [](ModelConfig& c) { c.num_hidden_layers = 0; }},
        Rule{"vocab_size", [](ModelConfig& c) { c.vocab_size = -3; }},
        Rule{"num_attention_heads", [](ModelConfig& c) { c.num_attention_heads = 0; }},
        Rule{"num_key_value_heads", [](ModelConfig& c) { c.num_key_value_heads = -1; }},
        Rule{"num_attention_heads", [](ModelConfig& c) { c.num_key_value_heads = 3; }},
        Rule{"head_dim", [](ModelConfig& c) { c.head_dim = -2; }},
        Rule{"head_dim", [](ModelConfig& c) { c.head_dim = 15; }},
        Rule{"intermediate_size", [](ModelConfig& c) { c.intermediate_size = -1; }},
        Rule{"moe_intermediate_size", [](ModelConfig& c) { c.moe_intermediate_size = -1; }},
        Rule{"hidden_act", [](ModelConfig& c) { c.hidden_act = "gelu"; }},
        Rule{"max_position_embeddings", [](ModelConfig& c) { c.max_position_embeddings = 0; }},
        Rule{"rms_norm_eps", [](ModelConfig& c) { c.rms_norm_eps = 0; }},
        Rule{"rope_theta", [](ModelConfig& c) { c.rope_theta = 0.5; }},
        Rule{"tie_word_embeddings", [](ModelConfig& c) { c.tie_word_embeddings = false; }},
        Rule{"dropout", [](ModelConfig& c) { c.dropout = 1.0; }},
        Rule{"bos_token_id", [](ModelConfig& c) { c.bos_token_id = 97; }},
        Rule{"eos_token_id", [](ModelConfig& c) { c.eos_token_id = -1; }},
        Rule{"num_experts", [](ModelConfig& c) { c.num_experts = 0; }},
        Rule{"num_experts_per_tok", [](ModelConfig& c) { c.num_experts_per_tok = 5; }},
        Rule{"num_shared_experts", [](ModelConfig& c) { c.num_shared_experts = -1; }},
        Rule{"lookahead_steps", [](ModelConfig& c) { c.lookahead_steps = -1; }},
        Rule{"kv_latent_dim", [](ModelConfig& c) { c.kv_latent_dim = 0; }},
        Rule{"rope_dim", [](ModelConfig& c) { c.rope_dim = 0; }},
        Rule{"rope_dim", [](ModelConfig& c) { c.rope_dim = 7; }},
        Rule{"rope_dim", [](ModelConfig& c) { c.rope_dim = 64; }},  // clamps to head_dim - 1 = 15, odd [Q14]
        Rule{"sliding_window_size", [](ModelConfig& c) { c.sliding_window_size = 0; }},
        Rule{"fallback_mask_prob", [](ModelConfig& c) { c.fallback_mask_prob = 1.5; }},
        Rule{"lambda_temporal", [](ModelConfig& c) { c.lambda_temporal = -1; }},
        Rule{"router_aux_loss_coef", [](ModelConfig& c) { c.router_aux_loss_coef = -1; }}));

}  // namespace
}  // namespace chronos
