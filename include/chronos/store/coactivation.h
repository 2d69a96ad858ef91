// The co-activation graph of chronos-pack (docs/offload.md "Packing the expert cache"): one node per
// (layer, expert), node = ExpertKey::index(E), and a symmetric weight that counts how often two
// experts are needed close together, so that a cluster file can hold experts that are read together.
//   - same token, different layers: +1 between every pair of the token's (layer, expert) nodes that
//     lie in different layers (the experts one token needs on its way through the model);
//   - adjacent tokens: for t and t+j, j = 1..window, within one sequence and at the same layer,
//     +1 between every expert a of t and b of t+j with a != b (an expert reused by the next tokens is
//     one node; a self-loop would say nothing about placement, so none is counted).
// Pairs of the same token in the same layer are not counted. Stored as a dense N x N matrix
// (N = L * E), which suits the few thousand nodes of real models.
#pragma once

#include <cstdint>
#include <vector>

#include "chronos/store/routing_trace.h"

namespace chronos {

struct CoactivationOptions {
  int64_t window = 4;  // adjacent tokens t+1..t+window paired with t at each layer (0: none)

  // Throws ConfigError naming the field.
  void validate() const;
};

// Most nodes a dense graph is built for (16384^2 doubles = 2 GiB).
constexpr int64_t kMaxCoactivationNodes = 16384;

class CoactivationGraph {
 public:
  CoactivationGraph() = default;
  // An empty graph over L * E nodes; throws InvalidArgument beyond kMaxCoactivationNodes.
  CoactivationGraph(int64_t num_layers, int64_t num_experts);

  int64_t num_layers() const { return num_layers_; }
  int64_t num_experts() const { return num_experts_; }
  int64_t num_nodes() const { return num_layers_ * num_experts_; }

  // Weight between nodes a and b (symmetric; 0 on the diagonal).
  double weight(int64_t a, int64_t b) const { return weights_[static_cast<size_t>(a * num_nodes() + b)]; }
  // Adds w to the edge {a, b}, a != b (both directions).
  void add(int64_t a, int64_t b, double w);
  // Row a of the matrix (num_nodes() values).
  const double* row(int64_t a) const { return weights_.data() + a * num_nodes(); }

  // Sum of the edge weights (each unordered pair once).
  double total_weight() const;
  // Sum of node a's edge weights.
  double strength(int64_t a) const;

  // Tokens that routed to each node.
  std::vector<int64_t> occurrences;

 private:
  int64_t num_layers_ = 0, num_experts_ = 0;
  std::vector<double> weights_;  // row-major N x N
};

// Counts the trace's co-activations as described above.
CoactivationGraph build_coactivation_graph(const RoutingTrace& trace, const CoactivationOptions& options = {});

}  // namespace chronos
