#include "chronos/model/router_bias.h"

#include "chronos/core/error.h"

namespace chronos {

BiasTarget parse_bias_target(const std::string& name) {
  if (name == "selection") return BiasTarget::selection;
  if (name == "selection_and_weights") return BiasTarget::selection_and_weights;
  throw InvalidArgument(cat("unknown bias target '", name, "' (selection or selection_and_weights)"));
}

std::string to_string(BiasTarget target) { return target == BiasTarget::selection ? "selection" : "selection_and_weights"; }

}  // namespace chronos
