#include "chronos/model/pretrained.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "support/temp_dir.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

namespace fs = std::filesystem;

struct PretrainedFixture : ::testing::Test {
  void SetUp() override {
    at::manual_seed(0);
    config = testing::tiny_config();
    model = ChronosForCausalLM(config);
    model->eval();
    ids = at::randint(config.vocab_size, {1, 8});
  }
  at::Tensor logits(ChronosForCausalLMImpl& m) {
    at::NoGradGuard no_grad;
    return m.forward(ids).logits;
  }
  void expect_error(const std::string& dir, std::initializer_list<std::string> fragments) {
    try {
      load_pretrained(dir);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    }
  }
  template <typename F>
  void expect_error_from(F&& f, std::initializer_list<std::string> fragments) {
    try {
      f();
      FAIL() << "expected an error";
    } catch (const Error& e) {
      for (const auto& text : fragments) EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  }
  ModelConfig config;
  ChronosForCausalLM model{nullptr};
  at::Tensor ids;
  testing::TempDir dir;
};

TEST_F(PretrainedFixture, RoundTripIsExact) {
  save_pretrained(*model, dir.path());
  EXPECT_TRUE(fs::exists(dir.file("config.json")));
  EXPECT_TRUE(fs::exists(dir.file("model.safetensors")));
  ChronosForCausalLM loaded = load_pretrained(dir.path());
  EXPECT_EQ((logits(*model) - logits(*loaded)).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(loaded->config().to_json(), model->config().to_json());
}

TEST_F(PretrainedFixture, CanLeaveTheRoutedExpertsOut) {
  save_pretrained(*model, dir.path());
  LoadOptions options;
  options.skip_routed_experts = true;
  ChronosForCausalLM loaded = load_pretrained(dir.path(), options);
  for (const auto& item : loaded->named_parameters()) {
    const bool routed = item.key().find(".mlp.experts.") != std::string::npos;
    EXPECT_EQ(item.value().numel() == 0, routed) << item.key();
  }
  // Without an expert source the model says what is missing instead of computing garbage.
  expect_error_from([&] { logits(*loaded); }, {"not loaded", "expert source"});
}

TEST_F(PretrainedFixture, WritesBothTiedNamesWithFormatMetadata) {
  save_pretrained(*model, dir.path());
  SafetensorsFile file(dir.file("model.safetensors"));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_TRUE(at::equal(file.tensor("lm_head.weight"), file.tensor("model.embed_tokens.weight")));
  const auto json = read_json_file(dir.file("config.json"));
  EXPECT_EQ(json["model_type"], "chronos");
  EXPECT_EQ(json["architectures"][0], "ChronosForCausalLM");
}

TEST_F(PretrainedFixture, AcceptsFilesWithoutLmHead) {
  auto tensors = reference_state_dict(*model);
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [](const auto& t) { return t.first == "lm_head.weight"; }),
                tensors.end());
  config.save(dir.file("config.json"));
  save_safetensors(dir.file("model.safetensors"), tensors);
  ChronosForCausalLM loaded = load_pretrained(dir.path());
  EXPECT_EQ((logits(*model) - logits(*loaded)).abs().max().item<float>(), 0.0f);
}

TEST_F(PretrainedFixture, LoadsHalfPrecisionWeights) {
  for (auto dtype : {at::kHalf, at::kBFloat16}) {
    auto tensors = reference_state_dict(*model);
    for (auto& [name, t] : tensors) t = t.to(dtype);
    config.save(dir.file("config.json"));
    save_safetensors(dir.file("model.safetensors"), tensors);
    ChronosForCausalLM loaded = load_pretrained(dir.path());
    EXPECT_EQ(loaded->lm_head_weight().scalar_type(), at::kFloat);
    EXPECT_LT((logits(*model) - logits(*loaded)).abs().max().item<float>(), 0.5f);
  }
}

TEST_F(PretrainedFixture, ComputesInBf16WhenAsked) {
  save_pretrained(*model, dir.path());
  LoadOptions options;
  options.dtype = at::kBFloat16;
  ChronosForCausalLM loaded = load_pretrained(dir.path(), options);
  EXPECT_EQ(loaded->lm_head_weight().scalar_type(), at::kBFloat16);
  EXPECT_TRUE(logits(*loaded).isfinite().all().item<bool>());
}

TEST_F(PretrainedFixture, ReadsShardedCheckpoints) {
  auto tensors = reference_state_dict(*model);
  const size_t half = tensors.size() / 2;
  std::vector<std::pair<std::string, at::Tensor>> a(tensors.begin(), tensors.begin() + half), b(tensors.begin() + half, tensors.end());
  save_safetensors(dir.file("model-00001-of-00002.safetensors"), a);
  save_safetensors(dir.file("model-00002-of-00002.safetensors"), b);
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [n, t] : a) index["weight_map"][n] = "model-00001-of-00002.safetensors";
  for (const auto& [n, t] : b) index["weight_map"][n] = "model-00002-of-00002.safetensors";
  write_json_file(dir.file("model.safetensors.index.json"), index);
  config.save(dir.file("config.json"));
  ChronosForCausalLM loaded = load_pretrained(dir.path());
  EXPECT_EQ((logits(*model) - logits(*loaded)).abs().max().item<float>(), 0.0f);
}

TEST_F(PretrainedFixture, WrongShapeNamesTheTensor) {
  save_pretrained(*model, dir.path());
  ModelConfig wider = config;
  wider.moe_intermediate_size = 64;
  wider.save(dir.file("config.json"));
  expect_error(dir.path(), {"model.safetensors", "mlp.experts.0.gate_proj.weight", "[96, 64]", "[64, 64]"});
}

TEST_F(PretrainedFixture, MissingTensorIsNamed) {
  auto tensors = reference_state_dict(*model);
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [](const auto& t) { return t.first == "model.norm.weight"; }),
                tensors.end());
  config.save(dir.file("config.json"));
  save_safetensors(dir.file("model.safetensors"), tensors);
  expect_error(dir.path(), {"lacks tensor 'model.norm.weight'"});
}

// Shard names read from the index are confined to the model folder.
TEST_F(PretrainedFixture, EscapingShardNamesAreRefused) {
  save_pretrained(*model, dir.file("real"));
  fs::create_directories(dir.file("m"));
  config.save(dir.file("m/config.json"));
  for (const std::string shard : {"../real/model.safetensors", "/etc/passwd", "a/../../real/model.safetensors", ""}) {
    write_json_file(dir.file("m/model.safetensors.index.json"), {{"weight_map", {{"model.norm.weight", shard}}}});
    expect_error(dir.file("m"), {"model.safetensors.index.json", "not a path inside the model directory"});
  }
}

// NaN or Inf in a weight is reported at load, naming the tensor; allow_nonfinite loads it anyway.
TEST_F(PretrainedFixture, NonFiniteWeightsAreRefusedUnlessAllowed) {
  auto tensors = reference_state_dict(*model);
  for (auto& [name, t] : tensors)
    if (name == "model.norm.weight") {
      t = t.clone();
      t[0] = std::numeric_limits<float>::quiet_NaN();
      t[1] = std::numeric_limits<float>::infinity();
    }
  config.save(dir.file("config.json"));
  save_safetensors(dir.file("model.safetensors"), tensors);
  expect_error(dir.path(), {"model.safetensors", "'model.norm.weight' holds 1 NaN and 1 infinite values", "allow_nonfinite"});
  LoadOptions options;
  options.allow_nonfinite = true;
  EXPECT_NO_THROW(load_pretrained(dir.path(), options));
}

TEST_F(PretrainedFixture, MalformedFilesGiveOneClearError) {
  expect_error(dir.file("absent"), {"absent: no such model directory"});
  save_pretrained(*model, dir.path());
  testing::write_bytes(dir.file("config.json"), "{\"hidden_size\": 64,,}");
  expect_error(dir.path(), {"config.json:1:"});
  config.save(dir.file("config.json"));
  const std::string bytes = testing::read_bytes(dir.file("model.safetensors"));
  testing::write_bytes(dir.file("model.safetensors"), bytes.substr(0, bytes.size() / 2));
  expect_error(dir.path(), {"model.safetensors", "truncated"});
  fs::remove(dir.file("model.safetensors"));
  expect_error(dir.path(), {"no model.safetensors"});
}

}  // namespace
}  // namespace chronos
