// The session multigraph: hand examples (parallel edges, star links, a node without in-edges),
// and real JD sessions checked against the Boost graph itself and against an independent
// derivation from the raw SKU strings.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <embsr/graph/session_structure.hpp>
#include <embsr/graph/session_multigraph.hpp>

#include "jd_sample.hpp"

namespace test_session_multigraph {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

using namespace embsr;
using V = std::vector<index_t>;

namespace {

// In- or out-incidence of satellite v read straight from the Boost graph (star links skipped),
// ordered by k.
V boost_incidence(const SessionGraph& g, std::size_t v, bool in) {
  V ks;
  if (in) {
    for (auto [it, end] = boost::in_edges(v, g); it != end; ++it)
      if (g[*it].k != kStarLink) ks.push_back(g[*it].k);
  } else {
    for (auto [it, end] = boost::out_edges(v, g); it != end; ++it)
      if (g[*it].k != kStarLink) ks.push_back(g[*it].k);
  }
  std::sort(ks.begin(), ks.end());
  return ks;
}

V lowered_list(const V& offsets, const V& edges, std::size_t v) {
  return V(edges.begin() + offsets[v], edges.begin() + offsets[v + 1]);
}

// Everything the lowered arrays must say about the Boost graph they came from.
void check_lowering_matches_boost(const SessionMultigraphBuilder& builder, const LoweredGraph& low,
                                  std::size_t c, std::size_t n) {
  const SessionGraph& g = builder.graph();
  REQUIRE(boost::num_vertices(g) == c + 1);
  REQUIRE(boost::num_edges(g) == (n - 1) + 2 * c);
  REQUIRE(builder.star() == c);
  CHECK(g[builder.star()].is_star);
  REQUIRE(low.num_nodes() == c);
  REQUIRE(low.num_edges() == n - 1);
  REQUIRE(low.in_offsets.size() == c + 1);
  REQUIRE(low.out_offsets.size() == c + 1);

  // Star: linked both ways to every satellite, nothing else.
  std::vector<int> from_star(c, 0), to_star(c, 0);
  for (auto [it, end] = boost::out_edges(builder.star(), g); it != end; ++it) {
    CHECK(g[*it].k == kStarLink);
    ++from_star[boost::target(*it, g)];
  }
  for (auto [it, end] = boost::in_edges(builder.star(), g); it != end; ++it) {
    CHECK(g[*it].k == kStarLink);
    ++to_star[boost::source(*it, g)];
  }
  CHECK(from_star == std::vector<int>(c, 1));
  CHECK(to_star == std::vector<int>(c, 1));

  std::vector<int> seen(n - 1, 0);
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    const index_t k = g[*it].k;
    const auto src = boost::source(*it, g), dst = boost::target(*it, g);
    CHECK(src != dst);  // no self-loops
    if (k == kStarLink) {
      CHECK((src == builder.star()) != (dst == builder.star()));
      continue;
    }
    REQUIRE(k >= 0);
    REQUIRE(static_cast<std::size_t>(k) < n - 1);
    ++seen[static_cast<std::size_t>(k)];
    CHECK(low.edge_src[static_cast<std::size_t>(k)] == static_cast<index_t>(src));
    CHECK(low.edge_dst[static_cast<std::size_t>(k)] == static_cast<index_t>(dst));
    CHECK(low.edge_src_macro[static_cast<std::size_t>(k)] == k);
    CHECK(low.edge_dst_macro[static_cast<std::size_t>(k)] == k + 1);
  }
  CHECK(seen == std::vector<int>(n - 1, 1));
  for (std::size_t v = 0; v < c; ++v) {
    CHECK_FALSE(g[v].is_star);
    CHECK(low.node_items[v] == g[v].item);
    CHECK(lowered_list(low.in_offsets, low.in_edges, v) == boost_incidence(g, v, true));
    CHECK(lowered_list(low.out_offsets, low.out_edges, v) == boost_incidence(g, v, false));
  }
}

}  // namespace

TEST_CASE("multigraph: parallel edges, a source node and star links by hand", "[multigraph]") {
  // Micro items c a a b a b b  ->  macro c a b a b (c=30, a=10, b=20): nodes c=0, a=1, b=2.
  // Edges e0: c->a, e1: a->b, e2: b->a, e3: a->b (parallel to e1). Node c has no in-edges.
  SessionStructure s;
  s.compute(V{30, 10, 10, 20, 10, 20, 20});
  SessionMultigraphBuilder builder;
  const SessionGraph& g = builder.build(s);
  LoweredGraph low;
  builder.lower(low);

  REQUIRE(boost::num_vertices(g) == 4);
  CHECK(boost::num_edges(g) == 4 + 2 * 3);
  CHECK(g[3].is_star);
  CHECK(g[3].item == -1);
  int a_to_b = 0;
  for (auto [it, end] = boost::out_edges(1, g); it != end; ++it)
    if (boost::target(*it, g) == 2) ++a_to_b;
  CHECK(a_to_b == 2);
  CHECK(boost::in_degree(0, g) == 1);  // only the star link

  CHECK(low.node_items == V{30, 10, 20});
  CHECK(low.edge_src == V{0, 1, 2, 1});
  CHECK(low.edge_dst == V{1, 2, 1, 2});
  CHECK(low.edge_src_macro == V{0, 1, 2, 3});
  CHECK(low.edge_dst_macro == V{1, 2, 3, 4});
  CHECK(low.in_offsets == V{0, 0, 2, 4});
  CHECK(low.in_edges == V{0, 2, 1, 3});
  CHECK(low.out_offsets == V{0, 1, 3, 4});
  CHECK(low.out_edges == V{0, 1, 3, 2});
  check_lowering_matches_boost(builder, low, 3, 5);
}

TEST_CASE("multigraph: a single macro item gives one node, no edges, two star links", "[multigraph]") {
  SessionStructure s;
  s.compute(V{8, 8, 8});
  SessionMultigraphBuilder builder;
  LoweredGraph low;
  builder.build_lowered(s, low);
  CHECK(boost::num_vertices(builder.graph()) == 2);
  CHECK(boost::num_edges(builder.graph()) == 2);
  CHECK(low.node_items == V{8});
  CHECK(low.edge_src.empty());
  CHECK(low.in_offsets == V{0, 0});
  CHECK(low.out_offsets == V{0, 0});
  check_lowering_matches_boost(builder, low, 1, 1);

  s.compute(V{});
  CHECK_THROWS_AS(builder.build(s), InvalidArgument);
}

TEST_CASE("multigraph: the builder is reusable without stale state", "[multigraph]") {
  SessionStructure s;
  SessionMultigraphBuilder builder;
  LoweredGraph low;
  V long_session;
  for (index_t i = 0; i < 60; ++i) long_session.push_back(i % 9);
  s.compute(long_session);
  builder.build_lowered(s, low);
  check_lowering_matches_boost(builder, low, 9, 60);

  s.compute(V{1, 2, 1});
  builder.build_lowered(s, low);
  CHECK(low.node_items == V{1, 2});
  CHECK(low.edge_src == V{0, 1});
  CHECK(low.edge_dst == V{1, 0});
  CHECK(low.in_offsets == V{0, 1, 2});
  CHECK(low.in_edges == V{1, 0});
  CHECK(low.out_edges == V{0, 1});
  check_lowering_matches_boost(builder, low, 2, 3);
}

TEST_CASE("multigraph: real JD sessions agree with Boost and with an independent derivation", "[multigraph][data]") {
  const auto sample = embsr::test::jd_appliances_sample(300);
  REQUIRE(sample.skus.size() == 300);
  const SessionDataset data = embsr::test::to_dataset(sample);

  SessionStructure s;
  SessionMultigraphBuilder builder;
  LoweredGraph low;
  std::size_t total_edges = 0, parallel_pairs = 0, sourceless_nodes = 0;
  for (std::size_t session = 0; session < data.num_sessions(); ++session) {
    INFO("session " << session);
    const auto& skus = sample.skus[session];
    s.compute(data.session(session).items);
    builder.build_lowered(s, low);

    // Independent derivation on the raw strings: macro SKUs, distinct SKUs, expected edges.
    std::vector<std::string> macro;
    for (std::size_t i = 0; i < skus.size(); ++i)
      if (i == 0 || skus[i] != skus[i - 1]) macro.push_back(skus[i]);
    std::map<std::string, index_t> node_of;
    std::vector<std::string> nodes;
    for (const auto& sku : macro)
      if (node_of.emplace(sku, static_cast<index_t>(nodes.size())).second) nodes.push_back(sku);
    const std::size_t n = macro.size(), c = nodes.size();

    check_lowering_matches_boost(builder, low, c, n);
    for (std::size_t v = 0; v < c; ++v) CHECK(data.item_vocab.token(low.node_items[v]) == nodes[v]);
    std::map<std::pair<index_t, index_t>, int> pair_count;
    for (std::size_t k = 0; k + 1 < n; ++k) {
      const index_t src = node_of[macro[k]], dst = node_of[macro[k + 1]];
      CHECK(low.edge_src[k] == src);
      CHECK(low.edge_dst[k] == dst);
      ++pair_count[{src, dst}];
    }
    for (std::size_t v = 0; v < c; ++v) {
      V in, out;
      for (std::size_t k = 0; k + 1 < n; ++k) {
        if (node_of[macro[k + 1]] == static_cast<index_t>(v)) in.push_back(static_cast<index_t>(k));
        if (node_of[macro[k]] == static_cast<index_t>(v)) out.push_back(static_cast<index_t>(k));
      }
      CHECK(lowered_list(low.in_offsets, low.in_edges, v) == in);
      CHECK(lowered_list(low.out_offsets, low.out_edges, v) == out);
      if (in.empty()) ++sourceless_nodes;
    }
    for (const auto& [pair, count] : pair_count)
      if (count > 1) ++parallel_pairs;
    total_edges += n - 1;
  }
  // The sample really exercises the multigraph cases.
  CHECK(total_edges > 1000);
  CHECK(parallel_pairs > 10);
  CHECK(sourceless_nodes > 100);
}

}  // namespace test_session_multigraph
