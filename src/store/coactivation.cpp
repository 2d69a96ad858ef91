#include "chronos/store/coactivation.h"

#include "chronos/core/error.h"

namespace chronos {

void CoactivationOptions::validate() const {
  if (window < 0) throw ConfigError(cat("coactivation.window must be >= 0 (got ", window, ")"));
}

CoactivationGraph::CoactivationGraph(int64_t num_layers, int64_t num_experts)
    : num_layers_(num_layers), num_experts_(num_experts) {
  if (num_layers < 1 || num_experts < 1)
    throw InvalidArgument(cat("co-activation graph: need >= 1 layer and expert (got ", num_layers, " x ", num_experts, ")"));
  if (num_layers * num_experts > kMaxCoactivationNodes)
    throw InvalidArgument(cat("co-activation graph: ", num_layers, " layers x ", num_experts, " experts = ", num_layers * num_experts,
                              " nodes, more than the ", kMaxCoactivationNodes, " a dense graph is built for"));
  const size_t n = static_cast<size_t>(num_nodes());
  weights_.assign(n * n, 0.0);
  occurrences.assign(n, 0);
}

void CoactivationGraph::add(int64_t a, int64_t b, double w) {
  if (a == b) throw InvalidArgument(cat("co-activation graph: no self-loops (node ", a, ")"));
  const int64_t n = num_nodes();
  weights_[static_cast<size_t>(a * n + b)] += w;
  weights_[static_cast<size_t>(b * n + a)] += w;
}

double CoactivationGraph::total_weight() const {
  double sum = 0;
  for (double w : weights_) sum += w;
  return sum / 2;
}

double CoactivationGraph::strength(int64_t a) const {
  const double* r = row(a);
  double sum = 0;
  for (int64_t b = 0; b < num_nodes(); ++b) sum += r[b];
  return sum;
}

CoactivationGraph build_coactivation_graph(const RoutingTrace& trace, const CoactivationOptions& options) {
  options.validate();
  const int64_t L = trace.num_layers(), E = trace.num_experts(), K = trace.top_k();
  CoactivationGraph graph(L, E);
  std::vector<int64_t> nodes(static_cast<size_t>(L * K));
  for (size_t s = 0; s < trace.num_sequences(); ++s) {
    const int64_t T = trace.length(s);
    for (int64_t t = 0; t < T; ++t) {
      // The token's nodes, layer-major: entries [l*K, (l+1)*K) lie in layer l.
      for (int64_t l = 0; l < L; ++l) {
        const int16_t* ids = trace.experts(s, t, l);
        for (int64_t k = 0; k < K; ++k) {
          nodes[static_cast<size_t>(l * K + k)] = l * E + ids[k];
          ++graph.occurrences[static_cast<size_t>(l * E + ids[k])];
        }
      }
      for (int64_t i = 0; i < L * K; ++i)
        for (int64_t j = (i / K + 1) * K; j < L * K; ++j) graph.add(nodes[static_cast<size_t>(i)], nodes[static_cast<size_t>(j)], 1.0);
      // Adjacent tokens, same layer.
      for (int64_t d = 1; d <= options.window && t + d < T; ++d)
        for (int64_t l = 0; l < L; ++l) {
          const int16_t* here = trace.experts(s, t, l);
          const int16_t* later = trace.experts(s, t + d, l);
          for (int64_t a = 0; a < K; ++a)
            for (int64_t b = 0; b < K; ++b)
              if (here[a] != later[b]) graph.add(l * E + here[a], l * E + later[b], 1.0);
        }
    }
  }
  return graph;
}

}  // namespace chronos
