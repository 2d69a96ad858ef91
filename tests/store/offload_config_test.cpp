#include "chronos/store/offload_config.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "chronos/core/error.h"

namespace chronos {
namespace {

OffloadConfig valid() {
  OffloadConfig c;
  c.cache_dir = "/tmp/cache";
  c.ram_budget_bytes = 1 << 20;
  c.compute_budget_bytes = 1 << 20;
  return c;
}

void expect_config_error(const OffloadConfig& c, const std::string& field) {
  try {
    c.validate();
    FAIL() << "no error for " << field;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
}

TEST(OffloadConfig, ValidateNamesTheField) {
  EXPECT_NO_THROW(valid().validate());
  OffloadConfig c = valid();
  c.cache_dir.clear();
  expect_config_error(c, "offload.cache_dir");
  c = valid();
  c.ram_budget_bytes = 0;
  expect_config_error(c, "offload.ram_budget_bytes");
  c = valid();
  c.compute_budget_bytes = -1;
  expect_config_error(c, "offload.compute_budget_bytes");
  c = valid();
  c.io_threads = 0;
  expect_config_error(c, "offload.io_threads");
  c = valid();
  c.io_threads = 65;
  expect_config_error(c, "offload.io_threads");
  c = valid();
  c.throttle.latency_ms = -1;
  expect_config_error(c, "offload.throttle.latency_ms");
  c = valid();
  c.throttle.mbps = -5;
  expect_config_error(c, "offload.throttle.mbps");
  c = valid();
  c.eviction = "mru";
  expect_config_error(c, "offload.eviction");
  c = valid();
  c.compute_dtype = c10::kInt;
  expect_config_error(c, "offload.compute_dtype");
  c = valid();
  c.prefetch_queue_capacity = 0;
  expect_config_error(c, "offload.prefetch_queue_capacity");
}

TEST(OffloadConfig, ParsesMissPolicies) {
  EXPECT_EQ(parse_miss_policy("wait"), MissPolicy::wait);
  EXPECT_EQ(parse_miss_policy("fallback"), MissPolicy::fallback);
  EXPECT_THROW(parse_miss_policy("on_demand"), InvalidArgument);
  EXPECT_EQ(to_string(MissPolicy::fallback), "fallback");
}

TEST(OffloadConfig, ParsesByteSizes) {
  EXPECT_EQ(parse_byte_size("25%", 1000, "x"), 250);
  EXPECT_EQ(parse_byte_size("100%", 1000, "x"), 1000);
  EXPECT_EQ(parse_byte_size("512M", 0, "x"), 512ll << 20);
  EXPECT_EQ(parse_byte_size("2G", 0, "x"), 2ll << 30);
  EXPECT_EQ(parse_byte_size("2GiB", 0, "x"), 2ll << 30);
  EXPECT_EQ(parse_byte_size("64kb", 0, "x"), 64ll << 10);
  EXPECT_EQ(parse_byte_size("1.5G", 0, "x"), 3ll << 29);
  EXPECT_EQ(parse_byte_size("1048576", 0, "x"), 1048576);
  EXPECT_EQ(parse_byte_size("4096B", 0, "x"), 4096);
  for (const char* bad : {"", "abc", "12X", "-5M", "150%", "1e30", "%"}) {
    try {
      parse_byte_size(bad, 1000, "--ram-budget");
      FAIL() << "accepted '" << bad << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--ram-budget"), std::string::npos) << e.what();
    }
  }
}

// The environment (CHRONOS_SIM_SSD_MS / _MBPS) is the tools' to read: tests/tools/cli_test.sh.
TEST(OffloadConfig, ThrottleIsOffByDefault) {
  EXPECT_FALSE(SsdThrottle{}.enabled());
  SsdThrottle t;
  t.latency_ms = 2.5;
  EXPECT_TRUE(t.enabled());
  t.latency_ms = -1;
  EXPECT_THROW(t.validate(), ConfigError);
}

}  // namespace
}  // namespace chronos
