// Routing traces from a tiny model and chronos-pack's whole pipeline: routing -> clusters -> cache.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/decoder_layer.h"
#include "chronos/model/moe.h"
#include "chronos/store/cluster_file.h"
#include "chronos/store/cluster_manifest.h"
#include "chronos/store/pack.h"
#include "chronos/store/routing_trace.h"
#include "support/temp_dir.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

namespace fs = std::filesystem;

struct PackTest : ::testing::Test {
  void SetUp() override {
    at::manual_seed(0);
    config = testing::tiny_config();  // 4 layers, 4 experts top-2
    config.hidden_size = 32;
    config.intermediate_size = 64;
    config.num_attention_heads = 2;  // head_dim 16 (rope width 8)
    model = ChronosForCausalLM(config);
    std::mt19937 rng(3);
    for (size_t n : {12, 7, 30, 1, 0, 19, 25}) {
      std::vector<int64_t> seq(n);
      for (auto& id : seq) id = 3 + static_cast<int64_t>(rng() % 90);
      sequences.push_back(seq);
    }
    options.out_dir = tmp.file("expert_cache");
  }
  RoutingTrace trace() { return record_routing(*model, sequences, RoutingOptions{3}); }

  testing::TempDir tmp;
  ModelConfig config;
  ChronosForCausalLM model{nullptr};
  std::vector<std::vector<int64_t>> sequences;
  PackOptions options;
};

TEST_F(PackTest, RecordRoutingMatchesUnbatchedForwards) {
  model->train();
  std::vector<std::pair<int64_t, int64_t>> reports;
  const RoutingTrace t = record_routing(*model, sequences, RoutingOptions{3}, [&](int64_t done, int64_t total) { reports.emplace_back(done, total); });
  EXPECT_TRUE(model->is_training());  // restored
  ASSERT_EQ(t.num_sequences(), sequences.size());
  EXPECT_EQ(t.tokens(), 94);
  ASSERT_EQ(reports.size(), 2u);  // 6 non-empty sequences in batches of 3
  EXPECT_EQ(reports.back(), (std::pair<int64_t, int64_t>{94, 94}));

  model->eval();
  torch::NoGradGuard no_grad;
  for (size_t s = 0; s < sequences.size(); ++s) {
    ASSERT_EQ(t.length(s), static_cast<int64_t>(sequences[s].size()));
    if (sequences[s].empty()) continue;
    const ForwardOutput out = model->forward(at::tensor(sequences[s]).unsqueeze(0));
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      const at::Tensor expected = std::get<0>(out.selected[static_cast<size_t>(l)][0].sort(-1));  // [S, k]
      for (int64_t tok = 0; tok < t.length(s); ++tok) {
        std::vector<int64_t> got(t.experts(s, tok, l), t.experts(s, tok, l) + t.top_k());
        std::sort(got.begin(), got.end());
        for (int64_t k = 0; k < t.top_k(); ++k)
          EXPECT_EQ(got[static_cast<size_t>(k)], expected[tok][k].item<int64_t>()) << "sequence " << s << " token " << tok << " layer " << l;
      }
    }
  }
}

TEST_F(PackTest, RecordRoutingRejectsBadInput) {
  sequences[2][4] = config.vocab_size;
  EXPECT_THROW(record_routing(*model, sequences), InvalidArgument);
  try {
    RoutingOptions{0}.validate();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("routing.batch_size"), std::string::npos);
  }
}

TEST_F(PackTest, WritesACacheThatReadsBackWithTheModelsBytes) {
  const RoutingTrace t = trace();
  options.storage = ExpertStorage::dense(c10::kHalf);
  const uint64_t expert = packed_expert_bytes(config, options.storage);
  EXPECT_EQ(expert, 3u * 4096);  // 3 x 64 x 32 x 2 bytes
  options.cluster_bytes = 3 * expert + 100;  // three experts per file
  options.seed = 5;
  std::vector<size_t> reports;
  const PackResult result = pack_expert_cache(*model, t, options, [&](size_t done, size_t total) { reports.push_back(done); });
  ASSERT_EQ(reports.size(), result.manifest.clusters.size());

  const ClusterManifest m = read_cluster_manifest(options.out_dir);
  check_manifest_matches(m, config, options.out_dir);
  verify_cluster_files(m, options.out_dir, VerifyLevel::checksum);
  EXPECT_EQ(m.storage, ExpertStorage::dense(c10::kHalf));
  ASSERT_EQ(m.clusters.size(), result.clustering.clusters.size());
  std::vector<int> seen(16, 0);
  for (size_t c = 0; c < m.clusters.size(); ++c) {
    const ClusterFile& file = m.clusters[c];
    EXPECT_LE(file.experts.size(), 3u);
    const SafetensorsFile tensors(options.out_dir + "/" + file.file);
    for (size_t i = 0; i < file.experts.size(); ++i) {
      const ExpertKey key = file.experts[i].key;
      EXPECT_EQ(key.index(4), result.clustering.clusters[c][i]);  // file order = (layer, expert) order
      if (i > 0) EXPECT_LT(file.experts[i - 1].key, key);
      EXPECT_EQ(file.experts[i].read_length(), expert);
      ++seen[static_cast<size_t>(key.index(4))];
      const ExpertWeights w = model->layer(key.layer).moe->expert_weights(key.expert);
      EXPECT_TRUE(at::equal(tensors.tensor(expert_tensor_name(key, "gate_proj")), w.gate_proj.to(at::kHalf))) << key.name();
      EXPECT_TRUE(at::equal(tensors.tensor(expert_tensor_name(key, "up_proj")), w.up_proj.to(at::kHalf))) << key.name();
      EXPECT_TRUE(at::equal(tensors.tensor(expert_tensor_name(key, "down_proj")), w.down_proj.to(at::kHalf))) << key.name();
    }
  }
  for (int v : seen) EXPECT_EQ(v, 1);

  const nlohmann::json summary = read_json_file(options.out_dir + "/cluster_build_summary.json");
  EXPECT_EQ(summary, result.summary);
  EXPECT_EQ(summary["method"], "louvain");
  EXPECT_EQ(summary["seed"], 5);
  EXPECT_EQ(summary["window"], 4);
  EXPECT_EQ(summary["tokens"], 94);
  EXPECT_EQ(summary["clusters"], m.clusters.size());
  int64_t members = 0;
  for (const auto& size : summary["cluster_sizes"]) members += size.get<int64_t>();
  EXPECT_EQ(members, 16);
  EXPECT_EQ(summary["cluster_bytes"][0], summary["cluster_sizes"][0].get<uint64_t>() * expert);
  for (const char* key : {"modularity", "inside_mass", "random_inside_mass"}) EXPECT_TRUE(summary[key].is_number()) << key;
  EXPECT_GT(summary["inside_mass"].get<double>(), summary["random_inside_mass"].get<double>());
}

TEST_F(PackTest, SameSeedSamePacking) {
  const RoutingTrace t = trace();
  options.cluster_bytes = 4 * packed_expert_bytes(config, options.storage);
  const PackResult a = pack_expert_cache(*model, t, options);
  options.out_dir = tmp.file("again");
  const PackResult b = pack_expert_cache(*model, t, options);
  EXPECT_EQ(a.clustering.clusters, b.clustering.clusters);
  EXPECT_EQ(a.summary, b.summary);
  for (size_t c = 0; c < a.manifest.clusters.size(); ++c) EXPECT_EQ(a.manifest.clusters[c].checksum, b.manifest.clusters[c].checksum);
}

TEST_F(PackTest, BudgetTooSmallForOneExpert) {
  options.cluster_bytes = packed_expert_bytes(config, ExpertStorage{}) - 1;
  try {
    pack_expert_cache(*model, trace(), options);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cluster_bytes must hold at least one expert"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(options.out_dir));
}

TEST_F(PackTest, RepacksAnEarlierCacheButNoOtherFolder) {
  const RoutingTrace t = trace();
  options.cluster_bytes = 16 * packed_expert_bytes(config, options.storage);  // everything fits one cluster
  pack_expert_cache(*model, t, options);
  options.cluster_bytes = packed_expert_bytes(config, options.storage);  // one expert per cluster
  const PackResult again = pack_expert_cache(*model, t, options);
  EXPECT_EQ(again.manifest.clusters.size(), 16u);
  EXPECT_EQ(read_cluster_manifest(options.out_dir).clusters.size(), 16u);
  EXPECT_EQ(read_json_file(options.out_dir + "/cluster_build_summary.json")["clusters"], 16);

  testing::write_bytes(options.out_dir + "/notes.txt", "mine");
  try {
    pack_expert_cache(*model, t, options);
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("notes.txt"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(options.out_dir + "/notes.txt"));
  EXPECT_TRUE(fs::exists(options.out_dir + "/cluster_manifest.json"));  // nothing was touched
  testing::write_bytes(tmp.file("a_file"), "x");
  EXPECT_THROW(check_pack_folder(tmp.file("a_file")), IoError);
}

TEST_F(PackTest, TraceForAnotherModel) {
  RoutingTrace other(2, 4, 2);
  EXPECT_THROW(pack_expert_cache(*model, other, options), InvalidArgument);
}

TEST(PackOptions, Rules) {
  const auto expect_rule = [](PackOptions o, const std::string& field) {
    try {
      o.validate();
      FAIL() << "expected a ConfigError naming " << field;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  PackOptions good;
  good.out_dir = "cache";
  EXPECT_NO_THROW(good.validate());
  PackOptions o = good;
  o.out_dir.clear();
  expect_rule(o, "pack.out_dir");
  o = good;
  o.cluster_bytes = 0;
  expect_rule(o, "pack.cluster_bytes");
  o = good;
  o.window = -1;
  expect_rule(o, "pack.window");
  o = good;
  o.resolution = 0;
  expect_rule(o, "pack.resolution");
  o = good;
  o.storage = ExpertStorage::dense(c10::kInt);
  expect_rule(o, "pack.storage");
}

}  // namespace
}  // namespace chronos
