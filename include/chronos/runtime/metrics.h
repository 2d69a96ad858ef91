// MetricsBus (docs/offload.md "Predictive decode"): one record per generated
// token of an offloaded decode, measured at the point of use: experts HOT / WARM / COLD when the MoE
// layer asked for them, fallbacks, stall time, bytes read from SSD and copied (store counter deltas
// over the step), the lead time of prefetches that were used, and the lookahead prediction's recall
// and precision for t+1..t+K (the (layer, expert) pairs predicted at step t for step t+j against
// those step t+j routed its last token to), for the LookaheadPrefetcher's prediction and for the
// LookaheadRouter's alone (its ids taken in every layer). Not thread-safe: the decode thread records.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chronos/store/expert_key.h"
#include "chronos/store/store_stats.h"

namespace chronos {

struct PrecisionRecall {
  int64_t predicted = 0, actual = 0, correct = 0;
  double precision() const;  // correct / predicted; NaN when nothing was predicted
  double recall() const;     // correct / actual; NaN when nothing was used
};

// Compares two sets of (layer, expert) pairs (duplicates count once).
PrecisionRecall compare_expert_sets(const std::vector<ExpertKey>& predicted, const std::vector<ExpertKey>& actual);

// total[j] += more[j] for every offset j, growing total as needed.
void pool(std::vector<PrecisionRecall>& total, const std::vector<PrecisionRecall>& more);

struct TokenMetrics {
  int64_t step = 0;              // 0: the prefill (it produces the first token)
  int64_t hits = 0;              // experts HOT at use
  int64_t warm = 0;              // WARM or COPYING at use
  int64_t cold = 0;              // COLD or READING at use
  int64_t fallbacks = 0;
  double stall_ms = 0;
  int64_t ssd_bytes = 0;
  int64_t copy_bytes = 0;
  int64_t prefetched_used = 0;   // experts used this step that a prefetch had asked for
  double prefetch_lead_ms = 0;   // mean time from that prefetch to the use (0 when none)
  // Experts not in RAM when their layer announced them, by why:
  int64_t late = 0;              // a prefetch asked for it and its read was under way (too late)
  int64_t not_started = 0;       // a prefetch asked for it but its read had not started (no slot it could take)
  int64_t unpredicted = 0;       // no live prefetch asked for it
  std::vector<PrecisionRecall> lookahead;  // entry j-1: the prediction made at step-j for this step (empty counts when none)
  std::vector<PrecisionRecall> router;     // the same for the LookaheadRouter's top ids alone
  // Entry d-1: the layer-ahead predictions of this step made d layers early (from layer l's MoE
  // input for layer l+d), against what layers d..L-1 routed this token to.
  std::vector<PrecisionRecall> layer_ahead;

  // The store counters of the step: after - before.
  void set_store_delta(const StoreStats& before, const StoreStats& after);
};

struct MetricsSummary {
  int64_t tokens = 0;
  int64_t uses = 0;                  // hits + warm + cold
  double hit_rate = 1;               // hits / uses
  double stall_ms_per_token = 0;
  double ssd_mb_per_token = 0;       // 10^6 bytes
  double copied_mb_per_token = 0;
  int64_t fallbacks = 0;
  double prefetch_lead_ms = 0;       // mean over used prefetches
  int64_t late = 0, not_started = 0, unpredicted = 0;  // summed (TokenMetrics)
  std::vector<PrecisionRecall> lookahead;  // pooled over the steps, entry j-1 for t+j
  std::vector<PrecisionRecall> router;
  std::vector<PrecisionRecall> layer_ahead;  // pooled, entry d-1 for d layers ahead
};

class MetricsBus {
 public:
  void record(TokenMetrics metrics) { tokens_.push_back(std::move(metrics)); }
  const std::vector<TokenMetrics>& tokens() const { return tokens_; }
  void clear() { tokens_.clear(); }
  MetricsSummary summary() const;

 private:
  std::vector<TokenMetrics> tokens_;
};

// One JSON object (no newline): step, hits, warm, cold, fallbacks, stall_ms, ssd_bytes, copy_bytes,
// prefetched_used, prefetch_lead_ms, late, not_started, unpredicted, and lookahead_recall / lookahead_precision / router_recall /
// router_precision arrays (entry j-1 for t+j, null where there was no prediction or nothing to compare),
// and layer_ahead_recall / layer_ahead_precision (entry d-1 for d layers ahead).
std::string to_json_line(const TokenMetrics& metrics);

}  // namespace chronos
