// ExpertSource: the seam between the MoE layer and wherever routed-expert weights live (DESIGN.md).
// Per layer and forward call, the MoE layer routes its tokens, then asks the source once for the
// experts that at least one token chose. The source answers, per expert, with its weights on the
// compute device (waiting for them if its policy says so) or with nothing, in which case the
// layer applies soft gating (docs/architecture.md). The model never sees how experts are stored.
// Without a source (the default: training, fully resident inference) a layer uses its own parameters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "chronos/model/feed_forward.h"

namespace chronos {

class ExpertSource {
 public:
  virtual ~ExpertSource() = default;

  // `experts` is ascending and unique. The result has one entry per requested expert; an empty
  // entry marks the expert unavailable. The weights stay valid until release(layer).
  virtual std::vector<std::optional<ExpertWeights>> acquire(int64_t layer, const std::vector<int64_t>& experts) = 0;

  // The layer has finished using what acquire(layer, ...) returned.
  virtual void release(int64_t layer) {}

  // The most experts one acquire may ask for: a layer needing more asks in chunks, releasing each
  // chunk before acquiring the next (a store with few compute slots still serves any layer).
  virtual size_t max_batch() const { return SIZE_MAX; }

  // Called once per layer and forward call, before the first acquire, with every expert the layer
  // will ask for, so a source can start fetching them all at once.
  virtual void announce(int64_t layer, const std::vector<int64_t>& experts) {}
};

}  // namespace chronos
