// Settings of the expert store (docs/offload.md "Expert store"): where the expert cache is, the
// byte budgets of its two slot pools, what the MoE layer gets for an expert that is not on the
// compute device yet (the miss policy), the I/O threads and the SSD throttle used by tests and
// benchmarks. Plain aggregate; validate() throws ConfigError naming the field.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

#include "chronos/store/cluster_manifest.h"

namespace chronos {

// What acquire() answers for a routed expert that is not HOT.
enum class MissPolicy {
  wait,      // block until it is HOT (reads and copies it first): output identical to the resident model
  fallback,  // answer "unavailable" (the layer soft-gates it onto the shared expert) and fetch it for later
};

// Parses "wait" or "fallback"; throws InvalidArgument naming the accepted values otherwise.
MissPolicy parse_miss_policy(const std::string& name);
std::string to_string(MissPolicy policy);

// Whether a prefetch may evict an expert that another prediction still wants (expert_store.h).
enum class PrefetchEviction {
  deadline,  // yes, when that expert is due later than the one being fetched (the default)
  protect,   // never: a prefetch takes only slots no prediction wants
};

// Parses "deadline" or "protect"; throws InvalidArgument naming the accepted values otherwise.
PrefetchEviction parse_prefetch_eviction(const std::string& name);
std::string to_string(PrefetchEviction policy);

// Simulated SSD for tests and benchmarks: every read takes at least `latency_ms` (reads overlap in
// time across I/O threads) plus its bytes at `mbps` on one shared timeline (reads share the
// bandwidth). The real read still happens; the throttle only makes it slower, never faster.
struct SsdThrottle {
  double latency_ms = 0;  // added latency per read in milliseconds; 0 = off
  double mbps = 0;        // bandwidth cap in MB/s (10^6 bytes per second); 0 = off

  bool enabled() const { return latency_ms > 0 || mbps > 0; }
  // Throws ConfigError naming `what`.latency_ms / .mbps when negative or not finite.
  void validate(const std::string& what = "throttle") const;
};

struct OffloadConfig {
  std::string cache_dir;                    // folder holding cluster_manifest.json and the cluster files
  // The model folder whose experts the cache must hold: its expert_weights_fingerprint is checked
  // against the manifest's at open. Empty skips the check (stores built in tests).
  std::string model_dir;
  int64_t ram_budget_bytes = 0;             // host slot pool (WARM tier); at least one expert's read range
  int64_t compute_budget_bytes = 0;         // compute slot pool (HOT tier); at least one expert in compute_dtype
  MissPolicy miss_policy = MissPolicy::wait;  // what acquire() does for experts that are not HOT
  int io_threads = 4;                       // SSD reader threads, 1..64
  SsdThrottle throttle;                     // simulated SSD (tests, benchmarks); off by default
  VerifyLevel verify = VerifyLevel::checksum;  // open-time check of the cluster files (reads are always checksummed)
  std::string eviction = "lru";             // eviction policy of both tiers (eviction_policy.h)
  PrefetchEviction prefetch_eviction = PrefetchEviction::deadline;  // may a prefetch evict a wanted expert due later
  c10::Device device = c10::kCPU;           // compute device (the HOT tier)
  c10::ScalarType compute_dtype = c10::kFloat;  // dtype of the compute slots: fp32, fp16 or bf16
  int64_t prefetch_queue_capacity = 1024;   // queued prefetch requests at most; the least urgent are dropped
  bool zero_copy = true;  // on the CPU, with the cache in compute_dtype, serve HOT experts from their host slots

  // Throws ConfigError naming the field, the value and the rule. Budgets are checked against the
  // expert size when the store opens (that needs the manifest).
  void validate() const;
};

// A byte count from text: "25%" of `total_bytes`, "512M", "2G", "64K", "1.5G" (binary units, an
// optional trailing "B" or "iB"), or plain bytes "1048576". Throws ConfigError naming `what` and
// the text on anything else, on a negative value, or on a percentage above 100.
int64_t parse_byte_size(const std::string& text, int64_t total_bytes, const std::string& what);

}  // namespace chronos
