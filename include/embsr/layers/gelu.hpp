#pragma once
// The Gaussian Error Linear Unit (Hendrycks & Gimpel 2016), element-wise, in its exact form
//
//   gelu(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))
//
// as BERT4Rec's paper defines it (Sun et al., CIKM 2019, Sec. 3.3, "GELU(x) = x Phi(x)" with Phi
// the standard Gaussian CDF) and as its authors' code computes it (FeiSun/BERT4Rec, modeling.py,
// gelu: cdf = 0.5 * (1 + tf.erf(x / sqrt(2)))). Not the tanh approximation
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), which that code does not use.
//
// Shapes: X, Y, dY, dX [n x m] (any 2-D Views of one shape). Y may be X itself (in place) only when
// the backward is not needed: the backward reads the pre-activation X. No cache: X is all the
// backward needs.

#include <cmath>

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>

namespace embsr {

namespace detail {

template <class S>
KOKKOS_INLINE_FUNCTION S gelu_value(S x) {
  return S(0.5) * x * (S(1) + math::kmath::erf(x * S(0.70710678118654752440)));
}
// d gelu / dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
template <class S>
KOKKOS_INLINE_FUNCTION S gelu_derivative(S x) {
  const S cdf = S(0.5) * (S(1) + math::kmath::erf(x * S(0.70710678118654752440)));
  const S pdf = S(0.39894228040143267794) * math::exp(S(-0.5) * x * x);
  return cdf + x * pdf;
}

}  // namespace detail

// Y = gelu(X), element-wise.
template <class ExecSpace, class XV, class YV>
void gelu_forward(const ExecSpace& exec, const XV& X, const YV& Y) {
  assert_accessible<ExecSpace, XV, YV>();
  static_assert(XV::rank == 2 && YV::rank == 2, "gelu_forward: X and Y are 2-D");
  using S = typename YV::non_const_value_type;
  require_shape("gelu_forward", "Y", Y, X.extent(0), X.extent(1));
  if (X.extent(0) == 0 || X.extent(1) == 0) return;
  parallel_for_2d(exec, "embsr::gelu::forward", X.extent(0), X.extent(1), KOKKOS_LAMBDA(const int i, const int j) {
    Y(i, j) = detail::gelu_value<S>(static_cast<S>(X(i, j)));
  });
}

// From Y = gelu(X):  dX += dY * gelu'(X),  gelu'(x) = Phi(x) + x phi(x)
// (d/dx [x Phi(x)] = Phi(x) + x Phi'(x), Phi' = phi the standard Gaussian density). Adds.
template <class ExecSpace, class XV, class DYV, class DXV>
void gelu_backward(const ExecSpace& exec, const XV& X, const DYV& dY, const DXV& dX) {
  assert_accessible<ExecSpace, XV, DYV, DXV>();
  static_assert(XV::rank == 2 && DYV::rank == 2 && DXV::rank == 2, "gelu_backward: X, dY and dX are 2-D");
  using S = typename DXV::non_const_value_type;
  require_shape("gelu_backward", "dY", dY, X.extent(0), X.extent(1));
  require_shape("gelu_backward", "dX", dX, X.extent(0), X.extent(1));
  if (X.extent(0) == 0 || X.extent(1) == 0) return;
  parallel_for_2d(exec, "embsr::gelu::backward", X.extent(0), X.extent(1), KOKKOS_LAMBDA(const int i, const int j) {
    dX(i, j) += static_cast<S>(dY(i, j)) * detail::gelu_derivative<S>(static_cast<S>(X(i, j)));
  });
}

}  // namespace embsr
