#include "chronos/core/backend.h"

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "chronos/core/error.h"

namespace chronos {
namespace {

TEST(Backend, ProbeListsTheCpuLast) {
  const BackendInfo info = probe_backend();
  ASSERT_FALSE(info.devices.empty());
  EXPECT_EQ(info.devices.back().kind, "cpu");
  EXPECT_FALSE(info.torch_version.empty());
  EXPECT_FALSE(info.blas.empty());
}

// The process links a BLAS through LibTorch; it is named, not "unknown" (the reference BLAS or an
// OpenBLAS build), and the probe reports the same one.
TEST(Backend, NamesTheLoadedBlas) {
  const std::string blas = loaded_blas();
  EXPECT_NE(blas, "unknown");
  EXPECT_EQ(blas, probe_backend().blas);
}

TEST(Backend, AutoPicksTheHighestPriorityDevice) {
  const BackendInfo info = probe_backend();
  const c10::Device chosen = choose_device("auto");
  EXPECT_EQ(chosen.str().rfind(info.devices.front().kind, 0), 0u) << chosen.str();
  EXPECT_TRUE(choose_device("cpu").is_cpu());
}

TEST(Backend, RejectsUnknownAndUnavailableDevices) {
  EXPECT_THROW(choose_device("tpu"), InvalidArgument);
  EXPECT_THROW(choose_device("cuda:x"), InvalidArgument);
  EXPECT_THROW(choose_device("cuda:99"), InvalidArgument);
  if (!probe_backend().mps_built) EXPECT_THROW(choose_device("mps"), InvalidArgument);
}

TEST(Backend, ThreadsDefaultToAllCores) {
  const int before = at::get_num_threads();
  EXPECT_EQ(configure_threads(1), 1);
  EXPECT_GE(configure_threads(0), 1);
  EXPECT_EQ(configure_threads(0), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  configure_threads(before);
}

TEST(Backend, DescribeMentionsDevicesThreadsAndBlas) {
  const BackendInfo info = probe_backend();
  const std::string text = describe(info);
  EXPECT_NE(text.find("device cpu:0"), std::string::npos) << text;
  EXPECT_NE(text.find("threads"), std::string::npos) << text;
  EXPECT_NE(text.find(info.blas), std::string::npos) << text;
}

}  // namespace
}  // namespace chronos
