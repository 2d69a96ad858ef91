// Clusters of experts for the expert cache (docs/offload.md "Packing the expert cache"): Louvain
// communities of the co-activation graph (Blondel et al. 2008, igraph's multilevel method, seeded and
// deterministic), split so that no cluster exceeds a member cap, with every (layer, expert) placed in
// exactly one cluster. Nodes with no co-activation weight (experts the calibration never routed to,
// or routed to alone) are not scattered as singletons: they fill "cold" clusters of their own, in
// (layer, expert) order, up to the cap.
#pragma once

#include <cstdint>
#include <vector>

#include "chronos/store/coactivation.h"

namespace chronos {

struct ClusteringOptions {
  uint64_t seed = 0;         // seeds Louvain's node order (same seed, same graph: same clusters)
  double resolution = 1.0;   // Louvain resolution (> 0; larger gives smaller communities)
  int64_t max_members = 0;   // most experts per cluster (>= 1; chronos-pack: cluster_bytes / bytes per expert)

  // Throws ConfigError naming the field.
  void validate() const;
};

struct Clustering {
  std::vector<std::vector<int64_t>> clusters;  // node ids, each ascending ((layer, expert) order); ordered by first node
  std::vector<int32_t> membership;             // node -> index in `clusters`
  double modularity = 0;                       // of the final partition at resolution 1 (0 for a graph without edges)
  double inside_mass = 0;                      // fraction of the total edge weight inside clusters
  double random_inside_mass = 0;               // the same, expected for a random partition with these sizes
  int64_t communities = 0;                     // Louvain communities of the connected nodes, before splitting
  int64_t split_communities = 0;               // of those, how many exceeded max_members and were split
  int64_t cold_nodes = 0;                      // nodes without edges, packed into cold clusters
};

// Louvain on the graph's weighted edges (igraph_community_multilevel, resolution as given): one
// community id per node, ids dense from 0. Deterministic for a seed. Throws Error on an igraph failure.
std::vector<int32_t> louvain_communities(const CoactivationGraph& graph, uint64_t seed, double resolution = 1.0);

// Newman's weighted modularity of a partition (igraph_modularity); 0 when the graph has no edges.
double partition_modularity(const CoactivationGraph& graph, const std::vector<int32_t>& membership, double resolution = 1.0);

// Splits `members` (node ids) into pieces of at most max_members that stay strongly connected: each
// piece starts at the remaining node with the largest weight to the other remaining nodes and grows
// by the remaining node with the most weight to the piece (ties: that node's weight to the rest, then
// the lower id) until full; what is left forms the last piece. Pieces come out in that order.
std::vector<std::vector<int64_t>> split_community(const CoactivationGraph& graph, const std::vector<int64_t>& members,
                                                  int64_t max_members);

// Fraction of the total edge weight whose two ends share a cluster (0 for a graph without edges).
double inside_mass(const CoactivationGraph& graph, const std::vector<int32_t>& membership);

// The expectation of inside_mass over uniformly random partitions of `num_nodes` nodes into
// clusters of these sizes: every pair of distinct nodes shares a cluster with probability
// sum s(s-1) / (N(N-1)), whatever the weights (the graph has no self-loops).
double random_inside_mass(const std::vector<int64_t>& cluster_sizes, int64_t num_nodes);

// Louvain, split to the cap, cold nodes placed, clusters sorted, and the summary figures.
Clustering cluster_experts(const CoactivationGraph& graph, const ClusteringOptions& options);

}  // namespace chronos
