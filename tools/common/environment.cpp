#include "common/environment.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "chronos/core/error.h"
#include "chronos/core/log.h"

namespace chronos::tools {
namespace {

void apply_number(const char* name, double& field) {
  const char* raw = std::getenv(name);
  if (raw == nullptr || *raw == '\0') return;
  const std::string text = raw;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value) || value < 0)
    throw ConfigError(cat(name, " must be a non-negative number (got '", text.size() > 40 ? text.substr(0, 37) + "..." : text, "')"));
  field = value;
}

}  // namespace

void apply_log_level_from_env() {
  if (const char* env = std::getenv("CHRONOS_LOG_LEVEL")) {
    try {
      log::set_level(log::parse_level(env));
    } catch (const Error& e) {
      throw ConfigError(cat("CHRONOS_LOG_LEVEL: ", e.what()));
    }
  }
}

SsdThrottle ssd_throttle_from_env(SsdThrottle base) {
  apply_number("CHRONOS_SIM_SSD_MS", base.latency_ms);
  apply_number("CHRONOS_SIM_SSD_MBPS", base.mbps);
  return base;
}

}  // namespace chronos::tools
