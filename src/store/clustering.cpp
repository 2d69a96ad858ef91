#include "chronos/store/clustering.h"

#include <igraph/igraph.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "chronos/core/error.h"
#include "chronos/core/log.h"

namespace chronos {

void ClusteringOptions::validate() const {
  if (!(resolution > 0) || !std::isfinite(resolution))
    throw ConfigError(cat("clustering.resolution must be > 0 (got ", resolution, ")"));
  if (max_members < 1) throw ConfigError(cat("clustering.max_members must be >= 1 (got ", max_members, ")"));
}

namespace {

// igraph reports errors through a global handler whose default aborts; inside an IgraphScope the
// handler records the reason and lets the call return its error code, which check() turns into an Error.
thread_local std::string igraph_reason;

void capture_igraph_error(const char* reason, const char* file, int line, igraph_error_t code) {
  igraph_reason = reason ? reason : "";
  igraph_error_handler_ignore(reason, file, line, code);
}

void log_igraph_warning(const char* reason, const char* file, int line) { log::debug(cat("igraph: ", reason ? reason : "")); }

void check(igraph_error_t code, const char* what) {
  if (code == IGRAPH_SUCCESS) return;
  std::string reason = igraph_reason;
  igraph_reason.clear();
  throw Error(cat("igraph ", what, " failed: ", igraph_strerror(code), reason.empty() ? "" : " (" + reason + ")"));
}

// Error handlers and a seeded default RNG for the duration of the igraph calls; restored afterwards.
class IgraphScope {
 public:
  explicit IgraphScope(uint64_t seed) {
    old_error_ = igraph_set_error_handler(&capture_igraph_error);
    old_warning_ = igraph_set_warning_handler(&log_igraph_warning);
    igraph_reason.clear();
    const igraph_error_t code = igraph_rng_init(&rng_, &igraph_rngtype_pcg32);
    if (code != IGRAPH_SUCCESS) {
      restore_handlers();
      check(code, "random generator init");
    }
    igraph_rng_seed(&rng_, static_cast<igraph_uint_t>(seed));
    old_rng_ = igraph_rng_default();
    igraph_rng_set_default(&rng_);
  }
  ~IgraphScope() {
    igraph_rng_set_default(old_rng_);
    igraph_rng_destroy(&rng_);
    restore_handlers();
  }
  IgraphScope(const IgraphScope&) = delete;
  IgraphScope& operator=(const IgraphScope&) = delete;

 private:
  void restore_handlers() {
    igraph_set_error_handler(old_error_);
    igraph_set_warning_handler(old_warning_);
  }
  igraph_error_handler_t* old_error_ = nullptr;
  igraph_warning_handler_t* old_warning_ = nullptr;
  igraph_rng_t rng_;
  igraph_rng_t* old_rng_ = nullptr;
};

// The graph's positive-weight edges as an undirected igraph graph with a weight vector.
class WeightedGraph {
 public:
  explicit WeightedGraph(const CoactivationGraph& graph) {
    const int64_t n = graph.num_nodes();
    std::vector<igraph_integer_t> ends;
    std::vector<igraph_real_t> weights;
    for (int64_t a = 0; a < n; ++a) {
      const double* row = graph.row(a);
      for (int64_t b = a + 1; b < n; ++b)
        if (row[b] > 0) {
          ends.push_back(a);
          ends.push_back(b);
          weights.push_back(row[b]);
        }
    }
    static const igraph_integer_t no_ends[1] = {0};
    static const igraph_real_t no_weights[1] = {0};
    igraph_vector_int_t edges;
    check(igraph_vector_int_init_array(&edges, ends.empty() ? no_ends : ends.data(), static_cast<igraph_integer_t>(ends.size())),
          "edge vector");
    const igraph_error_t created = igraph_create(&graph_, &edges, n, IGRAPH_UNDIRECTED);
    igraph_vector_int_destroy(&edges);
    check(created, "graph creation");
    const igraph_error_t code = igraph_vector_init_array(&weights_, weights.empty() ? no_weights : weights.data(),
                                                         static_cast<igraph_integer_t>(weights.size()));
    if (code != IGRAPH_SUCCESS) {
      igraph_destroy(&graph_);
      check(code, "weight vector");
    }
  }
  ~WeightedGraph() {
    igraph_vector_destroy(&weights_);
    igraph_destroy(&graph_);
  }
  WeightedGraph(const WeightedGraph&) = delete;
  WeightedGraph& operator=(const WeightedGraph&) = delete;

  const igraph_t* graph() const { return &graph_; }
  const igraph_vector_t* weights() const { return &weights_; }

 private:
  igraph_t graph_;
  igraph_vector_t weights_;
};

class IntVector {
 public:
  explicit IntVector(igraph_integer_t size) { check(igraph_vector_int_init(&v_, size), "vector init"); }
  ~IntVector() { igraph_vector_int_destroy(&v_); }
  IntVector(const IntVector&) = delete;
  IntVector& operator=(const IntVector&) = delete;
  igraph_vector_int_t* get() { return &v_; }

 private:
  igraph_vector_int_t v_;
};

}  // namespace

std::vector<int32_t> louvain_communities(const CoactivationGraph& graph, uint64_t seed, double resolution) {
  if (!(resolution > 0)) throw InvalidArgument(cat("louvain: resolution must be > 0 (got ", resolution, ")"));
  IgraphScope scope(seed);
  WeightedGraph g(graph);
  IntVector membership(0);
  check(igraph_community_multilevel(g.graph(), g.weights(), resolution, membership.get(), nullptr, nullptr), "multilevel (Louvain)");
  // Dense ids in order of each community's first node.
  std::map<igraph_integer_t, int32_t> renumber;
  std::vector<int32_t> out(static_cast<size_t>(graph.num_nodes()));
  for (int64_t v = 0; v < graph.num_nodes(); ++v) {
    const igraph_integer_t c = VECTOR(*membership.get())[v];
    auto it = renumber.emplace(c, static_cast<int32_t>(renumber.size())).first;
    out[static_cast<size_t>(v)] = it->second;
  }
  return out;
}

double partition_modularity(const CoactivationGraph& graph, const std::vector<int32_t>& membership, double resolution) {
  if (static_cast<int64_t>(membership.size()) != graph.num_nodes())
    throw InvalidArgument(cat("modularity: ", membership.size(), " memberships for ", graph.num_nodes(), " nodes"));
  if (graph.total_weight() <= 0) return 0.0;
  IgraphScope scope(0);
  WeightedGraph g(graph);
  IntVector m(static_cast<igraph_integer_t>(membership.size()));
  for (size_t v = 0; v < membership.size(); ++v) {
    if (membership[v] < 0) throw InvalidArgument(cat("modularity: node ", v, " has no cluster"));
    VECTOR(*m.get())[v] = membership[v];
  }
  igraph_real_t q = 0;
  check(igraph_modularity(g.graph(), m.get(), g.weights(), resolution, /*directed=*/false, &q), "modularity");
  return q;
}

std::vector<std::vector<int64_t>> split_community(const CoactivationGraph& graph, const std::vector<int64_t>& members,
                                                  int64_t max_members) {
  if (max_members < 1) throw InvalidArgument(cat("split_community: max_members must be >= 1 (got ", max_members, ")"));
  std::vector<int64_t> nodes = members;
  std::sort(nodes.begin(), nodes.end());
  const size_t n = nodes.size(), cap = static_cast<size_t>(max_members);
  const auto w = [&](size_t i, size_t j) { return graph.row(nodes[i])[nodes[j]]; };
  std::vector<bool> alive(n, true);
  std::vector<double> inner(n, 0.0);  // weight to the other remaining nodes, kept up to date
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) inner[i] += w(i, j);

  std::vector<std::vector<int64_t>> pieces;
  size_t remaining = n;
  while (remaining > cap) {
    size_t seed = n;
    for (size_t i = 0; i < n; ++i)
      if (alive[i] && (seed == n || inner[i] > inner[seed])) seed = i;
    std::vector<bool> taken(n, false);
    std::vector<double> gain(n, 0.0);  // weight to the piece
    std::vector<size_t> piece;
    const auto take = [&](size_t i) {
      taken[i] = true;
      piece.push_back(i);
      for (size_t j = 0; j < n; ++j) gain[j] += w(i, j);
    };
    take(seed);
    while (piece.size() < cap) {
      size_t best = n;
      for (size_t i = 0; i < n; ++i) {
        if (!alive[i] || taken[i]) continue;
        if (best == n || gain[i] > gain[best] || (gain[i] == gain[best] && inner[i] > inner[best])) best = i;
      }
      take(best);
    }
    for (size_t i : piece) alive[i] = false;
    for (size_t i : piece)
      for (size_t j = 0; j < n; ++j)
        if (alive[j]) inner[j] -= w(i, j);
    remaining -= piece.size();
    std::vector<int64_t> ids;
    for (size_t i : piece) ids.push_back(nodes[i]);
    std::sort(ids.begin(), ids.end());
    pieces.push_back(std::move(ids));
  }
  std::vector<int64_t> rest;
  for (size_t i = 0; i < n; ++i)
    if (alive[i]) rest.push_back(nodes[i]);
  if (!rest.empty()) pieces.push_back(std::move(rest));
  return pieces;
}

double inside_mass(const CoactivationGraph& graph, const std::vector<int32_t>& membership) {
  const int64_t n = graph.num_nodes();
  if (static_cast<int64_t>(membership.size()) != n)
    throw InvalidArgument(cat("inside_mass: ", membership.size(), " memberships for ", n, " nodes"));
  double inside = 0, total = 0;
  for (int64_t a = 0; a < n; ++a) {
    const double* row = graph.row(a);
    for (int64_t b = a + 1; b < n; ++b) {
      total += row[b];
      if (membership[static_cast<size_t>(a)] == membership[static_cast<size_t>(b)]) inside += row[b];
    }
  }
  return total > 0 ? inside / total : 0.0;
}

double random_inside_mass(const std::vector<int64_t>& cluster_sizes, int64_t num_nodes) {
  if (num_nodes < 2) return 0.0;
  double same = 0;
  int64_t sum = 0;
  for (int64_t s : cluster_sizes) {
    same += static_cast<double>(s) * static_cast<double>(s - 1);
    sum += s;
  }
  if (sum != num_nodes) throw InvalidArgument(cat("random_inside_mass: cluster sizes add up to ", sum, ", not ", num_nodes, " nodes"));
  return same / (static_cast<double>(num_nodes) * static_cast<double>(num_nodes - 1));
}

Clustering cluster_experts(const CoactivationGraph& graph, const ClusteringOptions& options) {
  options.validate();
  const int64_t n = graph.num_nodes();
  const std::vector<int32_t> communities = louvain_communities(graph, options.seed, options.resolution);

  Clustering result;
  std::vector<std::vector<int64_t>> groups;  // connected nodes by community, in order of first node
  std::vector<int64_t> cold;
  std::map<int32_t, size_t> group_of;
  for (int64_t v = 0; v < n; ++v) {
    if (graph.strength(v) <= 0) {
      cold.push_back(v);
      continue;
    }
    auto it = group_of.emplace(communities[static_cast<size_t>(v)], groups.size()).first;
    if (it->second == groups.size()) groups.emplace_back();
    groups[it->second].push_back(v);
  }
  result.communities = static_cast<int64_t>(groups.size());
  result.cold_nodes = static_cast<int64_t>(cold.size());
  for (const auto& group : groups) {
    if (static_cast<int64_t>(group.size()) > options.max_members) ++result.split_communities;
    for (auto& piece : split_community(graph, group, options.max_members)) result.clusters.push_back(std::move(piece));
  }
  for (size_t first = 0; first < cold.size(); first += static_cast<size_t>(options.max_members)) {
    const size_t end = std::min(cold.size(), first + static_cast<size_t>(options.max_members));
    result.clusters.emplace_back(cold.begin() + static_cast<std::ptrdiff_t>(first), cold.begin() + static_cast<std::ptrdiff_t>(end));
  }
  std::sort(result.clusters.begin(), result.clusters.end(), [](const auto& a, const auto& b) { return a.front() < b.front(); });

  result.membership.assign(static_cast<size_t>(n), -1);
  std::vector<int64_t> sizes;
  for (size_t c = 0; c < result.clusters.size(); ++c) {
    sizes.push_back(static_cast<int64_t>(result.clusters[c].size()));
    for (int64_t v : result.clusters[c]) result.membership[static_cast<size_t>(v)] = static_cast<int32_t>(c);
  }
  result.modularity = partition_modularity(graph, result.membership);
  result.inside_mass = inside_mass(graph, result.membership);
  result.random_inside_mass = random_inside_mass(sizes, n);
  log::debug(cat("clustering: ", result.communities, " Louvain communities, ", result.split_communities, " split, ", result.cold_nodes,
                 " cold nodes -> ", result.clusters.size(), " clusters, modularity ", result.modularity));
  return result;
}

}  // namespace chronos
