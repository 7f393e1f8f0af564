#pragma once
// Layer normalisation (Ba, Kiros & Hinton 2016) over the last dimension, with a gain and a bias,
// row by row:
//
//   mu_r = mean_k X(r, k),  var_r = mean_k (X(r, k) - mu_r)^2   (biased variance)
//   rstd_r = 1 / sqrt(var_r + eps),  yhat(r, k) = (X(r, k) - mu_r) rstd_r
//   Y(r, k) = gamma(k) yhat(r, k) + beta(k)
//
// eps defaults to 1e-12, the variance epsilon of tf.contrib.layers.layer_norm that BERT4Rec's
// authors' code calls (FeiSun/BERT4Rec, modeling.py, layer_norm); PyTorch's nn.LayerNorm(eps=1e-12)
// computes the same function.
//
// Shapes: X, Y [R x d] (Y may be X itself: each row is read before it is written), gamma, beta [d];
// dY, dX [R x d]; dgamma, dbeta [d]. The cache keeps yhat [R x d] and rstd [R].
// One thread per row in the forward and for dX, one thread per column for dgamma / dbeta (rows
// summed in order): no atomics, no result depends on the thread count or on the other rows.

#include <cmath>
#include <cstddef>
#include <string>

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>

namespace embsr {

inline constexpr double kLayerNormEps = 1e-12;

template <class Scalar, class MemorySpace>
struct LayerNormCache {
  int num_rows = -1, dim = -1;        // the forward pass held (-1: none yet)
  MatRef<Scalar, MemorySpace> yhat;   // [R x d] (X - mu) rstd
  VecRef<Scalar, MemorySpace> rstd;   // [R]     1 / sqrt(var + eps)
  Mat<Scalar, MemorySpace> yhat_storage;
  Vec<Scalar, MemorySpace> rstd_storage;
};

// X [R x d] -> Y [R x d].
template <class ExecSpace, class Scalar, class MemorySpace, class XV, class GV, class BV, class YV>
void layer_norm_forward(const ExecSpace& exec, const XV& X, const GV& gamma, const BV& beta, const YV& Y,
                        LayerNormCache<Scalar, MemorySpace>& cache, const double eps = kLayerNormEps) {
  assert_accessible<ExecSpace, XV, GV, BV, YV, MatRef<Scalar, MemorySpace>>();
  static_assert(XV::rank == 2 && YV::rank == 2 && GV::rank == 1 && BV::rank == 1,
                "layer_norm_forward: X and Y are 2-D, gamma and beta 1-D");
  using S = Scalar;
  const char* who = "layer_norm_forward";
  const std::size_t R = X.extent(0), d = X.extent(1);
  require_shape(who, "Y", Y, R, d);
  require_length(who, "gamma", gamma, d);
  require_length(who, "beta", beta, d);
  require(eps > 0, who, "eps must be > 0");
  const auto yhat = cache.yhat = ensure(cache.yhat_storage, R, d, "embsr::layer_norm::yhat");
  const auto rstd = cache.rstd = ensure(cache.rstd_storage, R, "embsr::layer_norm::rstd");
  cache.num_rows = static_cast<int>(R);
  cache.dim = static_cast<int>(d);
  if (R == 0 || d == 0) return;
  const int nd = static_cast<int>(d);
  const S e = static_cast<S>(eps);
  Kokkos::parallel_for(
      "embsr::layer_norm::forward", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(R)),
      KOKKOS_LAMBDA(const int r) {
        S mu = 0;
        for (int k = 0; k < nd; ++k) mu += static_cast<S>(X(r, k));
        mu /= static_cast<S>(nd);
        S var = 0;
        for (int k = 0; k < nd; ++k) {
          const S c = static_cast<S>(X(r, k)) - mu;
          var += c * c;
        }
        var /= static_cast<S>(nd);
        const S rs = S(1) / math::sqrt(var + e);
        rstd(r) = rs;
        for (int k = 0; k < nd; ++k) {
          const S yh = (static_cast<S>(X(r, k)) - mu) * rs;
          yhat(r, k) = yh;
          Y(r, k) = gamma(k) * yh + beta(k);
        }
      });
}

// From Y = gamma yhat + beta, yhat = (X - mu) rstd (per row r, k over the d columns):
//   dgamma(k) += sum_r dY(r, k) yhat(r, k),  dbeta(k) += sum_r dY(r, k)
//   with g = dY * gamma:  d yhat_k / d X_j = rstd (delta_kj - 1/d - yhat_k yhat_j / d), hence
//   dX(r, .) += rstd_r (g - mean_k g_k - yhat(r, .) mean_k (g_k yhat(r, k)))
// dX may be an empty View (not needed); adds into dX, dgamma, dbeta.
template <class ExecSpace, class Scalar, class MemorySpace, class GV, class DYV, class DXV, class DGV, class DBV>
void layer_norm_backward(const ExecSpace& exec, const GV& gamma, const LayerNormCache<Scalar, MemorySpace>& cache,
                         const DYV& dY, const DXV& dX, const DGV& dgamma, const DBV& dbeta) {
  assert_accessible<ExecSpace, GV, DYV, DXV, DGV, DBV, MatRef<Scalar, MemorySpace>>();
  static_assert(DYV::rank == 2 && DXV::rank == 2 && GV::rank == 1 && DGV::rank == 1 && DBV::rank == 1,
                "layer_norm_backward: dY and dX are 2-D, gamma, dgamma and dbeta 1-D");
  using S = Scalar;
  const char* who = "layer_norm_backward";
  require(cache.num_rows >= 0, who, "the cache holds no forward pass");
  const std::size_t R = static_cast<std::size_t>(cache.num_rows), d = static_cast<std::size_t>(cache.dim);
  require_shape(who, "dY", dY, R, d);
  if (dX.extent(0) != 0) require_shape(who, "dX (empty or [R x d])", dX, R, d);
  require_length(who, "gamma", gamma, d);
  require_length(who, "dgamma", dgamma, d);
  require_length(who, "dbeta", dbeta, d);
  if (R == 0 || d == 0) return;
  const auto yhat = cache.yhat;
  const auto rstd = cache.rstd;
  const int nR = static_cast<int>(R), nd = static_cast<int>(d);
  Kokkos::parallel_for(
      "embsr::layer_norm::param_grad", Kokkos::RangePolicy<ExecSpace>(exec, 0, nd), KOKKOS_LAMBDA(const int k) {
        S g = 0, b = 0;
        for (int r = 0; r < nR; ++r) {
          g += static_cast<S>(dY(r, k)) * yhat(r, k);
          b += static_cast<S>(dY(r, k));
        }
        dgamma(k) += g;
        dbeta(k) += b;
      });
  if (dX.extent(0) == 0) return;
  Kokkos::parallel_for(
      "embsr::layer_norm::input_grad", Kokkos::RangePolicy<ExecSpace>(exec, 0, nR), KOKKOS_LAMBDA(const int r) {
        S mg = 0, mgy = 0;
        for (int k = 0; k < nd; ++k) {
          const S g = static_cast<S>(dY(r, k)) * gamma(k);
          mg += g;
          mgy += g * yhat(r, k);
        }
        mg /= static_cast<S>(nd);
        mgy /= static_cast<S>(nd);
        const S rs = rstd(r);
        for (int k = 0; k < nd; ++k) {
          const S g = static_cast<S>(dY(r, k)) * gamma(k);
          dX(r, k) += rs * (g - mg - yhat(r, k) * mgy);
        }
      });
}

}  // namespace embsr
