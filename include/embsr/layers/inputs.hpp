#pragma once
// The inputs of the dyadic relational encoder (MODEL.md 4.1) and the x_t of the fusion (MODEL.md 5):
//   op0_b = o_{t+1} of session b (the next operation, when the caller supplies it: NextOpMode::Given)
//           or the learned [NEXT] operation id (NextOpMode::Learned)                              [B]
//   xm_i  = h^f_{alias(i)} + e_{o_i}     for every micro-behavior i (positions 1..t)             [T x d]
//   xs_b  = star_b + e_{op0_b}           position 0: the star                                     [B x d]
//   xt_b  = xm_{last micro-behavior of b}                                                         [B x d]
// e = the operation embedding table [(|O| + 1) x d] (row |O| is [NEXT]); eo_i = e_{o_i} is computed
// by the caller (the operation-run GRU reads it too) and passed in. h^f [C x d] are the node states
// after the highway (or the item embeddings without the GNN), star [B x d] the last star.
//
// Two options serve the paper's Section V-D variants (model/config.hpp, use_attention_ops, encoder):
//   operations = false: no e_{o_i} and no e_{op0_b} (xm_i = h^f_{alias(i)}, xs_b = star_b). A caller
//     that wants each macro item once passes the batch seen over its macro items
//     (batch/batch.hpp, batch_over_macro_items): its "micro-behaviors" are then the macro items,
//     alias the macro alias, T = N; eo is not read (it may be empty).
//   states_per_row = true: h^f holds one row per position already (RNN-Self's GRU states, [T x d]),
//     so xm_i = h^f_i (+ e_{o_i}) and the alias is not read.
#include <cstddef>
#include <string>

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/types.hpp>
#include <embsr/batch/batch.hpp>
#include <embsr/layers/embedding.hpp>

namespace embsr {

struct InputsOptions {
  bool next_op_given = true;    // op0 = batch.next_ops (true) or next_op_id (false)
  int next_op_id = 0;           // the [NEXT] operation id (= |O|)
  bool operations = true;       // add e_{o_i} to xm and e_{op0} to xs
  bool states_per_row = false;  // hf [T x d] has one row per position (no alias)
};

namespace detail {
// Rows of hf the options expect: one per position (states_per_row) or one per node.
inline std::size_t inputs_state_rows(const BatchSizes& sizes, const InputsOptions& opt) {
  return static_cast<std::size_t>(opt.states_per_row ? sizes.num_micro : sizes.num_nodes);
}
}  // namespace detail

// batch, op_table[(O+1) x d], eo[T x d], hf[C x d] (or [T x d]), star[B x d] -> op0[B], xm[T x d], xs[B x d], xt[B x d]
template <class ExecSpace, class MemorySpace, class TableV, class EOV, class HFV, class StarV, class Op0V, class XMV,
          class XSV, class XTV>
void inputs_forward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const InputsOptions& opt,
                    const TableV& op_table, const EOV& eo, const HFV& hf, const StarV& star, const Op0V& op0,
                    const XMV& xm, const XSV& xs, const XTV& xt) {
  assert_accessible<ExecSpace, Batch<MemorySpace>, TableV, EOV, HFV, StarV, Op0V, XMV, XSV, XTV>();
  static_assert(Op0V::rank == 1, "inputs_forward: op0 is 1-D");
  const std::size_t B = static_cast<std::size_t>(batch.sizes.num_sessions),
                    T = static_cast<std::size_t>(batch.sizes.num_micro), C = detail::inputs_state_rows(batch.sizes, opt),
                    d = xm.extent(1);
  require_shape("inputs_forward", "op_table", op_table, op_table.extent(0), d);
  if (opt.operations) require_shape("inputs_forward", "eo", eo, T, d);
  require_shape("inputs_forward", "hf", hf, C, d);
  require_shape("inputs_forward", "star", star, B, d);
  require_length("inputs_forward", "op0", op0, B);
  require_shape("inputs_forward", "xm", xm, T, d);
  require_shape("inputs_forward", "xs", xs, B, d);
  require_shape("inputs_forward", "xt", xt, B, d);
  const int nB = static_cast<int>(B), nT = static_cast<int>(T), nd = static_cast<int>(d);

  // op0[b] = next_ops[b] (given) or the [NEXT] id (learned)
  const auto next_ops = batch.next_ops;
  const bool given = opt.next_op_given;
  const int next_id = opt.next_op_id;
  Kokkos::parallel_for("embsr::inputs::op0", Kokkos::RangePolicy<ExecSpace>(exec, 0, op0.extent(0)),
                       KOKKOS_LAMBDA(const int b) { op0(b) = given ? next_ops(b) : next_id; });
  // xm[i] = hf[micro_alias[i]] (hf[i] per row) + eo[i] (with operations)
  const auto alias = batch.micro_alias;
  const bool ops = opt.operations, per_row = opt.states_per_row;
  parallel_for_2d(exec, "embsr::inputs::micro", nT, nd, KOKKOS_LAMBDA(const int i, const int j) {
    xm(i, j) = hf(per_row ? i : alias(i), j) + (ops ? eo(i, j) : typename XMV::non_const_value_type(0));
  });
  // xs[b] = star[b] + op_table[op0[b]] (with operations)
  parallel_for_2d(exec, "embsr::inputs::star", nB, nd, KOKKOS_LAMBDA(const int b, const int j) {
    xs(b, j) = star(b, j) + (ops ? op_table(op0(b), j) : typename XSV::non_const_value_type(0));
  });
  // xt[b] = xm[last micro-behavior of b]
  const auto micro_offsets = batch.micro_offsets;
  parallel_for_2d(exec, "embsr::inputs::last", nB, nd,
      KOKKOS_LAMBDA(const int b, const int j) { xt(b, j) = xm(micro_offsets(b + 1) - 1, j); });
}

// Backward of inputs_forward, from dxt[B x d], dxm[T x d], dxs[B x d]:
//   xt_b = xm_{last(b)}:                dxm_{last(b)} += dxt_b   (folded into dxm, which is updated)
//   xs_b = star_b + e_{op0_b}:          dstar_b += dxs_b,  de_{op0_b} += dxs_b
//   xm_i = h^f_{alias(i)} + e_{o_i}:    deo_i += dxm_i,    dhf_{alias(i)} += dxm_i
// (without operations the e terms and their gradients are absent, and deo is not touched; with
// states_per_row, dhf_i += dxm_i row for row).
// (deo is dL/d(eo): the caller scatters it into the operation table together with the run GRU's
// share of it.) dstar [B x d], dop_table [(O+1) x d], deo [T x d], dhf [C x d] are added into.
template <class ExecSpace, class MemorySpace, class Op0V, class DXTV, class DXMV, class DXSV, class DStarV,
          class DTableV, class DEOV, class DHFV>
void inputs_backward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const InputsOptions& opt, const Op0V& op0,
                     const DXTV& dxt, const DXMV& dxm, const DXSV& dxs, const DStarV& dstar, const DTableV& dop_table,
                     const DEOV& deo, const DHFV& dhf) {
  assert_accessible<ExecSpace, Batch<MemorySpace>, Op0V, DXTV, DXMV, DXSV, DStarV, DTableV, DEOV, DHFV>();
  const std::size_t B = static_cast<std::size_t>(batch.sizes.num_sessions),
                    T = static_cast<std::size_t>(batch.sizes.num_micro), C = detail::inputs_state_rows(batch.sizes, opt),
                    d = dxm.extent(1);
  require_length("inputs_backward", "op0", op0, B);
  require_shape("inputs_backward", "dxt", dxt, B, d);
  require_shape("inputs_backward", "dxm", dxm, T, d);
  require_shape("inputs_backward", "dxs", dxs, B, d);
  require_shape("inputs_backward", "dstar", dstar, B, d);
  require_shape("inputs_backward", "dop_table", dop_table, dop_table.extent(0), d);
  if (opt.operations) require_shape("inputs_backward", "deo", deo, T, d);
  require_shape("inputs_backward", "dhf", dhf, C, d);
  const int nB = static_cast<int>(B), nT = static_cast<int>(T), nd = static_cast<int>(d);
  // dxm[last of b] += dxt[b]  (one row per session: no conflicts)
  const auto micro_offsets = batch.micro_offsets;
  parallel_for_2d(exec, "embsr::inputs::last_grad", nB, nd,
      KOKKOS_LAMBDA(const int b, const int j) { dxm(micro_offsets(b + 1) - 1, j) += dxt(b, j); });
  // dstar += dxs;  dop_table[op0] += dxs
  parallel_for_2d(exec, "embsr::inputs::star_grad", nB, nd,
      KOKKOS_LAMBDA(const int b, const int j) { dstar(b, j) += dxs(b, j); });
  if (opt.operations) {
    embedding_backward(exec, op0, dxs, dop_table);
    // deo += dxm
    parallel_for_2d(exec, "embsr::inputs::micro_grad", nT, nd,
        KOKKOS_LAMBDA(const int i, const int j) { deo(i, j) += dxm(i, j); });
  }
  // dhf[alias] += dxm (dhf += dxm row for row)
  if (opt.states_per_row)
    parallel_for_2d(exec, "embsr::inputs::row_grad", nT, nd, KOKKOS_LAMBDA(const int i, const int j) { dhf(i, j) += dxm(i, j); });
  else
    embedding_backward(exec, batch.micro_alias, dxm, dhf);
}

}  // namespace embsr
