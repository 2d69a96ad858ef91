#include "chronos/store/store_stats.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace chronos {
namespace {

double share(int64_t part, int64_t whole, double if_none) {
  return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : if_none;
}

// Applies `op` to every count and `peak` to every peak of a and b, in one place, so that a field
// added to StoreStats cannot be forgotten by one of the operations.
template <typename Count, typename Peak>
void for_each_field(StoreStats& a, const StoreStats& b, Count op, Peak peak) {
  op(a.hits, b.hits);
  op(a.warm_hits, b.warm_hits);
  op(a.cold_misses, b.cold_misses);
  op(a.fallbacks, b.fallbacks);
  op(a.io_errors, b.io_errors);
  op(a.ssd_reads, b.ssd_reads);
  op(a.ssd_bytes, b.ssd_bytes);
  op(a.copies, b.copies);
  op(a.copy_bytes, b.copy_bytes);
  op(a.prefetch_requests, b.prefetch_requests);
  op(a.prefetch_deduplicated, b.prefetch_deduplicated);
  op(a.prefetch_cancelled, b.prefetch_cancelled);
  op(a.prefetch_dropped, b.prefetch_dropped);
  op(a.evictions_ram, b.evictions_ram);
  op(a.evictions_compute, b.evictions_compute);
  op(a.stall_seconds, b.stall_seconds);
  peak(a.most_experts_reading, b.most_experts_reading);
  peak(a.ram_high_water_bytes, b.ram_high_water_bytes);
  peak(a.compute_high_water_bytes, b.compute_high_water_bytes);
}

}  // namespace

double StoreStats::hit_rate() const { return share(hits, uses(), 1.0); }
double StoreStats::warm_rate() const { return share(warm_hits, uses(), 0.0); }
double StoreStats::cold_rate() const { return share(cold_misses, uses(), 0.0); }

StoreStats& StoreStats::operator+=(const StoreStats& other) {
  for_each_field(*this, other, [](auto& a, auto b) { a += b; }, [](int64_t& a, int64_t b) { a = std::max(a, b); });
  return *this;
}

StoreStats StoreStats::operator-(const StoreStats& earlier) const {
  StoreStats out = *this;
  for_each_field(out, earlier, [](auto& a, auto b) { a -= b; }, [](int64_t&, int64_t) {});
  return out;
}

nlohmann::json to_json(const StoreStats& s, int64_t tokens) {
  nlohmann::json j = {{"hits", s.hits},
                      {"warm_hits", s.warm_hits},
                      {"cold_misses", s.cold_misses},
                      {"uses", s.uses()},
                      {"hit_rate", s.hit_rate()},
                      {"warm_rate", s.warm_rate()},
                      {"cold_rate", s.cold_rate()},
                      {"fallbacks", s.fallbacks},
                      {"io_errors", s.io_errors},
                      {"ssd_reads", s.ssd_reads},
                      {"ssd_bytes", s.ssd_bytes},
                      {"copies", s.copies},
                      {"copy_bytes", s.copy_bytes},
                      {"prefetch_requests", s.prefetch_requests},
                      {"prefetch_deduplicated", s.prefetch_deduplicated},
                      {"prefetch_cancelled", s.prefetch_cancelled},
                      {"prefetch_dropped", s.prefetch_dropped},
                      {"evictions_ram", s.evictions_ram},
                      {"evictions_compute", s.evictions_compute},
                      {"stall_seconds", s.stall_seconds},
                      {"most_experts_reading", s.most_experts_reading},
                      {"ram_high_water_mb", static_cast<double>(s.ram_high_water_bytes) / 1e6},
                      {"compute_high_water_mb", static_cast<double>(s.compute_high_water_bytes) / 1e6}};
  if (tokens > 0) {
    const double per_token = 1.0 / static_cast<double>(tokens);
    j["stall_ms_per_token"] = s.stall_seconds * 1e3 * per_token;
    j["ssd_mb_per_token"] = static_cast<double>(s.ssd_bytes) / 1e6 * per_token;
    j["copied_mb_per_token"] = static_cast<double>(s.copy_bytes) / 1e6 * per_token;
    j["fallbacks_per_token"] = static_cast<double>(s.fallbacks) * per_token;
  }
  return j;
}

}  // namespace chronos
