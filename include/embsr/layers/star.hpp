#pragma once
// The star node of the session graph (MODEL.md 3.4, paper eq. 9-10). (The highway of 3.5 that
// follows the last star step: layers/highway.hpp.)
//
//   star_init:    star^0_b = mean of the session's satellites' h^0
//   star_update:  satellites take a share alpha_i of the star, then the star attends over them
//
// Node arrays are [C x d] over the batch's nodes (session b owns rows
// [node_offsets[b], node_offsets[b+1])), star arrays are [B x d]. Linear maps run as one GEMM over
// all nodes or all stars; per-session sums walk the session's node range in a fixed order, so the
// results do not depend on the thread count or on the other sessions of the batch.

#include <cmath>
#include <string>

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/batch/batch.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

// ---------------------------------------------------------------------------------------------
// star^0
// ---------------------------------------------------------------------------------------------

// h0[C x d] -> star0[B x d]:  star0_b = (1 / c_b) sum_{i in b} h0_i
template <class ExecSpace, class MemorySpace, class HV, class SV>
void star_init_forward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const HV& h0, const SV& star0) {
  assert_accessible<ExecSpace, Batch<MemorySpace>, HV, SV>();
  using S = typename SV::non_const_value_type;
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes, d = static_cast<int>(h0.extent(1));
  require_shape("star_init_forward", "h0", h0, static_cast<std::size_t>(C), static_cast<std::size_t>(d));
  require_shape("star_init_forward", "star0", star0, static_cast<std::size_t>(B), static_cast<std::size_t>(d));
  const auto offsets = batch.node_offsets;
  parallel_for_2d(exec, "embsr::star_init::forward", B, d,
      KOKKOS_LAMBDA(const int b, const int j) {
        const int lo = offsets(b), hi = offsets(b + 1);
        S acc = 0;
        for (int i = lo; i < hi; ++i) acc += h0(i, j);
        star0(b, j) = hi > lo ? acc / S(hi - lo) : S(0);
      });
}

// dstar0[B x d] -> dh0[C x d] (adds).   star0_b = mean_{i in b} h0_i  =>  dh0_i += dstar0_b / c_b
template <class ExecSpace, class MemorySpace, class DSV, class DHV>
void star_init_backward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const DSV& dstar0, const DHV& dh0) {
  assert_accessible<ExecSpace, Batch<MemorySpace>, DSV, DHV>();
  using S = typename DHV::non_const_value_type;
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes, d = static_cast<int>(dh0.extent(1));
  require_shape("star_init_backward", "dstar0", dstar0, static_cast<std::size_t>(B), static_cast<std::size_t>(d));
  require_shape("star_init_backward", "dh0", dh0, static_cast<std::size_t>(C), static_cast<std::size_t>(d));
  const auto offsets = batch.node_offsets;
  const auto session = batch.node_session;
  parallel_for_2d(exec, "embsr::star_init::backward", C, d,
      KOKKOS_LAMBDA(const int i, const int j) {
        const int b = session(i);
        dh0(i, j) += dstar0(b, j) / S(offsets(b + 1) - offsets(b));
      });
}

// ---------------------------------------------------------------------------------------------
// star update (one layer l -> l+1)
// ---------------------------------------------------------------------------------------------

// Weights [d x d] (PyTorch layout, y = x W^T + b) and biases [d]. The same struct carries the
// gradient slices in star_update_backward.
template <class Scalar, class MemorySpace>
struct StarParams {
  MatRef<Scalar, MemorySpace> W_q1, W_k1, W_k2, W_q2;  // [d x d]
  VecRef<Scalar, MemorySpace> b_q1, b_k1, b_k2, b_q2;  // [d]
};

template <class Scalar, class MemorySpace>
struct StarCache {
  // Written by star_update_forward, read by star_update_backward (leading rows are valid).
  Mat<Scalar, MemorySpace> q1;      // [C x d] W_q1 h^_i + b_q1
  Mat<Scalar, MemorySpace> k1;      // [B x d] W_k1 star_b + b_k1
  Mat<Scalar, MemorySpace> q2;      // [B x d] W_q2 star_b + b_q2
  Mat<Scalar, MemorySpace> h_next;  // [C x d] h^{l+1}_i (a copy of the output)
  Mat<Scalar, MemorySpace> k2;      // [C x d] W_k2 h^{l+1}_i + b_k2
  Vec<Scalar, MemorySpace> alpha;   // [C]
  Vec<Scalar, MemorySpace> beta;    // [C] softmax weights within each session
  // Scratch of star_update_backward (grown there, so that a const cache can be passed).
  mutable Mat<Scalar, MemorySpace> grad_h_next;  // [C x d] total dL/dh^{l+1}
  mutable Mat<Scalar, MemorySpace> grad_node;    // [C x d] dL/dk2, then dL/dq1
  mutable Mat<Scalar, MemorySpace> grad_star;    // [B x d] dL/dq2, then dL/dk1
  mutable Vec<Scalar, MemorySpace> grad_scalar;  // [C] dL/dlogit, then dL/dalpha
};

// h_hat[C x d], star[B x d] -> h_next[C x d], star_next[B x d]   (MODEL.md 3.4)
template <class ExecSpace, class Scalar, class MemorySpace, class HV, class SV, class HNV, class SNV>
void star_update_forward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const HV& h_hat, const SV& star,
                         const StarParams<Scalar, MemorySpace>& p, const HNV& h_next, const SNV& star_next,
                         StarCache<Scalar, MemorySpace>& cache) {
  assert_accessible<ExecSpace, Batch<MemorySpace>, HV, SV, HNV, SNV, MatRef<Scalar, MemorySpace>>();
  using S = Scalar;
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes, d = static_cast<int>(h_hat.extent(1));
  const auto uB = static_cast<std::size_t>(B), uC = static_cast<std::size_t>(C), ud = static_cast<std::size_t>(d);
  require_shape("star_update_forward", "h_hat", h_hat, uC, ud);
  require_shape("star_update_forward", "star", star, uB, ud);
  require_shape("star_update_forward", "h_next", h_next, uC, ud);
  require_shape("star_update_forward", "star_next", star_next, uB, ud);
  require_shape("star_update_forward", "W_q1", p.W_q1, ud, ud);
  require_shape("star_update_forward", "W_k1", p.W_k1, ud, ud);
  require_shape("star_update_forward", "W_k2", p.W_k2, ud, ud);
  require_shape("star_update_forward", "W_q2", p.W_q2, ud, ud);
  const S scale = S(1) / static_cast<S>(std::sqrt(static_cast<double>(d)));

  const auto q1 = ensure(cache.q1, uC, ud, "embsr::star::q1");
  const auto k1 = ensure(cache.k1, uB, ud, "embsr::star::k1");
  const auto q2 = ensure(cache.q2, uB, ud, "embsr::star::q2");
  const auto hn = ensure(cache.h_next, uC, ud, "embsr::star::h_next");
  const auto k2 = ensure(cache.k2, uC, ud, "embsr::star::k2");
  const auto alpha = ensure(cache.alpha, uC, "embsr::star::alpha");
  const auto beta = ensure(cache.beta, uC, "embsr::star::beta");
  const auto offsets = batch.node_offsets;
  const auto session = batch.node_session;

  linear_forward(exec, h_hat, p.W_q1, p.b_q1, q1);
  linear_forward(exec, star, p.W_k1, p.b_k1, k1);
  linear_forward(exec, star, p.W_q2, p.b_q2, q2);

  // alpha_i = q1_i . k1_b / sqrt(d)
  Kokkos::parallel_for(
      "embsr::star::alpha", Kokkos::RangePolicy<ExecSpace>(exec, 0, C), KOKKOS_LAMBDA(const int i) {
        const int b = session(i);
        S acc = 0;
        for (int j = 0; j < d; ++j) acc += q1(i, j) * k1(b, j);
        alpha(i) = acc * scale;
      });
  // h^{l+1}_i = (1 - alpha_i) h^_i + alpha_i star_b
  parallel_for_2d(exec, "embsr::star::h_next", C, d,
      KOKKOS_LAMBDA(const int i, const int j) {
        const S a = alpha(i);
        const S v = (S(1) - a) * h_hat(i, j) + a * star(session(i), j);
        hn(i, j) = v;
        h_next(i, j) = v;
      });

  linear_forward(exec, hn, p.W_k2, p.b_k2, k2);

  // logits_i = k2_i . q2_b / sqrt(d)   (stored in beta, turned into the softmax below)
  Kokkos::parallel_for(
      "embsr::star::logits", Kokkos::RangePolicy<ExecSpace>(exec, 0, C), KOKKOS_LAMBDA(const int i) {
        const int b = session(i);
        S acc = 0;
        for (int j = 0; j < d; ++j) acc += k2(i, j) * q2(b, j);
        beta(i) = acc * scale;
      });
  // beta = softmax over the session's nodes (max-subtracted)
  Kokkos::parallel_for(
      "embsr::star::softmax", Kokkos::RangePolicy<ExecSpace>(exec, 0, B), KOKKOS_LAMBDA(const int b) {
        const int lo = offsets(b), hi = offsets(b + 1);
        if (hi <= lo) return;
        S m = beta(lo);
        for (int i = lo + 1; i < hi; ++i) m = math::max(m, beta(i));
        S sum = 0;
        for (int i = lo; i < hi; ++i) {
          const S e = math::exp(beta(i) - m);
          beta(i) = e;
          sum += e;
        }
        for (int i = lo; i < hi; ++i) beta(i) /= sum;
      });
  // star^{l+1}_b = sum_{i in b} beta_i h^{l+1}_i
  parallel_for_2d(exec, "embsr::star::star_next", B, d,
      KOKKOS_LAMBDA(const int b, const int j) {
        S acc = 0;
        for (int i = offsets(b); i < offsets(b + 1); ++i) acc += beta(i) * hn(i, j);
        star_next(b, j) = acc;
      });
}

// Backward of star_update_forward: dh_next[C x d], dstar_next[B x d] -> dh_hat[C x d] (adds),
// dstar[B x d] (adds), parameter gradients g (add).
//
// Notation (node i of session b, s = star_b, r = 1/sqrt(d), hn_i = h^{l+1}_i):
//   q1_i = W_q1 h^_i + b_q1, k1_b = W_k1 s + b_k1, alpha_i = r q1_i . k1_b
//   hn_i = (1 - alpha_i) h^_i + alpha_i s
//   k2_i = W_k2 hn_i + b_k2, q2_b = W_q2 s + b_q2, l_i = r k2_i . q2_b, beta = softmax_b(l)
//   star_next_b = sum_i beta_i hn_i
// Going back, with dS = dstar_next_b:
//   dbeta_i  = dS . hn_i
//   dl_i     = beta_i (dbeta_i - sum_{k in b} beta_k dbeta_k)                  (softmax)
//   dk2_i    = r dl_i q2_b,   dq2_b = r sum_{i in b} dl_i k2_i
//   G_i      = dL/dhn_i = dh_next_i + beta_i dS + dk2_i W_k2                   (three paths to hn_i)
//   dW_k2 += dk2^T hn, db_k2 += sum_i dk2_i;  dW_q2 += dq2^T star, db_q2 += sum_b dq2_b,
//   dstar_b += dq2_b W_q2                                                      (logits depend on s)
//   dalpha_i = G_i . (s - h^_i),  dh^_i += (1 - alpha_i) G_i,  dstar_b += sum_{i in b} alpha_i G_i
//   dq1_i = r dalpha_i k1_b,      dk1_b = r sum_{i in b} dalpha_i q1_i
//   dW_q1 += dq1^T h^, db_q1 += sum_i dq1_i, dh^ += dq1 W_q1;
//   dW_k1 += dk1^T star, db_k1 += sum_b dk1_b, dstar += dk1 W_k1.
// (db_k2 is zero up to rounding: a bias on k2 shifts all logits of a session by the same amount.)
template <class ExecSpace, class Scalar, class MemorySpace, class HV, class SV, class DHNV, class DSNV, class DHV,
          class DSV>
void star_update_backward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const HV& h_hat, const SV& star,
                          const StarParams<Scalar, MemorySpace>& p, const StarCache<Scalar, MemorySpace>& cache,
                          const DHNV& dh_next, const DSNV& dstar_next, const DHV& dh_hat, const DSV& dstar,
                          const StarParams<Scalar, MemorySpace>& g) {
  assert_accessible<ExecSpace, Batch<MemorySpace>, HV, SV, DHNV, DSNV, DHV, DSV, MatRef<Scalar, MemorySpace>>();
  using S = Scalar;
  const int B = batch.sizes.num_sessions, C = batch.sizes.num_nodes, d = static_cast<int>(h_hat.extent(1));
  const auto uB = static_cast<std::size_t>(B), uC = static_cast<std::size_t>(C), ud = static_cast<std::size_t>(d);
  require_shape("star_update_backward", "h_hat", h_hat, uC, ud);
  require_shape("star_update_backward", "star", star, uB, ud);
  require_shape("star_update_backward", "dh_next", dh_next, uC, ud);
  require_shape("star_update_backward", "dstar_next", dstar_next, uB, ud);
  require_shape("star_update_backward", "dh_hat", dh_hat, uC, ud);
  require_shape("star_update_backward", "dstar", dstar, uB, ud);
  require(cache.h_next.extent(0) >= uC && cache.h_next.extent(1) == ud && cache.k1.extent(0) >= uB,
          "star_update_backward", "the cache does not hold a forward pass of this batch");
  const S scale = S(1) / static_cast<S>(std::sqrt(static_cast<double>(d)));

  using MR = MatRef<S, MemorySpace>;
  using VR = VecRef<S, MemorySpace>;
  const MR q1(cache.q1.data(), uC, ud), k1(cache.k1.data(), uB, ud), q2(cache.q2.data(), uB, ud);
  const MR hn(cache.h_next.data(), uC, ud), k2(cache.k2.data(), uC, ud);
  const VR alpha(cache.alpha.data(), uC), beta(cache.beta.data(), uC);
  const auto G = ensure(cache.grad_h_next, uC, ud, "embsr::star::grad_h_next");
  const auto dnode = ensure(cache.grad_node, uC, ud, "embsr::star::grad_node");
  const auto dst = ensure(cache.grad_star, uB, ud, "embsr::star::grad_star");
  const auto dsc = ensure(cache.grad_scalar, uC, "embsr::star::grad_scalar");
  const auto offsets = batch.node_offsets;
  const auto session = batch.node_session;

  // dbeta_i = dstar_next_b . hn_i
  Kokkos::parallel_for(
      "embsr::star::grad_beta", Kokkos::RangePolicy<ExecSpace>(exec, 0, C), KOKKOS_LAMBDA(const int i) {
        const int b = session(i);
        S acc = 0;
        for (int j = 0; j < d; ++j) acc += dstar_next(b, j) * hn(i, j);
        dsc(i) = acc;
      });
  // dl_i = beta_i (dbeta_i - sum_k beta_k dbeta_k), in place
  Kokkos::parallel_for(
      "embsr::star::grad_softmax", Kokkos::RangePolicy<ExecSpace>(exec, 0, B), KOKKOS_LAMBDA(const int b) {
        const int lo = offsets(b), hi = offsets(b + 1);
        S mean = 0;
        for (int i = lo; i < hi; ++i) mean += beta(i) * dsc(i);
        for (int i = lo; i < hi; ++i) dsc(i) = beta(i) * (dsc(i) - mean);
      });
  // dk2_i = r dl_i q2_b;  G_i = dh_next_i + beta_i dstar_next_b  (+ dk2_i W_k2 below)
  parallel_for_2d(exec, "embsr::star::grad_k2", C, d,
      KOKKOS_LAMBDA(const int i, const int j) {
        const int b = session(i);
        dnode(i, j) = scale * dsc(i) * q2(b, j);
        G(i, j) = dh_next(i, j) + beta(i) * dstar_next(b, j);
      });
  // dq2_b = r sum_{i in b} dl_i k2_i
  parallel_for_2d(exec, "embsr::star::grad_q2", B, d,
      KOKKOS_LAMBDA(const int b, const int j) {
        S acc = 0;
        for (int i = offsets(b); i < offsets(b + 1); ++i) acc += dsc(i) * k2(i, j);
        dst(b, j) = scale * acc;
      });
  linear_backward(exec, hn, p.W_k2, dnode, G, g.W_k2, g.b_k2);       // G += dk2 W_k2
  linear_backward(exec, star, p.W_q2, dst, dstar, g.W_q2, g.b_q2);  // dstar += dq2 W_q2

  // dalpha_i = G_i . (s - h^_i)
  Kokkos::parallel_for(
      "embsr::star::grad_alpha", Kokkos::RangePolicy<ExecSpace>(exec, 0, C), KOKKOS_LAMBDA(const int i) {
        const int b = session(i);
        S acc = 0;
        for (int j = 0; j < d; ++j) acc += G(i, j) * (star(b, j) - h_hat(i, j));
        dsc(i) = acc;
      });
  // dq1_i = r dalpha_i k1_b;  dh^_i += (1 - alpha_i) G_i
  parallel_for_2d(exec, "embsr::star::grad_q1", C, d,
      KOKKOS_LAMBDA(const int i, const int j) {
        dnode(i, j) = scale * dsc(i) * k1(session(i), j);
        dh_hat(i, j) += (S(1) - alpha(i)) * G(i, j);
      });
  // dk1_b = r sum_{i in b} dalpha_i q1_i;  dstar_b += sum_{i in b} alpha_i G_i
  parallel_for_2d(exec, "embsr::star::grad_k1", B, d,
      KOKKOS_LAMBDA(const int b, const int j) {
        S acc_k1 = 0, acc_s = 0;
        for (int i = offsets(b); i < offsets(b + 1); ++i) {
          acc_k1 += dsc(i) * q1(i, j);
          acc_s += alpha(i) * G(i, j);
        }
        dst(b, j) = scale * acc_k1;
        dstar(b, j) += acc_s;
      });
  linear_backward(exec, h_hat, p.W_q1, dnode, dh_hat, g.W_q1, g.b_q1);  // dh^ += dq1 W_q1
  linear_backward(exec, star, p.W_k1, dst, dstar, g.W_k1, g.b_k1);      // dstar += dk1 W_k1
}

}  // namespace embsr
