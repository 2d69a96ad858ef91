#include "chronos/runtime/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "chronos/io/json_number.h"

namespace chronos {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

void pool(std::vector<PrecisionRecall>& total, const std::vector<PrecisionRecall>& more) {
  if (total.size() < more.size()) total.resize(more.size());
  for (size_t j = 0; j < more.size(); ++j) {
    total[j].predicted += more[j].predicted;
    total[j].actual += more[j].actual;
    total[j].correct += more[j].correct;
  }
}

double PrecisionRecall::precision() const { return predicted > 0 ? static_cast<double>(correct) / predicted : kNaN; }
double PrecisionRecall::recall() const { return actual > 0 ? static_cast<double>(correct) / actual : kNaN; }

PrecisionRecall compare_expert_sets(const std::vector<ExpertKey>& predicted, const std::vector<ExpertKey>& actual) {
  // Sorted vectors, not node-based sets: this runs several times after every decode step.
  const auto sorted_unique = [](std::vector<ExpertKey> keys) {
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    return keys;
  };
  const std::vector<ExpertKey> p = sorted_unique(predicted), a = sorted_unique(actual);
  PrecisionRecall out;
  out.predicted = static_cast<int64_t>(p.size());
  out.actual = static_cast<int64_t>(a.size());
  for (size_t i = 0, j = 0; i < p.size() && j < a.size();) {
    if (p[i] < a[j]) ++i;
    else if (a[j] < p[i]) ++j;
    else ++out.correct, ++i, ++j;
  }
  return out;
}

void TokenMetrics::set_store_delta(const StoreStats& before, const StoreStats& after) {
  const StoreStats step = after - before;
  hits = step.hits;
  warm = step.warm_hits;
  cold = step.cold_misses;
  fallbacks = step.fallbacks;
  stall_ms = step.stall_seconds * 1e3;
  ssd_bytes = step.ssd_bytes;
  copy_bytes = step.copy_bytes;
}

MetricsSummary MetricsBus::summary() const {
  MetricsSummary s;
  s.tokens = static_cast<int64_t>(tokens_.size());
  int64_t hits = 0, used_prefetches = 0;
  double stall = 0, ssd = 0, copied = 0, lead = 0;
  for (const TokenMetrics& t : tokens_) {
    hits += t.hits;
    s.uses += t.hits + t.warm + t.cold;
    s.fallbacks += t.fallbacks;
    stall += t.stall_ms;
    ssd += static_cast<double>(t.ssd_bytes);
    copied += static_cast<double>(t.copy_bytes);
    used_prefetches += t.prefetched_used;
    lead += t.prefetch_lead_ms * static_cast<double>(t.prefetched_used);
    s.late += t.late;
    s.not_started += t.not_started;
    s.unpredicted += t.unpredicted;
    pool(s.lookahead, t.lookahead);
    pool(s.router, t.router);
    pool(s.layer_ahead, t.layer_ahead);
  }
  const double n = static_cast<double>(std::max<int64_t>(1, s.tokens));
  s.hit_rate = s.uses > 0 ? static_cast<double>(hits) / s.uses : 1.0;
  s.stall_ms_per_token = stall / n;
  s.ssd_mb_per_token = ssd / 1e6 / n;
  s.copied_mb_per_token = copied / 1e6 / n;
  s.prefetch_lead_ms = used_prefetches > 0 ? lead / used_prefetches : 0;
  return s;
}

std::string to_json_line(const TokenMetrics& t) {
  const auto recall = [](const std::vector<PrecisionRecall>& v) {
    nlohmann::json out = nlohmann::json::array();
    for (const PrecisionRecall& pr : v) out.push_back(json_number(pr.recall()));
    return out;
  };
  const auto precision = [](const std::vector<PrecisionRecall>& v) {
    nlohmann::json out = nlohmann::json::array();
    for (const PrecisionRecall& pr : v) out.push_back(json_number(pr.precision()));
    return out;
  };
  const nlohmann::json line = {{"step", t.step},
                               {"hits", t.hits},
                               {"warm", t.warm},
                               {"cold", t.cold},
                               {"fallbacks", t.fallbacks},
                               {"stall_ms", t.stall_ms},
                               {"ssd_bytes", t.ssd_bytes},
                               {"copy_bytes", t.copy_bytes},
                               {"prefetched_used", t.prefetched_used},
                               {"prefetch_lead_ms", t.prefetch_lead_ms},
                               {"late", t.late},
                               {"not_started", t.not_started},
                               {"unpredicted", t.unpredicted},
                               {"lookahead_recall", recall(t.lookahead)},
                               {"lookahead_precision", precision(t.lookahead)},
                               {"router_recall", recall(t.router)},
                               {"router_precision", precision(t.router)},
                               {"layer_ahead_recall", recall(t.layer_ahead)},
                               {"layer_ahead_precision", precision(t.layer_ahead)}};
  return line.dump();
}

}  // namespace chronos
