// The session vector m of MODEL.md 5 (layers/fusion.hpp) in its three modes: the learned gate, a
// fixed beta (ablation) and the EMBSR-NF MLP; forwards against host computations of the formulas
// and central-difference gradients of every coordinate of z, x and the parameters.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include <embsr/layers/fusion.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_fusion {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

template <class M>
using Mat = Kokkos::View<double**, Kokkos::LayoutRight, M>;
template <class M>
using Vec = Kokkos::View<double*, Kokkos::LayoutRight, M>;

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::size_t at(int i, int cols, int j) { return static_cast<std::size_t>(i * cols + j); }

const embsr::FusionOptions gate{embsr::FusionKind::Gate, 0.5};
embsr::FusionOptions fixed(double beta) { return embsr::FusionOptions{embsr::FusionKind::Fixed, beta}; }

}  // namespace

TEMPLATE_LIST_TEST_CASE("fusion: learned gate, forward and central-difference gradients", "[layers][fusion]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int B = 3, d = 4;
  Mat<M> z("z", B, d), x("x", B, d), W("W_f", d, 2 * d), m("m", B, d), R("R", B, d);
  Mat<M> dz("dz", B, d), dx("dx", B, d), dW("dW_f", d, 2 * d);
  Vec<M> b("b_f", d), db("db_f", d);
  embsr::test::fill_random(z, 41);
  embsr::test::fill_random(x, 42);
  embsr::test::fill_random(W, 43, 0.5);
  embsr::test::fill_random(b, 44, 0.5);
  embsr::test::fill_random(R, 45);
  const embsr::FusionParams<double, M> p{W, b}, g{dW, db};
  embsr::FusionCache<double, M> cache;

  auto loss = [&] {
    embsr::fusion_forward(Exec(), z, x, p, gate, m, cache);
    Kokkos::fence();
    return embsr::test::dot(m, R);
  };
  loss();
  const auto zv = embsr::test::to_vector(z), xv = embsr::test::to_vector(x), wv = embsr::test::to_vector(W),
             bv = embsr::test::to_vector(b), mv = embsr::test::to_vector(m),
             betav = embsr::test::to_vector(cache.beta);
  for (int i = 0; i < B; ++i)
    for (int j = 0; j < d; ++j) {
      double pre = bv[static_cast<std::size_t>(j)];
      for (int k = 0; k < d; ++k) pre += wv[at(j, 2 * d, k)] * zv[at(i, d, k)] + wv[at(j, 2 * d, d + k)] * xv[at(i, d, k)];
      const double beta = sigmoid(pre);
      CHECK(betav[at(i, d, j)] == Approx(beta).epsilon(1e-12));
      CHECK(mv[at(i, d, j)] == Approx(beta * zv[at(i, d, j)] + (1 - beta) * xv[at(i, d, j)]).epsilon(1e-12));
    }

  embsr::fusion_backward(Exec(), z, x, p, gate, cache, R, dz, dx, g);
  Kokkos::fence();
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"z", embsr::test::flat(z), embsr::test::to_vector(dz)},
                         {"x", embsr::test::flat(x), embsr::test::to_vector(dx)},
                         {"W_f", embsr::test::flat(W), embsr::test::to_vector(dW)},
                         {"b_f", embsr::test::flat(b), embsr::test::to_vector(db)}};
  embsr::test::check_gradients<M>(loss, targets);

  // The backward adds: a second call doubles every gradient.
  loss();
  embsr::fusion_backward(Exec(), z, x, p, gate, cache, R, dz, dx, g);
  Kokkos::fence();
  const std::vector<std::vector<double>> twice{embsr::test::to_vector(dz), embsr::test::to_vector(dx),
                                               embsr::test::to_vector(dW), embsr::test::to_vector(db)};
  for (std::size_t k = 0; k < targets.size(); ++k)
    for (std::size_t i = 0; i < twice[k].size(); ++i) CHECK(twice[k][i] == Approx(2 * targets[k].analytic[i]).epsilon(1e-12));
}

TEMPLATE_LIST_TEST_CASE("fusion: fixed beta (ablation), forward and gradients of z and x only", "[layers][fusion]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int B = 2, d = 5;
  Mat<M> z("z", B, d), x("x", B, d), m("m", B, d), R("R", B, d), dz("dz", B, d), dx("dx", B, d);
  embsr::test::fill_random(z, 51);
  embsr::test::fill_random(x, 52);
  embsr::test::fill_random(R, 53);
  const embsr::FusionParams<double, M> none{};  // no parameters needed
  embsr::FusionCache<double, M> cache;
  for (double fb : {0.0, 0.3, 1.0}) {
    auto loss = [&] {
      embsr::fusion_forward(Exec(), z, x, none, fixed(fb), m, cache);
      Kokkos::fence();
      return embsr::test::dot(m, R);
    };
    loss();
    const auto zv = embsr::test::to_vector(z), xv = embsr::test::to_vector(x), mv = embsr::test::to_vector(m);
    for (std::size_t i = 0; i < mv.size(); ++i) CHECK(mv[i] == Approx(fb * zv[i] + (1 - fb) * xv[i]).epsilon(1e-14));
    Kokkos::deep_copy(dz, 0.0);
    Kokkos::deep_copy(dx, 0.0);
    embsr::fusion_backward(Exec(), z, x, none, fixed(fb), cache, R, dz, dx, none);
    Kokkos::fence();
    using T = embsr::test::GradTarget<M>;
    std::vector<T> targets{{"z", embsr::test::flat(z), embsr::test::to_vector(dz)},
                           {"x", embsr::test::flat(x), embsr::test::to_vector(dx)}};
    embsr::test::check_gradients<M>(loss, targets);
  }
  CHECK(cache.beta.extent(0) == 0);  // the gate's cache is never touched
}

TEST_CASE("fusion: bad shapes and arguments are rejected", "[layers][fusion]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  Mat<M> z("z", 2, 3), x("x", 2, 3), m("m", 2, 3), W("W", 3, 5), dz("dz", 2, 3), dx("dx", 2, 3);
  Vec<M> b("b", 3);
  embsr::FusionCache<double, M> cache;
  const embsr::FusionParams<double, M> bad{W, b};
  CHECK_THROWS_AS(embsr::fusion_forward(Exec(), z, x, bad, gate, m, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::fusion_forward(Exec(), z, x, bad, fixed(1.5), m, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::fusion_forward(Exec(), z, x, bad, embsr::FusionOptions{embsr::FusionKind::Mlp, 0.5}, m, cache),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::fusion_forward(Exec(), z, x, bad, fixed(-0.5), m, cache), embsr::InvalidArgument);
  Mat<M> W6("W6", 3, 6), x3("x3", 3, 3);
  const embsr::FusionParams<double, M> good{W6, b};
  CHECK_THROWS_AS(embsr::fusion_forward(Exec(), z, x3, good, gate, m, cache), embsr::InvalidArgument);
  // Backward of the learned gate without its forward.
  CHECK_THROWS_AS(embsr::fusion_backward(Exec(), z, x, good, gate, cache, m, dz, dx, good), embsr::InvalidArgument);
}

TEMPLATE_LIST_TEST_CASE("fusion: MLP (EMBSR-NF), forward and central-difference gradients", "[layers][fusion]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int B = 3, d = 4;
  Mat<M> z("z", B, d), x("x", B, d), W("W", d, 2 * d), m("m", B, d), R("R", B, d);
  Mat<M> dz("dz", B, d), dx("dx", B, d), dW("dW", d, 2 * d);
  Vec<M> b("b", d), db("db", d);
  embsr::test::fill_random(z, 71);
  embsr::test::fill_random(x, 72);
  embsr::test::fill_random(W, 73, 0.5);
  embsr::test::fill_random(b, 74, 0.5);
  embsr::test::fill_random(R, 75);
  const embsr::FusionParams<double, M> p{W, b}, g{dW, db};
  const embsr::FusionOptions mlp{embsr::FusionKind::Mlp, 0.5};
  embsr::FusionCache<double, M> cache;

  auto loss = [&] {
    embsr::fusion_forward(Exec(), z, x, p, mlp, m, cache);
    Kokkos::fence();
    return embsr::test::dot(m, R);
  };
  loss();
  const auto zv = embsr::test::to_vector(z), xv = embsr::test::to_vector(x), wv = embsr::test::to_vector(W),
             bv = embsr::test::to_vector(b), mv = embsr::test::to_vector(m);
  for (int i = 0; i < B; ++i)
    for (int j = 0; j < d; ++j) {
      double want = bv[static_cast<std::size_t>(j)];
      for (int k = 0; k < d; ++k) want += wv[at(j, 2 * d, k)] * zv[at(i, d, k)] + wv[at(j, 2 * d, d + k)] * xv[at(i, d, k)];
      CHECK(mv[at(i, d, j)] == Approx(want).epsilon(1e-12));
    }
  CHECK(cache.beta.extent(0) == 0);  // no gate

  embsr::fusion_backward(Exec(), z, x, p, mlp, cache, R, dz, dx, g);
  Kokkos::fence();
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"z", embsr::test::flat(z), embsr::test::to_vector(dz)},
                         {"x", embsr::test::flat(x), embsr::test::to_vector(dx)},
                         {"W", embsr::test::flat(W), embsr::test::to_vector(dW)},
                         {"b", embsr::test::flat(b), embsr::test::to_vector(db)}};
  embsr::test::check_gradients<M>(loss, targets);

  // The backward adds: a second call doubles every gradient.
  loss();
  embsr::fusion_backward(Exec(), z, x, p, mlp, cache, R, dz, dx, g);
  Kokkos::fence();
  const std::vector<std::vector<double>> twice{embsr::test::to_vector(dz), embsr::test::to_vector(dx),
                                               embsr::test::to_vector(dW), embsr::test::to_vector(db)};
  for (std::size_t k = 0; k < targets.size(); ++k)
    for (std::size_t i = 0; i < twice[k].size(); ++i) CHECK(twice[k][i] == Approx(2 * targets[k].analytic[i]).epsilon(1e-12));

  // Only dz, or only dx.
  Mat<M> dz2("dz2", B, d), dW2("dW2", d, 2 * d);
  Vec<M> db2("db2", d);
  embsr::fusion_backward(Exec(), z, x, p, mlp, cache, R, dz2, Mat<M>(), embsr::FusionParams<double, M>{dW2, db2});
  Kokkos::fence();
  const auto dz2v = embsr::test::to_vector(dz2);
  for (std::size_t i = 0; i < dz2v.size(); ++i) CHECK(dz2v[i] == Approx(targets[0].analytic[i]).epsilon(1e-12));
}

}  // namespace test_fusion
