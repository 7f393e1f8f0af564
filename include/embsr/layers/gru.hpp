#pragma once
// GRU over every macro item's operation run (MODEL.md 3.1), PyTorch nn.GRU convention, h_0 = 0:
//   gi = x_t W_ih^T + b_ih,  gh = h W_hh^T + b_hh   (gate blocks ordered r, z, n)
//   r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z),  n = tanh(gi_n + r * gh_n)
//   h' = (1 - z) * n + z * h
// and h~^k = the last state of the run over rows x[run_begin[k] .. run_end[k]).
//
// All runs advance step-synchronously, in the packed layout of PyTorch's PackedSequence: runs are
// sorted by length (descending, ties by run index), so the runs still active at step s are the
// first count_s of that order, and step s owns the packed rows [offset_s, offset_s + count_s)
// (offset_{s+1} = offset_s + count_s; the packed rows tile the T micro-behaviors). gi comes from
// one GEMM over all T rows; step s >= 1 costs one GEMM over its count_s active runs, whose previous
// states sit contiguously in packed order, so the whole layer costs O(T d^2), not
// O(N * max_len * d^2). The order and the offsets (the schedule) come with the batch
// (run_order / run_step_offsets of batch/batch.hpp, computed by the BatchBuilder); the per-step
// counts that size the GEMMs are read from the batch's host copy of the offsets.
//
// The GRU cell itself (the gates and the state update, forward and backward) is shared with the
// GGNN update of layers/ggnn.hpp, which uses the other convention for z (see gru_cell_state).

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

// Weights of one GRU (PyTorch layout, gate blocks ordered r, z, n):
// W_ih [3d x d_in], W_hh [3d x d], b_ih [3d], b_hh [3d]. Also used for the gradient slices.
template <class Scalar, class MemorySpace>
struct GruParams {
  MatRef<Scalar, MemorySpace> W_ih, W_hh;
  VecRef<Scalar, MemorySpace> b_ih, b_hh;
};

template <class Scalar, class MemorySpace>
struct RunGruCache {
  // The batch's schedule as the forward used it (host): step_offsets[s] = offset_s,
  // s = 0..max_len (step_offsets[max_len] = the rows the runs cover).
  std::vector<index_t> step_offsets;
  int num_runs = 0, num_rows = 0, dim = 0;
  Mat<Scalar, MemorySpace> gi;      // [T x 3d] x W_ih^T + b_ih, micro order
  Mat<Scalar, MemorySpace> gh;      // [T x 3d] h W_hh^T (+ b_hh in the n block), packed order
  Mat<Scalar, MemorySpace> gates;   // [T x 3d] r, z, n, packed order
  Mat<Scalar, MemorySpace> h_prev;  // [T x d] state entering each packed row (0 at step 0)
  // Backward workspace (grown by run_gru_backward).
  mutable Mat<Scalar, MemorySpace> d_gi;  // [T x 3d] micro order
  mutable Mat<Scalar, MemorySpace> d_gh;  // [T x 3d] packed order
  mutable Mat<Scalar, MemorySpace> d_h;   // [N x d] dL/dh of the current step, sorted order
};

// Which of the previous state h and the candidate n the update gate z keeps.
enum class GruConvention {
  Torch,  // h' = (1 - z) n + z h   (PyTorch's nn.GRU: the operation-run GRU, MODEL.md 3.1)
  Paper,  // h' = (1 - z) h + z n   (the paper's eq. 8: the GGNN update, MODEL.md 3.3)
};

namespace detail {

// ---- The GRU cell, one coordinate at a time (shared by the run GRU and the GGNN) -------------
// Gates from their pre-activations: r = sigmoid(a_r), z = sigmoid(a_z), n = tanh(gi_n + r gh_n),
// with a_r = gi_r + gh_r and a_z = gi_z + gh_z summed by the caller (each caller adds its biases
// in its own order, which fixes the rounding).
template <class S>
KOKKOS_FORCEINLINE_FUNCTION void gru_cell_gates(const S a_r, const S a_z, const S gi_n, const S gh_n, S& r, S& z, S& n) {
  r = math::sigmoid(a_r);
  z = math::sigmoid(a_z);
  n = math::tanh(gi_n + r * gh_n);
}

// The new state from z, n and the previous state h.
template <GruConvention C, class S>
KOKKOS_FORCEINLINE_FUNCTION S gru_cell_state(const S z, const S n, const S h) {
  if constexpr (C == GruConvention::Torch) return (S(1) - z) * n + z * h;
  else return (S(1) - z) * h + z * n;
}
// The same with h = 0 (the first step of a run).
template <GruConvention C, class S>
KOKKOS_FORCEINLINE_FUNCTION S gru_cell_state_from_zero(const S z, const S n) {
  if constexpr (C == GruConvention::Torch) return (S(1) - z) * n;
  else return z * n;
}

// Backward of the state update, from dy = dL/dh':  dn, dz, and dh (the direct part of dL/dh).
//   Torch: dn = dy (1 - z), dz = dy (h - n), dh = dy z;   Paper: dn = dy z, dz = dy (n - h), dh = dy (1 - z).
template <GruConvention C, class S>
KOKKOS_FORCEINLINE_FUNCTION void gru_cell_state_backward(const S dy, const S z, const S n, const S h, S& dn, S& dz,
                                                         S& dh) {
  if constexpr (C == GruConvention::Torch) {
    dn = dy * (S(1) - z);
    dz = dy * (h - n);
    dh = dy * z;
  } else {
    dn = dy * z;
    dz = dy * (n - h);
    dh = dy * (S(1) - z);
  }
}

// Backward of the gates (n~ = gi_n + r gh_n):  dn~ = dn (1 - n^2),  dr~ = dn~ gh_n r (1 - r),
// dz~ = dz z (1 - z); then dgi = [dr~, dz~, dn~] and dgh = [dr~, dz~, dn~ r].
template <class S>
KOKKOS_FORCEINLINE_FUNCTION void gru_cell_gates_backward(const S dn, const S dz, const S r, const S z, const S n,
                                                         const S gh_n, S& drt, S& dzt, S& dnt) {
  dnt = dn * (S(1) - n * n);
  drt = dnt * gh_n * r * (S(1) - r);
  dzt = dz * z * (S(1) - z);
}

// Leading [n x m] block of a matrix storage (rows of m contiguous values), from row row0.
template <class Scalar, class MemorySpace>
MatRef<Scalar, MemorySpace> gru_rows_block(const Mat<Scalar, MemorySpace>& storage, std::size_t row0, std::size_t n,
                                           std::size_t m) {
  return MatRef<Scalar, MemorySpace>(storage.data() + row0 * m, n, m);
}

// W_ih [3d x d_in], W_hh [3d x d], b_ih and b_hh [3d].
template <class Scalar, class MemorySpace>
void require_gru_params(const std::string& who, const GruParams<Scalar, MemorySpace>& p, std::size_t d_in,
                        std::size_t d) {
  require_shape(who, "W_ih", p.W_ih, 3 * d, d_in);
  require_shape(who, "W_hh", p.W_hh, 3 * d, d);
  require_length(who, "b_ih", p.b_ih, 3 * d);
  require_length(who, "b_hh", p.b_hh, 3 * d);
}

}  // namespace detail

// h_last[N x d] = final state of the GRU run over x[run_begin[k] .. run_end[k]) for each run k;
// x [T x d_in]. The batch must be valid (batch/batch_validator.hpp: runs non-empty, inside x's
// rows, and its run_order / run_step_offsets the schedule of its runs); the runs cover T rows at most.
template <class ExecSpace, class Scalar, class MemorySpace, class XV, class HV>
void run_gru_forward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const XV& x,
                     const GruParams<Scalar, MemorySpace>& p, const HV& h_last,
                     RunGruCache<Scalar, MemorySpace>& cache) {
  assert_accessible<ExecSpace, typename Batch<MemorySpace>::array_type, XV, HV, MatRef<Scalar, MemorySpace>>();
  using S = Scalar;
  using HostIdx = Kokkos::View<index_t*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  const char* who = "run_gru_forward";
  const std::size_t N = batch.run_begin.extent(0), T = x.extent(0), d_in = x.extent(1), d = p.W_hh.extent(1);
  detail::require_gru_params(who, p, d_in, d);
  require_shape(who, "h_last", h_last, N, d);
  require_length(who, "the batch's run_order", batch.run_order, N);

  // The batch's schedule, on the host: its copy, or (a Batch filled without copy_from) the View.
  const std::size_t num_offsets = batch.run_step_offsets.extent(0);
  if (batch.host_run_step_offsets.size() == num_offsets) {
    cache.step_offsets.assign(batch.host_run_step_offsets.begin(), batch.host_run_step_offsets.end());
  } else {
    cache.step_offsets.resize(num_offsets);
    Kokkos::deep_copy(HostIdx(cache.step_offsets.data(), num_offsets), batch.run_step_offsets);
  }
  if (cache.step_offsets.empty()) cache.step_offsets.assign(1, 0);  // a Batch never filled: no runs
  const std::size_t L = cache.step_offsets.size() - 1;
  const auto rows = static_cast<std::size_t>(cache.step_offsets[L]);
  require(N > 0 || rows == 0, who, "the batch's run_step_offsets has rows but there are no runs");
  require(rows <= T, who,
          "the batch's runs cover " + std::to_string(rows) + " rows but x has only " + std::to_string(T));
  cache.num_runs = static_cast<int>(N);
  cache.num_rows = static_cast<int>(rows);
  cache.dim = static_cast<int>(d);
  const auto order = batch.run_order;

  const auto gi = ensure(cache.gi, T, 3 * d, "embsr::run_gru::gi");
  ensure(cache.gh, rows, 3 * d, "embsr::run_gru::gh");
  ensure(cache.gates, rows, 3 * d, "embsr::run_gru::gates");
  ensure(cache.h_prev, rows, d, "embsr::run_gru::h_prev");
  linear_forward(exec, x, p.W_ih, p.b_ih, gi);
  if (N == 0) return;

  const auto gh = cache.gh, gates = cache.gates, h_prev = cache.h_prev;  // storage (extent(1) = 3d / d)
  const auto W_hh = p.W_hh;
  const auto b_hh = p.b_hh;
  const auto run_begin = batch.run_begin;
  const int D = static_cast<int>(d);
  for (std::size_t s = 0; s < L; ++s) {
    const int off = cache.step_offsets[s], cnt = cache.step_offsets[s + 1] - off;
    const int off_next = s + 1 < L ? cache.step_offsets[s + 1] : 0;
    const int cnt_next = s + 1 < L ? cache.step_offsets[s + 2] - cache.step_offsets[s + 1] : 0;
    const int step = static_cast<int>(s);
    if (s > 0)  // gh = h_{s-1} W_hh^T over the active runs (their states are packed rows off..off+cnt)
      gemm(exec, Trans::No, Trans::Yes, S(1),
           detail::gru_rows_block(h_prev, static_cast<std::size_t>(off), static_cast<std::size_t>(cnt), d), W_hh, S(0),
           detail::gru_rows_block(gh, static_cast<std::size_t>(off), static_cast<std::size_t>(cnt), 3 * d));
    if constexpr (host_execution_space<ExecSpace>) {
      // Host: one run per iteration over raw row pointers, so the loop over the d coordinates
      // vectorises (the step-0 and later-step cases are separate loops: no branch inside).
      Kokkos::parallel_for("embsr::run_gru::step", Kokkos::RangePolicy<ExecSpace>(exec, 0, cnt), KOKKOS_LAMBDA(const int j) {
        const int row = off + j, k = order(j), t = run_begin(k) + step;
        const S* gi_t = &gi(t, 0);
        const S* bh = &b_hh(0);
        S* g = &gates(row, 0);
        S* ghr = &gh(row, 0);
        S* hp = &h_prev(row, 0);
        S* out = j < cnt_next ? &h_prev(off_next + j, 0) : &h_last(k, 0);
        if (step == 0) {
          EMBSR_IVDEP
          for (int c = 0; c < D; ++c) {
            const S ghn = bh[2 * D + c];
            S r, z, n;
            detail::gru_cell_gates(gi_t[c] + bh[c], gi_t[D + c] + bh[D + c], gi_t[2 * D + c], ghn, r, z, n);
            g[c] = r;
            g[D + c] = z;
            g[2 * D + c] = n;
            ghr[2 * D + c] = ghn;
            hp[c] = S(0);
            out[c] = detail::gru_cell_state_from_zero<GruConvention::Torch>(z, n);
          }
        } else {
          EMBSR_IVDEP
          for (int c = 0; c < D; ++c) {
            const S ghn = ghr[2 * D + c] + bh[2 * D + c];
            S r, z, n;
            detail::gru_cell_gates(gi_t[c] + ghr[c] + bh[c], gi_t[D + c] + ghr[D + c] + bh[D + c], gi_t[2 * D + c], ghn,
                                   r, z, n);
            g[c] = r;
            g[D + c] = z;
            g[2 * D + c] = n;
            ghr[2 * D + c] = ghn;
            out[c] = detail::gru_cell_state<GruConvention::Torch>(z, n, hp[c]);
          }
        }
      });
    } else {
      parallel_for_2d(exec, "embsr::run_gru::step", cnt, D,
          KOKKOS_LAMBDA(const int j, const int c) {
            const int row = off + j, k = order(j), t = run_begin(k) + step;
            const S hp = step == 0 ? S(0) : h_prev(row, c);
            const S ghr = (step == 0 ? S(0) : gh(row, c)) + b_hh(c);
            const S ghz = (step == 0 ? S(0) : gh(row, D + c)) + b_hh(D + c);
            const S ghn = (step == 0 ? S(0) : gh(row, 2 * D + c)) + b_hh(2 * D + c);
            S r, z, n;
            detail::gru_cell_gates(gi(t, c) + ghr, gi(t, D + c) + ghz, gi(t, 2 * D + c), ghn, r, z, n);
            const S h_new = detail::gru_cell_state<GruConvention::Torch>(z, n, hp);
            gates(row, c) = r;
            gates(row, D + c) = z;
            gates(row, 2 * D + c) = n;
            gh(row, 2 * D + c) = ghn;
            if (step == 0) h_prev(row, c) = S(0);
            if (j < cnt_next) h_prev(off_next + j, c) = h_new;
            else h_last(k, c) = h_new;
          });
    }
  }
}

// Backpropagation through time, step s = max_len-1 .. 0, with dh the gradient of h_s of each
// active run (initially dh_last, entering each run at its last step):
//   dn = dh (1 - z),  dz = dh (h_{s-1} - n),  dn~ = dn (1 - n^2)  (n~ = gi_n + r gh_n)
//   dr~ = dn~ gh_n r (1 - r),  dz~ = dz z (1 - z)
//   dgi = [dr~, dz~, dn~],  dgh = [dr~, dz~, dn~ r]
//   dh_{s-1} = dh z + dgh W_hh
// and then, over all steps at once: dW_ih += dgi^T x, db_ih += sum dgi, dx += dgi W_ih,
// dW_hh += dgh^T h_prev, db_hh += sum dgh. dx may be an empty View (skipped). Adds into dx and g.
template <class ExecSpace, class Scalar, class MemorySpace, class XV, class DHV, class DXV>
void run_gru_backward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const XV& x,
                      const GruParams<Scalar, MemorySpace>& p, const RunGruCache<Scalar, MemorySpace>& cache,
                      const DHV& dh_last, const DXV& dx, const GruParams<Scalar, MemorySpace>& g) {
  assert_accessible<ExecSpace, typename Batch<MemorySpace>::array_type, XV, DHV, DXV, MatRef<Scalar, MemorySpace>>();
  using S = Scalar;
  const char* who = "run_gru_backward";
  const std::size_t N = static_cast<std::size_t>(cache.num_runs), T = x.extent(0),
                    d = static_cast<std::size_t>(cache.dim);
  const std::size_t rows = static_cast<std::size_t>(cache.num_rows);
  require(batch.run_begin.extent(0) == N && batch.run_order.extent(0) == N && rows <= T, who,
          "batch / x do not match the forward's cache");
  require_shape(who, "dh_last", dh_last, N, d);
  if (dx.extent(0) != 0) require_shape(who, "dx (empty or shaped like x)", dx, T, x.extent(1));
  const auto d_gi = ensure(cache.d_gi, T, 3 * d, "embsr::run_gru::d_gi");
  ensure(cache.d_gh, rows, 3 * d, "embsr::run_gru::d_gh");
  ensure(cache.d_h, N, d, "embsr::run_gru::d_h");
  if (N == 0) return;
  if (rows != T) Kokkos::deep_copy(exec, cache.d_gi, S(0));  // rows of x outside every run get no gradient

  const auto d_gh = cache.d_gh, d_h = cache.d_h;
  const auto gh = cache.gh, gates = cache.gates, h_prev = cache.h_prev;
  const auto order = batch.run_order;
  const auto run_begin = batch.run_begin;
  const int D = static_cast<int>(d);
  parallel_for_2d(exec, "embsr::run_gru::d_h_init", static_cast<int>(N), D,
      KOKKOS_LAMBDA(const int j, const int c) { d_h(j, c) = dh_last(order(j), c); });
  const std::size_t L = cache.step_offsets.size() - 1;
  for (std::size_t s = L; s-- > 0;) {
    const int off = cache.step_offsets[s], cnt = cache.step_offsets[s + 1] - off;
    const int step = static_cast<int>(s);
    parallel_for_2d(exec, "embsr::run_gru::step_backward", cnt, D,
        KOKKOS_LAMBDA(const int j, const int c) {
          const int row = off + j, t = run_begin(order(j)) + step;
          const S dh = d_h(j, c);
          const S r = gates(row, c), z = gates(row, D + c), n = gates(row, 2 * D + c);
          S dn, dz, dh_prev, drt, dzt, dnt;
          detail::gru_cell_state_backward<GruConvention::Torch>(dh, z, n, h_prev(row, c), dn, dz, dh_prev);
          detail::gru_cell_gates_backward(dn, dz, r, z, n, gh(row, 2 * D + c), drt, dzt, dnt);
          d_gi(t, c) = drt;
          d_gi(t, D + c) = dzt;
          d_gi(t, 2 * D + c) = dnt;
          d_gh(row, c) = drt;
          d_gh(row, D + c) = dzt;
          d_gh(row, 2 * D + c) = dnt * r;
          d_h(j, c) = dh_prev;
        });
    if (s > 0)
      gemm(exec, Trans::No, Trans::No, S(1),
           detail::gru_rows_block(d_gh, static_cast<std::size_t>(off), static_cast<std::size_t>(cnt), 3 * d), p.W_hh, S(1),
           detail::gru_rows_block(d_h, 0, static_cast<std::size_t>(cnt), d));
  }
  linear_backward(exec, x, p.W_ih, d_gi, dx, g.W_ih, g.b_ih);
  const std::size_t first =
      static_cast<std::size_t>(cache.step_offsets[std::min<std::size_t>(1, L)]);  // rows of step >= 1
  if (rows > first)
    gemm(exec, Trans::Yes, Trans::No, S(1), detail::gru_rows_block(d_gh, first, rows - first, 3 * d),
         detail::gru_rows_block(h_prev, first, rows - first, d), S(1), g.W_hh);
  add_column_sums(exec, "embsr::run_gru::d_b_hh", detail::gru_rows_block(d_gh, 0, rows, 3 * d), g.b_hh);
}

}  // namespace embsr
