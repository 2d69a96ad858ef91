// ExpertStore::check_invariants: the store's bookkeeping checked against itself (see
// expert_store_impl.h for what each state means). Cheap enough for tests to call often; never on
// the decode path.
#include <algorithm>
#include <stdexcept>

#include "chronos/core/error.h"
#include "store/expert_store_impl.h"

namespace chronos {
namespace {

[[noreturn]] void broken(const std::string& what) { throw std::logic_error(cat("expert store invariant: ", what)); }

// Each slot of a pool has one owner; the owners are what the pool counts as taken.
void check_slots(const std::vector<int32_t>& owned, int64_t count, int64_t in_use, const char* pool) {
  std::vector<bool> seen(static_cast<size_t>(count), false);
  for (const int32_t slot : owned) {
    if (slot < 0 || slot >= count) broken(cat(pool, " slot ", slot, " is outside the pool of ", count));
    if (seen[static_cast<size_t>(slot)]) broken(cat(pool, " slot ", slot, " has two owners"));
    seen[static_cast<size_t>(slot)] = true;
  }
  if (static_cast<int64_t>(owned.size()) != in_use)
    broken(cat(owned.size(), " experts hold ", pool, " slots but the pool counts ", in_use, " taken"));
}

}  // namespace

void ExpertStore::Impl::check_invariants_locked() const {
  std::vector<int32_t> host_owned, compute_owned;
  int64_t reading = 0, copying = 0, pins = 0;
  for (int64_t index = 0; index < num_layers_ * num_experts_; ++index) {
    const ExpertKey key{static_cast<int32_t>(index / num_experts_), static_cast<int32_t>(index % num_experts_)};
    const Unit& u = unit(key);
    const auto fail = [&](const std::string& what) { broken(cat("expert ", key.name(), " is ", to_string(u.state), " but ", what)); };
    const bool host = u.host_slot >= 0, compute = u.compute_slot >= 0;
    switch (u.state) {
      case ExpertState::cold:
        if (host || compute) fail("holds a slot");
        break;
      case ExpertState::reading:
        if (!host || compute) fail("does not hold exactly a host slot");
        if (!u.read_event) fail("has no read event");
        ++reading;
        break;
      case ExpertState::warm:
        if (!host || compute) fail("does not hold exactly a host slot");
        break;
      case ExpertState::copying:
        if (!host || !compute) fail("does not hold a host and a compute slot");
        if (zero_copy_) fail("the store is zero copy");
        if (!u.copy_event) fail("has no copy event");
        ++copying;
        break;
      case ExpertState::hot:
        if (!compute) fail("holds no compute slot");
        if (zero_copy_ && !host) fail("holds no host slot (zero copy serves the host slot)");
        break;
    }
    if (u.pins < 0) fail(cat("has ", u.pins, " pins"));
    if (u.pins > 0 && u.state != ExpertState::hot) fail("is pinned");
    if (u.read_queued && u.state != ExpertState::cold) fail("has a read queued");
    if (u.demanded && u.state == ExpertState::hot) fail("is still marked as awaited by acquire()");
    if (u.wants_compute && (u.state == ExpertState::hot || u.state == ExpertState::copying)) fail("still wants a copy");
    if (u.wants_compute && u.state == ExpertState::cold && !u.read_queued) fail("wants a copy with no read to copy from");
    const bool in_host_policy = host && u.state != ExpertState::reading;
    if (host_policy_->contains(key) != in_host_policy)
      fail(in_host_policy ? "the RAM eviction policy does not know it" : "the RAM eviction policy holds it");
    if (compute_policy_->contains(key) != (u.state == ExpertState::hot))
      fail(u.state == ExpertState::hot ? "the compute eviction policy does not know it" : "the compute eviction policy holds it");
    const auto queued = [](const std::deque<ExpertKey>& q, ExpertKey k) { return std::count(q.begin(), q.end(), k); };
    if (queued(demand_reads_, key) != (u.read_queued ? 1 : 0)) fail(cat("appears ", queued(demand_reads_, key), " times in the demand reads"));
    if (queued(pending_copies_, key) != (u.copy_queued ? 1 : 0)) fail(cat("appears ", queued(pending_copies_, key), " times in the prefetch copies"));
    if (host) host_owned.push_back(u.host_slot);
    if (compute) compute_owned.push_back(u.compute_slot);
    pins += u.pins;
  }
  check_slots(host_owned, host_pool_->count(), host_pool_->in_use(), "host");
  check_slots(compute_owned, compute_pool_->count(), compute_pool_->in_use(), "compute");
  if (host_policy_->size() + static_cast<size_t>(reading) != host_owned.size())
    broken(cat("the RAM eviction policy holds ", host_policy_->size(), " experts, not the ", host_owned.size() - static_cast<size_t>(reading), " WARM or HOT in RAM"));
  if (reading != reads_in_flight_) broken(cat(reading, " experts are READING but ", reads_in_flight_, " reads are counted in flight"));
  if (copying != copies_in_flight_) broken(cat(copying, " experts are COPYING but ", copies_in_flight_, " copies are counted in flight"));
  int64_t held = 0;
  for (const auto& [layer, keys] : acquired_) {
    for (const ExpertKey key : keys) {
      if (key.layer != layer) broken(cat("expert ", key.name(), " is held for layer ", layer));
      if (unit(key).pins < 1) broken(cat("expert ", key.name(), " is held by acquire() without a pin"));
    }
    held += static_cast<int64_t>(keys.size());
  }
  // Pins beyond the held ones are those promoted() took for an acquire() still collecting them.
  if (held != pinned_ || pins < pinned_) broken(cat(held, " experts are held and ", pins, " pinned, but ", pinned_, " pins are counted"));
  if (pinned_ > compute_pool_->count()) broken(cat(pinned_, " experts are held but there are ", compute_pool_->count(), " compute slots"));
}

}  // namespace chronos
