#pragma once
// The highway network that mixes the layer-0 and last-layer node states of the session graph
// (MODEL.md 3.5, paper eq. 11):
//   g = sigmoid(W_g [h^0_i ; h^last_i] + b_g),  h^f_i = g * h^0_i + (1 - g) * h^last_i
// over the batch's C nodes ([C x d] arrays). The gate's linear map is one GEMM over all nodes.

#include <cstddef>
#include <string>
#include <utility>

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
struct HighwayParams {
  MatRef<Scalar, MemorySpace> W_g;  // [d x 2d], acting on [h0 ; hlast]
  VecRef<Scalar, MemorySpace> b_g;  // [d]
};

template <class Scalar, class MemorySpace>
struct HighwayCache {
  Mat<Scalar, MemorySpace> x;     // [C x 2d] [h0 ; hlast]
  Mat<Scalar, MemorySpace> gate;  // [C x d]  g
  mutable Mat<Scalar, MemorySpace> grad_pre;  // [C x d] backward scratch: dL/d(pre-activation of g)
};

// h0[C x d], hlast[C x d] -> hf[C x d]:  g = sigmoid([h0 ; hlast] W_g^T + b_g), hf = g h0 + (1 - g) hlast
template <class ExecSpace, class Scalar, class MemorySpace, class H0V, class HLV, class HFV>
void highway_forward(const ExecSpace& exec, const H0V& h0, const HLV& hlast, const HighwayParams<Scalar, MemorySpace>& p,
                     const HFV& hf, HighwayCache<Scalar, MemorySpace>& cache) {
  assert_accessible<ExecSpace, H0V, HLV, HFV, MatRef<Scalar, MemorySpace>>();
  using S = Scalar;
  const int C = static_cast<int>(h0.extent(0)), d = static_cast<int>(h0.extent(1));
  const auto uC = static_cast<std::size_t>(C), ud = static_cast<std::size_t>(d);
  require_shape("highway_forward", "hlast", hlast, uC, ud);
  require_shape("highway_forward", "hf", hf, uC, ud);
  require_shape("highway_forward", "W_g", p.W_g, ud, 2 * ud);
  if (p.b_g.extent(0) != 0) require_length("highway_forward", "b_g", p.b_g, ud);
  const auto x = ensure(cache.x, uC, 2 * ud, "embsr::highway::x");
  const auto gate = ensure(cache.gate, uC, ud, "embsr::highway::gate");
  parallel_for_2d(exec, "embsr::highway::concat", C, 2 * d,
      KOKKOS_LAMBDA(const int i, const int j) { x(i, j) = j < d ? h0(i, j) : hlast(i, j - d); });
  linear_forward(exec, x, p.W_g, p.b_g, gate);
  parallel_for_2d(exec, "embsr::highway::forward", C, d,
      KOKKOS_LAMBDA(const int i, const int j) {
        const S gv = math::sigmoid(gate(i, j));
        gate(i, j) = gv;
        hf(i, j) = gv * h0(i, j) + (S(1) - gv) * hlast(i, j);
      });
}

// dhf[C x d] -> dh0, dhlast [C x d] (add), g.W_g, g.b_g (add).
//   hf = g h0 + (1 - g) hlast:  dh0 += g dhf,  dhlast += (1 - g) dhf,  dg = dhf (h0 - hlast)
//   g = sigmoid(pre):           dpre = dg g (1 - g)
//   pre = [h0 ; hlast] W_g^T + b_g:  dW_g += dpre^T [h0 ; hlast], db_g += sum_i dpre_i,
//                                    dh0 += dpre W_g[:, :d],  dhlast += dpre W_g[:, d:]
template <class ExecSpace, class Scalar, class MemorySpace, class H0V, class HLV, class DHFV, class DH0V, class DHLV>
void highway_backward(const ExecSpace& exec, const H0V& h0, const HLV& hlast, const HighwayParams<Scalar, MemorySpace>& p,
                      const HighwayCache<Scalar, MemorySpace>& cache, const DHFV& dhf, const DH0V& dh0,
                      const DHLV& dhlast, const HighwayParams<Scalar, MemorySpace>& g) {
  assert_accessible<ExecSpace, H0V, HLV, DHFV, DH0V, DHLV, MatRef<Scalar, MemorySpace>>();
  using S = Scalar;
  const int C = static_cast<int>(h0.extent(0)), d = static_cast<int>(h0.extent(1));
  const auto uC = static_cast<std::size_t>(C), ud = static_cast<std::size_t>(d);
  require_shape("highway_backward", "hlast", hlast, uC, ud);
  require_shape("highway_backward", "dhf", dhf, uC, ud);
  require_shape("highway_backward", "dh0", dh0, uC, ud);
  require_shape("highway_backward", "dhlast", dhlast, uC, ud);
  require_shape("highway_backward", "W_g", p.W_g, ud, 2 * ud);
  require_shape("highway_backward", "gradient of W_g", g.W_g, ud, 2 * ud);
  require(cache.gate.extent(0) >= uC && cache.gate.extent(1) == ud, "highway_backward",
          "the cache does not hold a forward pass of these inputs");
  const MatRef<S, MemorySpace> x(cache.x.data(), uC, 2 * ud), gate(cache.gate.data(), uC, ud);
  const auto dpre = ensure(cache.grad_pre, uC, ud, "embsr::highway::grad_pre");
  parallel_for_2d(exec, "embsr::highway::backward", C, d,
      KOKKOS_LAMBDA(const int i, const int j) {
        const S gv = gate(i, j), dy = dhf(i, j);
        dpre(i, j) = dy * (h0(i, j) - hlast(i, j)) * gv * (S(1) - gv);
        dh0(i, j) += gv * dy;
        dhlast(i, j) += (S(1) - gv) * dy;
      });
  linear_backward(exec, x, p.W_g, dpre, MatRef<S, MemorySpace>(), g.W_g, g.b_g);
  const auto W0 = Kokkos::subview(p.W_g, Kokkos::ALL, std::make_pair(0, d));
  const auto W1 = Kokkos::subview(p.W_g, Kokkos::ALL, std::make_pair(d, 2 * d));
  gemm(exec, Trans::No, Trans::No, S(1), dpre, W0, S(1), dh0);
  gemm(exec, Trans::No, Trans::No, S(1), dpre, W1, S(1), dhlast);
}

}  // namespace embsr
