// A damaged expert cache fails at open time with one error naming the file; an I/O error while
// decoding is counted and surfaced by the miss policy, never a crash or a hang.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "chronos/core/error.h"
#include "chronos/store/expert_store.h"
#include "store/store_fixture.h"

namespace chronos {
namespace {

using testing::StoreFixture;

// Runs `open` and returns the message of the `Expected` error it throws ("" when it does not).
template <typename Expected, typename Fn>
std::string error_of(Fn open) {
  try {
    open();
  } catch (const Expected& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "";
}

void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  file.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(&c, 1);
}

TEST(StoreErrors, MissingManifest) {
  StoreFixture f;
  std::filesystem::remove(f.dir.file("cluster_manifest.json"));
  const std::string message = error_of<IoError>([&] { ExpertStore store(f.offload(), f.config); });
  EXPECT_NE(message.find("cluster_manifest.json"), std::string::npos) << message;
}

TEST(StoreErrors, MissingClusterFile) {
  StoreFixture f;
  std::filesystem::remove(f.cluster_path(1));
  const std::string message = error_of<IoError>([&] { ExpertStore store(f.offload(), f.config); });
  EXPECT_NE(message.find(f.manifest.clusters[1].file), std::string::npos) << message;
}

TEST(StoreErrors, TruncatedClusterFile) {
  StoreFixture f;
  std::filesystem::resize_file(f.cluster_path(2), f.manifest.clusters[2].size_bytes - 4096);
  for (VerifyLevel level : {VerifyLevel::size, VerifyLevel::checksum}) {
    OffloadConfig config = f.offload();
    config.verify = level;
    const std::string message = error_of<FormatError>([&] { ExpertStore store(config, f.config); });
    EXPECT_NE(message.find(f.manifest.clusters[2].file), std::string::npos) << message;
    EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  }
}

TEST(StoreErrors, FlippedByteFailsTheChecksum) {
  StoreFixture f;
  flip_byte(f.cluster_path(0), f.manifest.clusters[0].experts[1].offset + 100);
  const std::string message = error_of<FormatError>([&] { ExpertStore store(f.offload(), f.config); });
  EXPECT_NE(message.find(f.manifest.clusters[0].file), std::string::npos) << message;
  EXPECT_NE(message.find("checksum"), std::string::npos) << message;
}

TEST(StoreErrors, ManifestOfAnotherModel) {
  StoreFixture f;
  ModelConfig other = f.config;
  other.hidden_size = 32;
  const std::string message = error_of<ConfigError>([&] { ExpertStore store(f.offload(), other); });
  EXPECT_NE(message.find("cluster_manifest.json"), std::string::npos) << message;
  EXPECT_NE(message.find("hidden_size"), std::string::npos) << message;
  other = f.config;
  other.num_experts = 8;
  EXPECT_NE(error_of<ConfigError>([&] { ExpertStore store(f.offload(), other); }).find("num_experts"), std::string::npos);
}

TEST(StoreErrors, BudgetsBelowOneExpertNameTheField) {
  StoreFixture f;
  OffloadConfig config = f.offload();
  config.compute_budget_bytes = 1000;
  EXPECT_NE(error_of<ConfigError>([&] { ExpertStore store(config, f.config); }).find("offload.compute_budget_bytes"), std::string::npos);
  config = f.offload();
  config.ram_budget_bytes = 4096;
  EXPECT_NE(error_of<ConfigError>([&] { ExpertStore store(config, f.config); }).find("offload.ram_budget_bytes"), std::string::npos);
  config = f.offload();
  config.device = c10::Device(c10::kCUDA, 0);
  EXPECT_NE(error_of<InvalidArgument>([&] { ExpertStore store(config, f.config); }).find("CUDA"), std::string::npos);
}

// The expert whose bytes get damaged after open, and where it lives.
struct Damaged {
  ExpertKey key;
  std::string file;
};

Damaged damage_after_open(StoreFixture& f) {
  const ExpertRange& range = f.manifest.clusters[1].experts[2];
  flip_byte(f.cluster_path(1), range.offset + 17);
  return {range.key, f.manifest.clusters[1].file};
}

TEST(StoreErrors, CorruptionDuringDecodeThrowsUnderWait) {
  StoreFixture f;
  OffloadConfig config = f.offload();
  config.verify = VerifyLevel::size;  // the open-time check does not read the bytes
  ExpertStore store(config, f.config);
  const Damaged bad = damage_after_open(f);
  const int64_t good = bad.key.expert == 0 ? 1 : 0;
  const std::vector<int64_t> experts = {std::min<int64_t>(good, bad.key.expert), std::max<int64_t>(good, bad.key.expert)};
  const std::string message = error_of<IoError>([&] { store.acquire(bad.key.layer, experts); });
  EXPECT_NE(message.find(bad.file), std::string::npos) << message;
  EXPECT_NE(message.find("checksum"), std::string::npos) << message;
  EXPECT_EQ(store.stats().io_errors, 1);
  EXPECT_EQ(store.state(bad.key), ExpertState::cold);
  // Nothing stays pinned: the whole compute pool can be acquired, and other experts still work.
  store.release(bad.key.layer);
  const auto w = store.acquire((bad.key.layer + 1) % 4, {0, 1, 2, 3});
  for (const auto& e : w) EXPECT_TRUE(e.has_value());
  store.release((bad.key.layer + 1) % 4);
  // Asking again fails again (the read is retried), it does not hang.
  EXPECT_THROW(store.acquire(bad.key.layer, {bad.key.expert}), IoError);
  EXPECT_EQ(store.stats().io_errors, 2);
}

TEST(StoreErrors, CorruptionDuringDecodeFallsBackUnderFallback) {
  StoreFixture f;
  OffloadConfig config = f.offload(0.25, 0.5, MissPolicy::fallback);
  config.verify = VerifyLevel::size;
  ExpertStore store(config, f.config);
  const Damaged bad = damage_after_open(f);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto w = store.acquire(bad.key.layer, {bad.key.expert});
    EXPECT_FALSE(w[0].has_value());
    store.release(bad.key.layer);
    ASSERT_TRUE(store.wait_idle());
  }
  const StoreStats s = store.stats();
  EXPECT_EQ(s.io_errors, 3);
  EXPECT_EQ(s.fallbacks, 3);
  EXPECT_EQ(store.state(bad.key), ExpertState::cold);
}

TEST(StoreErrors, FileTruncatedAfterOpenIsAShortRead) {
  StoreFixture f;
  OffloadConfig config = f.offload();
  config.verify = VerifyLevel::size;
  ExpertStore store(config, f.config);
  const ExpertRange& last = f.manifest.clusters[0].experts.back();
  std::filesystem::resize_file(f.cluster_path(0), last.offset + 4096);
  const std::string message = error_of<IoError>([&] { store.acquire(last.key.layer, {last.key.expert}); });
  EXPECT_NE(message.find(f.manifest.clusters[0].file), std::string::npos) << message;
  EXPECT_NE(message.find("short read"), std::string::npos) << message;
  EXPECT_EQ(store.stats().io_errors, 1);
}

}  // namespace
}  // namespace chronos
