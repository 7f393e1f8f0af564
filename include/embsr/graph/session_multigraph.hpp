#pragma once
// The session multigraph of MODEL.md section 2, built with Boost.Graph and lowered to flat
// CSR-style arrays for the kernels.
//
// Vertices 0..c-1 are the satellites u_1..u_c (same order as SessionStructure::distinct()), vertex
// c is the star. Edge e_k: v^k -> v^{k+1} for k = 0..n-2 carries k (time order); repeated
// transitions stay parallel edges. The star is linked to every satellite in both directions
// (EdgeProperty::k == kStarLink); those links exist in the Boost graph for fidelity with the
// paper but are left out of the lowered arrays, since the star never takes part in the message
// passing of section 3.2 (its update reads the session's satellites directly).

#include <cstddef>
#include <string>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/types.hpp>
#include <embsr/graph/session_structure.hpp>

namespace embsr {

inline constexpr index_t kStarLink = -1;  // EdgeProperty::k of the star <-> satellite links

struct SessionVertex {
  index_t item = -1;     // dense item id of the satellite; -1 on the star
  bool is_star = false;
};
struct SessionEdge {
  index_t k = kStarLink;  // e_k joins macro positions k -> k+1; kStarLink on star links
};

// The graph's global edge list is a vector too (EdgeListS = vecS instead of the default listS):
// edges are never removed, and clear() keeps its capacity, which saves one heap node per edge and
// makes batch building ~20% faster.
using SessionGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, SessionVertex, SessionEdge,
                                           boost::no_property, boost::vecS>;

// One session's multigraph as flat arrays, satellites only. Edge ids are the time indices k, so
// edge k's operation-run states are h~^{edge_src_macro[k]} and h~^{edge_dst_macro[k]}.
struct LoweredGraph {
  std::vector<index_t> node_items;      // [c] item of satellite i
  std::vector<index_t> edge_src;        // [n-1] source node of e_k
  std::vector<index_t> edge_dst;        // [n-1] destination node of e_k
  std::vector<index_t> edge_src_macro;  // [n-1] macro position of the source (= k)
  std::vector<index_t> edge_dst_macro;  // [n-1] macro position of the destination (= k+1)
  std::vector<index_t> in_offsets;      // [c+1] node i's in-edges are in_edges[in_offsets[i] .. in_offsets[i+1])
  std::vector<index_t> in_edges;        // [n-1] edge ids, ascending k within each node
  std::vector<index_t> out_offsets;     // [c+1]
  std::vector<index_t> out_edges;       // [n-1]

  std::size_t num_nodes() const { return node_items.size(); }
  std::size_t num_edges() const { return edge_src.size(); }
};

// Builds the Boost graph of one session at a time. Keep one builder per thread and reuse it: the
// graph object and the lowering scratch stay allocated between sessions.
class SessionMultigraphBuilder {
 public:
  using vertex_descriptor = boost::graph_traits<SessionGraph>::vertex_descriptor;

  // Clears the graph and refills it from `s` (a session with n >= 1 macro items, c >= 1).
  const SessionGraph& build(const SessionStructure& s) {
    const std::size_t c = s.num_distinct();
    const std::size_t n = s.num_macro();
    if (n == 0) throw InvalidArgument("SessionMultigraphBuilder::build: empty session");
    graph_.clear();
    for (std::size_t i = 0; i < c; ++i) boost::add_vertex(SessionVertex{s.distinct()[i], false}, graph_);
    star_ = boost::add_vertex(SessionVertex{-1, true}, graph_);
    for (std::size_t i = 0; i < c; ++i) {
      boost::add_edge(star_, i, SessionEdge{kStarLink}, graph_);
      boost::add_edge(i, star_, SessionEdge{kStarLink}, graph_);
    }
    const auto& alias = s.macro_alias();
    for (std::size_t k = 0; k + 1 < n; ++k)
      boost::add_edge(static_cast<vertex_descriptor>(alias[k]), static_cast<vertex_descriptor>(alias[k + 1]),
                      SessionEdge{static_cast<index_t>(k)}, graph_);
    return graph_;
  }

  const SessionGraph& graph() const { return graph_; }
  vertex_descriptor star() const { return star_; }

  // Lowers the current graph: reads vertices, edges and each satellite's in/out incidence from
  // the Boost graph, drops star links, and orders every incidence list by k.
  void lower(LoweredGraph& out) const {
    const std::size_t c = star_;  // satellites are 0..c-1
    std::size_t num_edges = 0;
    for (std::size_t v = 0; v < c; ++v)
      for (auto [it, end] = boost::out_edges(v, graph_); it != end; ++it)
        if (graph_[*it].k != kStarLink) ++num_edges;

    out.node_items.resize(c);
    for (std::size_t v = 0; v < c; ++v) out.node_items[v] = graph_[v].item;
    out.edge_src.assign(num_edges, -1);
    out.edge_dst.assign(num_edges, -1);
    out.edge_src_macro.resize(num_edges);
    out.edge_dst_macro.resize(num_edges);
    out.in_offsets.resize(c + 1);
    out.out_offsets.resize(c + 1);
    out.in_edges.clear();
    out.out_edges.clear();
    out.in_offsets[0] = out.out_offsets[0] = 0;

    for (std::size_t v = 0; v < c; ++v) {
      for (auto [it, end] = boost::out_edges(v, graph_); it != end; ++it) {
        const index_t k = graph_[*it].k;
        if (k == kStarLink) continue;
        check_edge_index(k, num_edges);
        out.edge_src[static_cast<std::size_t>(k)] = static_cast<index_t>(v);
        out.edge_dst[static_cast<std::size_t>(k)] = static_cast<index_t>(boost::target(*it, graph_));
        out.out_edges.push_back(k);
      }
      sort_tail(out.out_edges, static_cast<std::size_t>(out.out_offsets[v]));
      out.out_offsets[v + 1] = static_cast<index_t>(out.out_edges.size());

      for (auto [it, end] = boost::in_edges(v, graph_); it != end; ++it) {
        const index_t k = graph_[*it].k;
        if (k == kStarLink) continue;
        check_edge_index(k, num_edges);
        out.in_edges.push_back(k);
      }
      sort_tail(out.in_edges, static_cast<std::size_t>(out.in_offsets[v]));
      out.in_offsets[v + 1] = static_cast<index_t>(out.in_edges.size());
    }
    for (std::size_t k = 0; k < num_edges; ++k) {
      if (out.edge_src[k] < 0)
        throw InvalidArgument("SessionMultigraphBuilder::lower: edge indices are not 0..n-2");
      out.edge_src_macro[k] = static_cast<index_t>(k);
      out.edge_dst_macro[k] = static_cast<index_t>(k + 1);
    }
  }

  // build() then lower().
  void build_lowered(const SessionStructure& s, LoweredGraph& out) {
    build(s);
    lower(out);
  }

 private:
  static void check_edge_index(index_t k, std::size_t num_edges) {
    if (k < 0 || static_cast<std::size_t>(k) >= num_edges)
      throw InvalidArgument("SessionMultigraphBuilder::lower: edge index " + std::to_string(k) +
                            " outside [0, " + std::to_string(num_edges) + ")");
  }
  // Insertion sort of list[from..): incidence lists come out of Boost in insertion (= time)
  // order already, so this is a single pass; it only guards that order.
  static void sort_tail(std::vector<index_t>& list, std::size_t from) {
    for (std::size_t i = from + 1; i < list.size(); ++i) {
      const index_t key = list[i];
      std::size_t j = i;
      while (j > from && list[j - 1] > key) {
        list[j] = list[j - 1];
        --j;
      }
      list[j] = key;
    }
  }

  SessionGraph graph_;
  vertex_descriptor star_ = 0;
};

}  // namespace embsr
