#pragma once
// Attention pooling with a learned context vector over each session's rows: RIB's attention layer
// (Zhou, Ding, Tang, Yin, "Micro Behaviors: A New Perspective in E-commerce Recommender Systems",
// WSDM 2018, Sec. 4, the attention layer over the RNN layer's outputs; the form of Yang et al.'s
// hierarchical attention networks, NAACL 2016, eq. 5-7). See docs/SEQUENCE_MODELS.md, "RIB".
//
// Session b owns the rows h_1..h_n = H[offsets[b] .. offsets[b+1]):
//
//   u_i     = tanh(W h_i + b)                     [A]   (one GEMM over all rows)
//   e_i     = u_i . c                                   (c: the context vector)
//   alpha_i = exp(e_i) / sum_{j of b} exp(e_j)          (softmax over the session's rows, computed
//                                                        with the session's max subtracted)
//   s_b     = sum_i alpha_i h_i                   [D]
//
// Shapes: B sessions, R rows, input width D, attention width A:
//   offsets [B+1] (index_t; offsets[0] = 0 <= offsets[1] <= ... <= offsets[B] = R, read on the
//   device only: a Batch's micro_offsets or macro_offsets); H [R x D]; W [A x D] (PyTorch's
//   nn.Linear layout, layers/linear.hpp), b [A], c [A]; S [B x D]. S and dS may be strided 2-D
//   Views (a column block of a wider matrix). An empty session (no rows) gives s_b = 0 and adds
//   no gradient; an empty batch (B = 0) computes nothing.
// The linear map is a GEMM over all rows (core/gemm.hpp); every other sum runs in a fixed order on
// one thread (a session's softmax, a column's sum over the rows), so the forward and the gradients
// do not depend on the thread count or on the other sessions of the batch (beyond the GEMMs' own
// summation, as in layers/linear.hpp).

#include <cstddef>
#include <string>
#include <type_traits>
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
struct ContextAttentionParams {
  MatRef<Scalar, MemorySpace> W;  // [A x D]
  VecRef<Scalar, MemorySpace> b;  // [A]
  VecRef<Scalar, MemorySpace> c;  // [A] the context vector
};

template <class Scalar, class MemorySpace>
struct ContextAttentionCache {
  // What the last forward saw (-1: no forward yet).
  int num_sessions = -1, num_rows = -1, input_dim = -1, attention_dim = -1;
  Kokkos::View<int*, MemorySpace> session;  // [R]     session b of each row
  MatRef<Scalar, MemorySpace> u;            // [R x A] tanh(W h_i + b)
  VecRef<Scalar, MemorySpace> alpha;        // [R]     alpha_i

  Kokkos::View<int*, MemorySpace> session_storage;
  Mat<Scalar, MemorySpace> u_storage;
  Vec<Scalar, MemorySpace> alpha_storage;
  // Backward scratch.
  mutable Mat<Scalar, MemorySpace> grad_pre;  // [R x A] dL/d(W h_i + b)
  mutable Vec<Scalar, MemorySpace> grad_e;    // [R]     dL/de_i
};

namespace detail {

template <class S, class M>
std::size_t context_attention_check(const std::string& who, const char* what, const ContextAttentionParams<S, M>& p,
                                    std::size_t D) {
  const std::string w = who + (what[0] != '\0' ? std::string(" (") + what + ")" : std::string());
  const std::size_t A = p.W.extent(0);
  require_shape(w, "W", p.W, A, D);
  require_length(w, "b", p.b, A);
  require_length(w, "c", p.c, A);
  return A;
}

template <class OffV>
std::size_t context_attention_sessions(const std::string& who, const OffV& offsets) {
  static_assert(OffV::rank == 1 && std::is_integral<typename OffV::non_const_value_type>::value,
                "context_attention: offsets is a 1-D View of integers");
  require(offsets.extent(0) >= 1, who, "offsets is [0], expected [B+1] with B >= 0");
  return offsets.extent(0) - 1;
}

template <class M>
Kokkos::View<int*, M> context_attention_ints(Kokkos::View<int*, M>& storage, std::size_t n, const char* label) {
  if (storage.extent(0) < n) {
    storage = Kokkos::View<int*, M>();
    storage = Kokkos::View<int*, M>(Kokkos::view_alloc(std::string(label), Kokkos::WithoutInitializing), n + n / 4 + 1);
  }
  return Kokkos::subview(storage, std::make_pair(std::size_t(0), n));
}

}  // namespace detail

// H [R x D] (rows of the sessions given by offsets [B+1]) -> S [B x D] (overwritten); fills
// `cache` with what the backward needs.
template <class ExecSpace, class Scalar, class MemorySpace, class OffV, class HV, class SV>
void context_attention_forward(const ExecSpace& exec, const OffV& offsets, const HV& H,
                               const ContextAttentionParams<Scalar, MemorySpace>& p, const SV& S_out,
                               ContextAttentionCache<Scalar, MemorySpace>& cache) {
  assert_accessible<ExecSpace, OffV, HV, SV, MatRef<Scalar, MemorySpace>>();
  static_assert(HV::rank == 2 && SV::rank == 2, "context_attention_forward: H and S are 2-D");
  using S = Scalar;
  const char* who = "context_attention_forward";
  const std::size_t R = H.extent(0), D = H.extent(1);
  const std::size_t A = detail::context_attention_check(who, "", p, D);
  const std::size_t B = detail::context_attention_sessions(who, offsets);
  require_shape(who, "S", S_out, B, D);
  cache.num_sessions = -1;  // until this forward has filled the cache
  cache.session = detail::context_attention_ints(cache.session_storage, R, "embsr::context_attention::session");
  cache.u = ensure(cache.u_storage, R, A, "embsr::context_attention::u");
  cache.alpha = ensure(cache.alpha_storage, R, "embsr::context_attention::alpha");
  cache.num_rows = static_cast<int>(R);
  cache.input_dim = static_cast<int>(D);
  cache.attention_dim = static_cast<int>(A);
  cache.num_sessions = static_cast<int>(B);
  if (B == 0) return;

  const auto session = cache.session;
  const auto u = cache.u;
  const auto alpha = cache.alpha;
  const auto c = p.c;
  const int nA = static_cast<int>(A);
  Kokkos::parallel_for(
      "embsr::context_attention::sessions", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(B)),
      KOKKOS_LAMBDA(const int bb) {
        for (int i = static_cast<int>(offsets(bb)); i < static_cast<int>(offsets(bb + 1)); ++i) session(i) = bb;
      });
  if (R > 0) linear_forward(exec, H, p.W, p.b, u);  // W h_i + b  [R x A], tanh below
  // u_i = tanh(.), e_i = u_i . c (into alpha for now).
  Kokkos::parallel_for(
      "embsr::context_attention::scores", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(R)),
      KOKKOS_LAMBDA(const int i) {
        S acc = 0;
        for (int a = 0; a < nA; ++a) {
          const S t = math::tanh(u(i, a));
          u(i, a) = t;
          acc += t * c(a);
        }
        alpha(i) = acc;
      });
  // The softmax over each session's rows, in row order.
  Kokkos::parallel_for(
      "embsr::context_attention::softmax", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(B)),
      KOKKOS_LAMBDA(const int bb) {
        const int begin = static_cast<int>(offsets(bb)), end = static_cast<int>(offsets(bb + 1));
        if (end <= begin) return;
        S mx = alpha(begin);
        for (int i = begin + 1; i < end; ++i) mx = math::max(mx, alpha(i));
        S total = 0;
        for (int i = begin; i < end; ++i) {
          const S ex = math::exp(alpha(i) - mx);
          alpha(i) = ex;
          total += ex;
        }
        for (int i = begin; i < end; ++i) alpha(i) /= total;
      });
  // s_b = sum_i alpha_i h_i, rows in order.
  parallel_for_2d(exec, "embsr::context_attention::pool", B, D, KOKKOS_LAMBDA(const int bb, const int j) {
    S acc = 0;
    for (int i = static_cast<int>(offsets(bb)); i < static_cast<int>(offsets(bb + 1)); ++i) acc += alpha(i) * S(H(i, j));
    S_out(bb, j) = acc;
  });
}

// dS [B x D] -> dH [R x D] (add), grads (add). With b the session of row i:
//   s_b = sum_i alpha_i h_i:      dalpha_i = dS_b . h_i,   dh_i += alpha_i dS_b
//   alpha = softmax_b(e):          de_i = alpha_i (dalpha_i - sum_{j of b} alpha_j dalpha_j)
//   e_i = u_i . c:                 dc += sum_i de_i u_i,    du_i = de_i c
//   u_i = tanh(z_i):               dz_i = du_i * (1 - u_i^2)
//   z_i = W h_i + b:               dW += dz^T H,  db += sum_i dz_i,  dh_i += dz_i W   (linear_backward)
// Every row belongs to one session, so dH gathers its terms per row without atomics, in a fixed
// order. dH may be an empty View (not needed).
template <class ExecSpace, class Scalar, class MemorySpace, class OffV, class HV, class DSV, class DHV>
void context_attention_backward(const ExecSpace& exec, const OffV& offsets, const HV& H,
                                const ContextAttentionParams<Scalar, MemorySpace>& p,
                                const ContextAttentionCache<Scalar, MemorySpace>& cache, const DSV& dS, const DHV& dH,
                                const ContextAttentionParams<Scalar, MemorySpace>& grads) {
  assert_accessible<ExecSpace, OffV, HV, DSV, DHV, MatRef<Scalar, MemorySpace>>();
  static_assert(HV::rank == 2 && DSV::rank == 2 && DHV::rank == 2, "context_attention_backward: H, dS and dH are 2-D");
  using S = Scalar;
  const char* who = "context_attention_backward";
  const std::size_t R = H.extent(0), D = H.extent(1);
  const std::size_t A = detail::context_attention_check(who, "", p, D);
  require(detail::context_attention_check(who, "gradients", grads, D) == A, who,
          "the gradients' W has another shape than the parameters'");
  const std::size_t B = detail::context_attention_sessions(who, offsets);
  require(cache.num_sessions == static_cast<int>(B) && cache.num_rows == static_cast<int>(R) &&
              cache.input_dim == static_cast<int>(D) && cache.attention_dim == static_cast<int>(A),
          who, "the cache does not hold a forward pass of these offsets, H and parameters");
  require_shape(who, "dS", dS, B, D);
  const bool want_dH = dH.extent(0) != 0;
  if (want_dH) require_shape(who, "dH (empty or [R x D])", dH, R, D);
  const auto dpre = ensure(cache.grad_pre, R, A, "embsr::context_attention::grad_pre");
  const auto de = ensure(cache.grad_e, R, "embsr::context_attention::grad_e");
  if (B == 0 || R == 0) return;

  const auto session = cache.session;
  const auto u = cache.u;
  const auto alpha = cache.alpha;
  const auto c = p.c, dc = grads.c;
  const int nD = static_cast<int>(D), nA = static_cast<int>(A), nR = static_cast<int>(R);

  // dalpha_i = dS_b . h_i (into de for now).
  Kokkos::parallel_for(
      "embsr::context_attention::d_alpha", Kokkos::RangePolicy<ExecSpace>(exec, 0, nR), KOKKOS_LAMBDA(const int i) {
        const int bb = session(i);
        S acc = 0;
        for (int j = 0; j < nD; ++j) acc += S(dS(bb, j)) * S(H(i, j));
        de(i) = acc;
      });
  // de_i = alpha_i (dalpha_i - sum_j alpha_j dalpha_j), per session in row order.
  Kokkos::parallel_for(
      "embsr::context_attention::d_softmax", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(B)),
      KOKKOS_LAMBDA(const int bb) {
        const int begin = static_cast<int>(offsets(bb)), end = static_cast<int>(offsets(bb + 1));
        S dot = 0;
        for (int i = begin; i < end; ++i) dot += alpha(i) * de(i);
        for (int i = begin; i < end; ++i) de(i) = alpha(i) * (de(i) - dot);
      });
  // dz_i = de_i c * (1 - u_i^2).
  parallel_for_2d(exec, "embsr::context_attention::d_pre", R, A, KOKKOS_LAMBDA(const int i, const int a) {
    const S t = u(i, a);
    dpre(i, a) = de(i) * c(a) * (S(1) - t * t);
  });
  // dc += sum_i de_i u_i, rows in order.
  Kokkos::parallel_for(
      "embsr::context_attention::d_c", Kokkos::RangePolicy<ExecSpace>(exec, 0, nA), KOKKOS_LAMBDA(const int a) {
        S acc = 0;
        for (int i = 0; i < nR; ++i) acc += de(i) * u(i, a);
        dc(a) += acc;
      });
  // dh_i += alpha_i dS_b (before linear_backward adds dz W into it).
  if (want_dH)
    parallel_for_2d(exec, "embsr::context_attention::d_H", R, D, KOKKOS_LAMBDA(const int i, const int j) {
      dH(i, j) += alpha(i) * S(dS(session(i), j));
    });
  linear_backward(exec, H, p.W, dpre, dH, grads.W, grads.b);
}

}  // namespace embsr
