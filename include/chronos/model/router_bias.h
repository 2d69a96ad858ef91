// A bias on the routers of the MoE layers, set per forward pass (ForwardOptions::router_bias): the
// seam through which a routing controller (routing/chronovisor.h) or a balancing rule reaches the
// router without the model knowing who sets it.
#pragma once

#include <ATen/Tensor.h>

#include <string>
#include <vector>

namespace chronos {

// Where a router bias acts.
enum class BiasTarget {
  selection,              // added to the logits top-k selects by; the mixture weights stay the router's own softmax
  selection_and_weights,  // added to the logits before the softmax: it moves the weights too
};
BiasTarget parse_bias_target(const std::string& name);  // "selection" | "selection_and_weights"; InvalidArgument otherwise
std::string to_string(BiasTarget target);

struct RouterBias {
  std::vector<at::Tensor> per_layer;  // one [E] float tensor per decoder layer (undefined: none for that layer)
  BiasTarget target = BiasTarget::selection;
};

}  // namespace chronos
