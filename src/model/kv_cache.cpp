#include "chronos/model/kv_cache.h"

namespace chronos {

void KVCache::reset() {
  for (auto& layer : layers_) layer = LayerCache{};
  position_ = 0;
}

int64_t KVCache::bytes() const {
  int64_t total = 0;
  for (const auto& layer : layers_) {
    for (const auto* t : {&layer.first, &layer.second})
      if (t->defined()) total += t->numel() * t->element_size();
  }
  return total;
}

}  // namespace chronos
