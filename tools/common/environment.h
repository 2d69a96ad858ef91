// The environment variables the tools read (the library reads none): CHRONOS_LOG_LEVEL, and
// CHRONOS_SIM_SSD_MS / CHRONOS_SIM_SSD_MBPS for the simulated SSD of tests and benchmarks.
#pragma once

#include "chronos/store/offload_config.h"

namespace chronos::tools {

// Applies CHRONOS_LOG_LEVEL when set; ConfigError naming the variable when it is not a level.
void apply_log_level_from_env();

// `base` with CHRONOS_SIM_SSD_MS (latency) and CHRONOS_SIM_SSD_MBPS (bandwidth) applied where set
// and non-empty; ConfigError naming the variable when it is not a non-negative number.
SsdThrottle ssd_throttle_from_env(SsdThrottle base);

}  // namespace chronos::tools
