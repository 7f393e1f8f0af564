// The linear layer (Y = X W^T + b): forward and central-difference gradients. (The GEMM under it:
// tests/core/test_gemm.cpp.)
#include <catch2/catch.hpp>

#include <embsr/layers/linear.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_linear {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

template <class M>
using Mat = Kokkos::View<double**, Kokkos::LayoutRight, M>;
template <class M>
using Vec = Kokkos::View<double*, M>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("linear: forward and central-difference gradients", "[layers][linear]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int n = 4, in = 3, out = 5;
  Mat<M> X("X", n, in), W("W", out, in), Y("Y", n, out), R("R", n, out);
  Mat<M> dX("dX", n, in), dW("dW", out, in);
  Vec<M> b("b", out), db("db", out);
  embsr::test::fill_random(X, 11);
  embsr::test::fill_random(W, 12);
  embsr::test::fill_random(b, 13);
  embsr::test::fill_random(R, 14);

  auto loss = [&] {
    embsr::linear_forward(Exec(), X, W, b, Y);
    Kokkos::fence();
    return embsr::test::dot(Y, R);
  };
  loss();
  // Forward against the definition.
  const auto x = embsr::test::to_vector(X), w = embsr::test::to_vector(W), bb = embsr::test::to_vector(b),
             y = embsr::test::to_vector(Y);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < out; ++j) {
      double ref = bb[static_cast<std::size_t>(j)];
      for (int p = 0; p < in; ++p) ref += x[static_cast<std::size_t>(i * in + p)] * w[static_cast<std::size_t>(j * in + p)];
      CHECK(y[static_cast<std::size_t>(i * out + j)] == Approx(ref).epsilon(1e-12));
    }
  embsr::linear_backward(Exec(), X, W, R, dX, dW, db);
  Kokkos::fence();
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"X", embsr::test::flat(X), embsr::test::to_vector(dX)},
                         {"W", embsr::test::flat(W), embsr::test::to_vector(dW)},
                         {"b", embsr::test::flat(b), embsr::test::to_vector(db)}};
  embsr::test::check_gradients<M>(loss, targets);
}

}  // namespace test_linear
