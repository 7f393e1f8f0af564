// The sequence LSTM with optional behavior terms (HUP's Behavior-LSTM), layers/sequence_lstm.hpp:
// the forward against a host loop written from the equations, central differences in double on
// every coordinate of X, Bv and every parameter (with and without behavior; sessions of lengths
// 4, 1, 7, 2 and an empty one), the backward adding into its outputs, session invariance, bad shapes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/tensor.hpp>
#include <embsr/layers/sequence_lstm.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_sequence_lstm {

namespace {

using embsr::index_t;
using IV = std::vector<index_t>;
using DV = std::vector<double>;
template <class M>
using Mat = embsr::Mat<double, M>;
template <class M>
using Vec = embsr::Vec<double, M>;

const IV kOffsets{0, 4, 5, 12, 12, 14};  // lengths 4, 1, 7, 0, 2

template <class M>
Kokkos::View<index_t*, M> to_offsets(const IV& v) {
  return embsr::test::to_ids<M>(std::vector<std::int32_t>(v.begin(), v.end()));
}

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

template <class M>
struct Params {
  Mat<M> W_x, W_b, W_h;
  Vec<M> b;
  Params(std::size_t d_in, std::size_t d_b, std::size_t d, bool beh, std::uint64_t seed, double scale = 0.5)
      : W_x("W_x", (beh ? 5 : 4) * d, d_in), W_b("W_b", beh ? 4 * d : 0, beh ? d_b : 0), W_h("W_h", 4 * d, d),
        b("b", (beh ? 5 : 4) * d) {
    embsr::test::fill_random(W_x, seed, scale);
    if (beh) embsr::test::fill_random(W_b, seed + 1, scale);
    embsr::test::fill_random(W_h, seed + 2, scale);
    embsr::test::fill_random(b, seed + 3, scale);
  }
  void zero() {
    Kokkos::deep_copy(W_x, 0.0);
    Kokkos::deep_copy(W_b, 0.0);
    Kokkos::deep_copy(W_h, 0.0);
    Kokkos::deep_copy(b, 0.0);
  }
  embsr::SequenceLstmParams<double, M> refs() const { return {W_x, W_b, W_h, b}; }
};

// Straight from the equations: one session at a time, one row at a time, h_0 = c_0 = 0.
DV reference(const IV& offsets, const DV& x, const DV& bv, std::size_t d_in, std::size_t d_b, std::size_t d, bool beh,
             const DV& W_x, const DV& W_b, const DV& W_h, const DV& bias) {
  const std::size_t R = static_cast<std::size_t>(offsets.back());
  DV H(R * d);
  const std::size_t off = beh ? d : 0, G = off + 4 * d;
  for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
    DV h(d, 0.0), c(d, 0.0), z(G);
    for (auto t = static_cast<std::size_t>(offsets[s]); t < static_cast<std::size_t>(offsets[s + 1]); ++t) {
      for (std::size_t k = 0; k < G; ++k) {
        z[k] = bias[k];
        for (std::size_t q = 0; q < d_in; ++q) z[k] += W_x[k * d_in + q] * x[t * d_in + q];
        if (beh && k < 4 * d)
          for (std::size_t q = 0; q < d_b; ++q) z[k] += W_b[k * d_b + q] * bv[t * d_b + q];
        if (k >= off)
          for (std::size_t q = 0; q < d; ++q) z[k] += W_h[(k - off) * d + q] * h[q];
      }
      for (std::size_t j = 0; j < d; ++j) {
        const double B = beh ? sigmoid(z[j]) : 1.0, i = sigmoid(z[off + j]), f = sigmoid(z[off + d + j]),
                     o = sigmoid(z[off + 2 * d + j]), g = std::tanh(z[off + 3 * d + j]);
        c[j] = f * c[j] + i * B * g;
        h[j] = o * std::tanh(c[j]);
        H[t * d + j] = h[j];
      }
    }
  }
  return H;
}

void same(const char* what, const DV& a, const DV& b, double tol = 0) {
  INFO(what);
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  CHECK(worst <= tol);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("sequence_lstm: forward against the equations; central differences on every coordinate",
                        "[layers][sequence_lstm]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  for (const bool beh : {true, false}) {
    const std::size_t d_in = 3, d_b = 2, d = 3;
    DYNAMIC_SECTION("behavior " << beh) {
      const std::size_t R = static_cast<std::size_t>(kOffsets.back());
      const auto off = to_offsets<M>(kOffsets);
      Mat<M> X("X", R, d_in), Bv("Bv", R, d_b), H("H", R, d), Rm("R", R, d), dX("dX", R, d_in), dBv("dBv", R, d_b);
      embsr::test::fill_random(X, 10);
      embsr::test::fill_random(Bv, 11);
      embsr::test::fill_random(Rm, 12);
      const Params<M> p(d_in, d_b, d, beh, 20, 0.7);
      Params<M> g(d_in, d_b, d, beh, 0);
      g.zero();
      embsr::SequenceLstmCache<double, M> cache;
      auto loss = [&]() {
        embsr::sequence_lstm_forward(Exec(), off, X, Bv, p.refs(), H, cache);
        Kokkos::fence();
        return embsr::test::dot(H, Rm);
      };
      loss();
      using embsr::test::to_vector;
      same("H", to_vector(H),
           reference(kOffsets, to_vector(X), to_vector(Bv), d_in, d_b, d, beh, to_vector(p.W_x), to_vector(p.W_b),
                     to_vector(p.W_h), to_vector(p.b)),
           1e-13);
      embsr::sequence_lstm_backward(Exec(), off, X, Bv, p.refs(), cache, Rm, dX, dBv, g.refs());
      Kokkos::fence();
      using embsr::test::flat;
      std::vector<embsr::test::GradTarget<M>> targets{{"X", flat(X), to_vector(dX)},
                                                      {"W_x", flat(p.W_x), to_vector(g.W_x)},
                                                      {"W_h", flat(p.W_h), to_vector(g.W_h)},
                                                      {"b", flat(p.b), to_vector(g.b)}};
      if (beh) {
        targets.push_back({"Bv", flat(Bv), to_vector(dBv)});
        targets.push_back({"W_b", flat(p.W_b), to_vector(g.W_b)});
      } else {
        for (const double v : to_vector(dBv)) CHECK(v == 0.0);  // no behavior: Bv is not read
      }
      for (const auto& t : targets) {  // a backward writing nothing fails here
        double m = 0;
        for (const double v : t.analytic) m = std::max(m, std::abs(v));
        INFO(t.name);
        CHECK(m > 1e-3);
      }
      CHECK(embsr::test::check_gradients(loss, targets) < 1e-6);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("sequence_lstm: the backward adds; sessions are independent; deterministic",
                        "[layers][sequence_lstm]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t d_in = 3, d_b = 2, d = 4, R = static_cast<std::size_t>(kOffsets.back());
  const Params<M> p(d_in, d_b, d, true, 30);
  Mat<M> X("X", R, d_in), Bv("Bv", R, d_b), Rm("R", R, d);
  embsr::test::fill_random(X, 31);
  embsr::test::fill_random(Bv, 32);
  embsr::test::fill_random(Rm, 33);
  using embsr::test::to_vector;
  struct Run {
    DV H, dX, dBv, W_x, W_b, W_h, b;
  };
  // Forward and backward on rows [r0, r1) as the one session `offsets`, into gradients starting at `g0`.
  auto run = [&](const IV& offsets, std::size_t r0, std::size_t r1, const Params<M>& g, double dx0) {
    const auto rows = std::make_pair(r0, r1);
    Mat<M> Xs("Xs", r1 - r0, d_in), Bs("Bs", r1 - r0, d_b), Rs("Rs", r1 - r0, d), H("H", r1 - r0, d),
        dX("dX", r1 - r0, d_in), dB("dB", r1 - r0, d_b);
    Kokkos::deep_copy(Xs, Kokkos::subview(X, rows, Kokkos::ALL));
    Kokkos::deep_copy(Bs, Kokkos::subview(Bv, rows, Kokkos::ALL));
    Kokkos::deep_copy(Rs, Kokkos::subview(Rm, rows, Kokkos::ALL));
    Kokkos::deep_copy(dX, dx0);
    Kokkos::deep_copy(dB, dx0);
    embsr::SequenceLstmCache<double, M> cache;
    const auto off = to_offsets<M>(offsets);
    embsr::sequence_lstm_forward(Exec(), off, Xs, Bs, p.refs(), H, cache);
    embsr::sequence_lstm_backward(Exec(), off, Xs, Bs, p.refs(), cache, Rs, dX, dB, g.refs());
    Kokkos::fence();
    return Run{to_vector(H), to_vector(dX), to_vector(dB), to_vector(g.W_x), to_vector(g.W_b), to_vector(g.W_h),
               to_vector(g.b)};
  };
  Params<M> g(d_in, d_b, d, true, 0);
  g.zero();
  const Run all = run(kOffsets, 0, R, g, 0.0);
  // Adds: a second backward from the same state, with dX, dBv starting at 1 and the gradients at `all`'s.
  Params<M> g2(d_in, d_b, d, true, 0);
  Kokkos::deep_copy(g2.W_x, g.W_x);
  Kokkos::deep_copy(g2.W_b, g.W_b);
  Kokkos::deep_copy(g2.W_h, g.W_h);
  Kokkos::deep_copy(g2.b, g.b);
  const Run twice = run(kOffsets, 0, R, g2, 1.0);
  for (std::size_t i = 0; i < all.dX.size(); ++i) CHECK(twice.dX[i] == Approx(all.dX[i] + 1.0).epsilon(1e-12));
  for (std::size_t i = 0; i < all.dBv.size(); ++i) CHECK(twice.dBv[i] == Approx(all.dBv[i] + 1.0).epsilon(1e-12));
  for (std::size_t i = 0; i < all.W_h.size(); ++i) CHECK(twice.W_h[i] == Approx(2 * all.W_h[i]).margin(1e-12));
  // Deterministic.
  Params<M> g3(d_in, d_b, d, true, 0);
  g3.zero();
  const Run again = run(kOffsets, 0, R, g3, 0.0);
  CHECK(again.H == all.H);
  CHECK(again.dX == all.dX);
  CHECK(again.W_x == all.W_x);
  // Each session alone gives its rows of the batch's outputs, and the parameter gradients sum.
  DV sum_W_x(all.W_x.size(), 0.0), sum_W_b(all.W_b.size(), 0.0);
  for (std::size_t s = 0; s + 1 < kOffsets.size(); ++s) {
    const auto r0 = static_cast<std::size_t>(kOffsets[s]), r1 = static_cast<std::size_t>(kOffsets[s + 1]);
    if (r0 == r1) continue;
    INFO("session " << s);
    Params<M> gs(d_in, d_b, d, true, 0);
    gs.zero();
    const Run one = run(IV{0, static_cast<index_t>(r1 - r0)}, r0, r1, gs, 0.0);
    same("H", one.H, DV(all.H.begin() + static_cast<long>(r0 * d), all.H.begin() + static_cast<long>(r1 * d)));
    same("dX", one.dX, DV(all.dX.begin() + static_cast<long>(r0 * d_in), all.dX.begin() + static_cast<long>(r1 * d_in)),
         1e-13);
    for (std::size_t i = 0; i < sum_W_x.size(); ++i) sum_W_x[i] += one.W_x[i];
    for (std::size_t i = 0; i < sum_W_b.size(); ++i) sum_W_b[i] += one.W_b[i];
  }
  same("dW_x", sum_W_x, all.W_x, 1e-12);
  same("dW_b", sum_W_b, all.W_b, 1e-12);
}

TEST_CASE("sequence_lstm: bad shapes and offsets are rejected", "[layers][sequence_lstm]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const std::size_t d_in = 3, d_b = 2, d = 4, R = static_cast<std::size_t>(kOffsets.back());
  const auto off = to_offsets<M>(kOffsets);
  const Params<M> p(d_in, d_b, d, true, 40), g(d_in, d_b, d, true, 41), plain(d_in, d_b, d, false, 42);
  Mat<M> X("X", R, d_in), Bv("Bv", R, d_b), H("H", R, d), dX("dX", R, d_in), dB("dB", R, d_b);
  Mat<M> X_bad("X_bad", R, d_in + 1), Bv_bad("Bv_bad", R + 1, d_b), H_bad("H_bad", R, d + 1), W_bad("W_bad", 4 * d, d + 1);
  embsr::SequenceLstmCache<double, M> cache;
  CHECK_NOTHROW(embsr::sequence_lstm_forward(Exec(), off, X, Bv, p.refs(), H, cache));
  CHECK_NOTHROW(embsr::sequence_lstm_forward(Exec(), off, X, Mat<M>(), plain.refs(), H, cache));
  CHECK_THROWS_AS(embsr::sequence_lstm_forward(Exec(), off, X_bad, Bv, p.refs(), H, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_lstm_forward(Exec(), off, X, Bv_bad, p.refs(), H, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_lstm_forward(Exec(), off, X, Bv, p.refs(), H_bad, cache), embsr::InvalidArgument);
  auto bad = p.refs();
  bad.W_h = W_bad;
  CHECK_THROWS_AS(embsr::sequence_lstm_forward(Exec(), off, X, Bv, bad, H, cache), embsr::InvalidArgument);
  auto mixed = plain.refs();  // a plain LSTM's W_x (4d rows) with behavior terms (5d expected)
  mixed.W_b = p.W_b;
  CHECK_THROWS_AS(embsr::sequence_lstm_forward(Exec(), off, X, Bv, mixed, H, cache), embsr::InvalidArgument);
  for (const IV& o : {IV{1, 4, 14}, IV{0, 5, 4, 14}, IV{0, 4, 13}, IV{}}) {
    INFO("offsets of length " << o.size());
    CHECK_THROWS_AS(embsr::sequence_lstm_forward(Exec(), to_offsets<M>(o), X, Bv, p.refs(), H, cache),
                    embsr::InvalidArgument);
  }
  // A failed forward leaves no usable cache.
  CHECK_THROWS_AS(embsr::sequence_lstm_backward(Exec(), off, X, Bv, p.refs(), cache, H, dX, dB, g.refs()),
                  embsr::InvalidArgument);
  embsr::sequence_lstm_forward(Exec(), off, X, Bv, p.refs(), H, cache);
  CHECK_NOTHROW(embsr::sequence_lstm_backward(Exec(), off, X, Bv, p.refs(), cache, H, dX, dB, g.refs()));
  CHECK_THROWS_AS(embsr::sequence_lstm_backward(Exec(), off, X, Bv, p.refs(), cache, H_bad, dX, dB, g.refs()),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_lstm_backward(Exec(), off, X, Bv, p.refs(), cache, H, X_bad, dB, g.refs()),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_lstm_backward(Exec(), off, X, Bv, plain.refs(), cache, H, dX, dB, g.refs()),
                  embsr::InvalidArgument);
}

}  // namespace test_sequence_lstm
