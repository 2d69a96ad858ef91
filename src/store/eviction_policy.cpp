#include "store/eviction_policy.h"

#include "chronos/core/error.h"

namespace chronos {

std::unique_ptr<EvictionPolicy> make_eviction_policy(const std::string& name) {
  if (name == "lru") return std::make_unique<LruPolicy>();
  throw InvalidArgument(cat("unknown eviction policy '", name, "' (expected ", eviction_policy_names(), ")"));
}

bool is_eviction_policy(const std::string& name) { return name == "lru"; }

std::string eviction_policy_names() { return "lru"; }

void LruPolicy::insert(ExpertKey key) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    order_.splice(order_.end(), order_, it->second);
    return;
  }
  index_.emplace(key, order_.insert(order_.end(), key));
}

void LruPolicy::touch(ExpertKey key) {
  auto it = index_.find(key);
  if (it != index_.end()) order_.splice(order_.end(), order_, it->second);
}

void LruPolicy::erase(ExpertKey key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  order_.erase(it->second);
  index_.erase(it);
}

std::optional<ExpertKey> LruPolicy::victim(const std::function<bool(ExpertKey)>& evictable) const {
  for (ExpertKey key : order_)
    if (evictable(key)) return key;
  return std::nullopt;
}

void LruPolicy::for_each(const std::function<void(ExpertKey)>& visit) const {
  for (ExpertKey key : order_) visit(key);
}

}  // namespace chronos
