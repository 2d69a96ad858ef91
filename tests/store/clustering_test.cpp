// Co-activation graph, Louvain clusters, splitting to a cap, placement of every expert, and the
// random-partition baseline (chronos-pack's clustering).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "chronos/core/error.h"
#include "chronos/store/clustering.h"
#include "chronos/store/coactivation.h"
#include "chronos/store/routing_trace.h"

namespace chronos {
namespace {

// One sequence; tokens[t][layer] = the k expert ids.
RoutingTrace make_trace(int64_t L, int64_t E, int64_t K, const std::vector<std::vector<std::vector<int16_t>>>& tokens) {
  RoutingTrace trace(L, E, K);
  std::vector<int16_t> ids;
  for (const auto& token : tokens)
    for (const auto& layer : token) ids.insert(ids.end(), layer.begin(), layer.end());
  trace.add_sequence(ids);
  return trace;
}

// Two cliques of 4 (even and odd node ids, weight 5 per pair) joined by one edge of weight 1.
CoactivationGraph two_cliques() {
  CoactivationGraph g(1, 8);
  for (int64_t a = 0; a < 8; ++a)
    for (int64_t b = a + 2; b < 8; b += 2) g.add(a, b, 5);
  g.add(6, 7, 1);
  return g;
}

// A seeded trace over L layers and E experts; layer `narrow_layer` only ever routes to experts 0..3.
RoutingTrace random_trace(int64_t L, int64_t E, int64_t K, int64_t tokens, int64_t narrow_layer, uint32_t seed) {
  RoutingTrace trace(L, E, K);
  std::mt19937 rng(seed);
  for (int s = 0; s < 3; ++s) {
    std::vector<int16_t> ids;
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t range = l == narrow_layer ? 4 : E;
        std::vector<int16_t> pick;
        while (static_cast<int64_t>(pick.size()) < K) {
          const auto e = static_cast<int16_t>(rng() % static_cast<uint32_t>(range));
          if (std::find(pick.begin(), pick.end(), e) == pick.end()) pick.push_back(e);
        }
        ids.insert(ids.end(), pick.begin(), pick.end());
      }
    trace.add_sequence(ids);
  }
  return trace;
}

template <typename F>
void expect_config_error(F&& f, const std::string& field) {
  try {
    f();
    FAIL() << "expected a ConfigError naming " << field;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
}

TEST(RoutingTrace, StoresIdsTokenMajorAndChecksThem) {
  RoutingTrace trace(2, 4, 2);
  trace.add_sequence({0, 1, 2, 3, /*t1*/ 3, 2, 1, 0});
  EXPECT_EQ(trace.tokens(), 2);
  EXPECT_EQ(trace.length(0), 2);
  EXPECT_EQ(trace.experts(0, 1, 0)[0], 3);
  EXPECT_EQ(trace.experts(0, 0, 1)[1], 3);
  EXPECT_THROW(trace.add_sequence({0, 1, 2}), InvalidArgument);
  EXPECT_THROW(trace.add_sequence({0, 1, 2, 4}), InvalidArgument);
  EXPECT_THROW(RoutingTrace(2, 4, 5), InvalidArgument);
  EXPECT_THROW(RoutingTrace(2, 40000, 1), InvalidArgument);
}

TEST(Coactivation, CountsCrossLayerAndWindowPairs) {
  // L=2, E=4, k=2; node = layer * 4 + expert.
  const RoutingTrace trace = make_trace(2, 4, 2,
                                        {{{0, 1}, {2, 3}},    // t0: nodes 0 1 | 6 7
                                         {{1, 2}, {2, 0}},    // t1: nodes 1 2 | 6 4
                                         {{0, 3}, {1, 3}}});  // t2: nodes 0 3 | 5 7
  CoactivationOptions options;
  options.window = 1;
  const CoactivationGraph g = build_coactivation_graph(trace, options);
  EXPECT_EQ(g.num_nodes(), 8);
  // Cross-layer pairs of one token.
  EXPECT_EQ(g.weight(1, 6), 2);  // t0 and t1
  EXPECT_EQ(g.weight(0, 7), 2);  // t0 and t2
  EXPECT_EQ(g.weight(3, 5), 1);  // t2
  // Same layer, adjacent tokens: t0->t1 (0,1) and t1->t2 (1,0).
  EXPECT_EQ(g.weight(0, 1), 2);
  EXPECT_EQ(g.weight(1, 0), 2);
  // (1,2) only as t0->t1: the pair inside t1's own layer 0 is not counted.
  EXPECT_EQ(g.weight(1, 2), 1);
  // (6,7): t0->t1 (7,6) and t1->t2 (6,7); the pair inside t0's layer 1 is not counted.
  EXPECT_EQ(g.weight(6, 7), 2);
  // No self-loops (expert 1 of layer 0 is reused by t1), and different layers across tokens count nothing.
  EXPECT_EQ(g.weight(1, 1), 0);
  EXPECT_EQ(g.weight(0, 4), 0);
  // 3 tokens x 4 cross-layer pairs + window pairs 3 + 3 (t0->t1) + 4 + 4 (t1->t2).
  EXPECT_EQ(g.total_weight(), 26);
  EXPECT_EQ(g.occurrences[0], 2);
  EXPECT_EQ(g.occurrences[6], 2);
  EXPECT_EQ(g.occurrences[5], 1);

  // A wider window adds t0->t2: layer 0 {0,1}->{0,3}: (0,3) (1,0) (1,3); layer 1 {6,7}->{5,7}: (6,5) (6,7) (7,5).
  options.window = 2;
  const CoactivationGraph wide = build_coactivation_graph(trace, options);
  EXPECT_EQ(wide.total_weight(), 32);
  EXPECT_EQ(wide.weight(0, 1), 3);
  EXPECT_EQ(wide.weight(6, 7), 3);
  options.window = 0;
  EXPECT_EQ(build_coactivation_graph(trace, options).total_weight(), 12);
}

TEST(Coactivation, WindowStaysInsideASequence) {
  RoutingTrace trace(1, 4, 1);
  trace.add_sequence({0});
  trace.add_sequence({1});
  const CoactivationGraph g = build_coactivation_graph(trace);
  EXPECT_EQ(g.total_weight(), 0);
  EXPECT_EQ(g.occurrences[0], 1);
}

TEST(Coactivation, OptionRules) {
  expect_config_error([] { CoactivationOptions{-1}.validate(); }, "coactivation.window");
  EXPECT_THROW(CoactivationGraph(200, 200), InvalidArgument);
}

TEST(Louvain, FindsTwoCliquesDeterministically) {
  const CoactivationGraph g = two_cliques();
  const std::vector<int32_t> m = louvain_communities(g, 7);
  ASSERT_EQ(m.size(), 8u);
  for (int64_t v = 0; v < 8; ++v) EXPECT_EQ(m[static_cast<size_t>(v)], m[static_cast<size_t>(v % 2)]) << "node " << v;
  EXPECT_NE(m[0], m[1]);
  EXPECT_EQ(m[0], 0);  // ids in order of first node
  for (uint64_t seed : {0u, 1u, 7u, 12345u}) EXPECT_EQ(louvain_communities(g, seed), louvain_communities(g, seed)) << "seed " << seed;
  EXPECT_GT(partition_modularity(g, m), 0.4);
  EXPECT_NEAR(inside_mass(g, m), 60.0 / 61.0, 1e-12);
}

TEST(Louvain, DeterministicOnANoisyGraph) {
  const CoactivationGraph g = build_coactivation_graph(random_trace(4, 8, 2, 200, -1, 3));
  const std::vector<int32_t> a = louvain_communities(g, 11);
  EXPECT_EQ(a, louvain_communities(g, 11));
  ClusteringOptions options;
  options.seed = 11;
  options.max_members = 6;
  const Clustering x = cluster_experts(g, options), y = cluster_experts(g, options);
  EXPECT_EQ(x.clusters, y.clusters);
  EXPECT_EQ(x.modularity, y.modularity);
}

TEST(Louvain, EdgelessGraph) {
  const CoactivationGraph g(2, 3);
  const std::vector<int32_t> m = louvain_communities(g, 0);
  EXPECT_EQ(std::set<int32_t>(m.begin(), m.end()).size(), 6u);  // singletons
  EXPECT_EQ(partition_modularity(g, m), 0.0);
  EXPECT_EQ(inside_mass(g, m), 0.0);
}

TEST(Split, KeepsStronglyConnectedPiecesUnderTheCap) {
  // Two triangles of weight 10 with weight-1 edges between every cross pair: one community, cap 3.
  CoactivationGraph g(1, 6);
  for (int64_t a = 0; a < 6; ++a)
    for (int64_t b = a + 1; b < 6; ++b) g.add(a, b, (a < 3) == (b < 3) ? 10 : 1);
  const auto pieces = split_community(g, {5, 4, 3, 2, 1, 0}, 3);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0], (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(pieces[1], (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(split_community(g, {0, 1, 2, 3, 4, 5}, 6).size(), 1u);
  EXPECT_THROW(split_community(g, {0, 1}, 0), InvalidArgument);
}

TEST(Split, PiecesRespectTheCapAndCoverTheMembers) {
  const CoactivationGraph g = build_coactivation_graph(random_trace(2, 8, 2, 100, -1, 5));
  std::vector<int64_t> members(16);
  std::iota(members.begin(), members.end(), 0);
  for (int64_t cap : {1, 3, 5, 16}) {
    const auto pieces = split_community(g, members, cap);
    EXPECT_EQ(pieces.size(), static_cast<size_t>((16 + cap - 1) / cap)) << "cap " << cap;
    std::vector<int64_t> all;
    for (const auto& p : pieces) {
      EXPECT_LE(static_cast<int64_t>(p.size()), cap);
      EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
      all.insert(all.end(), p.begin(), p.end());
    }
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, members) << "cap " << cap;
  }
}

TEST(ClusterExperts, PlacesEveryExpertExactlyOnceUnderTheCap) {
  // Layer 2 routes only to experts 0..3: nodes 20..23 never occur and go to one cold cluster.
  const CoactivationGraph g = build_coactivation_graph(random_trace(3, 8, 2, 150, 2, 9));
  ClusteringOptions options;
  options.seed = 4;
  options.max_members = 5;
  const Clustering c = cluster_experts(g, options);
  EXPECT_EQ(c.cold_nodes, 4);
  std::vector<int> seen(24, 0);
  for (size_t i = 0; i < c.clusters.size(); ++i) {
    const auto& cluster = c.clusters[i];
    ASSERT_FALSE(cluster.empty());
    EXPECT_LE(static_cast<int64_t>(cluster.size()), 5);
    EXPECT_TRUE(std::is_sorted(cluster.begin(), cluster.end()));
    if (i > 0) EXPECT_LT(c.clusters[i - 1].front(), cluster.front());
    for (int64_t v : cluster) {
      ++seen[static_cast<size_t>(v)];
      EXPECT_EQ(c.membership[static_cast<size_t>(v)], static_cast<int32_t>(i));
    }
  }
  for (int64_t v = 0; v < 24; ++v) EXPECT_EQ(seen[static_cast<size_t>(v)], 1) << "node " << v;
  EXPECT_EQ(c.membership[20], c.membership[23]);  // the cold ones together
  EXPECT_EQ(c.clusters[static_cast<size_t>(c.membership[20])], (std::vector<int64_t>{20, 21, 22, 23}));
  EXPECT_GE(c.inside_mass, 0.0);
  EXPECT_LE(c.inside_mass, 1.0);
  EXPECT_NEAR(c.modularity, partition_modularity(g, c.membership), 1e-12);
}

TEST(ClusterExperts, CapSplitsLouvainCommunities) {
  const CoactivationGraph g = two_cliques();
  ClusteringOptions options;
  options.max_members = 4;
  Clustering c = cluster_experts(g, options);
  EXPECT_EQ(c.clusters, (std::vector<std::vector<int64_t>>{{0, 2, 4, 6}, {1, 3, 5, 7}}));
  EXPECT_EQ(c.communities, 2);
  EXPECT_EQ(c.split_communities, 0);
  EXPECT_GT(c.inside_mass, c.random_inside_mass);
  options.max_members = 3;
  c = cluster_experts(g, options);
  EXPECT_EQ(c.split_communities, 2);
  EXPECT_EQ(c.clusters.size(), 4u);
  for (const auto& cluster : c.clusters) EXPECT_LE(cluster.size(), 3u);
  expect_config_error([] { ClusteringOptions{0, 1.0, 0}.validate(); }, "clustering.max_members");
  expect_config_error([] { ClusteringOptions{0, 0.0, 4}.validate(); }, "clustering.resolution");
}

TEST(RandomBaseline, ExactExpectationMatchesShuffles) {
  EXPECT_NEAR(random_inside_mass({2, 2}, 4), 4.0 / 12.0, 1e-15);
  EXPECT_EQ(random_inside_mass({1, 1, 1}, 3), 0.0);
  EXPECT_EQ(random_inside_mass({5}, 5), 1.0);
  EXPECT_THROW(random_inside_mass({2, 2}, 5), InvalidArgument);

  const CoactivationGraph g = build_coactivation_graph(random_trace(3, 6, 2, 80, -1, 21));
  const std::vector<int64_t> sizes = {7, 5, 3, 2, 1};
  std::vector<int32_t> base;
  for (size_t c = 0; c < sizes.size(); ++c) base.insert(base.end(), static_cast<size_t>(sizes[c]), static_cast<int32_t>(c));
  std::mt19937_64 rng(1);
  double sum = 0;
  const int shuffles = 4000;
  for (int i = 0; i < shuffles; ++i) {
    std::shuffle(base.begin(), base.end(), rng);
    sum += inside_mass(g, base);
  }
  EXPECT_NEAR(sum / shuffles, random_inside_mass(sizes, 18), 0.005);
}

}  // namespace
}  // namespace chronos
