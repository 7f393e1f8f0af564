#pragma once
// The session vector m of MODEL.md 5 (paper eq. 18) from the attention output z = z'_0 and the last
// micro-behavior's input x = x_t, in the three ways Config::fusion allows (MODEL.md 5 and 8):
//   FusionKind::Gate   beta = sigmoid([z ; x] W_f^T + b_f),  m = beta * z + (1 - beta) * x
//   FusionKind::Fixed  m = beta z + (1 - beta) x for a constant beta in [0, 1] (no parameters)
//   FusionKind::Mlp    EMBSR-NF: m = [z ; x] W^T + b (one linear layer, no gate)
// One forward/backward pair covers the three; FusionParams holds W_f/b_f (Gate) or W/b (Mlp).
// (FusionKind is the layer's own copy of Config's FusionMode: layers/ sit below model/.)
// z, x, m are [B x d] (B sessions).

#include <cstddef>
#include <string>

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

template <class Scalar, class MemorySpace>
struct FusionParams {
  MatRef<Scalar, MemorySpace> W_f;  // [d x 2d] the gate's W_f (Gate) or the MLP's W (Mlp); empty for Fixed
  VecRef<Scalar, MemorySpace> b_f;  // [d] (an empty View: no bias)
};

enum class FusionKind { Gate, Fixed, Mlp };

struct FusionOptions {
  FusionKind mode = FusionKind::Gate;
  double fixed_beta = 0.5;  // FusionKind::Fixed only; in [0, 1]
};

template <class Scalar, class MemorySpace>
struct FusionCache {
  MatRef<Scalar, MemorySpace> zx;    // [B x 2d]  [z ; x], the input of the gate / the MLP
  MatRef<Scalar, MemorySpace> beta;  // [B x d]   the gate sigma([z ; x] W_f^T + b_f) (Gate only)
  MatRef<Scalar, MemorySpace> dpre;  // [B x d]   backward workspace: dL/d(pre-activation) (Gate only)
  MatRef<Scalar, MemorySpace> dzx;   // [B x 2d]  backward workspace: dL/d[z ; x] through the gate / the MLP
  Mat<Scalar, MemorySpace> zx_storage, beta_storage, dpre_storage, dzx_storage;
};

namespace detail {

template <class S, class M>
void fusion_check_params(const char* who, const FusionParams<S, M>& p, const FusionOptions& opt, std::size_t d) {
  if (opt.mode == FusionKind::Fixed) {
    require(opt.fixed_beta >= 0 && opt.fixed_beta <= 1, who, "fixed_beta must lie in [0, 1], got " + std::to_string(opt.fixed_beta));
    return;
  }
  require_shape(who, opt.mode == FusionKind::Gate ? "W_f" : "W", p.W_f, d, 2 * d);
  if (p.b_f.extent(0) != 0) require_length(who, opt.mode == FusionKind::Gate ? "b_f" : "b", p.b_f, d);
}

}  // namespace detail

// z[B x d], x[B x d] -> m[B x d]   (MODEL.md 5; opt.mode selects the gate, a fixed beta or the MLP)
template <class ExecSpace, class ZV, class XV, class S, class M, class MV>
void fusion_forward(const ExecSpace& exec, const ZV& z, const XV& x, const FusionParams<S, M>& p,
                    const FusionOptions& opt, const MV& m, FusionCache<S, M>& cache) {
  assert_accessible<ExecSpace, ZV, XV, MV, MatRef<S, M>>();
  static_assert(ZV::rank == 2 && XV::rank == 2 && MV::rank == 2, "fusion_forward: z, x and m are 2-D");
  const std::size_t B = z.extent(0), d = z.extent(1);
  require_shape("fusion_forward", "x", x, B, d);
  require_shape("fusion_forward", "m", m, B, d);
  detail::fusion_check_params("fusion_forward", p, opt, d);
  const int nb = static_cast<int>(B), nd = static_cast<int>(d);
  if (opt.mode == FusionKind::Fixed) {
    if (B == 0 || d == 0) return;
    const S fb = static_cast<S>(opt.fixed_beta);
    parallel_for_2d(exec, "embsr::fusion::forward_fixed", nb, nd,
        KOKKOS_LAMBDA(const int b, const int j) { m(b, j) = fb * z(b, j) + (S(1) - fb) * x(b, j); });
    return;
  }
  cache.zx = ensure(cache.zx_storage, B, 2 * d, "embsr::fusion::zx");
  cache.dzx = ensure(cache.dzx_storage, B, 2 * d, "embsr::fusion::dzx");
  if (opt.mode == FusionKind::Gate) {
    cache.beta = ensure(cache.beta_storage, B, d, "embsr::fusion::beta");
    cache.dpre = ensure(cache.dpre_storage, B, d, "embsr::fusion::dpre");
  }
  if (B == 0 || d == 0) return;
  const auto zx = cache.zx;
  parallel_for_2d(exec, "embsr::fusion::concat", nb, 2 * nd,
      KOKKOS_LAMBDA(const int b, const int j) { zx(b, j) = j < nd ? z(b, j) : x(b, j - nd); });
  if (opt.mode == FusionKind::Mlp) {
    linear_forward(exec, zx, p.W_f, p.b_f, m);  // m = [z ; x] W^T + b
    return;
  }
  const auto beta = cache.beta;
  linear_forward(exec, zx, p.W_f, p.b_f, beta);  // beta holds the pre-activation here
  parallel_for_2d(exec, "embsr::fusion::gate", nb, nd,
      KOKKOS_LAMBDA(const int b, const int j) {
        const S g = math::sigmoid(beta(b, j));
        beta(b, j) = g;
        m(b, j) = g * z(b, j) + (S(1) - g) * x(b, j);
      });
}

// Gate: from m = beta * z + (1 - beta) * x, beta = sigma(pre), pre = [z ; x] W_f^T + b_f (elementwise
// products, per row b and coordinate j):
//   dbeta = dm * (z - x),   dpre = dbeta * beta * (1 - beta)            (sigma' = sigma (1 - sigma))
//   d[z ; x] (through the gate) = dpre W_f                              (linear_backward)
//   dz += beta * dm + (dpre W_f)[:, :d],   dx += (1 - beta) * dm + (dpre W_f)[:, d:]
//   dW_f += dpre^T [z ; x],   db_f += sum_b dpre[b]
// Fixed: beta is a constant, dz += beta dm, dx += (1 - beta) dm, no parameter gradients.
// Mlp: from m = [z ; x] W^T + b:  d[z ; x] = dm W,  dz += d[z ; x][:, :d],  dx += d[z ; x][:, d:],
//   dW += dm^T [z ; x],  db += sum_b dm[b].
// dm, dz, dx [B x d]; dz, dx, g.W_f, g.b_f are added into (dz or dx may be empty Views: not needed).
// Needs the cache of the matching fusion_forward call (same opt).
template <class ExecSpace, class ZV, class XV, class S, class M, class DMV, class DZV, class DXV>
void fusion_backward(const ExecSpace& exec, const ZV& z, const XV& x, const FusionParams<S, M>& p,
                     const FusionOptions& opt, const FusionCache<S, M>& cache, const DMV& dm, const DZV& dz,
                     const DXV& dx, const FusionParams<S, M>& g) {
  assert_accessible<ExecSpace, ZV, XV, DMV, DZV, DXV, MatRef<S, M>>();
  static_assert(ZV::rank == 2 && XV::rank == 2 && DMV::rank == 2 && DZV::rank == 2 && DXV::rank == 2,
                "fusion_backward: z, x, dm, dz and dx are 2-D");
  const std::size_t B = z.extent(0), d = z.extent(1);
  require_shape("fusion_backward", "x", x, B, d);
  require_shape("fusion_backward", "dm", dm, B, d);
  const bool want_dz = dz.extent(0) != 0, want_dx = dx.extent(0) != 0;
  if (want_dz) require_shape("fusion_backward", "dz", dz, B, d);
  if (want_dx) require_shape("fusion_backward", "dx", dx, B, d);
  detail::fusion_check_params("fusion_backward", p, opt, d);
  const int nb = static_cast<int>(B), nd = static_cast<int>(d);
  if (opt.mode == FusionKind::Fixed) {
    if (B == 0 || d == 0) return;
    const S fb = static_cast<S>(opt.fixed_beta);
    parallel_for_2d(exec, "embsr::fusion::backward_fixed", nb, nd,
        KOKKOS_LAMBDA(const int b, const int j) {
          if (want_dz) dz(b, j) += fb * dm(b, j);
          if (want_dx) dx(b, j) += (S(1) - fb) * dm(b, j);
        });
    return;
  }
  require_shape("fusion_backward", "gradient of W_f", g.W_f, d, 2 * d);
  require_length("fusion_backward", "gradient of b_f", g.b_f, p.b_f.extent(0));
  require(cache.zx.extent(0) == B && cache.zx.extent(1) == 2 * d &&
              (opt.mode != FusionKind::Gate || (cache.beta.extent(0) == B && cache.beta.extent(1) == d)),
          "fusion_backward", "the cache does not come from a fusion_forward on this batch");
  if (B == 0 || d == 0) return;
  const auto dzx = cache.dzx;
  if (opt.mode == FusionKind::Mlp) {
    Kokkos::deep_copy(exec, dzx, S(0));
    linear_backward(exec, cache.zx, p.W_f, dm, dzx, g.W_f, g.b_f);
    parallel_for_2d(exec, "embsr::fusion::split", nb, nd,
        KOKKOS_LAMBDA(const int b, const int j) {
          if (want_dz) dz(b, j) += dzx(b, j);
          if (want_dx) dx(b, j) += dzx(b, nd + j);
        });
    return;
  }
  const auto beta = cache.beta;
  const auto dpre = cache.dpre;
  parallel_for_2d(exec, "embsr::fusion::dpre", nb, nd,
      KOKKOS_LAMBDA(const int b, const int j) {
        const S gb = beta(b, j);
        dpre(b, j) = dm(b, j) * (z(b, j) - x(b, j)) * gb * (S(1) - gb);
      });
  gemm(exec, Trans::No, Trans::No, S(1), dpre, p.W_f, S(0), dzx);
  linear_backward(exec, cache.zx, p.W_f, dpre, MatRef<S, M>(), g.W_f, g.b_f);
  parallel_for_2d(exec, "embsr::fusion::dinputs", nb, nd,
      KOKKOS_LAMBDA(const int b, const int j) {
        const S gb = beta(b, j);
        if (want_dz) dz(b, j) += gb * dm(b, j) + dzx(b, j);
        if (want_dx) dx(b, j) += (S(1) - gb) * dm(b, j) + dzx(b, nd + j);
      });
}

}  // namespace embsr
