// The expert cache format: cluster files, the manifest, and the open-time checks.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/decoder_layer.h"
#include "chronos/model/moe.h"
#include "chronos/model/pretrained.h"
#include "chronos/model/weight_format.h"
#include "chronos/store/cluster_file.h"
#include "chronos/store/cluster_manifest.h"
#include "chronos/store/expert_cache_writer.h"
#include "support/temp_dir.h"
#include "model/row_groups.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

namespace fs = std::filesystem;

// Two clusters that interleave layers and experts: {l0_e0, l1_e3, ...} and the rest.
ExpertClusters two_clusters(const ModelConfig& c) {
  ExpertClusters clusters(2);
  for (int32_t l = 0; l < c.num_hidden_layers; ++l)
    for (int32_t e = 0; e < c.num_experts; ++e) clusters[(l + e) % 2].push_back({l, e});
  return clusters;
}

struct ClusterFormatTest : ::testing::Test {
  void SetUp() override {
    at::manual_seed(0);
    config = testing::tiny_config();
    model = ChronosForCausalLM(config);
    dir = tmp.file("expert_cache");
  }
  ClusterManifest pack(ExpertStorage storage = {}) { return write_expert_cache(*model, two_clusters(config), storage, dir); }
  template <typename F>
  void expect_error(F&& f, std::initializer_list<std::string> fragments) {
    try {
      f();
      FAIL() << "expected an error";
    } catch (const Error& e) {
      for (const auto& text : fragments) EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  }
  void open_all(VerifyLevel level = VerifyLevel::checksum) {
    const ClusterManifest m = read_cluster_manifest(dir);
    check_manifest_matches(m, config, dir);
    verify_cluster_files(m, dir, level);
  }
  // Rewrites one field of the manifest JSON.
  template <typename F>
  void edit_manifest(F&& edit) {
    nlohmann::json j = read_json_file(dir + "/cluster_manifest.json");
    edit(j);
    write_json_file(dir + "/cluster_manifest.json", j);
  }

  testing::TempDir tmp;
  ModelConfig config;
  ChronosForCausalLM model{nullptr};
  std::string dir;
};

TEST_F(ClusterFormatTest, RangesAreAlignedAndHoldTheModelsBytes) {
  const ClusterManifest written = pack();
  const ClusterManifest m = read_cluster_manifest(dir);
  ASSERT_EQ(m.clusters.size(), 2u);
  EXPECT_EQ(m.expert_bytes(), 3u * 64 * 96 * 4);
  for (size_t c = 0; c < m.clusters.size(); ++c) {
    const ClusterFile& file = m.clusters[c];
    EXPECT_EQ(file.file, cluster_file_name(static_cast<int64_t>(c)));
    EXPECT_EQ(file.checksum, written.clusters[c].checksum);
    EXPECT_EQ(file.size_bytes, fs::file_size(dir + "/" + file.file));
    EXPECT_EQ(file.size_bytes % kExpertAlignment, 0u);
    // Members are contiguous: each starts where the previous aligned range ends.
    for (size_t i = 1; i < file.experts.size(); ++i)
      EXPECT_EQ(file.experts[i].offset, file.experts[i - 1].offset + file.experts[i - 1].read_length());
    // The raw bytes at each range are gate|up|down of that expert, exactly.
    const std::string bytes = testing::read_bytes(dir + "/" + file.file);
    for (const ExpertRange& r : file.experts) {
      EXPECT_EQ(r.offset % kExpertAlignment, 0u);
      const ExpertWeights w = model->layer(r.key.layer).moe->expert_weights(r.key.expert);
      const at::Tensor expected = at::cat({w.gate_proj.flatten(), w.up_proj.flatten(), w.down_proj.flatten()});
      const at::Tensor got = at::from_blob(const_cast<char*>(bytes.data() + r.offset), {expected.numel()}, at::kFloat);
      EXPECT_TRUE(at::equal(got, expected)) << r.key.name();
    }
  }
  EXPECT_NO_THROW(open_all());
}

TEST_F(ClusterFormatTest, ClusterFilesArePlainSafetensorsWithReferenceKeys) {
  pack(ExpertStorage::dense(c10::kHalf));
  const ClusterManifest m = read_cluster_manifest(dir);
  EXPECT_EQ(m.storage, ExpertStorage::dense(c10::kHalf));
  const SafetensorsFile file(dir + "/cluster_000.ctsr");
  EXPECT_EQ(file.header().data_offset % kExpertAlignment, 0u);
  const ExpertWeights w = model->layer(0).moe->expert_weights(0);
  EXPECT_TRUE(at::equal(file.tensor("l0_e0__down_proj.weight"), w.down_proj.to(at::kHalf)));
  EXPECT_EQ(file.entry("l0_e0__gate_proj.weight").shape, (std::vector<int64_t>{96, 64}));
  EXPECT_NO_THROW(open_all());
}

// int8 / int4: each weight is stored as the quantization of the model's float weights, in groups of
// four rows (uint8 [rows, blocks, block bytes]) unless asked for row-major rows (uint8 [rows,
// quantized row bytes], the layout of caches packed before row groups); the manifest names the
// format and the sizes follow from it.
TEST_F(ClusterFormatTest, QuantizedCachesStoreBlockQuantizedRows) {
  for (const QuantFormat format : {QuantFormat::int8, QuantFormat::int4}) {
    for (const bool groups : {true, false}) {
      SCOPED_TRACE(std::string(to_string(format)) + (groups ? " in row groups" : " row-major"));
      pack(ExpertStorage::quantized(format, groups));
      const ClusterManifest m = read_cluster_manifest(dir);
      EXPECT_EQ(m.storage, ExpertStorage::quantized(format, groups));
      const int64_t in_row = quantized_row_bytes(format, 64), out_row = quantized_row_bytes(format, 96);
      EXPECT_EQ(m.expert_bytes(), static_cast<uint64_t>(2 * 96 * in_row + 64 * out_row));
      const std::string name = format == QuantFormat::int8 ? "INT8_B32" : "INT4_B32";
      EXPECT_EQ(read_json_file(dir + "/cluster_manifest.json")["dtype"], groups ? name + "_G4" : name);
      const SafetensorsFile file(dir + "/cluster_000.ctsr");
      const ExpertWeights w = model->layer(0).moe->expert_weights(0);
      const WeightFormat weights = format == QuantFormat::int8 ? WeightFormat::int8 : WeightFormat::int4;
      const auto stored = [&](const at::Tensor& t, int64_t cols) {
        return groups ? group_rows(quantize_matrix(t, format), weights, cols) : quantize_matrix(t, format);
      };
      const std::vector<int64_t> gate_shape = groups ? std::vector<int64_t>{96, 2, quantized_block_bytes(format)} : std::vector<int64_t>{96, in_row};
      EXPECT_EQ(file.entry("l0_e0__gate_proj.weight").shape, gate_shape);
      EXPECT_TRUE(at::equal(file.tensor("l0_e0__down_proj.weight"), stored(w.down_proj, 96)));
      EXPECT_TRUE(at::equal(file.tensor("l0_e0__up_proj.weight"), stored(w.up_proj, 64)));
      EXPECT_NO_THROW(open_all());
    }
  }
  edit_manifest([](nlohmann::json& j) { j["dtype"] = "INT3_B32"; });
  expect_error([&] { open_all(); }, {"cluster_manifest.json", "dtype", "INT8_B32"});
}

// Row groups need rows in fours: a model whose expert width is not a multiple of four gets row-major
// rows even when row groups are asked for.
TEST_F(ClusterFormatTest, RowGroupsOnlyWhereTheRowsComeInFours) {
  ModelConfig odd = config;
  odd.moe_intermediate_size = 90;
  at::manual_seed(5);
  ChronosForCausalLM narrow(odd);
  write_expert_cache(*narrow, two_clusters(odd), ExpertStorage::quantized(QuantFormat::int8), dir);
  EXPECT_EQ(read_cluster_manifest(dir).storage, ExpertStorage::quantized(QuantFormat::int8, false));
  EXPECT_EQ(SafetensorsFile(dir + "/cluster_000.ctsr").entry("l0_e0__gate_proj.weight").shape, (std::vector<int64_t>{90, 68}));
}

TEST_F(ClusterFormatTest, ManifestKeepsTheSpecFields) {
  pack();
  const nlohmann::json j = read_json_file(dir + "/cluster_manifest.json");
  EXPECT_EQ(j["storage_format"], "safetensors");
  EXPECT_EQ(j["num_layers"], 4);
  EXPECT_EQ(j["num_experts"], 4);
  EXPECT_EQ(j["clusters"][0]["cluster_id"], 0);
  EXPECT_EQ(j["clusters"][0]["file"], "cluster_000.ctsr");
  EXPECT_EQ(j["expert_to_cluster"]["l1_e0"], 1);
  EXPECT_EQ(j["expert_to_cluster"]["l1_e1"], 0);
}

TEST_F(ClusterFormatTest, RepackingReplacesTheOldCache) {
  pack();
  ExpertClusters three = two_clusters(config);
  three.push_back({three[0].back()});
  three[0].pop_back();
  write_expert_cache(*model, three, ExpertStorage{}, dir);
  EXPECT_EQ(read_cluster_manifest(dir).clusters.size(), 3u);
  ExpertClusters one(1);
  for (const auto& c : three) one[0].insert(one[0].end(), c.begin(), c.end());
  write_expert_cache(*model, one, ExpertStorage{}, dir);
  EXPECT_FALSE(fs::exists(dir + "/cluster_001.ctsr"));
  EXPECT_NO_THROW(open_all());
}

TEST_F(ClusterFormatTest, ClustersMustPartitionTheExperts) {
  ExpertClusters clusters = two_clusters(config);
  clusters[1].pop_back();
  expect_error([&] { write_expert_cache(*model, clusters, ExpertStorage{}, dir); }, {"l3_e2", "no cluster"});
  clusters = two_clusters(config);
  clusters[1].push_back(clusters[0][0]);
  expect_error([&] { write_expert_cache(*model, clusters, ExpertStorage{}, dir); }, {"l0_e0", "two clusters"});
}

TEST_F(ClusterFormatTest, MissingManifestOrFile) {
  expect_error([&] { read_cluster_manifest(dir); }, {"cluster_manifest.json"});
  pack();
  fs::remove(dir + "/cluster_001.ctsr");
  expect_error([&] { open_all(VerifyLevel::size); }, {"missing cluster file", "cluster_001.ctsr"});
}

TEST_F(ClusterFormatTest, TruncatedFile) {
  pack();
  fs::resize_file(dir + "/cluster_000.ctsr", fs::file_size(dir + "/cluster_000.ctsr") - 100);
  expect_error([&] { open_all(VerifyLevel::size); }, {"cluster_000.ctsr", "truncated"});
}

TEST_F(ClusterFormatTest, FlippedByteFailsTheChecksum) {
  const ClusterManifest m = pack();
  const std::string path = dir + "/cluster_001.ctsr";
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(m.clusters[1].experts[2].offset + 17));
  f.put('\x5a');
  f.close();
  EXPECT_NO_THROW(open_all(VerifyLevel::size));  // the header still matches
  expect_error([&] { open_all(VerifyLevel::checksum); }, {"cluster_001.ctsr", "checksum mismatch"});
}

TEST_F(ClusterFormatTest, ManifestForAnotherModel) {
  pack();
  ModelConfig other = config;
  other.num_experts = 8;
  const ClusterManifest m = read_cluster_manifest(dir);
  expect_error([&] { check_manifest_matches(m, other, dir); }, {"cluster_manifest.json", "num_experts is 4", "model has 8"});
  other = config;
  other.moe_intermediate_size = 32;
  expect_error([&] { check_manifest_matches(m, other, dir); }, {"moe_intermediate_size"});
}

TEST_F(ClusterFormatTest, MalformedManifestFieldsAreNamed) {
  pack();
  edit_manifest([](nlohmann::json& j) { j["clusters"][1]["experts"][0]["offset"] = 4097; });
  expect_error([&] { read_cluster_manifest(dir); }, {"clusters[1].experts[0].offset", "multiple of 4096"});
  pack();
  edit_manifest([](nlohmann::json& j) { j["clusters"][0]["experts"].erase(0); });
  expect_error([&] { read_cluster_manifest(dir); }, {"holds no entry for expert l0_e0"});
  pack();
  edit_manifest([](nlohmann::json& j) { j["clusters"][0]["file"] = "../model.safetensors"; });
  expect_error([&] { read_cluster_manifest(dir); }, {"clusters[0].file", "plain file name"});
  pack();
  edit_manifest([](nlohmann::json& j) { j["version"] = 1; });
  expect_error([&] { read_cluster_manifest(dir); }, {"version", "chronos-pack"});
  pack();
  edit_manifest([](nlohmann::json& j) { j["clusters"][0]["checksum"] = "xyz"; });
  expect_error([&] { read_cluster_manifest(dir); }, {"clusters[0].checksum", "hex"});
  pack();
  edit_manifest([](nlohmann::json& j) { j["expert_to_cluster"]["l0_e0"] = 1; });
  expect_error([&] { read_cluster_manifest(dir); }, {"expert_to_cluster.l0_e0"});
  pack();
  edit_manifest([](nlohmann::json& j) { j["clusters"][0]["size_bytes"] = 4096; });
  expect_error([&] { read_cluster_manifest(dir); }, {"past the file size"});
}

// Counts are checked before they are narrowed or multiplied: a layer of 2^32 must not wrap to 0,
// 2^62 layers must not size an allocation, and 2^64 - 1 must not read as -1.
TEST_F(ClusterFormatTest, HugeCountsAreRefusedBeforeNarrowing) {
  pack();
  edit_manifest([](nlohmann::json& j) { j["clusters"][0]["experts"][0]["layer"] = int64_t{1} << 32; });
  expect_error([&] { read_cluster_manifest(dir); }, {"clusters[0].experts[0].layer", "must be in [0, 1048575]"});
  pack();
  edit_manifest([](nlohmann::json& j) { j["num_layers"] = int64_t{1} << 62; });
  expect_error([&] { read_cluster_manifest(dir); }, {"num_layers", "must be in [1, 1048576]"});
  pack();
  edit_manifest([](nlohmann::json& j) {
    j["num_layers"] = 1 << 15;
    j["num_experts"] = 1 << 15;
  });
  expect_error([&] { read_cluster_manifest(dir); }, {"num_experts", "times num_layers"});
  pack();
  edit_manifest([](nlohmann::json& j) { j["clusters"][0]["size_bytes"] = std::numeric_limits<uint64_t>::max(); });
  expect_error([&] { read_cluster_manifest(dir); }, {"clusters[0].size_bytes", "must be in [1, "});
}

// A cache carries the fingerprint of the checkpoint it was packed from; another checkpoint of the
// same shapes is told apart.
TEST_F(ClusterFormatTest, FingerprintTellsCheckpointsApart) {
  save_pretrained(*model, tmp.file("a"));
  at::manual_seed(1);
  ChronosForCausalLM other(config);
  save_pretrained(*other, tmp.file("b"));
  const std::string a = expert_weights_fingerprint(tmp.file("a"), config);
  const std::string b = expert_weights_fingerprint(tmp.file("b"), config);
  EXPECT_EQ(a.rfind("xxh3_64:", 0), 0u) << a;
  EXPECT_NE(a, b);
  EXPECT_EQ(a, expert_weights_fingerprint(tmp.file("a"), config));
  write_expert_cache(*model, two_clusters(config), ExpertStorage{}, dir, {}, a);
  const ClusterManifest m = read_cluster_manifest(dir);
  EXPECT_EQ(m.model_fingerprint, a);
  EXPECT_NO_THROW(check_manifest_fingerprint(m, a, dir));
  expect_error([&] { check_manifest_fingerprint(m, b, dir); }, {"cluster_manifest.json", "packed from another checkpoint"});
}

}  // namespace
}  // namespace chronos
