#include "chronos/store/offload_config.h"

#include <cctype>
#include <cmath>

#include "chronos/core/error.h"
#include "store/eviction_policy.h"

namespace chronos {

MissPolicy parse_miss_policy(const std::string& name) {
  if (name == "wait") return MissPolicy::wait;
  if (name == "fallback") return MissPolicy::fallback;
  throw InvalidArgument(cat("unknown miss policy '", name, "' (expected wait or fallback)"));
}

std::string to_string(MissPolicy policy) { return policy == MissPolicy::wait ? "wait" : "fallback"; }

PrefetchEviction parse_prefetch_eviction(const std::string& name) {
  if (name == "deadline") return PrefetchEviction::deadline;
  if (name == "protect") return PrefetchEviction::protect;
  throw InvalidArgument(cat("unknown prefetch eviction '", name, "' (expected deadline or protect)"));
}

std::string to_string(PrefetchEviction policy) { return policy == PrefetchEviction::deadline ? "deadline" : "protect"; }

void SsdThrottle::validate(const std::string& what) const {
  if (!std::isfinite(latency_ms) || latency_ms < 0)
    throw ConfigError(cat(what, ".latency_ms must be a non-negative number (got ", latency_ms, ")"));
  if (!std::isfinite(mbps) || mbps < 0) throw ConfigError(cat(what, ".mbps must be a non-negative number (got ", mbps, ")"));
}

void OffloadConfig::validate() const {
  if (cache_dir.empty()) throw ConfigError("offload.cache_dir must name the expert cache folder (got an empty path)");
  if (ram_budget_bytes <= 0) throw ConfigError(cat("offload.ram_budget_bytes must be > 0 (got ", ram_budget_bytes, ")"));
  if (compute_budget_bytes <= 0)
    throw ConfigError(cat("offload.compute_budget_bytes must be > 0 (got ", compute_budget_bytes, ")"));
  if (io_threads < 1 || io_threads > 64) throw ConfigError(cat("offload.io_threads must be in 1..64 (got ", io_threads, ")"));
  throttle.validate("offload.throttle");
  if (!is_eviction_policy(eviction))
    throw ConfigError(cat("offload.eviction must be one of ", eviction_policy_names(), " (got '", eviction, "')"));
  if (compute_dtype != c10::kFloat && compute_dtype != c10::kHalf && compute_dtype != c10::kBFloat16)
    throw ConfigError(cat("offload.compute_dtype must be fp32, fp16 or bf16 (got ", c10::toString(compute_dtype), ")"));
  if (prefetch_queue_capacity < 1)
    throw ConfigError(cat("offload.prefetch_queue_capacity must be >= 1 (got ", prefetch_queue_capacity, ")"));
}

int64_t parse_byte_size(const std::string& text, int64_t total_bytes, const std::string& what) {
  const auto bad = [&](const std::string& rule) {
    return ConfigError(cat(what, " must be ", rule, " (got '", text, "')"));
  };
  const char* begin = text.c_str();
  char* end = nullptr;
  const double number = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(number)) throw bad("a byte size such as 25%, 512M, 2G or 1048576");
  if (number < 0) throw bad("non-negative");
  std::string unit(end);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) unit.pop_back();
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) unit.erase(unit.begin());
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  double bytes = 0;
  if (unit == "%") {
    if (number > 100) throw bad("a percentage of at most 100%");
    bytes = number / 100.0 * static_cast<double>(total_bytes);
  } else {
    if (unit.size() >= 2 && unit.compare(unit.size() - 2, 2, "IB") == 0) unit.resize(unit.size() - 2);
    else if (unit.size() >= 2 && unit.back() == 'B') unit.pop_back();
    double scale = 0;
    if (unit.empty() || unit == "B") scale = 1;
    else if (unit == "K") scale = 1024.0;
    else if (unit == "M") scale = 1024.0 * 1024;
    else if (unit == "G") scale = 1024.0 * 1024 * 1024;
    else if (unit == "T") scale = 1024.0 * 1024 * 1024 * 1024;
    else throw bad("a byte size such as 25%, 512M, 2G or 1048576 (units K, M, G, T are binary)");
    bytes = number * scale;
  }
  if (bytes > 9.0e18) throw bad("below 2^63 bytes");
  return static_cast<int64_t>(bytes);
}

}  // namespace chronos
