#pragma once
// One gated graph layer (GGNN): EMBSR's sequential-pattern encoder (MODEL.md 3.2 + 3.3) and, with
// edge weights and without run inputs, SR-GNN's session graph layer (Wu et al., AAAI 2019, Sec.
// 3.2, eq. 1-5; docs/GRAPH_MODELS.md). For node i, with edge weights w_in(e), w_out(e) (all 1 when
// none are given) and edge inputs x = [h ; hrun] (EMBSR) or x = h (W_in, W_out of [d x d]: no run
// inputs):
//   in-edge  e (dst = i): message w_in(e)  (W_in  x[edge_src[e]] + b_in)
//   out-edge e (src = i): message w_out(e) (W_out x[edge_dst[e]] + b_out)
//   a_i = [ sum of in-messages ; sum of out-messages ]       (2d; no edges: 0, no bias)
//   gi = a_i W_ih^T + b_ih,  gh = h_i W_hh^T + b_hh,  r = sigmoid(gi_r + gh_r),
//   z = sigmoid(gi_z + gh_z),  n = tanh(gi_n + r * gh_n),  h^_i = (1 - z) * h_i + z * n
// (the paper's eq. 8; note the z convention differs from the run GRU of gru.hpp). The cell's
// arithmetic, forward and backward, is gru.hpp's (detail::gru_cell_*, GruConvention::Paper).
// Here x[edge_src[e]] = [h[edge_src[e]] ; hrun[edge_src_macro[e]]] (the run of the edge's source
// position), x[edge_dst[e]] likewise with the destination's.
//
// The messages are linear in their inputs, so each node first sums the weighted inputs of its
// in-edges (walking node_in_offsets / node_in_edges, a fixed order: deterministic, no atomics) and
// applies W_in once:  sum_e w_e (W_in x_e + b_in) = W_in (sum_e w_e x_e) + (sum_e w_e) b_in.  That
// is one GEMM over the C nodes per direction instead of one over the E edges, with no [E x d]
// message array.
//
// SR-GNN's normalised adjacency as edge weights (ggnn_normalised_edge_weights): its A has one
// entry per DISTINCT transition u -> v, divided by v's distinct in-degree (A_in) or u's distinct
// out-degree (A_out). On the multigraph an edge of multiplicity m(u, v) carries
// w_in = 1 / (m(u, v) indeg(v)) and w_out = 1 / (m(u, v) outdeg(u)), so its m copies sum to A's
// entry exactly. MKM-SR's counted graph of the micro sequence (ggnn_counted_edge_weights) also has
// self-loops, which the batch's multigraph has no edges for: per-node self weights (GgnnEdgeWeights).

#include <cstddef>
#include <string>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/gru.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

template <class Scalar, class MemorySpace>
struct GgnnParams {
  MatRef<Scalar, MemorySpace> W_in, W_out;  // [d x 2d] with run inputs (EMBSR), [d x d] without (SR-GNN)
  VecRef<Scalar, MemorySpace> b_in, b_out;  // [d]
  GruParams<Scalar, MemorySpace> cell;      // W_ih [3d x 2d], W_hh [3d x d], b_ih, b_hh [3d]
};

// Per-edge weights of the messages (SR-GNN's normalised adjacency); empty Views: every weight 1.
// self_in / self_out (MKM-SR's self-loops, which the batch's graph has no edges for): node i also
// receives self_in(i) (W_in h_i + b_in) in its in-half and self_out(i) (W_out h_i + b_out) in its
// out-half; empty: none. Self-loops need a layer without run inputs.
template <class Scalar, class MemorySpace>
struct GgnnEdgeWeights {
  Kokkos::View<const Scalar*, MemorySpace> in;        // [E] weight of edge e's message to its destination
  Kokkos::View<const Scalar*, MemorySpace> out;       // [E] weight of edge e's message to its source
  Kokkos::View<const Scalar*, MemorySpace> self_in;   // [C] weight of node i's own message, in-half
  Kokkos::View<const Scalar*, MemorySpace> self_out;  // [C] weight of node i's own message, out-half
};

template <class Scalar, class MemorySpace>
struct GgnnCache {
  int num_nodes = 0, dim = 0, input_dim = 0;  // input_dim: 2d with run inputs, d without
  Mat<Scalar, MemorySpace> s_in, s_out;  // [C x input_dim] weighted sums over in- / out-edges of the edge inputs
  Mat<Scalar, MemorySpace> m_in, m_out;  // [C x d] s_in W_in^T, s_out W_out^T
  Mat<Scalar, MemorySpace> a;            // [C x 2d] a_i
  Mat<Scalar, MemorySpace> gates;        // [C x 3d] r, z, n
  Mat<Scalar, MemorySpace> gh;           // [C x 3d] h W_hh^T + b_hh
  // Backward workspace (grown by ggnn_backward).
  mutable Mat<Scalar, MemorySpace> d_gi, d_gh;       // [C x 3d]
  mutable Mat<Scalar, MemorySpace> d_a;              // [C x 2d]
  mutable Mat<Scalar, MemorySpace> d_s_in, d_s_out;  // [C x input_dim]
};

namespace detail {

// W_in / W_out [d x 2d] (with run inputs) or [d x d] (without), b_in / b_out [d], and the cell's GRU
// weights for inputs of 2d. Returns the width of the edge inputs (2d or d).
template <class Scalar, class MemorySpace>
std::size_t require_ggnn_params(const std::string& who, const GgnnParams<Scalar, MemorySpace>& p, std::size_t d) {
  const std::size_t input_dim = p.W_in.extent(1);
  require(input_dim == d || input_dim == 2 * d, who,
          "W_in must be [d x 2d] (with run inputs) or [d x d] (without), got [" + std::to_string(p.W_in.extent(0)) + " x " +
              std::to_string(input_dim) + "] for d = " + std::to_string(d));
  require_shape(who, "W_in", p.W_in, d, input_dim);
  require_shape(who, "W_out", p.W_out, d, input_dim);
  require_length(who, "b_in", p.b_in, d);
  require_length(who, "b_out", p.b_out, d);
  require_gru_params(who, p.cell, 2 * d, d);
  return input_dim;
}

// The sum of node i's edge weights over one of its CSR lists: its degree without weights.
template <class OffV, class EdgeV, class WV>
KOKKOS_INLINE_FUNCTION typename WV::non_const_value_type ggnn_weight_sum(const OffV& off, const EdgeV& edges, const WV& w,
                                                                         const int i) {
  using S = typename WV::non_const_value_type;
  if (w.extent(0) == 0) return S(off(i + 1) - off(i));
  S sum = 0;
  for (int q = off(i); q < off(i + 1); ++q) sum += w(edges(q));
  return sum;
}

// The edge weights, checked: each View empty or one entry per edge (per node for the self-loops)
// of the batch.
template <class Scalar, class MemorySpace, class Batch_>
void require_ggnn_weights(const std::string& who, const GgnnEdgeWeights<Scalar, MemorySpace>& w, const Batch_& batch,
                          bool with_runs) {
  const std::size_t E = batch.edge_src.extent(0), C = batch.node_items.extent(0);
  if (w.in.extent(0) != 0) require_length(who, "edge weights in", w.in, E);
  if (w.out.extent(0) != 0) require_length(who, "edge weights out", w.out, E);
  if (w.self_in.extent(0) != 0) require_length(who, "self-loop weights in", w.self_in, C);
  if (w.self_out.extent(0) != 0) require_length(who, "self-loop weights out", w.self_out, C);
  require(!with_runs || (w.self_in.extent(0) == 0 && w.self_out.extent(0) == 0), who,
          "self-loop weights need a layer without run inputs (W_in [d x d])");
}

// s_c, the self-loops of node c in the micro sequence: over its session's macro positions k with
// alias(k) = c, the run length minus one.
template <class IV>
KOKKOS_INLINE_FUNCTION int ggnn_self_loops(const IV& node_session, const IV& macro_offsets, const IV& macro_alias,
                                           const IV& run_begin, const IV& run_end, const int c) {
  const int b = node_session(c);
  int loops = 0;
  for (int k = macro_offsets(b); k < macro_offsets(b + 1); ++k)
    if (macro_alias(k) == c) loops += run_end(k) - run_begin(k) - 1;
  return loops;
}

// A node's self-loop weight, 0 without self-loops.
template <class WV>
KOKKOS_INLINE_FUNCTION typename WV::non_const_value_type ggnn_self_weight(const WV& w, const int i) {
  using S = typename WV::non_const_value_type;
  return w.extent(0) == 0 ? S(0) : w(i);
}

}  // namespace detail

// SR-GNN's normalised adjacency (see the top of this file) as per-edge weights w_in, w_out [E].
// Each edge walks its destination's in-edge list and its source's out-edge list (O(degree) per
// edge; sessions are short), so the result is deterministic and needs no atomics.
template <class ExecSpace, class MemorySpace, class WV>
void ggnn_normalised_edge_weights(const ExecSpace& exec, const Batch<MemorySpace>& batch, const WV& w_in,
                                  const WV& w_out) {
  assert_accessible<ExecSpace, typename Batch<MemorySpace>::array_type, WV>();
  using S = typename WV::non_const_value_type;
  const std::size_t E = batch.edge_src.extent(0);
  require_length("ggnn_normalised_edge_weights", "w_in", w_in, E);
  require_length("ggnn_normalised_edge_weights", "w_out", w_out, E);
  const auto src = batch.edge_src, dst = batch.edge_dst;
  const auto in_off = batch.node_in_offsets, in_edges = batch.node_in_edges;
  const auto out_off = batch.node_out_offsets, out_edges = batch.node_out_edges;
  Kokkos::parallel_for(
      "embsr::ggnn::normalised_edge_weights", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(E)),
      KOKKOS_LAMBDA(const int e) {
        const int u = src(e), v = dst(e);
        // Distinct in-neighbours of v, and the copies of u -> v among its in-edges.
        int distinct = 0, copies = 0;
        for (int q = in_off(v); q < in_off(v + 1); ++q) {
          const int w = src(in_edges(q));
          bool first = true;
          for (int r = in_off(v); r < q; ++r) first = first && src(in_edges(r)) != w;
          distinct += first ? 1 : 0;
          copies += w == u ? 1 : 0;
        }
        w_in(e) = S(1) / S(copies * distinct);
        distinct = 0;
        for (int q = out_off(u); q < out_off(u + 1); ++q) {
          const int w = dst(out_edges(q));
          bool first = true;
          for (int r = out_off(u); r < q; ++r) first = first && dst(out_edges(r)) != w;
          distinct += first ? 1 : 0;
        }
        w_out(e) = S(1) / S(copies * distinct);
      });
}

// MKM-SR's adjacency (docs/GRAPH_MODELS.md, "MKM-SR"): the graph of the MICRO sequence with
// counts, self-loops included. A run of r micro-behaviors on one item adds r - 1 self-loops to its
// node (s_c in all, over the node's macro positions), and every macro edge u -> v counts once (a
// transition repeated in the session counts as often as it occurs). With indeg(v) = the in-edges
// of v + s_v and outdeg(u) = the out-edges of u + s_u:
//   w_in(e) = 1 / indeg(dst(e)),  w_out(e) = 1 / outdeg(src(e)),
//   self_in(c) = s_c / indeg(c),  self_out(c) = s_c / outdeg(c)       (0 where the degree is 0)
// w_in, w_out [E], self_in, self_out [C].
template <class ExecSpace, class MemorySpace, class WV>
void ggnn_counted_edge_weights(const ExecSpace& exec, const Batch<MemorySpace>& batch, const WV& w_in, const WV& w_out,
                               const WV& self_in, const WV& self_out) {
  assert_accessible<ExecSpace, typename Batch<MemorySpace>::array_type, WV>();
  using S = typename WV::non_const_value_type;
  const std::size_t E = batch.edge_src.extent(0), C = batch.node_items.extent(0);
  require_length("ggnn_counted_edge_weights", "w_in", w_in, E);
  require_length("ggnn_counted_edge_weights", "w_out", w_out, E);
  require_length("ggnn_counted_edge_weights", "self_in", self_in, C);
  require_length("ggnn_counted_edge_weights", "self_out", self_out, C);
  const auto src = batch.edge_src, dst = batch.edge_dst;
  const auto in_off = batch.node_in_offsets, out_off = batch.node_out_offsets;
  const auto node_session = batch.node_session, macro_offsets = batch.macro_offsets, macro_alias = batch.macro_alias;
  const auto run_begin = batch.run_begin, run_end = batch.run_end;
  Kokkos::parallel_for(
      "embsr::ggnn::counted_self_weights", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(C)),
      KOKKOS_LAMBDA(const int c) {
        const int loops = detail::ggnn_self_loops(node_session, macro_offsets, macro_alias, run_begin, run_end, c);
        const int indeg = in_off(c + 1) - in_off(c) + loops, outdeg = out_off(c + 1) - out_off(c) + loops;
        self_in(c) = indeg > 0 ? S(loops) / S(indeg) : S(0);
        self_out(c) = outdeg > 0 ? S(loops) / S(outdeg) : S(0);
      });
  Kokkos::parallel_for(
      "embsr::ggnn::counted_edge_weights", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(E)),
      KOKKOS_LAMBDA(const int e) {
        const int u = src(e), v = dst(e);
        w_in(e) = S(1) / S(in_off(v + 1) - in_off(v) +
                           detail::ggnn_self_loops(node_session, macro_offsets, macro_alias, run_begin, run_end, v));
        w_out(e) = S(1) / S(out_off(u + 1) - out_off(u) +
                            detail::ggnn_self_loops(node_session, macro_offsets, macro_alias, run_begin, run_end, u));
      });
}

// h [C x d] node states h^l, hrun [N x d] operation-run states h~ (ignored, and may be empty,
// without run inputs)  ->  h_hat [C x d] (must not alias h). `weights`: see GgnnEdgeWeights.
template <class ExecSpace, class Scalar, class MemorySpace, class HV, class RV, class OV>
void ggnn_forward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const HV& h, const RV& hrun,
                  const GgnnParams<Scalar, MemorySpace>& p, const OV& h_hat, GgnnCache<Scalar, MemorySpace>& cache,
                  const GgnnEdgeWeights<Scalar, MemorySpace>& weights = GgnnEdgeWeights<Scalar, MemorySpace>{}) {
  assert_accessible<ExecSpace, typename Batch<MemorySpace>::array_type, HV, RV, OV, MatRef<Scalar, MemorySpace>>();
  using S = Scalar;
  const char* who = "ggnn_forward";
  const std::size_t C = h.extent(0), d = h.extent(1);
  const std::size_t din = detail::require_ggnn_params(who, p, d);
  const bool with_runs = din == 2 * d;
  detail::require_ggnn_weights(who, weights, batch, with_runs);
  require_length(who, "the batch's node_in_offsets (one more than the rows of h)", batch.node_in_offsets, C + 1);
  if (with_runs) require_shape(who, "hrun", hrun, batch.run_begin.extent(0), d);
  require_shape(who, "h_hat", h_hat, C, d);
  cache.num_nodes = static_cast<int>(C);
  cache.dim = static_cast<int>(d);
  cache.input_dim = static_cast<int>(din);
  const auto s_in = ensure(cache.s_in, C, din, "embsr::ggnn::s_in");
  const auto s_out = ensure(cache.s_out, C, din, "embsr::ggnn::s_out");
  const auto m_in = ensure(cache.m_in, C, d, "embsr::ggnn::m_in");
  const auto m_out = ensure(cache.m_out, C, d, "embsr::ggnn::m_out");
  const auto a = ensure(cache.a, C, 2 * d, "embsr::ggnn::a");
  const auto gates = ensure(cache.gates, C, 3 * d, "embsr::ggnn::gates");
  const auto gh = ensure(cache.gh, C, 3 * d, "embsr::ggnn::gh");
  if (C == 0) return;

  const int nc = static_cast<int>(C), D = static_cast<int>(d), DIN = static_cast<int>(din);
  const auto in_off = batch.node_in_offsets, in_edges = batch.node_in_edges;
  const auto out_off = batch.node_out_offsets, out_edges = batch.node_out_edges;
  const auto src = batch.edge_src, dst = batch.edge_dst, src_macro = batch.edge_src_macro,
             dst_macro = batch.edge_dst_macro;
  const auto w_in = weights.in, w_out = weights.out, self_in = weights.self_in, self_out = weights.self_out;
  const bool weighted_in = w_in.extent(0) != 0, weighted_out = w_out.extent(0) != 0;
  // Weighted sums of the edge inputs, per node, in CSR order (the self-loop first; only without
  // run inputs, so x_i = h_i).
  parallel_for_2d(exec, "embsr::ggnn::sum_inputs", nc, DIN,
      KOKKOS_LAMBDA(const int i, const int c) {
        const bool node_part = c < D;
        const int cc = node_part ? c : c - D;
        S acc_in = detail::ggnn_self_weight(self_in, i) * h(i, cc), acc_out = detail::ggnn_self_weight(self_out, i) * h(i, cc);
        for (int q = in_off(i); q < in_off(i + 1); ++q) {
          const int e = in_edges(q);
          const S x = node_part ? h(src(e), cc) : hrun(src_macro(e), cc);
          acc_in += weighted_in ? w_in(e) * x : x;
        }
        for (int q = out_off(i); q < out_off(i + 1); ++q) {
          const int e = out_edges(q);
          const S x = node_part ? h(dst(e), cc) : hrun(dst_macro(e), cc);
          acc_out += weighted_out ? w_out(e) * x : x;
        }
        s_in(i, c) = acc_in;
        s_out(i, c) = acc_out;
      });
  gemm(exec, Trans::No, Trans::Yes, S(1), s_in, p.W_in, S(0), m_in);
  gemm(exec, Trans::No, Trans::Yes, S(1), s_out, p.W_out, S(0), m_out);
  const auto b_in = p.b_in, b_out = p.b_out;
  parallel_for_2d(exec, "embsr::ggnn::a", nc, 2 * D,
      KOKKOS_LAMBDA(const int i, const int c) {
        if (c < D)
          a(i, c) = m_in(i, c) + (detail::ggnn_weight_sum(in_off, in_edges, w_in, i) + detail::ggnn_self_weight(self_in, i)) * b_in(c);
        else
          a(i, c) = m_out(i, c - D) +
                    (detail::ggnn_weight_sum(out_off, out_edges, w_out, i) + detail::ggnn_self_weight(self_out, i)) * b_out(c - D);
      });
  linear_forward(exec, a, p.cell.W_ih, p.cell.b_ih, gates);  // gi, overwritten by the gates below
  linear_forward(exec, h, p.cell.W_hh, p.cell.b_hh, gh);
  parallel_for_2d(exec, "embsr::ggnn::cell", nc, D,
      KOKKOS_LAMBDA(const int i, const int c) {
        S r, z, n;
        detail::gru_cell_gates(gates(i, c) + gh(i, c), gates(i, D + c) + gh(i, D + c), gates(i, 2 * D + c),
                               gh(i, 2 * D + c), r, z, n);
        gates(i, c) = r;
        gates(i, D + c) = z;
        gates(i, 2 * D + c) = n;
        h_hat(i, c) = detail::gru_cell_state<GruConvention::Paper>(z, n, h(i, c));
      });
}

// Backward, from dh^ (notation of MODEL.md 3.2-3.3, n~ = gi_n + r gh_n):
//   dn = dh^ z,  dz = dh^ (n - h),  dh += dh^ (1 - z)
//   dn~ = dn (1 - n^2),  dr~ = dn~ gh_n r (1 - r),  dz~ = dz z (1 - z)
//   dgi = [dr~, dz~, dn~],  dgh = [dr~, dz~, dn~ r]
//   dh += dgh W_hh, dW_hh += dgh^T h, db_hh += sum dgh;  da = dgi W_ih, dW_ih += dgi^T a, db_ih += sum dgi
//   da = [da_in ; da_out]:  dW_in += da_in^T s_in,  db_in += sum_i (sum of i's in-weights) da_in(i)
//   (its self-loop weight included),
//   ds_in = da_in W_in (same for out), and every in-edge e of node i passes w_in(e) ds_in(i) to its
//   inputs: dh[edge_src[e]] += w_in(e) ds_in(i)[0:d], dhrun[edge_src_macro[e]] += w_in(e) ds_in(i)[d:2d];
//   out-edges likewise to dh[edge_dst[e]], dhrun[edge_dst_macro[e]] with w_out(e). dh gathers per
//   node over its CSR lists; dhrun in two passes over the edges (a macro position is the source of
//   at most one edge and the destination of at most one), so no atomics. A self-loop passes
//   self_in(i) ds_in(i) + self_out(i) ds_out(i) to dh(i). dh / dhrun may be empty Views (skipped;
//   dhrun is never written without run inputs).
// Adds into dh, dhrun and g.
template <class ExecSpace, class Scalar, class MemorySpace, class HV, class RV, class DOV, class DHV, class DRV>
void ggnn_backward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const HV& h, const RV& hrun,
                   const GgnnParams<Scalar, MemorySpace>& p, const GgnnCache<Scalar, MemorySpace>& cache,
                   const DOV& dh_hat, const DHV& dh, const DRV& dhrun, const GgnnParams<Scalar, MemorySpace>& g,
                   const GgnnEdgeWeights<Scalar, MemorySpace>& weights = GgnnEdgeWeights<Scalar, MemorySpace>{}) {
  assert_accessible<ExecSpace, typename Batch<MemorySpace>::array_type, HV, RV, DOV, DHV, DRV,
                    MatRef<Scalar, MemorySpace>>();
  using S = Scalar;
  const char* who = "ggnn_backward";
  const std::size_t C = h.extent(0), d = h.extent(1);
  const std::size_t din = detail::require_ggnn_params(who, p, d);
  const bool with_runs = din == 2 * d;
  detail::require_ggnn_weights(who, weights, batch, with_runs);
  require(static_cast<int>(C) == cache.num_nodes && static_cast<int>(d) == cache.dim &&
              static_cast<int>(din) == cache.input_dim && (!with_runs || hrun.extent(0) == batch.run_begin.extent(0)),
          who, "h / hrun / dh_hat do not match the forward's cache");
  require_shape(who, "dh_hat", dh_hat, C, d);
  if (dh.extent(0) != 0) require_shape(who, "dh (empty or [C x d])", dh, C, d);
  if (with_runs && dhrun.extent(0) != 0) require_shape(who, "dhrun (empty or [N x d])", dhrun, hrun.extent(0), d);
  const auto d_gi = ensure(cache.d_gi, C, 3 * d, "embsr::ggnn::d_gi");
  const auto d_gh = ensure(cache.d_gh, C, 3 * d, "embsr::ggnn::d_gh");
  const auto d_a = ensure(cache.d_a, C, 2 * d, "embsr::ggnn::d_a");
  const auto d_s_in = ensure(cache.d_s_in, C, din, "embsr::ggnn::d_s_in");
  const auto d_s_out = ensure(cache.d_s_out, C, din, "embsr::ggnn::d_s_out");
  if (C == 0) return;
  const MatRef<Scalar, MemorySpace> s_in(cache.s_in.data(), C, din), s_out(cache.s_out.data(), C, din),
      a(cache.a.data(), C, 2 * d), gates(cache.gates.data(), C, 3 * d), gh(cache.gh.data(), C, 3 * d);

  const int nc = static_cast<int>(C), D = static_cast<int>(d);
  const bool want_dh = dh.extent(0) != 0;
  parallel_for_2d(exec, "embsr::ggnn::cell_backward", nc, D,
      KOKKOS_LAMBDA(const int i, const int c) {
        const S r = gates(i, c), z = gates(i, D + c), n = gates(i, 2 * D + c);
        const S dy = dh_hat(i, c);
        S dn, dz, dh_direct, drt, dzt, dnt;
        detail::gru_cell_state_backward<GruConvention::Paper>(dy, z, n, h(i, c), dn, dz, dh_direct);
        detail::gru_cell_gates_backward(dn, dz, r, z, n, gh(i, 2 * D + c), drt, dzt, dnt);
        d_gi(i, c) = drt;
        d_gi(i, D + c) = dzt;
        d_gi(i, 2 * D + c) = dnt;
        d_gh(i, c) = drt;
        d_gh(i, D + c) = dzt;
        d_gh(i, 2 * D + c) = dnt * r;
        if (want_dh) dh(i, c) += dh_direct;
      });
  linear_backward(exec, h, p.cell.W_hh, d_gh, dh, g.cell.W_hh, g.cell.b_hh);
  gemm(exec, Trans::No, Trans::No, S(1), d_gi, p.cell.W_ih, S(0), d_a);
  linear_backward(exec, a, p.cell.W_ih, d_gi, Mat<Scalar, MemorySpace>(), g.cell.W_ih, g.cell.b_ih);

  const auto da_in = Kokkos::subview(d_a, Kokkos::ALL, Kokkos::make_pair(0, D));
  const auto da_out = Kokkos::subview(d_a, Kokkos::ALL, Kokkos::make_pair(D, 2 * D));
  gemm(exec, Trans::Yes, Trans::No, S(1), da_in, s_in, S(1), g.W_in);
  gemm(exec, Trans::Yes, Trans::No, S(1), da_out, s_out, S(1), g.W_out);
  gemm(exec, Trans::No, Trans::No, S(1), da_in, p.W_in, S(0), d_s_in);
  gemm(exec, Trans::No, Trans::No, S(1), da_out, p.W_out, S(0), d_s_out);
  const auto in_off = batch.node_in_offsets, in_edges = batch.node_in_edges;
  const auto out_off = batch.node_out_offsets, out_edges = batch.node_out_edges;
  const auto w_in = weights.in, w_out = weights.out, self_in = weights.self_in, self_out = weights.self_out;
  const bool weighted_in = w_in.extent(0) != 0, weighted_out = w_out.extent(0) != 0;
  const auto gb_in = g.b_in, gb_out = g.b_out;
  Kokkos::parallel_for(
      "embsr::ggnn::d_b_msg", Kokkos::RangePolicy<ExecSpace>(exec, 0, 2 * D), KOKKOS_LAMBDA(const int c) {
        S acc = 0;
        if (c < D)
          for (int i = 0; i < nc; ++i)
            acc += (detail::ggnn_weight_sum(in_off, in_edges, w_in, i) + detail::ggnn_self_weight(self_in, i)) * d_a(i, c);
        else
          for (int i = 0; i < nc; ++i)
            acc += (detail::ggnn_weight_sum(out_off, out_edges, w_out, i) + detail::ggnn_self_weight(self_out, i)) * d_a(i, c);
        if (c < D) gb_in(c) += acc;
        else gb_out(c - D) += acc;
      });

  const auto src = batch.edge_src, dst = batch.edge_dst, src_macro = batch.edge_src_macro,
             dst_macro = batch.edge_dst_macro;
  if (want_dh)
    // Node j is the source of its out-edges' in-messages and the destination of its in-edges'
    // out-messages.
    parallel_for_2d(exec, "embsr::ggnn::d_h_edges", nc, D,
        KOKKOS_LAMBDA(const int j, const int c) {
          S acc = detail::ggnn_self_weight(self_in, j) * d_s_in(j, c) + detail::ggnn_self_weight(self_out, j) * d_s_out(j, c);
          for (int q = out_off(j); q < out_off(j + 1); ++q) {
            const int e = out_edges(q);
            acc += weighted_in ? w_in(e) * d_s_in(dst(e), c) : d_s_in(dst(e), c);
          }
          for (int q = in_off(j); q < in_off(j + 1); ++q) {
            const int e = in_edges(q);
            acc += weighted_out ? w_out(e) * d_s_out(src(e), c) : d_s_out(src(e), c);
          }
          dh(j, c) += acc;
        });
  const int ne = static_cast<int>(batch.edge_src.extent(0));
  if (with_runs && dhrun.extent(0) != 0 && ne > 0) {
    parallel_for_2d(exec, "embsr::ggnn::d_hrun_src", ne, D,
        KOKKOS_LAMBDA(const int e, const int c) {
          dhrun(src_macro(e), c) += (weighted_in ? w_in(e) : S(1)) * d_s_in(dst(e), D + c);
        });
    parallel_for_2d(exec, "embsr::ggnn::d_hrun_dst", ne, D,
        KOKKOS_LAMBDA(const int e, const int c) {
          dhrun(dst_macro(e), c) += (weighted_out ? w_out(e) : S(1)) * d_s_out(src(e), D + c);
        });
  }
}

}  // namespace embsr
