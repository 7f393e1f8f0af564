#pragma once
// Bidirectional multi-head self-attention over ragged sessions (Vaswani et al. 2017, as BERT4Rec
// uses it: Sun et al., CIKM 2019, Sec. 3.3, eqs. (1)-(2); the biases of the four projections
// follow the authors' code, FeiSun/BERT4Rec modeling.py attention_layer / transformer_model, whose
// tf.layers.dense maps all carry one). X [R x d] holds the rows of all sessions back to back,
// session b owning rows [offsets(b), offsets(b+1)) (as layers/self_attention_block.hpp). For
// session b with its n = n_b rows X_b and h heads of size dh = d / h:
//
//   Q = X_b W_Q^T + b_Q,  K = X_b W_K^T + b_K,  V = X_b W_V^T + b_V         [n x d]
//   head a (columns [a dh, (a+1) dh) of Q, K, V):
//     A_a = Q_a K_a^T / sqrt(dh),  P_a = softmax over each row of A_a        full attention, no mask
//     C_a = P_a V_a
//   C = [C_0; ...; C_{h-1}] (concatenated along the columns)                 [n x d]
//   Y_b = C W_O^T + b_O                                                      eq. (1): MH(H) = [head_1; ..; head_h] W^O
//
// Shapes: offsets [B+1] (index_t; offsets(0) = 0, non-decreasing, offsets(B) = R); X, Y [R x d];
//   W_Q, W_K, W_V, W_O [d x d] (stored [out x in], as layers/linear.hpp); b_Q, b_K, b_V, b_O [d];
//   d divisible by h. Y must not overlap X. An empty session owns no rows; an empty batch computes
//   nothing and adds no gradient.
//
// The four projections are GEMMs over all R rows (core/gemm.hpp). The per-session attention runs one
// thread per (row, head) (scores, softmax) or per (row, column) (P V and the backward), each looping
// over its session's rows in order: no atomics, and no result depends on the thread count or on the
// other sessions of the batch. P is stored: for head a, session b's block [n_b x n_b] starts at
// a * S + score_offsets(b), S = sum_b n_b^2 (score_offsets the exclusive scan of n_b^2).

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
struct MultiHeadAttentionParams {
  MatRef<Scalar, MemorySpace> W_Q, W_K, W_V, W_O;  // [d x d]
  VecRef<Scalar, MemorySpace> b_Q, b_K, b_V, b_O;  // [d]
};

template <class Scalar, class MemorySpace>
struct MultiHeadAttentionCache {
  // The forward pass held (num_rows = -1: none yet); the backward checks its arguments against it.
  int num_rows = -1, num_sessions = -1, dim = -1, heads = -1;
  std::size_t num_scores = 0;  // S = sum_b n_b^2 (per head)

  Kokkos::View<index_t*, MemorySpace> row_session;         // [R]    session b of each row
  Kokkos::View<std::int64_t*, MemorySpace> score_offsets;  // [B+1]  session b's P block within a head
  MatRef<Scalar, MemorySpace> Q, K, V;                     // [R x d]
  VecRef<Scalar, MemorySpace> P;                           // [h S]  softmax rows
  MatRef<Scalar, MemorySpace> C;                           // [R x d] concatenated heads

  Kokkos::View<index_t*, MemorySpace> row_session_storage;
  Kokkos::View<std::int64_t*, MemorySpace> score_offsets_storage;
  Mat<Scalar, MemorySpace> Q_storage, K_storage, V_storage, C_storage;
  Vec<Scalar, MemorySpace> P_storage;
  // Backward scratch.
  mutable Mat<Scalar, MemorySpace> grad_C, grad_Q, grad_K, grad_V;  // [R x d]
  mutable Vec<Scalar, MemorySpace> grad_scores;                      // [h S] dA / sqrt(dh)
};

namespace detail {

template <class S, class M>
void multi_head_attention_check(const std::string& who, const char* what, const MultiHeadAttentionParams<S, M>& p,
                                std::size_t d) {
  const std::string w = who + (what[0] != '\0' ? std::string(" (") + what + ")" : std::string());
  require_shape(w, "W_Q", p.W_Q, d, d);
  require_shape(w, "W_K", p.W_K, d, d);
  require_shape(w, "W_V", p.W_V, d, d);
  require_shape(w, "W_O", p.W_O, d, d);
  require_length(w, "b_Q", p.b_Q, d);
  require_length(w, "b_K", p.b_K, d);
  require_length(w, "b_V", p.b_V, d);
  require_length(w, "b_O", p.b_O, d);
}

}  // namespace detail

// X [R x d] -> Y [R x d] with `heads` heads; fills `cache` with what the backward needs.
template <class ExecSpace, class Scalar, class MemorySpace, class OV, class XV, class YV>
void multi_head_attention_forward(const ExecSpace& exec, const OV& offsets, const XV& X,
                                  const MultiHeadAttentionParams<Scalar, MemorySpace>& p, const int heads, const YV& Y,
                                  MultiHeadAttentionCache<Scalar, MemorySpace>& cache) {
  assert_accessible<ExecSpace, OV, XV, YV, MatRef<Scalar, MemorySpace>>();
  static_assert(OV::rank == 1, "multi_head_attention_forward: offsets must be a rank-1 View");
  using S = Scalar;
  const char* who = "multi_head_attention_forward";
  require(offsets.extent(0) >= 1, who, "offsets is [0], expected [B+1] with B >= 0");
  const std::size_t B = offsets.extent(0) - 1, R = X.extent(0), d = X.extent(1);
  require_shape(who, "Y", Y, R, d);
  require(heads >= 1 && d % static_cast<std::size_t>(heads) == 0, who,
          "heads must be >= 1 and divide d = " + std::to_string(d) + ", got " + std::to_string(heads));
  detail::multi_head_attention_check(who, "", p, d);
  require(!views_overlap(X, Y), who, "Y overlaps X (the layer needs separate buffers)");

  const int nB = static_cast<int>(B), nR = static_cast<int>(R);
  int bad = 0;
  Kokkos::parallel_reduce(
      "embsr::multi_head_attention::check_offsets", Kokkos::RangePolicy<ExecSpace>(exec, 0, nB + 1),
      KOKKOS_LAMBDA(const int b, int& count) {
        if (b == 0 && offsets(0) != 0) ++count;
        if (b == nB && offsets(nB) != nR) ++count;
        if (b < nB && offsets(b + 1) < offsets(b)) ++count;
      },
      bad);
  require(bad == 0, who, "offsets must start at 0, be non-decreasing and end at the " + std::to_string(R) + " rows of X");

  cache.row_session =
      ensure_prefix(cache.row_session_storage, R, "embsr::multi_head_attention::row_session");
  cache.score_offsets =
      ensure_prefix(cache.score_offsets_storage, B + 1, "embsr::multi_head_attention::score_offsets");
  const auto score_offsets = cache.score_offsets;
  std::int64_t total = 0;
  if (B > 0) {
    Kokkos::parallel_scan(
        "embsr::multi_head_attention::score_offsets", Kokkos::RangePolicy<ExecSpace>(exec, 0, nB),
        KOKKOS_LAMBDA(const int b, std::int64_t& partial, const bool final) {
          const std::int64_t n = offsets(b + 1) - offsets(b);
          if (final) score_offsets(b) = partial;
          partial += n * n;
          if (final && b == nB - 1) score_offsets(nB) = partial;
        },
        total);
  }
  const std::size_t num_scores = static_cast<std::size_t>(total);
  const auto nh = static_cast<std::size_t>(heads);
  cache.Q = ensure(cache.Q_storage, R, d, "embsr::multi_head_attention::Q");
  cache.K = ensure(cache.K_storage, R, d, "embsr::multi_head_attention::K");
  cache.V = ensure(cache.V_storage, R, d, "embsr::multi_head_attention::V");
  cache.C = ensure(cache.C_storage, R, d, "embsr::multi_head_attention::C");
  cache.P = ensure(cache.P_storage, nh * num_scores, "embsr::multi_head_attention::P");
  cache.num_rows = nR;
  cache.num_sessions = nB;
  cache.dim = static_cast<int>(d);
  cache.heads = heads;
  cache.num_scores = num_scores;
  if (R == 0 || d == 0) return;

  const auto row_session = cache.row_session;
  const auto Q = cache.Q, K = cache.K, V = cache.V, C = cache.C;
  const auto P = cache.P;
  const int dh = static_cast<int>(d / nh);
  const std::int64_t Sn = total;
  const S scale = S(1) / static_cast<S>(std::sqrt(static_cast<double>(dh)));

  Kokkos::parallel_for(
      "embsr::multi_head_attention::row_session", Kokkos::RangePolicy<ExecSpace>(exec, 0, nB), KOKKOS_LAMBDA(const int b) {
        for (int i = offsets(b); i < offsets(b + 1); ++i) row_session(i) = b;
      });
  linear_forward(exec, X, p.W_Q, p.b_Q, Q);
  linear_forward(exec, X, p.W_K, p.b_K, K);
  linear_forward(exec, X, p.W_V, p.b_V, V);
  // P_a row i: softmax_j (Q_i,a . K_j,a / sqrt(dh)) over the session's rows j, max-shifted.
  parallel_for_2d(exec, "embsr::multi_head_attention::softmax", R, nh, KOKKOS_LAMBDA(const int i, const int a) {
    const int b = row_session(i), s = offsets(b), n = offsets(b + 1) - s;
    const std::int64_t base = a * Sn + score_offsets(b) + static_cast<std::int64_t>(i - s) * n;
    const int c0 = a * dh;
    S mx = S(0);
    for (int j = 0; j < n; ++j) {
      S x = 0;
      for (int c = c0; c < c0 + dh; ++c) x += Q(i, c) * K(s + j, c);
      x *= scale;
      P(base + j) = x;
      mx = j == 0 ? x : math::max(mx, x);
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
  // C(i, c) = sum_j P_a(i, j) V(j, c), a = c / dh.
  parallel_for_2d(exec, "embsr::multi_head_attention::attend", R, d, KOKKOS_LAMBDA(const int i, const int c) {
    const int b = row_session(i), s = offsets(b), n = offsets(b + 1) - s;
    const std::int64_t base = (c / dh) * Sn + score_offsets(b) + static_cast<std::int64_t>(i - s) * n;
    S acc = 0;
    for (int j = 0; j < n; ++j) acc += P(base + j) * V(s + j, c);
    C(i, c) = acc;
  });
  linear_forward(exec, C, p.W_O, p.b_O, Y);
}

// dY [R x d] -> dX [R x d] (add; an empty View: not needed), grads (add). Per session and head a,
// with A_a = Q_a K_a^T / sqrt(dh), P_a = softmax_rows(A_a), C_a = P_a V_a:
//   Y = C W_O^T + b_O:        dW_O += dY^T C,  db_O += sum_i dY_i,  dC = dY W_O
//   C_a = P_a V_a:            dP_a = dC_a V_a^T (within the session),  dV_a = P_a^T dC_a
//   P_a = softmax_rows(A_a):  dA_a,ij = P_a,ij (dP_a,ij - sum_k dP_a,ik P_a,ik)
//   A_a = Q_a K_a^T / sqrt(dh): dQ_a = dA_a K_a / sqrt(dh),  dK_a = dA_a^T Q_a / sqrt(dh)
//   Q, K, V = X W_*^T + b_*:  dW_* += d*^T X,  db_* += sum_i d*_i,  dX += dQ W_Q + dK W_K + dV W_V
// dA / sqrt(dh) is built one thread per (row, head); dQ, dK and dV one thread per (row, column),
// each summing over its session's rows in order.
template <class ExecSpace, class Scalar, class MemorySpace, class OV, class XV, class DYV, class DXV>
void multi_head_attention_backward(const ExecSpace& exec, const OV& offsets, const XV& X,
                                   const MultiHeadAttentionParams<Scalar, MemorySpace>& p,
                                   const MultiHeadAttentionCache<Scalar, MemorySpace>& cache, const DYV& dY,
                                   const DXV& dX, const MultiHeadAttentionParams<Scalar, MemorySpace>& grads) {
  assert_accessible<ExecSpace, OV, XV, DYV, DXV, MatRef<Scalar, MemorySpace>>();
  static_assert(OV::rank == 1, "multi_head_attention_backward: offsets must be a rank-1 View");
  using S = Scalar;
  const char* who = "multi_head_attention_backward";
  require(offsets.extent(0) >= 1, who, "offsets is [0], expected [B+1] with B >= 0");
  const std::size_t B = offsets.extent(0) - 1, R = X.extent(0), d = X.extent(1);
  require_shape(who, "dY", dY, R, d);
  if (dX.extent(0) != 0) require_shape(who, "dX (empty or [R x d])", dX, R, d);
  detail::multi_head_attention_check(who, "", p, d);
  detail::multi_head_attention_check(who, "gradients", grads, d);
  require(cache.num_rows == static_cast<int>(R) && cache.num_sessions == static_cast<int>(B) &&
              cache.dim == static_cast<int>(d),
          who, "the cache does not hold a forward pass of these offsets and X");
  const auto nh = static_cast<std::size_t>(cache.heads);
  const auto dC = ensure(cache.grad_C, R, d, "embsr::multi_head_attention::grad_C");
  const auto dQ = ensure(cache.grad_Q, R, d, "embsr::multi_head_attention::grad_Q");
  const auto dK = ensure(cache.grad_K, R, d, "embsr::multi_head_attention::grad_K");
  const auto dV = ensure(cache.grad_V, R, d, "embsr::multi_head_attention::grad_V");
  const auto dS = ensure(cache.grad_scores, nh * cache.num_scores, "embsr::multi_head_attention::grad_scores");
  if (R == 0 || d == 0) return;

  const auto row_session = cache.row_session;
  const auto score_offsets = cache.score_offsets;
  const auto Q = cache.Q, K = cache.K, V = cache.V, C = cache.C;
  const auto P = cache.P;
  const int dh = static_cast<int>(d / nh);
  const std::int64_t Sn = static_cast<std::int64_t>(cache.num_scores);
  const S scale = S(1) / static_cast<S>(std::sqrt(static_cast<double>(dh)));

  // Output projection: dW_O, db_O, dC = dY W_O.
  gemm(exec, Trans::No, Trans::No, S(1), dY, p.W_O, S(0), dC);
  linear_backward(exec, C, p.W_O, dY, MatRef<S, MemorySpace>(), grads.W_O, grads.b_O);
  // dS = dA / sqrt(dh), per (row, head).
  parallel_for_2d(exec, "embsr::multi_head_attention::d_softmax", R, nh, KOKKOS_LAMBDA(const int i, const int a) {
    const int b = row_session(i), s = offsets(b), n = offsets(b + 1) - s;
    const std::int64_t base = a * Sn + score_offsets(b) + static_cast<std::int64_t>(i - s) * n;
    const int c0 = a * dh;
    S dot = 0;
    for (int j = 0; j < n; ++j) {
      S dp = 0;
      for (int c = c0; c < c0 + dh; ++c) dp += dC(i, c) * V(s + j, c);
      dS(base + j) = dp;
      dot += dp * P(base + j);
    }
    for (int j = 0; j < n; ++j) dS(base + j) = P(base + j) * (dS(base + j) - dot) * scale;
  });
  // dQ_ic = sum_j dS_a(r, j) K_jc,  dK_ic = sum_j dS_a(j, r) Q_jc,  dV_ic = sum_j P_a(j, r) dC_jc.
  parallel_for_2d(exec, "embsr::multi_head_attention::d_qkv", R, d, KOKKOS_LAMBDA(const int i, const int c) {
    const int b = row_session(i), s = offsets(b), n = offsets(b + 1) - s;
    const std::int64_t block = (c / dh) * Sn + score_offsets(b);
    const int r = i - s;
    S q = 0, k = 0, v = 0;
    for (int j = 0; j < n; ++j) {
      const std::int64_t row = block + static_cast<std::int64_t>(r) * n + j;  // (r, j)
      const std::int64_t col = block + static_cast<std::int64_t>(j) * n + r;  // (j, r)
      q += dS(row) * K(s + j, c);
      k += dS(col) * Q(s + j, c);
      v += P(col) * dC(s + j, c);
    }
    dQ(i, c) = q;
    dK(i, c) = k;
    dV(i, c) = v;
  });
  linear_backward(exec, X, p.W_Q, dQ, dX, grads.W_Q, grads.b_Q);
  linear_backward(exec, X, p.W_K, dK, dX, grads.W_K, grads.b_K);
  linear_backward(exec, X, p.W_V, dV, dX, grads.W_V, grads.b_V);
}

}  // namespace embsr
