// LayerNorm with gain and bias, layers/layer_norm.hpp (eps 1e-12 as tf.contrib.layers.layer_norm in
// FeiSun/BERT4Rec's modeling.py): the forward against the formula on the host, central-difference
// gradients of every coordinate of X, gamma and beta, that the backward adds, that dX may be empty,
// in-place use, and shape checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/layer_norm.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_layer_norm {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using DV = std::vector<double>;
template <class M>
using Mat = embsr::Mat<double, M>;
template <class M>
using Vec = embsr::Vec<double, M>;

DV added(const DV& now, const DV& before) {
  DV out(now);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] -= before[i];
  return out;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("layer_norm: forward against the formula and central-difference gradients", "[layers][layer_norm]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int R = 5, d = 4;
  Mat<M> X("X", R, d), Y("Y", R, d), Rm("R", R, d), dX("dX", R, d);
  Vec<M> gamma("gamma", d), beta("beta", d), dgamma("dgamma", d), dbeta("dbeta", d);
  embsr::test::fill_random(X, 1, 2.0);
  embsr::test::fill_random(Rm, 2);
  embsr::test::fill_random(dX, 3);
  embsr::test::fill_random(gamma, 4);
  embsr::test::fill_random(beta, 5);
  embsr::test::fill_random(dgamma, 6);
  embsr::test::fill_random(dbeta, 7);
  embsr::LayerNormCache<double, M> cache;
  auto loss = [&] {
    embsr::layer_norm_forward(Exec(), X, gamma, beta, Y, cache);
    Kokkos::fence();
    return embsr::test::dot(Y, Rm);
  };
  loss();
  const DV x = embsr::test::to_vector(X), y = embsr::test::to_vector(Y), g = embsr::test::to_vector(gamma),
           bt = embsr::test::to_vector(beta);
  for (int r = 0; r < R; ++r) {
    double mu = 0, var = 0;
    for (int k = 0; k < d; ++k) mu += x[static_cast<std::size_t>(r * d + k)] / d;
    for (int k = 0; k < d; ++k) var += std::pow(x[static_cast<std::size_t>(r * d + k)] - mu, 2) / d;
    for (int k = 0; k < d; ++k) {
      const auto i = static_cast<std::size_t>(r * d + k);
      const double want = g[static_cast<std::size_t>(k)] * (x[i] - mu) / std::sqrt(var + 1e-12) + bt[static_cast<std::size_t>(k)];
      CHECK(y[i] == Approx(want).epsilon(1e-13).margin(1e-13));
    }
  }

  const DV dX0 = embsr::test::to_vector(dX), dg0 = embsr::test::to_vector(dgamma), db0 = embsr::test::to_vector(dbeta);
  embsr::layer_norm_backward(Exec(), gamma, cache, Rm, dX, dgamma, dbeta);
  Kokkos::fence();
  const DV gX = added(embsr::test::to_vector(dX), dX0), gg = added(embsr::test::to_vector(dgamma), dg0),
           gb = added(embsr::test::to_vector(dbeta), db0);
  std::vector<embsr::test::GradTarget<M>> targets{{"X", embsr::test::flat(X), gX},
                                                  {"gamma", embsr::test::flat(gamma), gg},
                                                  {"beta", embsr::test::flat(beta), gb}};
  embsr::test::check_gradients<M>(loss, targets);

  // dX may be empty: the parameter gradients are the same.
  loss();
  Kokkos::deep_copy(dgamma, 0.0);
  Kokkos::deep_copy(dbeta, 0.0);
  embsr::layer_norm_backward(Exec(), gamma, cache, Rm, Mat<M>(), dgamma, dbeta);
  Kokkos::fence();
  const DV g2 = embsr::test::to_vector(dgamma), b2 = embsr::test::to_vector(dbeta);
  for (std::size_t i = 0; i < g2.size(); ++i) {
    CHECK(g2[i] == Approx(gg[i]).epsilon(1e-13).margin(1e-14));
    CHECK(b2[i] == Approx(gb[i]).epsilon(1e-13).margin(1e-14));
  }

  // In place: Y = X gives the same values.
  Mat<M> Z("Z", R, d);
  Kokkos::deep_copy(Z, X);
  embsr::LayerNormCache<double, M> cache2;
  embsr::layer_norm_forward(Exec(), Z, gamma, beta, Z, cache2);
  Kokkos::fence();
  const DV z = embsr::test::to_vector(Z);
  for (std::size_t i = 0; i < z.size(); ++i) CHECK(z[i] == y[i]);
}

TEST_CASE("layer_norm: shape errors", "[layers][layer_norm]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  using M = Exec::memory_space;
  Mat<M> X("X", 2, 3), Y("Y", 2, 3), bad("bad", 3, 2);
  Vec<M> g("g", 3), b("b", 3), short_v("s", 2);
  embsr::LayerNormCache<double, M> cache;
  CHECK_THROWS_AS(embsr::layer_norm_backward(Exec(), g, cache, Y, X, g, b), embsr::InvalidArgument);  // no forward yet
  CHECK_THROWS_AS(embsr::layer_norm_forward(Exec(), X, g, b, bad, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::layer_norm_forward(Exec(), X, short_v, b, Y, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::layer_norm_forward(Exec(), X, g, short_v, Y, cache), embsr::InvalidArgument);
  embsr::layer_norm_forward(Exec(), X, g, b, Y, cache);
  CHECK_THROWS_AS(embsr::layer_norm_backward(Exec(), g, cache, bad, X, g, b), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::layer_norm_backward(Exec(), g, cache, Y, bad, g, b), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::layer_norm_backward(Exec(), g, cache, Y, X, short_v, b), embsr::InvalidArgument);
}

}  // namespace test_layer_norm
