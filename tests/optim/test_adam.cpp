// Adam with AMSGrad against a host transcription of torch.optim.Adam(amsgrad=True).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <embsr/optim/adam.hpp>

#include "exec_spaces.hpp"

namespace test_adam {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

TEMPLATE_LIST_TEST_CASE("adam: matches PyTorch's AMSGrad update step by step", "[train][adam]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t n = 5;
  embsr::AdamOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.1;
  embsr::Adam<Exec, double> adam(n, o);
  Kokkos::View<double*, M> p("p", n), g("g", n);
  std::vector<double> P{0.5, -0.2, 0.0, 1.5, -3.0}, m(n, 0), v(n, 0), vmax(n, 0);
  auto hp = Kokkos::create_mirror_view(p);
  for (std::size_t i = 0; i < n; ++i) hp(i) = P[i];
  Kokkos::deep_copy(p, hp);
  // Gradients that shrink after step 2, so that v falls below its running maximum (AMSGrad matters).
  const std::vector<std::vector<double>> grads{{1, -2, 0.5, 0, 3}, {2, 1, -0.5, 0.1, -3}, {0.01, 0.02, 0.0, -0.01, 0.03}};
  for (std::size_t t = 0; t < grads.size(); ++t) {
    auto hg = Kokkos::create_mirror_view(g);
    for (std::size_t i = 0; i < n; ++i) hg(i) = grads[t][i];
    Kokkos::deep_copy(g, hg);
    adam.step(Exec(), p, g);
    const double step = static_cast<double>(t + 1);
    for (std::size_t i = 0; i < n; ++i) {
      const double gi = grads[t][i] + o.weight_decay * P[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
      vmax[i] = std::max(vmax[i], v[i]);
      const double denom = std::sqrt(vmax[i]) / std::sqrt(1 - std::pow(o.beta2, step)) + o.eps;
      P[i] -= o.lr / (1 - std::pow(o.beta1, step)) * m[i] / denom;
    }
    Kokkos::deep_copy(hp, p);
    for (std::size_t i = 0; i < n; ++i) CHECK(hp(i) == Approx(P[i]).epsilon(1e-12));
  }
  CHECK(adam.steps() == 3);
}

TEST_CASE("adam: invalid options and mismatched sizes are rejected", "[train][adam]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  embsr::AdamOptions o;
  o.lr = 0;
  CHECK_THROWS_AS((embsr::Adam<Exec, float>(3, o)), embsr::InvalidArgument);
  o = embsr::AdamOptions{};
  o.beta2 = 1.0;
  CHECK_THROWS_AS((embsr::Adam<Exec, float>(3, o)), embsr::InvalidArgument);
  embsr::Adam<Exec, float> adam(3, embsr::AdamOptions{});
  Kokkos::View<float*, Exec::memory_space> p("p", 4), g("g", 4);
  CHECK_THROWS_AS(adam.step(Exec(), p, g), embsr::InvalidArgument);
}

}  // namespace test_adam
