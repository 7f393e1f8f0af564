#pragma once
// GC-SAN's self-attention block (Xu et al., "Graph Contextualized Self-Attention Network for
// Session-based Recommendation", IJCAI 2019, Sec. 3.3; the contract is docs/GRAPH_MODELS.md,
// section 3). It runs per session over segments of rows: X [R x d] holds the rows of all sessions
// back to back, session b owning rows [offsets(b), offsets(b+1)) (e.g. a Batch's macro_offsets).
// For session b, with its n = n_b rows X_b [n x d]:
//
//   Q = X_b W_Q^T,  K = X_b W_K^T,  V = X_b W_V^T        single head, no biases
//   A = Q K^T / sqrt(d),  P = softmax over each row of A  full attention over the n rows, no mask
//   F = P V
//   Y_b = relu(F W_1^T + b_1) W_2^T + b_2 + F             point-wise FFN with the residual on F
//
// Shapes: offsets [B+1] (index_t; offsets(0) = 0, non-decreasing, offsets(B) = R); X, Y [R x d];
//   W_Q, W_K, W_V, W_1, W_2 [d x d] (stored [out x in], as layers/linear.hpp), b_1, b_2 [d].
//   Y must not overlap X (a model stacks blocks with separate buffers). An empty session owns no
//   rows and is skipped; an empty batch (B = 0, R = 0) computes nothing and adds no gradient.
//
// The Q / K / V / FFN maps are GEMMs over all R rows (core/gemm.hpp). The per-session attention
// runs one thread per row (scores, softmax) or per (row, column) (P V and the backward), each
// looping over its session's rows in order: no atomics, and no result depends on the thread count
// or on the other sessions of the batch.
//
// P is stored, not recomputed: one flat block of n_b^2 values per session (row-major [n_b x n_b]),
// session b's at [score_offsets(b), score_offsets(b+1)), the offsets an exclusive scan of n_b^2
// over the sessions. The forward checks `offsets` and sizes that block with two small host
// round trips (a parallel_reduce counting malformed offsets, then the parallel_scan whose total is
// sum_b n_b^2); nothing else needs the host maximum of n_b (there is no team scratch), so it is
// neither an argument nor computed.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

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
struct SelfAttentionBlockParams {
  MatRef<Scalar, MemorySpace> W_Q;  // [d x d]  query map, no bias
  MatRef<Scalar, MemorySpace> W_K;  // [d x d]  key map, no bias
  MatRef<Scalar, MemorySpace> W_V;  // [d x d]  value map, no bias
  MatRef<Scalar, MemorySpace> W_1;  // [d x d]  FFN, first layer
  VecRef<Scalar, MemorySpace> b_1;  // [d]
  MatRef<Scalar, MemorySpace> W_2;  // [d x d]  FFN, second layer
  VecRef<Scalar, MemorySpace> b_2;  // [d]
};

template <class Scalar, class MemorySpace>
struct SelfAttentionBlockCache {
  // The forward pass held (num_rows = -1: none yet); the backward checks its arguments against it.
  int num_rows = -1, num_sessions = -1, dim = -1;
  std::size_t num_scores = 0;  // sum_b n_b^2

  Kokkos::View<index_t*, MemorySpace> row_session;         // [R]    session b of each row
  Kokkos::View<std::int64_t*, MemorySpace> score_offsets;  // [B+1]  session b's P block
  MatRef<Scalar, MemorySpace> Q, K, V;                     // [R x d] X W_Q^T, X W_K^T, X W_V^T
  VecRef<Scalar, MemorySpace> P;                           // [sum n_b^2] softmax rows, per session [n_b x n_b]
  MatRef<Scalar, MemorySpace> F;                           // [R x d] P V
  MatRef<Scalar, MemorySpace> pre;                         // [R x d] F W_1^T + b_1 (FFN pre-activation)
  MatRef<Scalar, MemorySpace> hidden;                      // [R x d] relu(pre)

  Kokkos::View<index_t*, MemorySpace> row_session_storage;
  Kokkos::View<std::int64_t*, MemorySpace> score_offsets_storage;
  Mat<Scalar, MemorySpace> Q_storage, K_storage, V_storage, F_storage, pre_storage, hidden_storage;
  Vec<Scalar, MemorySpace> P_storage;
  // Backward scratch.
  mutable Mat<Scalar, MemorySpace> grad_F, grad_pre, grad_Q, grad_K, grad_V;  // [R x d]
  mutable Vec<Scalar, MemorySpace> grad_scores;                                // [sum n_b^2] dA / sqrt(d)
};

namespace detail {

template <class S, class M>
void self_attention_block_check(const std::string& who, const char* what, const SelfAttentionBlockParams<S, M>& p,
                                std::size_t d) {
  const std::string w = who + (what[0] != '\0' ? std::string(" (") + what + ")" : std::string());
  require_shape(w, "W_Q", p.W_Q, d, d);
  require_shape(w, "W_K", p.W_K, d, d);
  require_shape(w, "W_V", p.W_V, d, d);
  require_shape(w, "W_1", p.W_1, d, d);
  require_length(w, "b_1", p.b_1, d);
  require_shape(w, "W_2", p.W_2, d, d);
  require_length(w, "b_2", p.b_2, d);
}

}  // namespace detail

// X [R x d] -> Y [R x d]; fills `cache` with what the backward needs.
template <class ExecSpace, class Scalar, class MemorySpace, class OV, class XV, class YV>
void self_attention_block_forward(const ExecSpace& exec, const OV& offsets, const XV& X,
                                  const SelfAttentionBlockParams<Scalar, MemorySpace>& p, const YV& Y,
                                  SelfAttentionBlockCache<Scalar, MemorySpace>& cache) {
  assert_accessible<ExecSpace, OV, XV, YV, MatRef<Scalar, MemorySpace>>();
  static_assert(OV::rank == 1, "self_attention_block_forward: offsets must be a rank-1 View");
  using S = Scalar;
  const char* who = "self_attention_block_forward";
  require(offsets.extent(0) >= 1, who, "offsets is [0], expected [B+1] with B >= 0");
  const std::size_t B = offsets.extent(0) - 1, R = X.extent(0), d = X.extent(1);
  require_shape(who, "Y", Y, R, d);
  detail::self_attention_block_check(who, "", p, d);
  require(!views_overlap(X, Y), who, "Y overlaps X (the block needs separate buffers)");

  const int nB = static_cast<int>(B), nR = static_cast<int>(R);
  // offsets(0) = 0, offsets(B) = R, non-decreasing (one host round trip).
  int bad = 0;
  Kokkos::parallel_reduce(
      "embsr::self_attention_block::check_offsets", Kokkos::RangePolicy<ExecSpace>(exec, 0, nB + 1),
      KOKKOS_LAMBDA(const int b, int& count) {
        if (b == 0 && offsets(0) != 0) ++count;
        if (b == nB && offsets(nB) != nR) ++count;
        if (b < nB && offsets(b + 1) < offsets(b)) ++count;
      },
      bad);
  require(bad == 0, who,
          "offsets must start at 0, be non-decreasing and end at the " + std::to_string(R) + " rows of X");

  cache.row_session = ensure_prefix(cache.row_session_storage, R, "embsr::self_attention_block::row_session");
  cache.score_offsets =
      ensure_prefix(cache.score_offsets_storage, B + 1, "embsr::self_attention_block::score_offsets");
  // score_offsets: exclusive scan of n_b^2; the total sizes P (a second host round trip).
  const auto score_offsets = cache.score_offsets;
  std::int64_t total = 0;
  if (B > 0) {
    Kokkos::parallel_scan(
        "embsr::self_attention_block::score_offsets", Kokkos::RangePolicy<ExecSpace>(exec, 0, nB),
        KOKKOS_LAMBDA(const int b, std::int64_t& partial, const bool final) {
          const std::int64_t n = offsets(b + 1) - offsets(b);
          if (final) score_offsets(b) = partial;
          partial += n * n;
          if (final && b == nB - 1) score_offsets(nB) = partial;
        },
        total);
  }
  const std::size_t num_scores = static_cast<std::size_t>(total);
  cache.Q = ensure(cache.Q_storage, R, d, "embsr::self_attention_block::Q");
  cache.K = ensure(cache.K_storage, R, d, "embsr::self_attention_block::K");
  cache.V = ensure(cache.V_storage, R, d, "embsr::self_attention_block::V");
  cache.P = ensure(cache.P_storage, num_scores, "embsr::self_attention_block::P");
  cache.F = ensure(cache.F_storage, R, d, "embsr::self_attention_block::F");
  cache.pre = ensure(cache.pre_storage, R, d, "embsr::self_attention_block::pre");
  cache.hidden = ensure(cache.hidden_storage, R, d, "embsr::self_attention_block::hidden");
  cache.num_rows = nR;
  cache.num_sessions = nB;
  cache.dim = static_cast<int>(d);
  cache.num_scores = num_scores;
  if (R == 0 || d == 0) return;

  const auto row_session = cache.row_session;
  const auto Q = cache.Q, K = cache.K, V = cache.V, F = cache.F, pre = cache.pre, hidden = cache.hidden;
  const auto P = cache.P;
  const int nd = static_cast<int>(d);
  const S scale = S(1) / static_cast<S>(std::sqrt(static_cast<double>(d)));

  Kokkos::parallel_for(
      "embsr::self_attention_block::row_session", Kokkos::RangePolicy<ExecSpace>(exec, 0, nB), KOKKOS_LAMBDA(const int b) {
        for (int i = offsets(b); i < offsets(b + 1); ++i) row_session(i) = b;
      });
  const VecRef<S, MemorySpace> none;
  linear_forward(exec, X, p.W_Q, none, Q);
  linear_forward(exec, X, p.W_K, none, K);
  linear_forward(exec, X, p.W_V, none, V);
  // P row i: softmax_j (Q_i . K_j / sqrt(d)) over the session's rows j, max-shifted.
  Kokkos::parallel_for(
      "embsr::self_attention_block::softmax", Kokkos::RangePolicy<ExecSpace>(exec, 0, nR), KOKKOS_LAMBDA(const int i) {
        const int b = row_session(i), s = offsets(b), n = offsets(b + 1) - s;
        const std::int64_t base = score_offsets(b) + static_cast<std::int64_t>(i - s) * n;
        S mx = S(0);
        for (int j = 0; j < n; ++j) {
          S a = 0;
          for (int c = 0; c < nd; ++c) a += Q(i, c) * K(s + j, c);
          a *= scale;
          P(base + j) = a;
          mx = j == 0 ? a : math::max(mx, a);
        }
        S sum = 0;
        for (int j = 0; j < n; ++j) {
          const S e = math::exp(P(base + j) - mx);
          P(base + j) = e;
          sum += e;
        }
        const S inv = S(1) / sum;
        for (int j = 0; j < n; ++j) P(base + j) *= inv;
      });
  // F = P V, per session.
  parallel_for_2d(exec, "embsr::self_attention_block::attend", R, d, KOKKOS_LAMBDA(const int i, const int c) {
    const int b = row_session(i), s = offsets(b), n = offsets(b + 1) - s;
    const std::int64_t base = score_offsets(b) + static_cast<std::int64_t>(i - s) * n;
    S acc = 0;
    for (int j = 0; j < n; ++j) acc += P(base + j) * V(s + j, c);
    F(i, c) = acc;
  });
  // Y = relu(F W_1^T + b_1) W_2^T + b_2 + F.
  linear_forward(exec, F, p.W_1, p.b_1, pre);
  parallel_for_2d(exec, "embsr::self_attention_block::relu", R, d, KOKKOS_LAMBDA(const int i, const int c) {
    const S x = pre(i, c);
    hidden(i, c) = x > S(0) ? x : S(0);
  });
  linear_forward(exec, hidden, p.W_2, p.b_2, Y);
  parallel_for_2d(exec, "embsr::self_attention_block::residual", R, d,
                  KOKKOS_LAMBDA(const int i, const int c) { Y(i, c) += F(i, c); });
}

// dY [R x d] -> dX [R x d] (add; an empty View: not needed), grads (add). Per session, with
// H = relu(pre), pre = F W_1^T + b_1, A = Q K^T / sqrt(d), P = softmax_rows(A), F = P V:
//   Y = H W_2^T + b_2 + F:   dW_2 += dY^T H,  db_2 += sum_i dY_i,  dH = dY W_2,  dF = dY (residual)
//   H = relu(pre):            dpre = dH * [pre > 0]
//   pre = F W_1^T + b_1:      dW_1 += dpre^T F,  db_1 += sum_i dpre_i,  dF += dpre W_1
//   F = P V:                  dP = dF V^T (within the session),  dV = P^T dF
//   P = softmax_rows(A):      dA_ij = P_ij (dP_ij - sum_k dP_ik P_ik)
//   A = Q K^T / sqrt(d):      dQ = dA K / sqrt(d),  dK = dA^T Q / sqrt(d)
//   Q, K, V = X W_*^T:        dW_Q += dQ^T X, dW_K += dK^T X, dW_V += dV^T X,
//                             dX += dQ W_Q + dK W_K + dV W_V
// dA / sqrt(d) is built one thread per row i (its row of dP, then the row sum); dQ, dK and dV one
// thread per (row, column), each summing over its session's rows in order.
template <class ExecSpace, class Scalar, class MemorySpace, class OV, class XV, class DYV, class DXV>
void self_attention_block_backward(const ExecSpace& exec, const OV& offsets, const XV& X,
                                   const SelfAttentionBlockParams<Scalar, MemorySpace>& p,
                                   const SelfAttentionBlockCache<Scalar, MemorySpace>& cache, const DYV& dY,
                                   const DXV& dX, const SelfAttentionBlockParams<Scalar, MemorySpace>& grads) {
  assert_accessible<ExecSpace, OV, XV, DYV, DXV, MatRef<Scalar, MemorySpace>>();
  static_assert(OV::rank == 1, "self_attention_block_backward: offsets must be a rank-1 View");
  using S = Scalar;
  const char* who = "self_attention_block_backward";
  require(offsets.extent(0) >= 1, who, "offsets is [0], expected [B+1] with B >= 0");
  const std::size_t B = offsets.extent(0) - 1, R = X.extent(0), d = X.extent(1);
  require_shape(who, "dY", dY, R, d);
  if (dX.extent(0) != 0) require_shape(who, "dX (empty or [R x d])", dX, R, d);
  detail::self_attention_block_check(who, "", p, d);
  detail::self_attention_block_check(who, "gradients", grads, d);
  require(cache.num_rows == static_cast<int>(R) && cache.num_sessions == static_cast<int>(B) &&
              cache.dim == static_cast<int>(d),
          who, "the cache does not hold a forward pass of these offsets and X");
  const auto dF = ensure(cache.grad_F, R, d, "embsr::self_attention_block::grad_F");
  const auto dpre = ensure(cache.grad_pre, R, d, "embsr::self_attention_block::grad_pre");
  const auto dQ = ensure(cache.grad_Q, R, d, "embsr::self_attention_block::grad_Q");
  const auto dK = ensure(cache.grad_K, R, d, "embsr::self_attention_block::grad_K");
  const auto dV = ensure(cache.grad_V, R, d, "embsr::self_attention_block::grad_V");
  const auto dS = ensure(cache.grad_scores, cache.num_scores, "embsr::self_attention_block::grad_scores");
  if (R == 0 || d == 0) return;

  const auto row_session = cache.row_session;
  const auto score_offsets = cache.score_offsets;
  const auto Q = cache.Q, K = cache.K, V = cache.V, F = cache.F, pre = cache.pre, hidden = cache.hidden;
  const auto P = cache.P;
  const int nR = static_cast<int>(R), nd = static_cast<int>(d);
  const S scale = S(1) / static_cast<S>(std::sqrt(static_cast<double>(d)));
  const MatRef<S, MemorySpace> no_dx;
  const VecRef<S, MemorySpace> no_db;

  // Second FFN layer: dW_2, db_2, dH = dY W_2 (into dpre); the residual: dF = dY.
  linear_backward(exec, hidden, p.W_2, dY, no_dx, grads.W_2, grads.b_2);
  gemm(exec, Trans::No, Trans::No, S(1), dY, p.W_2, S(0), dpre);
  parallel_for_2d(exec, "embsr::self_attention_block::d_relu", R, d, KOKKOS_LAMBDA(const int i, const int c) {
    dF(i, c) = dY(i, c);
    if (!(pre(i, c) > S(0))) dpre(i, c) = S(0);
  });
  // First FFN layer: dW_1, db_1, dF += dpre W_1.
  linear_backward(exec, F, p.W_1, dpre, dF, grads.W_1, grads.b_1);
  // dS = dA / sqrt(d), row by row.
  Kokkos::parallel_for(
      "embsr::self_attention_block::d_softmax", Kokkos::RangePolicy<ExecSpace>(exec, 0, nR), KOKKOS_LAMBDA(const int i) {
        const int b = row_session(i), s = offsets(b), n = offsets(b + 1) - s;
        const std::int64_t base = score_offsets(b) + static_cast<std::int64_t>(i - s) * n;
        S dot = 0;
        for (int j = 0; j < n; ++j) {
          S dp = 0;
          for (int c = 0; c < nd; ++c) dp += dF(i, c) * V(s + j, c);
          dS(base + j) = dp;
          dot += dp * P(base + j);
        }
        for (int j = 0; j < n; ++j) dS(base + j) = P(base + j) * (dS(base + j) - dot) * scale;
      });
  // dQ_i = sum_j dS_ij K_j,  dK_i = sum_k dS_ki Q_k,  dV_i = sum_k P_ki dF_k (k, j over the session).
  parallel_for_2d(exec, "embsr::self_attention_block::d_qkv", R, d, KOKKOS_LAMBDA(const int i, const int c) {
    const int b = row_session(i), s = offsets(b), n = offsets(b + 1) - s;
    const std::int64_t block = score_offsets(b);
    const int r = i - s;
    S q = 0, k = 0, v = 0;
    for (int j = 0; j < n; ++j) {
      const std::int64_t row = block + static_cast<std::int64_t>(r) * n + j;  // (r, j)
      const std::int64_t col = block + static_cast<std::int64_t>(j) * n + r;  // (j, r)
      q += dS(row) * K(s + j, c);
      k += dS(col) * Q(s + j, c);
      v += P(col) * dF(s + j, c);
    }
    dQ(i, c) = q;
    dK(i, c) = k;
    dV(i, c) = v;
  });
  // Q, K, V = X W^T: the weight gradients and dX.
  linear_backward(exec, X, p.W_Q, dQ, dX, grads.W_Q, no_db);
  linear_backward(exec, X, p.W_K, dK, dX, grads.W_K, no_db);
  linear_backward(exec, X, p.W_V, dV, dX, grads.W_V, no_db);
}

}  // namespace embsr
