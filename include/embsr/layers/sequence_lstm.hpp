#pragma once
// An LSTM over each session's whole sequence that keeps the state after EVERY step, optionally with
// HUP's behavior terms (Gu et al., WSDM 2020, the Behavior-LSTM; the paper's section text was not
// available to us, so the equations are those of the authors' code, github.com/guyulongcs/WSDM2020_HUP,
// HUP_code/BLSTM.py, BLSTMCell.call, with sigmoid gates where Keras defaults to hard_sigmoid).
// h_0 = c_0 = 0 for every session. With a behavior input b_t:
//   B_t = sigmoid(W_xB x_t + W_bB b_t + b_B)                       behavior gate (no recurrent term)
//   i_t = sigmoid(W_xi x_t + W_bi b_t + W_hi h_{t-1} + b_i)
//   f_t = sigmoid(W_xf x_t + W_bf b_t + W_hf h_{t-1} + b_f)
//   o_t = sigmoid(W_xo x_t + W_bo b_t + W_ho h_{t-1} + b_o)
//   g_t = tanh(W_xg x_t + W_hg h_{t-1} + b_g)                      candidate (the code's c_hat)
//   c_t = f_t * c_{t-1} + i_t * B_t * g_t
//   h_t = o_t * tanh(c_t)
// (the paper's time gate T_t, a factor of i_t * g_t like B_t, is not part of this layer: our batches
// carry no time intervals). Without a behavior input (W_b empty) there is no B_t (B_t = 1) and no
// b_t term: the standard LSTM, torch.nn.LSTM with its two biases summed into one.
//
// Gate blocks, in this order, of the rows of W_x and b and of the columns of the cache's gates:
//   with behavior      [B, i, f, o, g]   G = 5d;   W_b rows [B, i, f, o] (the first 4d),
//                                                  W_h rows [i, f, o, g] (the last 4d)
//   without behavior   [i, f, o, g]      G = 4d;   W_h rows [i, f, o, g]
// so that W_b and W_h each act on one contiguous block (torch.nn.LSTM orders i, f, g, o).
//
// Shapes: B sessions, R rows. offsets [B+1] (index_t): session b owns the rows
// [offsets[b], offsets[b+1]) (offsets[0] = 0, non-decreasing, offsets[B] = R; an empty session has
// no rows). X [R x D_in]; Bv [R x D_b] (ignored, may be empty, without behavior); W_x [G x D_in],
// W_b [4d x D_b] or empty, W_h [4d x d], b [G]; H [R x d], H[row] = the state after that row.
// X and Bv may be strided 2-D Views (column blocks) as long as each row is contiguous; dX and
// dBv must be LayoutRight (they are GEMM outputs).
//
// Work: the input projections are GEMMs over all R rows; the recurrence runs per session, one
// iteration of a RangePolicy over sessions with plain loops. Every sum runs in one fixed order and
// there are no atomics: outputs and gradients do not depend on the thread count or on the other
// sessions (beyond the GEMMs' own summation, as in layers/linear.hpp). The forward reads the
// offsets on the host once to check them.

#include <cstddef>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

template <class Scalar, class MemorySpace>
struct SequenceLstmParams {
  MatRef<Scalar, MemorySpace> W_x;  // [G x D_in]
  MatRef<Scalar, MemorySpace> W_b;  // [4d x D_b], or empty (0 x 0): no behavior terms
  MatRef<Scalar, MemorySpace> W_h;  // [4d x d]
  VecRef<Scalar, MemorySpace> b;    // [G]
  bool behavior() const { return W_b.extent(0) != 0; }
};

template <class Scalar, class MemorySpace>
struct SequenceLstmCache {
  std::vector<index_t> offsets;  // the forward's offsets, host copy [B+1] (empty: B = 0)
  int num_sessions = 0, num_rows = 0, input_dim = 0, behavior_dim = 0, dim = 0;
  bool behavior = false;
  bool valid = false;  // holds a forward pass

  MatRef<Scalar, MemorySpace> pre;     // [R x G] X W_x^T + b (+ Bv W_b^T on the first 4d columns)
  MatRef<Scalar, MemorySpace> gates;   // [R x G] activations, blocks as above
  MatRef<Scalar, MemorySpace> h_prev;  // [R x d] h entering each row (0 at a session's first row)
  MatRef<Scalar, MemorySpace> c_prev;  // [R x d] c entering each row
  MatRef<Scalar, MemorySpace> c;       // [R x d] c after each row
  MatRef<Scalar, MemorySpace> w_h_t;   // [d x 4d] W_h^T
  Mat<Scalar, MemorySpace> pre_storage, gates_storage, h_prev_storage, c_prev_storage, c_storage, w_h_t_storage, pre_b_storage;
  // Backward workspace.
  mutable Mat<Scalar, MemorySpace> d_pre;             // [R x G] dL/d(pre-activations)
  mutable Mat<Scalar, MemorySpace> carry_h, carry_c;  // [B x d]
};

namespace detail {

template <class S, class M>
void require_lstm_params(const std::string& who, const SequenceLstmParams<S, M>& p, std::size_t d_in, std::size_t d_b,
                         std::size_t d) {
  const bool beh = p.behavior();
  const std::size_t G = (beh ? 5 : 4) * d;
  require_shape(who, "W_x", p.W_x, G, d_in);
  require_shape(who, "W_h", p.W_h, 4 * d, d);
  require_length(who, "b", p.b, G);
  if (beh) require_shape(who, "W_b", p.W_b, 4 * d, d_b);
  else require(p.W_b.extent(1) == 0, who, "W_b has 0 rows but " + std::to_string(p.W_b.extent(1)) + " columns");
}

template <class OV>
void sequence_lstm_read_offsets(const std::string& who, const OV& offsets, std::size_t R, std::vector<index_t>& out) {
  const std::size_t n = offsets.extent(0);
  out.resize(n);
  if (n == 0) {
    require(R == 0, who, "offsets is empty (no sessions) but X has " + std::to_string(R) + " rows");
    return;
  }
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), offsets);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<index_t>(host(i));
  require(out[0] == 0, who, "offsets[0] is " + std::to_string(out[0]) + ", expected 0");
  for (std::size_t b = 0; b + 1 < n; ++b)
    require(out[b] <= out[b + 1], who, "offsets decrease at session " + std::to_string(b));
  require(static_cast<std::size_t>(out[n - 1]) == R, who,
          "offsets end at " + std::to_string(out[n - 1]) + " but X has " + std::to_string(R) + " rows");
}

}  // namespace detail

// X [R x D_in], Bv [R x D_b] -> H [R x d] (overwritten); fills `cache` for the backward.
template <class ExecSpace, class Scalar, class MemorySpace, class OV, class XV, class BV, class HV>
void sequence_lstm_forward(const ExecSpace& exec, const OV& offsets, const XV& X, const BV& Bv,
                           const SequenceLstmParams<Scalar, MemorySpace>& p, const HV& H,
                           SequenceLstmCache<Scalar, MemorySpace>& cache) {
  assert_accessible<ExecSpace, OV, XV, BV, HV, MatRef<Scalar, MemorySpace>>();
  static_assert(OV::rank == 1 && XV::rank == 2 && BV::rank == 2 && HV::rank == 2,
                "sequence_lstm_forward: offsets 1-D, X, Bv and H 2-D");
  using S = Scalar;
  const char* who = "sequence_lstm_forward";
  const std::size_t R = X.extent(0), d_in = X.extent(1), d = p.W_h.extent(1);
  const bool beh = p.behavior();
  const std::size_t d_b = beh ? Bv.extent(1) : 0, G = (beh ? 5 : 4) * d;
  cache.valid = false;
  detail::require_lstm_params(who, p, d_in, d_b, d);
  if (beh) require_shape(who, "Bv", Bv, R, d_b);
  require_shape(who, "H", H, R, d);
  detail::sequence_lstm_read_offsets(who, offsets, R, cache.offsets);
  const std::size_t B = cache.offsets.empty() ? 0 : cache.offsets.size() - 1;
  cache.num_sessions = static_cast<int>(B);
  cache.num_rows = static_cast<int>(R);
  cache.input_dim = static_cast<int>(d_in);
  cache.behavior_dim = static_cast<int>(d_b);
  cache.dim = static_cast<int>(d);
  cache.behavior = beh;
  cache.pre = ensure(cache.pre_storage, R, G, "embsr::sequence_lstm::pre");
  cache.gates = ensure(cache.gates_storage, R, G, "embsr::sequence_lstm::gates");
  cache.h_prev = ensure(cache.h_prev_storage, R, d, "embsr::sequence_lstm::h_prev");
  cache.c_prev = ensure(cache.c_prev_storage, R, d, "embsr::sequence_lstm::c_prev");
  cache.c = ensure(cache.c_storage, R, d, "embsr::sequence_lstm::c");
  cache.w_h_t = ensure(cache.w_h_t_storage, d, 4 * d, "embsr::sequence_lstm::w_h_t");
  cache.valid = true;
  if (R == 0 || d == 0) return;

  const auto pre = cache.pre, gates = cache.gates, h_prev = cache.h_prev, c_prev = cache.c_prev, cc = cache.c;
  const auto wt = cache.w_h_t;
  const auto W_h = p.W_h;
  const int D = static_cast<int>(d), nB = static_cast<int>(B), off = beh ? D : 0;
  linear_forward(exec, X, p.W_x, p.b, pre);  // one GEMM over all rows
  if (beh && d_b > 0) {
    const auto pre_b = ensure(cache.pre_b_storage, R, 4 * d, "embsr::sequence_lstm::pre_b");
    gemm(exec, Trans::No, Trans::Yes, S(1), Bv, p.W_b, S(0), pre_b);
    parallel_for_2d(exec, "embsr::sequence_lstm::add_behavior", R, 4 * d,
                    KOKKOS_LAMBDA(const int r, const int k) { pre(r, k) += pre_b(r, k); });
  }
  parallel_for_2d(exec, "embsr::sequence_lstm::transpose", d, 4 * d,
                  KOKKOS_LAMBDA(const int q, const int k) { wt(q, k) = W_h(k, q); });

  // Per row: the recurrent blocks start from pre and add h_prev[q] W_h^T[q][k] for q in order
  // (skipped at a session's first row, h_prev = 0), then the activations and the new c, h.
  Kokkos::parallel_for(
      "embsr::sequence_lstm::forward", Kokkos::RangePolicy<ExecSpace, Kokkos::Schedule<Kokkos::Dynamic>>(exec, 0, nB),
      KOKKOS_LAMBDA(const int b) {
        const int begin = offsets(b), end = offsets(b + 1);
        for (int row = begin; row < end; ++row) {
          if (row == begin)
            for (int c = 0; c < D; ++c) h_prev(row, c) = c_prev(row, c) = S(0);
          for (int k = 0; k < off + 4 * D; ++k) gates(row, k) = pre(row, k);
          if (row != begin)
            for (int q = 0; q < D; ++q) {
              const S hq = h_prev(row, q);
              for (int k = 0; k < 4 * D; ++k) gates(row, off + k) += hq * wt(q, k);
            }
          for (int c = 0; c < D; ++c) {
            const S bg = off ? math::sigmoid(gates(row, c)) : S(1);
            const S i = math::sigmoid(gates(row, off + c));
            const S f = math::sigmoid(gates(row, off + D + c));
            const S o = math::sigmoid(gates(row, off + 2 * D + c));
            const S g = math::tanh(gates(row, off + 3 * D + c));
            if (off) gates(row, c) = bg;
            gates(row, off + c) = i;
            gates(row, off + D + c) = f;
            gates(row, off + 2 * D + c) = o;
            gates(row, off + 3 * D + c) = g;
            const S cn = f * c_prev(row, c) + i * bg * g;
            const S h = o * math::tanh(cn);
            cc(row, c) = cn;
            H(row, c) = h;
            if (row + 1 < end) {
              h_prev(row + 1, c) = h;
              c_prev(row + 1, c) = cn;
            }
          }
        }
      });
}

// dH [R x d] -> dX [R x D_in] and dBv [R x D_b] (added; either may be an empty View: not needed)
// and the parameter gradients `grads` (added). Backpropagation through time per session, rows
// from last to first, carries dh~ = dL/dh_prev and dc~ = dL/dc_prev of the later row (0 after the
// session's last row):
//   dh = dH[row] + dh~,  tc = tanh(c),  dc = dc~ + dh o (1 - tc^2)
//   do = dh tc,  di = dc B g,  dg = dc i B,  dB = dc i g,  df = dc c_prev,  dc~ <- dc f
//   dPRE[row] = [dB B(1-B),] di i(1-i), df f(1-f), do o(1-o), dg (1-g^2)
//   dh~ <- dPRE[row][recurrent blocks] W_h   (sum over the 4d gate rows in order; skipped at the first row)
// then over all rows at once: dW_x += dPRE^T X, db += sum dPRE, dX += dPRE W_x,
// dW_b += dPRE[:, :4d]^T Bv, dBv += dPRE[:, :4d] W_b, dW_h += dPRE[:, rec]^T H_prev.
template <class ExecSpace, class Scalar, class MemorySpace, class OV, class XV, class BV, class DHV, class DXV, class DBV>
void sequence_lstm_backward(const ExecSpace& exec, const OV& offsets, const XV& X, const BV& Bv,
                            const SequenceLstmParams<Scalar, MemorySpace>& p,
                            const SequenceLstmCache<Scalar, MemorySpace>& cache, const DHV& dH, const DXV& dX,
                            const DBV& dBv, const SequenceLstmParams<Scalar, MemorySpace>& grads) {
  assert_accessible<ExecSpace, OV, XV, BV, DHV, DXV, DBV, MatRef<Scalar, MemorySpace>>();
  static_assert(OV::rank == 1 && XV::rank == 2 && BV::rank == 2 && DHV::rank == 2 && DXV::rank == 2 && DBV::rank == 2,
                "sequence_lstm_backward: offsets 1-D, the matrices 2-D");
  using S = Scalar;
  const std::string who = "sequence_lstm_backward";
  require(cache.valid, who, "the cache does not hold a forward pass");
  const std::size_t R = static_cast<std::size_t>(cache.num_rows), d_in = static_cast<std::size_t>(cache.input_dim),
                    d_b = static_cast<std::size_t>(cache.behavior_dim), d = static_cast<std::size_t>(cache.dim),
                    B = static_cast<std::size_t>(cache.num_sessions);
  const bool beh = cache.behavior;
  const std::size_t G = (beh ? 5 : 4) * d;
  require(offsets.extent(0) == cache.offsets.size(), who, "offsets differ in length from the forward's");
  require(p.behavior() == beh && grads.behavior() == beh, who, "the parameters' behavior terms differ from the forward's");
  require_shape(who, "X (the forward's)", X, R, d_in);
  if (beh) require_shape(who, "Bv (the forward's)", Bv, R, d_b);
  detail::require_lstm_params(who, p, d_in, d_b, d);
  detail::require_lstm_params(who + " (gradients)", grads, d_in, d_b, d);
  require_shape(who, "dH", dH, R, d);
  if (dX.extent(0) != 0 || dX.extent(1) != 0) require_shape(who, "dX (empty or shaped like X)", dX, R, d_in);
  const bool want_dbv = beh && (dBv.extent(0) != 0 || dBv.extent(1) != 0);
  if (want_dbv) require_shape(who, "dBv (empty or shaped like Bv)", dBv, R, d_b);
  const auto d_pre = ensure(cache.d_pre, R, G, "embsr::sequence_lstm::d_pre");
  const auto ch = ensure(cache.carry_h, B, d, "embsr::sequence_lstm::carry_h");
  const auto cc = ensure(cache.carry_c, B, d, "embsr::sequence_lstm::carry_c");
  if (R == 0 || d == 0) return;

  const auto gates = cache.gates, h_prev = cache.h_prev, c_prev = cache.c_prev, c_after = cache.c;
  const auto W_h = p.W_h;
  const int D = static_cast<int>(d), nB = static_cast<int>(B), off = beh ? D : 0;
  Kokkos::parallel_for(
      "embsr::sequence_lstm::backward", Kokkos::RangePolicy<ExecSpace, Kokkos::Schedule<Kokkos::Dynamic>>(exec, 0, nB),
      KOKKOS_LAMBDA(const int b) {
        const int begin = offsets(b), end = offsets(b + 1);
        if (end == begin) return;
        for (int c = 0; c < D; ++c) ch(b, c) = cc(b, c) = S(0);
        for (int row = end - 1; row >= begin; --row) {
          for (int c = 0; c < D; ++c) {
            const S bg = off ? gates(row, c) : S(1);
            const S i = gates(row, off + c), f = gates(row, off + D + c), o = gates(row, off + 2 * D + c),
                    g = gates(row, off + 3 * D + c);
            const S dh = dH(row, c) + ch(b, c);
            const S tc = math::tanh(c_after(row, c));
            const S dc = cc(b, c) + dh * o * (S(1) - tc * tc);
            if (off) d_pre(row, c) = dc * i * g * bg * (S(1) - bg);
            d_pre(row, off + c) = dc * bg * g * i * (S(1) - i);
            d_pre(row, off + D + c) = dc * c_prev(row, c) * f * (S(1) - f);
            d_pre(row, off + 2 * D + c) = dh * tc * o * (S(1) - o);
            d_pre(row, off + 3 * D + c) = dc * i * bg * (S(1) - g * g);
            cc(b, c) = dc * f;
          }
          if (row == begin) break;
          for (int q = 0; q < D; ++q) ch(b, q) = S(0);
          for (int k = 0; k < 4 * D; ++k) {
            const S v = d_pre(row, off + k);
            for (int q = 0; q < D; ++q) ch(b, q) += v * W_h(k, q);
          }
        }
      });

  // The dense parts, over all rows (fixed order).
  linear_backward(exec, X, p.W_x, d_pre, dX, grads.W_x, grads.b);
  const auto d_rec = Kokkos::subview(d_pre, Kokkos::ALL, Kokkos::make_pair(static_cast<std::size_t>(off), G));
  gemm(exec, Trans::Yes, Trans::No, S(1), d_rec, h_prev, S(1), grads.W_h);
  if (beh && d_b > 0) {
    const auto d_beh = Kokkos::subview(d_pre, Kokkos::ALL, Kokkos::make_pair(std::size_t(0), 4 * d));
    gemm(exec, Trans::Yes, Trans::No, S(1), d_beh, Bv, S(1), grads.W_b);
    if (want_dbv) gemm(exec, Trans::No, Trans::No, S(1), d_beh, p.W_b, S(1), dBv);
  }
}

}  // namespace embsr
