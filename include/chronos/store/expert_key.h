// The identity of one cached unit in the expert store: one routed expert of one MoE layer
// (docs/offload.md: the store keys by (layer, expert), not by a global expert id).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace chronos {

struct ExpertKey {
  int32_t layer = 0;   // decoder layer index (every layer is MoE)
  int32_t expert = 0;  // routed expert index within the layer

  // "l3_e12": the prefix of the expert's tensor names in a cluster file.
  std::string name() const { return "l" + std::to_string(layer) + "_e" + std::to_string(expert); }
  // Dense index layer * num_experts + expert, for per-unit arrays.
  int64_t index(int64_t num_experts) const { return static_cast<int64_t>(layer) * num_experts + expert; }
  static ExpertKey from_index(int64_t index, int64_t num_experts) {
    return {static_cast<int32_t>(index / num_experts), static_cast<int32_t>(index % num_experts)};
  }
  friend bool operator==(ExpertKey a, ExpertKey b) { return a.layer == b.layer && a.expert == b.expert; }
  friend bool operator!=(ExpertKey a, ExpertKey b) { return !(a == b); }
  friend bool operator<(ExpertKey a, ExpertKey b) { return a.layer != b.layer ? a.layer < b.layer : a.expert < b.expert; }
};

struct ExpertKeyHash {
  size_t operator()(ExpertKey k) const { return std::hash<int64_t>()((static_cast<int64_t>(k.layer) << 32) | static_cast<uint32_t>(k.expert)); }
};

}  // namespace chronos
