// Which resident expert a tier of the store gives up when it needs a slot. One instance per tier
// (host RAM, compute). The store tells the policy what enters, is used and leaves the tier, and
// asks for a victim among the entries its predicate allows (not pinned by the step in flight, not
// being read or copied). Not thread-safe: the store calls it under its own lock.
#pragma once

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "chronos/store/expert_key.h"

namespace chronos {

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  // `key` now occupies a slot of the tier (it becomes the most recently used one).
  virtual void insert(ExpertKey key) = 0;
  // `key` was used; a key the policy does not hold is ignored.
  virtual void touch(ExpertKey key) = 0;
  // `key` left the tier; a key the policy does not hold is ignored.
  virtual void erase(ExpertKey key) = 0;
  // The entry to evict first among those for which `evictable` is true; none when there is none.
  virtual std::optional<ExpertKey> victim(const std::function<bool(ExpertKey)>& evictable) const = 0;
  // Calls `visit` on every entry, the one to evict first first.
  virtual void for_each(const std::function<void(ExpertKey)>& visit) const = 0;
  virtual bool contains(ExpertKey key) const = 0;
  virtual size_t size() const = 0;
  virtual std::string name() const = 0;
};

// "lru": least recently inserted or touched first.
std::unique_ptr<EvictionPolicy> make_eviction_policy(const std::string& name);
bool is_eviction_policy(const std::string& name);
// The accepted names, for messages: "lru".
std::string eviction_policy_names();

// Least recently used first; insert and touch move the key to the most recently used end.
class LruPolicy final : public EvictionPolicy {
 public:
  void insert(ExpertKey key) override;
  void touch(ExpertKey key) override;
  void erase(ExpertKey key) override;
  std::optional<ExpertKey> victim(const std::function<bool(ExpertKey)>& evictable) const override;
  void for_each(const std::function<void(ExpertKey)>& visit) const override;
  bool contains(ExpertKey key) const override { return index_.count(key) > 0; }
  size_t size() const override { return index_.size(); }
  std::string name() const override { return "lru"; }

 private:
  std::list<ExpertKey> order_;  // front: least recently used
  std::unordered_map<ExpertKey, std::list<ExpertKey>::iterator, ExpertKeyHash> index_;
};

}  // namespace chronos
