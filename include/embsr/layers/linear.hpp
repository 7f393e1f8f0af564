#pragma once
// Linear layer in PyTorch's convention: Y = X W^T + b, W stored [out x in].

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/parallel.hpp>

namespace embsr {

// Y[n x out] = X[n x in] W[out x in]^T + b[out]      (b may be an empty View: no bias)
template <class ExecSpace, class XV, class WV, class BV, class YV>
void linear_forward(const ExecSpace& exec, const XV& X, const WV& W, const BV& b, const YV& Y) {
  assert_accessible<ExecSpace, XV, WV, BV, YV>();
  if (b.extent(0) != 0) require_length("linear_forward", "b", b, Y.extent(1));
  using S = typename YV::non_const_value_type;
  gemm(exec, Trans::No, Trans::Yes, S(1), X, W, S(0), Y);
  if (b.extent(0) == 0) return;
  const int n = static_cast<int>(Y.extent(0)), out = static_cast<int>(Y.extent(1));
  parallel_for_2d(exec, "embsr::linear_bias", n, out,
      KOKKOS_LAMBDA(const int i, const int j) { Y(i, j) += b(j); });
}

// From Y = X W^T + b:  dX += dY W,  dW += dY^T X,  db += sum over rows of dY.
// dX and db may be empty Views (not needed). Adds into the gradient buffers.
template <class ExecSpace, class XV, class WV, class DYV, class DXV, class DWV, class DBV>
void linear_backward(const ExecSpace& exec, const XV& X, const WV& W, const DYV& dY, const DXV& dX, const DWV& dW,
                     const DBV& db) {
  assert_accessible<ExecSpace, XV, WV, DYV, DXV, DWV, DBV>();
  if (db.extent(0) != 0) require_length("linear_backward", "db", db, dY.extent(1));
  using S = typename DYV::non_const_value_type;
  if (dX.extent(0) != 0) gemm(exec, Trans::No, Trans::No, S(1), dY, W, S(1), dX);
  gemm(exec, Trans::Yes, Trans::No, S(1), dY, X, S(1), dW);
  if (db.extent(0) == 0) return;
  add_column_sums(exec, "embsr::linear_bias_grad", dY, db);  // fixed summation order: thread-count independent
}

}  // namespace embsr
