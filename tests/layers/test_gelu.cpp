// The exact GELU, layers/gelu.hpp (BERT4Rec, Sun et al., CIKM 2019, Sec. 3.3; FeiSun/BERT4Rec's
// modeling.py gelu): the forward against x Phi(x) computed on the host with std::erf, central-
// difference gradients of every coordinate of X, that the backward adds, and shape checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/gelu.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_gelu {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using DV = std::vector<double>;
template <class M>
using Mat = embsr::Mat<double, M>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("gelu: forward is x Phi(x) and the backward matches central differences", "[layers][gelu]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int n = 4, m = 5;
  Mat<M> X("X", n, m), Y("Y", n, m), Rm("R", n, m), dX("dX", n, m);
  embsr::test::fill_random(X, 7, 3.0);  // values across [-3, 3]: both tails and the bend
  embsr::test::fill_random(Rm, 8);
  embsr::test::fill_random(dX, 9);
  auto loss = [&] {
    embsr::gelu_forward(Exec(), X, Y);
    Kokkos::fence();
    return embsr::test::dot(Y, Rm);
  };
  loss();
  const DV x = embsr::test::to_vector(X), y = embsr::test::to_vector(Y);
  int negative = 0, positive = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = x[i] * 0.5 * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
    CHECK(y[i] == Approx(want).epsilon(1e-14).margin(1e-15));
    negative += x[i] < -0.5;
    positive += x[i] > 0.5;
  }
  CHECK(negative >= 3);
  CHECK(positive >= 3);
  // Not the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): the two differ at x = 2.5.
  {
    Mat<M> a("a", 1, 1), b("b", 1, 1);
    Kokkos::deep_copy(a, 2.5);
    embsr::gelu_forward(Exec(), a, b);
    const double got = embsr::test::to_vector(b)[0];
    const double tanh_form = 0.5 * 2.5 * (1 + std::tanh(std::sqrt(2 / M_PI) * (2.5 + 0.044715 * 2.5 * 2.5 * 2.5)));
    CHECK(got == Approx(2.5 * 0.5 * (1 + std::erf(2.5 / std::sqrt(2.0)))).epsilon(1e-15));
    CHECK(std::abs(got - tanh_form) > 1e-5);
  }

  const DV dX0 = embsr::test::to_vector(dX);
  embsr::gelu_backward(Exec(), X, Rm, dX);
  Kokkos::fence();
  DV analytic = embsr::test::to_vector(dX);
  for (std::size_t i = 0; i < analytic.size(); ++i) analytic[i] -= dX0[i];  // the backward adds
  std::vector<embsr::test::GradTarget<M>> targets{{"X", embsr::test::flat(X), analytic}};
  // Floor 1e-4: in the tails gelu' is ~1e-8, below what central differences of an O(1) loss resolve.
  embsr::test::check_gradients<M>(loss, targets, 1e-6, 1e-5, 0, 1e-4);
}

TEST_CASE("gelu: shape errors", "[layers][gelu]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  using M = Exec::memory_space;
  Mat<M> X("X", 2, 3), bad("bad", 3, 2), dY("dY", 2, 3);
  CHECK_THROWS_AS(embsr::gelu_forward(Exec(), X, bad), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::gelu_backward(Exec(), X, dY, bad), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::gelu_backward(Exec(), X, bad, dY), embsr::InvalidArgument);
}

}  // namespace test_gelu
