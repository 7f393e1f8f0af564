#pragma once
// The soft-attention readout of SR-GNN (Wu et al., "Session-based Recommendation with Graph Neural
// Networks", AAAI 2019, Sec. 3.4). For session b, with macro positions i = 1..n_b (its macro items
// in order, n = n_b the last one) and node states v_i = H[alias(i)]:
//
//   alpha_i = q . sigmoid(W1 v_n + b1 + W2 v_i + b2)        (eq. 6)
//   s_g     = sum_i alpha_i v_i                              (eq. 6; alpha is NOT normalised, as in
//                                                             the paper and the authors' code)
//   s_l     = v_n
//   s_h     = W3 [s_l ; s_g] + b3                            (eq. 7)
//
// In the authors' code W1 = linear_one and W2 = linear_two (nn.Linear with bias), q = linear_three
// (no bias) and W3 = linear_transform (nn.Linear with bias); every linear map is stored [out x in],
// as in layers/linear.hpp.
//
// Shapes: batch with B sessions, N macro positions, C nodes (macro_offsets [B+1], macro_alias [N]:
// the global node of each macro position); H [C x d] node states;
//   W1 [d x d], b1 [d], W2 [d x d], b2 [d], q [d], W3 [d x 2d] (acting on [s_l ; s_g]), b3 [d];
//   s_h [B x d]. Sessions are non-empty (the BatchBuilder's are); an empty session would read as
//   v_n = 0, s_g = 0. An empty batch (B = 0) gives an empty s_h and adds no gradient.
// The linear maps are GEMMs over all positions / sessions (core/gemm.hpp); every other sum runs in
// a fixed order on one thread, so the forward and the gradients do not depend on the thread count.

#include <cstddef>
#include <string>
#include <utility>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch.hpp>
#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

template <class Scalar, class MemorySpace>
struct SoftAttentionReadoutParams {
  MatRef<Scalar, MemorySpace> W1;  // [d x d]   linear_one, acts on v_n
  VecRef<Scalar, MemorySpace> b1;  // [d]
  MatRef<Scalar, MemorySpace> W2;  // [d x d]   linear_two, acts on v_i
  VecRef<Scalar, MemorySpace> b2;  // [d]
  VecRef<Scalar, MemorySpace> q;   // [d]       linear_three (no bias)
  MatRef<Scalar, MemorySpace> W3;  // [d x 2d]  linear_transform, acts on [s_l ; s_g]
  VecRef<Scalar, MemorySpace> b3;  // [d]
};

template <class Scalar, class MemorySpace>
struct SoftAttentionReadoutCache {
  Kokkos::View<int*, MemorySpace> session;  // [N]      session b of each macro position
  MatRef<Scalar, MemorySpace> v;            // [N x d]  v_i = H[alias(i)]
  MatRef<Scalar, MemorySpace> x;            // [B x 2d] [s_l ; s_g]
  MatRef<Scalar, MemorySpace> gate;         // [N x d]  sigmoid(W1 v_n + b1 + W2 v_i + b2)
  VecRef<Scalar, MemorySpace> alpha;        // [N]      alpha_i

  Kokkos::View<int*, MemorySpace> session_storage;
  Mat<Scalar, MemorySpace> v_storage, x_storage, gate_storage, query_storage;  // query: [B x d] W1 v_n + b1
  Vec<Scalar, MemorySpace> alpha_storage;
  // Backward scratch.
  mutable Mat<Scalar, MemorySpace> grad_x, grad_pre, grad_v, grad_query, grad_last;  // [B x 2d] [N x d] [N x d] [B x d] [B x d]
  mutable Vec<Scalar, MemorySpace> grad_alpha;                                        // [N]
};

namespace detail {

template <class S, class M>
void soft_attention_readout_check(const std::string& who, const char* what, const SoftAttentionReadoutParams<S, M>& p,
                                  std::size_t d) {
  const std::string w = who + (what[0] != '\0' ? std::string(" (") + what + ")" : std::string());
  require_shape(w, "W1", p.W1, d, d);
  require_length(w, "b1", p.b1, d);
  require_shape(w, "W2", p.W2, d, d);
  require_length(w, "b2", p.b2, d);
  require_length(w, "q", p.q, d);
  require_shape(w, "W3", p.W3, d, 2 * d);
  require_length(w, "b3", p.b3, d);
}

template <class M>
Kokkos::View<int*, M> soft_attention_readout_ints(Kokkos::View<int*, M>& storage, std::size_t n, const char* label) {
  if (storage.extent(0) < n) {
    storage = Kokkos::View<int*, M>();
    storage = Kokkos::View<int*, M>(Kokkos::view_alloc(std::string(label), Kokkos::WithoutInitializing), n + n / 4 + 1);
  }
  return Kokkos::subview(storage, std::make_pair(std::size_t(0), n));
}

}  // namespace detail

// H [C x d] -> s_h [B x d]; fills `cache` with what the backward needs.
template <class ExecSpace, class Scalar, class MemorySpace, class HV, class SHV>
void soft_attention_readout_forward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const HV& H,
                                    const SoftAttentionReadoutParams<Scalar, MemorySpace>& p, const SHV& s_h,
                                    SoftAttentionReadoutCache<Scalar, MemorySpace>& cache) {
  assert_accessible<ExecSpace, HV, SHV, MatRef<Scalar, MemorySpace>, typename Batch<MemorySpace>::array_type>();
  using S = Scalar;
  const char* who = "soft_attention_readout_forward";
  const std::size_t B = static_cast<std::size_t>(batch.sizes.num_sessions), N = static_cast<std::size_t>(batch.sizes.num_macro),
                    C = static_cast<std::size_t>(batch.sizes.num_nodes), d = H.extent(1);
  require_shape(who, "H", H, C, d);
  require_shape(who, "s_h", s_h, B, d);
  require_length(who, "macro_offsets", batch.macro_offsets, B + 1);
  require_length(who, "macro_alias", batch.macro_alias, N);
  detail::soft_attention_readout_check(who, "", p, d);
  cache.session = detail::soft_attention_readout_ints(cache.session_storage, N, "embsr::soft_attention_readout::session");
  cache.v = ensure(cache.v_storage, N, d, "embsr::soft_attention_readout::v");
  cache.x = ensure(cache.x_storage, B, 2 * d, "embsr::soft_attention_readout::x");
  cache.gate = ensure(cache.gate_storage, N, d, "embsr::soft_attention_readout::gate");
  cache.alpha = ensure(cache.alpha_storage, N, "embsr::soft_attention_readout::alpha");
  const auto query = ensure(cache.query_storage, B, d, "embsr::soft_attention_readout::query");
  if (B == 0 || d == 0) return;

  const auto offsets = batch.macro_offsets;
  const auto alias = batch.macro_alias;
  const auto session = cache.session;
  const auto v = cache.v, x = cache.x, gate = cache.gate;
  const auto alpha = cache.alpha;
  const auto q = p.q;
  const int nd = static_cast<int>(d);
  Kokkos::parallel_for(
      "embsr::soft_attention_readout::sessions", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(B)),
      KOKKOS_LAMBDA(const int b) {
        for (int i = offsets(b); i < offsets(b + 1); ++i) session(i) = b;
      });
  parallel_for_2d(exec, "embsr::soft_attention_readout::gather", N, d,
                  KOKKOS_LAMBDA(const int i, const int j) { v(i, j) = H(alias(i), j); });
  // x = [s_l ; .]: s_l = v_n.
  parallel_for_2d(exec, "embsr::soft_attention_readout::last", B, d, KOKKOS_LAMBDA(const int b, const int j) {
    const int end = offsets(b + 1);
    x(b, j) = end > offsets(b) ? S(H(alias(end - 1), j)) : S(0);
  });
  const auto s_l = Kokkos::subview(x, Kokkos::ALL, std::make_pair(0, nd));
  linear_forward(exec, s_l, p.W1, p.b1, query);  // W1 v_n + b1          [B x d]
  linear_forward(exec, v, p.W2, p.b2, gate);     // W2 v_i + b2 (for now) [N x d]
  Kokkos::parallel_for(
      "embsr::soft_attention_readout::attention", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(N)),
      KOKKOS_LAMBDA(const int i) {
        const int b = session(i);
        S acc = 0;
        for (int j = 0; j < nd; ++j) {
          const S g = math::sigmoid(query(b, j) + gate(i, j));
          gate(i, j) = g;
          acc += q(j) * g;
        }
        alpha(i) = acc;
      });
  // x = [. ; s_g]: s_g = sum_i alpha_i v_i, positions in order.
  parallel_for_2d(exec, "embsr::soft_attention_readout::global", B, d, KOKKOS_LAMBDA(const int b, const int j) {
    S acc = 0;
    for (int i = offsets(b); i < offsets(b + 1); ++i) acc += alpha(i) * v(i, j);
    x(b, nd + j) = acc;
  });
  linear_forward(exec, x, p.W3, p.b3, s_h);  // eq. 7
}

// ds_h [B x d] -> dH [C x d] (add), grads (add). With g_i = sigmoid(pre_i),
// pre_i = W1 v_n + b1 + W2 v_i + b2, x = [s_l ; s_g], and b the session of position i:
//   s_h = W3 x + b3:          dW3 += ds_h^T x,  db3 += sum_b ds_h,  dx = ds_h W3 = [ds_l ; ds_g]
//   s_g = sum_i alpha_i v_i:  dalpha_i = ds_g(b) . v_i,  dv_i = alpha_i ds_g(b)
//   alpha_i = q . g_i:        dq += sum_i dalpha_i g_i,  dpre_i = dalpha_i q * g_i * (1 - g_i)
//   pre_i (W2 v_i + b2 part): dW2 += dpre^T V,  db2 += sum_i dpre_i,  dv_i += dpre_i W2
//   pre_i (W1 v_n + b1 part): dquery_b = sum_{i of b} dpre_i,
//                             dW1 += dquery^T S_l,  db1 += sum_b dquery_b,  dv_n += dquery_b W1
//   s_l = v_n:                dv_n += ds_l
//   v_i = H[alias(i)]:        dH[c] += sum_{i : alias(i) = c} dv_i
// The last step runs per node (a thread per (c, j) walking its session's positions in order), so
// repeated items need no atomics and the result is deterministic.
template <class ExecSpace, class Scalar, class MemorySpace, class HV, class DSHV, class DHV>
void soft_attention_readout_backward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const HV& H,
                                     const SoftAttentionReadoutParams<Scalar, MemorySpace>& p,
                                     const SoftAttentionReadoutCache<Scalar, MemorySpace>& cache, const DSHV& ds_h,
                                     const DHV& dH, const SoftAttentionReadoutParams<Scalar, MemorySpace>& grads) {
  assert_accessible<ExecSpace, HV, DSHV, DHV, MatRef<Scalar, MemorySpace>, typename Batch<MemorySpace>::array_type>();
  using S = Scalar;
  const char* who = "soft_attention_readout_backward";
  const std::size_t B = static_cast<std::size_t>(batch.sizes.num_sessions), N = static_cast<std::size_t>(batch.sizes.num_macro),
                    C = static_cast<std::size_t>(batch.sizes.num_nodes), d = H.extent(1);
  require_shape(who, "H", H, C, d);
  require_shape(who, "ds_h", ds_h, B, d);
  require_shape(who, "dH", dH, C, d);
  require_length(who, "macro_offsets", batch.macro_offsets, B + 1);
  require_length(who, "macro_alias", batch.macro_alias, N);
  require_length(who, "node_session", batch.node_session, C);
  detail::soft_attention_readout_check(who, "", p, d);
  detail::soft_attention_readout_check(who, "gradients", grads, d);
  require(cache.v.extent(0) == N && cache.v.extent(1) == d && cache.x.extent(0) == B && cache.x.extent(1) == 2 * d &&
              cache.session.extent(0) == N && cache.gate.extent(0) == N && cache.alpha.extent(0) == N,
          who, "the cache does not hold a forward pass of this batch");
  const auto dx = ensure(cache.grad_x, B, 2 * d, "embsr::soft_attention_readout::grad_x");
  const auto dpre = ensure(cache.grad_pre, N, d, "embsr::soft_attention_readout::grad_pre");
  const auto dv = ensure(cache.grad_v, N, d, "embsr::soft_attention_readout::grad_v");
  const auto dquery = ensure(cache.grad_query, B, d, "embsr::soft_attention_readout::grad_query");
  const auto dlast = ensure(cache.grad_last, B, d, "embsr::soft_attention_readout::grad_last");
  const auto dalpha = ensure(cache.grad_alpha, N, "embsr::soft_attention_readout::grad_alpha");
  if (B == 0 || d == 0) return;

  const auto offsets = batch.macro_offsets;
  const auto alias = batch.macro_alias;
  const auto node_session = batch.node_session;
  const auto session = cache.session;
  const auto v = cache.v, x = cache.x, gate = cache.gate;
  const auto alpha = cache.alpha;
  const auto q = p.q, dq = grads.q;
  const int nd = static_cast<int>(d), nN = static_cast<int>(N);

  // eq. 7: dW3, db3, and dx = ds_h W3.
  linear_backward(exec, x, p.W3, ds_h, MatRef<S, MemorySpace>(), grads.W3, grads.b3);
  gemm(exec, Trans::No, Trans::No, S(1), ds_h, p.W3, S(0), dx);
  // s_g and alpha: dalpha_i, dv_i (the direct term), dpre_i.
  Kokkos::parallel_for(
      "embsr::soft_attention_readout::d_alpha", Kokkos::RangePolicy<ExecSpace>(exec, 0, nN), KOKKOS_LAMBDA(const int i) {
        const int b = session(i);
        S da = 0;
        for (int j = 0; j < nd; ++j) da += dx(b, nd + j) * v(i, j);
        dalpha(i) = da;
        const S ai = alpha(i);
        for (int j = 0; j < nd; ++j) {
          const S g = gate(i, j);
          dpre(i, j) = da * q(j) * g * (S(1) - g);
          dv(i, j) = ai * dx(b, nd + j);
        }
      });
  Kokkos::parallel_for(
      "embsr::soft_attention_readout::d_q", Kokkos::RangePolicy<ExecSpace>(exec, 0, nd), KOKKOS_LAMBDA(const int j) {
        S acc = 0;
        for (int i = 0; i < nN; ++i) acc += dalpha(i) * gate(i, j);
        dq(j) += acc;
      });
  // W2 v_i + b2: dW2, db2, dv += dpre W2.
  linear_backward(exec, v, p.W2, dpre, dv, grads.W2, grads.b2);
  // W1 v_n + b1: dquery_b = sum of the session's dpre_i (in order), then dW1, db1 and dlast = dquery W1.
  parallel_for_2d(exec, "embsr::soft_attention_readout::d_query", B, d, KOKKOS_LAMBDA(const int b, const int j) {
    S acc = 0;
    for (int i = offsets(b); i < offsets(b + 1); ++i) acc += dpre(i, j);
    dquery(b, j) = acc;
  });
  const auto s_l = Kokkos::subview(x, Kokkos::ALL, std::make_pair(0, nd));
  linear_backward(exec, s_l, p.W1, dquery, MatRef<S, MemorySpace>(), grads.W1, grads.b1);
  gemm(exec, Trans::No, Trans::No, S(1), dquery, p.W1, S(0), dlast);
  // Scatter to the nodes: dH[c] += sum_{i : alias(i) = c} dv_i (+ ds_l + dlast where c holds v_n).
  parallel_for_2d(exec, "embsr::soft_attention_readout::d_H", C, d, KOKKOS_LAMBDA(const int c, const int j) {
    const int b = node_session(c);
    const int begin = offsets(b), end = offsets(b + 1);
    S acc = 0;
    for (int i = begin; i < end; ++i)
      if (alias(i) == c) acc += dv(i, j);
    if (end > begin && alias(end - 1) == c) acc += dx(b, j) + dlast(b, j);
    dH(c, j) += acc;
  });
}

}  // namespace embsr
