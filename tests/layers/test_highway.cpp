// Highway (MODEL.md 3.5): the forward against a host computation of the formula, central-difference
// gradients of every coordinate of both inputs and both parameters, and shape checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/tensor.hpp>
#include <embsr/layers/highway.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_highway {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using DV = std::vector<double>;

template <class M>
using Mat = embsr::Mat<double, M>;
template <class M>
using Vec = embsr::Vec<double, M>;

constexpr int kDim = 4;

double at(const DV& m, int r, int c, int cols) { return m[static_cast<std::size_t>(r * cols + c)]; }

}  // namespace

TEMPLATE_LIST_TEST_CASE("highway: forward against MODEL.md 3.5 and central-difference gradients", "[layers][highway]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int C = 7;
  Mat<M> h0("h0", C, kDim), hlast("hlast", C, kDim), hf("hf", C, kDim), R("R", C, kDim);
  Mat<M> dh0("dh0", C, kDim), dhlast("dhlast", C, kDim);
  Mat<M> W("W_g", kDim, 2 * kDim), dW("dW_g", kDim, 2 * kDim);
  Vec<M> b("b_g", kDim), db("db_g", kDim);
  embsr::test::fill_random(h0, 40);
  embsr::test::fill_random(hlast, 41);
  embsr::test::fill_random(W, 42, 0.5);
  embsr::test::fill_random(b, 43);
  embsr::test::fill_random(R, 44);
  const embsr::HighwayParams<double, M> p{W, b}, g{dW, db};
  embsr::HighwayCache<double, M> cache;
  auto loss = [&] {
    embsr::highway_forward(Exec(), h0, hlast, p, hf, cache);
    Kokkos::fence();
    return embsr::test::dot(hf, R);
  };
  loss();
  const DV x0 = embsr::test::to_vector(h0), xl = embsr::test::to_vector(hlast), w = embsr::test::to_vector(W),
           bb = embsr::test::to_vector(b), y = embsr::test::to_vector(hf);
  for (int i = 0; i < C; ++i)
    for (int o = 0; o < kDim; ++o) {
      double pre = bb[static_cast<std::size_t>(o)];
      for (int k = 0; k < kDim; ++k)
        pre += at(w, o, k, 2 * kDim) * at(x0, i, k, kDim) + at(w, o, kDim + k, 2 * kDim) * at(xl, i, k, kDim);
      const double gate = 1 / (1 + std::exp(-pre));
      CHECK(at(y, i, o, kDim) == Approx(gate * at(x0, i, o, kDim) + (1 - gate) * at(xl, i, o, kDim)).epsilon(1e-12).margin(1e-12));
    }
  embsr::test::fill_random(dh0, 45);
  embsr::test::fill_random(dhlast, 46);
  embsr::test::fill_random(dW, 47);
  embsr::test::fill_random(db, 48);
  const DV a0 = embsr::test::to_vector(dh0), al = embsr::test::to_vector(dhlast), aw = embsr::test::to_vector(dW),
           ab = embsr::test::to_vector(db);
  embsr::highway_backward(Exec(), h0, hlast, p, cache, R, dh0, dhlast, g);
  Kokkos::fence();
  auto added = [](const DV& now, const DV& before) {
    DV out(now);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] -= before[i];
    return out;
  };
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"h0", embsr::test::flat(h0), added(embsr::test::to_vector(dh0), a0)},
                         {"hlast", embsr::test::flat(hlast), added(embsr::test::to_vector(dhlast), al)},
                         {"W_g", embsr::test::flat(W), added(embsr::test::to_vector(dW), aw)},
                         {"b_g", embsr::test::flat(b), added(embsr::test::to_vector(db), ab)}};
  embsr::test::check_gradients<M>(loss, targets);
}

TEST_CASE("highway: shape mismatches are rejected", "[layers][highway]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  Mat<M> h("h", 3, kDim), hn("hn", 3, kDim);
  Mat<M> W("W", kDim, kDim);
  Vec<M> b("b", kDim);
  embsr::HighwayCache<double, M> hc;
  CHECK_THROWS_AS(embsr::highway_forward(Exec(), h, hn, embsr::HighwayParams<double, M>{W, b}, hn, hc),
                  embsr::InvalidArgument);
  Mat<M> W2("W2", kDim, 2 * kDim), bad("bad", 2, kDim);
  const embsr::HighwayParams<double, M> p{W2, b};
  CHECK_THROWS_AS(embsr::highway_forward(Exec(), h, bad, p, hn, hc), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::highway_forward(Exec(), h, hn, p, bad, hc), embsr::InvalidArgument);
  CHECK_NOTHROW(embsr::highway_forward(Exec(), h, hn, p, hn, hc));
  Mat<M> dh0("dh0", 3, kDim), dhl("dhl", 3, kDim), dW("dW", kDim, 2 * kDim);
  Vec<M> db("db", kDim);
  const embsr::HighwayParams<double, M> g{dW, db};
  CHECK_THROWS_AS(embsr::highway_backward(Exec(), h, hn, p, hc, bad, dh0, dhl, g), embsr::InvalidArgument);
  CHECK_NOTHROW(embsr::highway_backward(Exec(), h, hn, p, hc, hn, dh0, dhl, g));
}

}  // namespace test_highway
