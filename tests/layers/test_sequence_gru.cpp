// The sequence GRU (every step's state kept), layers/sequence_gru.hpp: the forward against a host
// loop written from the equations and against constants computed by torch.nn.GRU, central
// differences on every coordinate of X and of the four parameters (D_in = 3 and D_in = 2d,
// sessions of lengths 1, 2, 4, 7), the per-session loop against the team path, the backward
// adding into its outputs, session invariance, empty sessions and an empty batch, bad shapes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/tensor.hpp>
#include <embsr/layers/sequence_gru.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_sequence_gru {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;
using IV = std::vector<index_t>;
using DV = std::vector<double>;

template <class M>
using Mat = embsr::Mat<double, M>;
template <class M>
using Vec = embsr::Vec<double, M>;
template <class M>
using Offsets = Kokkos::View<index_t*, M>;

// Sessions of lengths 4, 1, 7, 2 (the lengths 1, 2, 4, 7 in a mixed order).
const IV kOffsets{0, 4, 5, 12, 14};

template <class M>
Offsets<M> to_offsets(const IV& v) {
  return embsr::test::to_ids<M>(std::vector<std::int32_t>(v.begin(), v.end()));
}

template <class V>
V from_vector(const char* label, const DV& values, std::size_t rows, std::size_t cols) {
  V v(std::string(label), rows, cols);
  auto h = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) h(i, j) = values[i * cols + j];
  Kokkos::deep_copy(v, h);
  return v;
}

DV random_values(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  Kokkos::View<double*, Kokkos::HostSpace> v("values", n);
  embsr::test::fill_random(v, seed, scale);
  return DV(v.data(), v.data() + n);
}

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

template <class M>
struct Params {
  Mat<M> W_ih, W_hh;
  Vec<M> b_ih, b_hh;
  Params(std::size_t d_in, std::size_t d, std::uint64_t seed, double scale = 0.5)
      : W_ih("W_ih", 3 * d, d_in), W_hh("W_hh", 3 * d, d), b_ih("b_ih", 3 * d), b_hh("b_hh", 3 * d) {
    embsr::test::fill_random(W_ih, seed, scale);
    embsr::test::fill_random(W_hh, seed + 1, scale);
    embsr::test::fill_random(b_ih, seed + 2, scale);
    embsr::test::fill_random(b_hh, seed + 3, scale);
  }
  embsr::GruParams<double, M> refs() const { return {W_ih, W_hh, b_ih, b_hh}; }
};

// Straight from the equations (torch.nn.GRU): one session at a time, one row at a time, h_0 = 0.
DV reference(const IV& offsets, const DV& x, std::size_t d_in, std::size_t d, const DV& W_ih, const DV& W_hh,
             const DV& b_ih, const DV& b_hh) {
  const std::size_t R = offsets.empty() ? 0 : static_cast<std::size_t>(offsets.back());
  DV H(R * d);
  for (std::size_t b = 0; b + 1 < offsets.size(); ++b) {
    DV h(d, 0.0), gi(3 * d), gh(3 * d);
    for (auto t = static_cast<std::size_t>(offsets[b]); t < static_cast<std::size_t>(offsets[b + 1]); ++t) {
      for (std::size_t g = 0; g < 3 * d; ++g) {
        gi[g] = b_ih[g];
        gh[g] = b_hh[g];
        for (std::size_t q = 0; q < d_in; ++q) gi[g] += W_ih[g * d_in + q] * x[t * d_in + q];
        for (std::size_t q = 0; q < d; ++q) gh[g] += W_hh[g * d + q] * h[q];
      }
      for (std::size_t c = 0; c < d; ++c) {
        const double r = sigmoid(gi[c] + gh[c]);
        const double z = sigmoid(gi[d + c] + gh[d + c]);
        const double n = std::tanh(gi[2 * d + c] + r * gh[2 * d + c]);
        h[c] = (1 - z) * n + z * h[c];
        H[t * d + c] = h[c];
      }
    }
  }
  return H;
}

struct Run {
  DV H, dX, dW_ih, dW_hh, db_ih, db_hh;
};

// Forward, then backward with dH = Rm into zeroed gradients.
template <class Exec>
Run forward_backward(const IV& offsets, const DV& x, const DV& Rm, std::size_t d_in, std::size_t d,
                     const Params<typename Exec::memory_space>& p, int team_size = 0) {
  using M = typename Exec::memory_space;
  const std::size_t R = offsets.empty() ? 0 : static_cast<std::size_t>(offsets.back());
  const auto off = to_offsets<M>(offsets);
  const auto X = from_vector<Mat<M>>("X", x, R, d_in);
  const auto dH = from_vector<Mat<M>>("dH", Rm, R, d);
  Mat<M> H("H", R, d), dX("dX", R, d_in);
  const Params<M> g(d_in, d, 0);
  for (const auto& v : {g.W_ih, g.W_hh}) Kokkos::deep_copy(v, 0.0);
  for (const auto& v : {g.b_ih, g.b_hh}) Kokkos::deep_copy(v, 0.0);
  embsr::SequenceGruCache<double, M> cache;
  embsr::sequence_gru_forward(Exec(), off, X, p.refs(), H, cache, team_size);
  embsr::sequence_gru_backward(Exec(), off, X, p.refs(), cache, dH, dX, g.refs(), team_size);
  Kokkos::fence();
  using embsr::test::to_vector;
  return {to_vector(H), to_vector(dX), to_vector(g.W_ih), to_vector(g.W_hh), to_vector(g.b_ih), to_vector(g.b_hh)};
}

void same(const char* name, const DV& a, const DV& b, double eps = 1e-13) {
  INFO(name);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(eps).margin(eps));
}

// Team sizes the team path can use on this backend: 1 and, where the backend has them, 3.
template <class Exec>
std::vector<int> team_sizes() {
  std::vector<int> sizes{1};
  if (Exec().concurrency() >= 3) sizes.push_back(3);
  else if (Exec().concurrency() == 2) sizes.push_back(2);
  return sizes;
}

const std::size_t kDims[][2] = {{3, 4}, {8, 4}};  // (D_in, d): D_in = 3 and D_in = 2d

}  // namespace

// ------------------------------------------------------------------------------------ forward

TEMPLATE_LIST_TEST_CASE("sequence_gru: forward against the per-session host loop", "[layers][sequence_gru]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  for (const auto& dd : kDims) {
    const std::size_t d_in = dd[0], d = dd[1];
    INFO("D_in = " << d_in << ", d = " << d);
    const std::size_t R = static_cast<std::size_t>(kOffsets.back());
    const DV x = random_values(R * d_in, 10 + d_in);
    const Params<M> p(d_in, d, 20 + d_in);
    using embsr::test::to_vector;
    const DV expected = reference(kOffsets, x, d_in, d, to_vector(p.W_ih), to_vector(p.W_hh), to_vector(p.b_ih),
                                  to_vector(p.b_hh));
    // The state must move: a test of a GRU stuck at 0 could not fail.
    double norm = 0;
    for (const double v : expected) norm = std::max(norm, std::abs(v));
    REQUIRE(norm > 0.1);
    for (const int ts : [] {
           std::vector<int> all{0};
           for (const int s : team_sizes<Exec>()) all.push_back(s);
           return all;
         }()) {
      INFO("team_size " << ts);
      const Run r = forward_backward<Exec>(kOffsets, x, DV(R * d, 0.0), d_in, d, p, ts);
      same("H", r.H, expected, 1e-12);
    }
  }
}

// Constants from torch.nn.GRU(3, 2, batch_first=True) in float64, each session its own sequence
// from h_0 = 0, with every tensor filled by value(k, i) = (((i + 1) (2k + 5)) mod 17 - 8) / 10 over
// its flat index i (k = 0 W_ih, 1 W_hh, 2 b_ih, 3 b_hh, 4 X); sessions of lengths 3, 1, 2.
TEMPLATE_LIST_TEST_CASE("sequence_gru: forward against torch.nn.GRU", "[layers][sequence_gru]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t d = 2, d_in = 3;
  const IV offsets{0, 3, 4, 6};
  auto value = [](int k, std::size_t i) {
    return static_cast<double>(static_cast<long>((i + 1) * static_cast<std::size_t>(2 * k + 5)) % 17 - 8) / 10.0;
  };
  auto fill = [&](int k, std::size_t n) {
    DV v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = value(k, i);
    return v;
  };
  Params<M> p(d_in, d, 0);
  p.W_ih = from_vector<Mat<M>>("W_ih", fill(0, 3 * d * d_in), 3 * d, d_in);
  p.W_hh = from_vector<Mat<M>>("W_hh", fill(1, 3 * d * d), 3 * d, d);
  {
    const DV bi = fill(2, 3 * d), bh = fill(3, 3 * d);
    auto hi = Kokkos::create_mirror_view(p.b_ih);
    auto hh = Kokkos::create_mirror_view(p.b_hh);
    for (std::size_t i = 0; i < 3 * d; ++i) {
      hi(i) = bi[i];
      hh(i) = bh[i];
    }
    Kokkos::deep_copy(p.b_ih, hi);
    Kokkos::deep_copy(p.b_hh, hh);
  }
  const DV x = fill(4, 6 * d_in);
  const DV torch_H{0.12839954544465487,  -0.07782033141762694,  -0.024822877822826328, -0.61363591829376651,
                   0.056659380413357663, -0.41794912866345257,  0.1282951666602154,    -0.0062528780438145908,
                   0.12574929360400958,  -0.16635242844863762,  0.1606615590279373,    -0.058509630976676871};
  for (const int ts : {0, 1}) {
    INFO("team_size " << ts);
    const Run r = forward_backward<Exec>(offsets, x, DV(6 * d, 0.0), d_in, d, p, ts);
    same("H", r.H, torch_H, 1e-14);
  }
  // The host loop of this file agrees with torch too (so the other tests check torch's GRU).
  using embsr::test::to_vector;
  same("reference", reference(offsets, x, d_in, d, to_vector(p.W_ih), to_vector(p.W_hh), to_vector(p.b_ih), to_vector(p.b_hh)),
       torch_H, 1e-14);
}

// ------------------------------------------------------------------------------------ gradients

TEMPLATE_LIST_TEST_CASE("sequence_gru: central-difference gradients of X and every parameter",
                        "[layers][sequence_gru]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  for (const auto& dd : kDims) {
    const std::size_t d_in = dd[0], d = dd[1];
    DYNAMIC_SECTION("D_in = " << d_in << ", d = " << d) {
      const std::size_t R = static_cast<std::size_t>(kOffsets.back());
      const auto off = to_offsets<M>(kOffsets);
      Mat<M> X("X", R, d_in), H("H", R, d), Rm("R", R, d), dX("dX", R, d_in);
      embsr::test::fill_random(X, 30 + d_in);
      embsr::test::fill_random(Rm, 31 + d_in);
      const Params<M> p(d_in, d, 40 + d_in, 0.6), g(d_in, d, 0);
      for (const auto& v : {g.W_ih, g.W_hh}) Kokkos::deep_copy(v, 0.0);
      for (const auto& v : {g.b_ih, g.b_hh}) Kokkos::deep_copy(v, 0.0);
      embsr::SequenceGruCache<double, M> cache;
      auto loss = [&]() {
        embsr::sequence_gru_forward(Exec(), off, X, p.refs(), H, cache);
        Kokkos::fence();
        return embsr::test::dot(H, Rm);
      };
      loss();
      embsr::sequence_gru_backward(Exec(), off, X, p.refs(), cache, Rm, dX, g.refs());
      Kokkos::fence();
      using embsr::test::flat;
      using embsr::test::to_vector;
      std::vector<embsr::test::GradTarget<M>> targets{
          {"X", flat(X), to_vector(dX)},           {"W_ih", flat(p.W_ih), to_vector(g.W_ih)},
          {"W_hh", flat(p.W_hh), to_vector(g.W_hh)}, {"b_ih", flat(p.b_ih), to_vector(g.b_ih)},
          {"b_hh", flat(p.b_hh), to_vector(g.b_hh)}};
      // Nonzero gradients everywhere that should have them (a backward writing nothing fails here).
      for (const auto& t : targets) {
        double m = 0;
        for (const double v : t.analytic) m = std::max(m, std::abs(v));
        INFO(t.name);
        CHECK(m > 1e-3);
      }
      const double worst = embsr::test::check_gradients(loss, targets);
      CHECK(worst < 1e-6);

      // The team path gives the same gradients (the same sums in the same order).
      for (const int ts : team_sizes<Exec>()) {
        INFO("team_size " << ts);
        const Run r = forward_backward<Exec>(kOffsets, to_vector(X), to_vector(Rm), d_in, d, p, ts);
        same("dX", r.dX, targets[0].analytic);
        same("dW_ih", r.dW_ih, targets[1].analytic);
        same("dW_hh", r.dW_hh, targets[2].analytic);
        same("db_ih", r.db_ih, targets[3].analytic);
        same("db_hh", r.db_hh, targets[4].analytic);
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("sequence_gru: the backward adds into dX and the gradients; dX may be empty",
                        "[layers][sequence_gru]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t d_in = 3, d = 4, R = static_cast<std::size_t>(kOffsets.back());
  const auto off = to_offsets<M>(kOffsets);
  const DV x = random_values(R * d_in, 50), rm = random_values(R * d, 51);
  const Params<M> p(d_in, d, 52);
  const Run fresh = forward_backward<Exec>(kOffsets, x, rm, d_in, d, p);

  const auto X = from_vector<Mat<M>>("X", x, R, d_in);
  const auto dH = from_vector<Mat<M>>("dH", rm, R, d);
  Mat<M> H("H", R, d), dX("dX", R, d_in);
  embsr::test::fill_random(dX, 53);
  const Params<M> g(d_in, d, 54);  // nonzero starting gradients
  using embsr::test::to_vector;
  const DV dX0 = to_vector(dX), W_ih0 = to_vector(g.W_ih), W_hh0 = to_vector(g.W_hh), b_ih0 = to_vector(g.b_ih),
           b_hh0 = to_vector(g.b_hh);
  embsr::SequenceGruCache<double, M> cache;
  embsr::sequence_gru_forward(Exec(), off, X, p.refs(), H, cache);
  embsr::sequence_gru_backward(Exec(), off, X, p.refs(), cache, dH, dX, g.refs());
  Kokkos::fence();
  auto added = [](const DV& a, const DV& b) {
    DV s(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) s[i] = a[i] + b[i];
    return s;
  };
  same("dX", to_vector(dX), added(dX0, fresh.dX), 1e-12);
  same("dW_ih", to_vector(g.W_ih), added(W_ih0, fresh.dW_ih), 1e-12);
  same("dW_hh", to_vector(g.W_hh), added(W_hh0, fresh.dW_hh), 1e-12);
  same("db_ih", to_vector(g.b_ih), added(b_ih0, fresh.db_ih), 1e-12);
  same("db_hh", to_vector(g.b_hh), added(b_hh0, fresh.db_hh), 1e-12);

  // An empty dX: the parameter gradients only, the same as with dX.
  const Params<M> g2(d_in, d, 0);
  for (const auto& v : {g2.W_ih, g2.W_hh}) Kokkos::deep_copy(v, 0.0);
  for (const auto& v : {g2.b_ih, g2.b_hh}) Kokkos::deep_copy(v, 0.0);
  embsr::sequence_gru_backward(Exec(), off, X, p.refs(), cache, dH, Mat<M>(), g2.refs());
  Kokkos::fence();
  CHECK(to_vector(g2.W_ih) == fresh.dW_ih);
  CHECK(to_vector(g2.W_hh) == fresh.dW_hh);
  CHECK(to_vector(g2.b_ih) == fresh.db_ih);
  CHECK(to_vector(g2.b_hh) == fresh.db_hh);

  // Deterministic: a second run gives the same bits.
  const Run again = forward_backward<Exec>(kOffsets, x, rm, d_in, d, p);
  CHECK(again.H == fresh.H);
  CHECK(again.dX == fresh.dX);
  CHECK(again.dW_ih == fresh.dW_ih);
  CHECK(again.dW_hh == fresh.dW_hh);
  CHECK(again.db_ih == fresh.db_ih);
  CHECK(again.db_hh == fresh.db_hh);
}

// ------------------------------------------------------------------------------------ session invariance

TEMPLATE_LIST_TEST_CASE("sequence_gru: a session's states and gradients do not depend on the other sessions",
                        "[layers][sequence_gru]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  for (const auto& dd : kDims) {
    const std::size_t d_in = dd[0], d = dd[1];
    INFO("D_in = " << d_in << ", d = " << d);
    const std::size_t R = static_cast<std::size_t>(kOffsets.back());
    const DV x = random_values(R * d_in, 60), rm = random_values(R * d, 61);
    const Params<M> p(d_in, d, 62);
    for (const int ts : {0, 1}) {
      INFO("team_size " << ts);
      const Run all = forward_backward<Exec>(kOffsets, x, rm, d_in, d, p, ts);
      Run sum;
      sum.dW_ih.assign(all.dW_ih.size(), 0.0);
      sum.dW_hh.assign(all.dW_hh.size(), 0.0);
      sum.db_ih.assign(all.db_ih.size(), 0.0);
      sum.db_hh.assign(all.db_hh.size(), 0.0);
      for (std::size_t b = 0; b + 1 < kOffsets.size(); ++b) {
        INFO("session " << b);
        const std::size_t r0 = static_cast<std::size_t>(kOffsets[b]), r1 = static_cast<std::size_t>(kOffsets[b + 1]);
        const DV xb(x.begin() + static_cast<long>(r0 * d_in), x.begin() + static_cast<long>(r1 * d_in));
        const DV rb(rm.begin() + static_cast<long>(r0 * d), rm.begin() + static_cast<long>(r1 * d));
        const Run one = forward_backward<Exec>(IV{0, static_cast<index_t>(r1 - r0)}, xb, rb, d_in, d, p, ts);
        same("H", one.H, DV(all.H.begin() + static_cast<long>(r0 * d), all.H.begin() + static_cast<long>(r1 * d)));
        same("dX", one.dX,
             DV(all.dX.begin() + static_cast<long>(r0 * d_in), all.dX.begin() + static_cast<long>(r1 * d_in)), 1e-12);
        for (std::size_t i = 0; i < sum.dW_ih.size(); ++i) sum.dW_ih[i] += one.dW_ih[i];
        for (std::size_t i = 0; i < sum.dW_hh.size(); ++i) sum.dW_hh[i] += one.dW_hh[i];
        for (std::size_t i = 0; i < sum.db_ih.size(); ++i) sum.db_ih[i] += one.db_ih[i];
        for (std::size_t i = 0; i < sum.db_hh.size(); ++i) sum.db_hh[i] += one.db_hh[i];
      }
      same("dW_ih", sum.dW_ih, all.dW_ih, 1e-11);
      same("dW_hh", sum.dW_hh, all.dW_hh, 1e-11);
      same("db_ih", sum.db_ih, all.db_ih, 1e-11);
      same("db_hh", sum.db_hh, all.db_hh, 1e-11);
    }
  }
}

// ------------------------------------------------------------------------------------ edge cases

TEMPLATE_LIST_TEST_CASE("sequence_gru: length-1 sessions, empty sessions and an empty batch", "[layers][sequence_gru]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t d_in = 3, d = 4;
  const Params<M> p(d_in, d, 70);
  using embsr::test::to_vector;
  const DV W_ih = to_vector(p.W_ih), W_hh = to_vector(p.W_hh), b_ih = to_vector(p.b_ih), b_hh = to_vector(p.b_hh);
  {
    // One row from h = 0: gh = b_hh, so H = (1 - z) n with the bias of W_hh only; dW_hh = 0.
    const DV x = random_values(d_in, 71), rm = random_values(d, 72);
    const Run r = forward_backward<Exec>(IV{0, 1}, x, rm, d_in, d, p);
    same("H", r.H, reference(IV{0, 1}, x, d_in, d, W_ih, W_hh, b_ih, b_hh), 1e-12);
    for (const double v : r.dW_hh) CHECK(v == 0.0);
    // db_hh's r and z blocks equal db_ih's (both enter as gi + gh); its n block is r times db_ih's.
    for (std::size_t c = 0; c < 2 * d; ++c) CHECK(r.db_hh[c] == Approx(r.db_ih[c]).epsilon(1e-14));
    double n_block = 0;
    for (std::size_t c = 0; c < d; ++c) n_block += std::abs(r.db_ih[2 * d + c] - r.db_hh[2 * d + c]);
    CHECK(n_block > 1e-6);  // r < 1: the two differ
  }
  {
    // Empty sessions between and around others: they own no rows and change nothing.
    const IV with_empty{0, 0, 2, 2, 5, 5};
    const DV x = random_values(5 * d_in, 73), rm = random_values(5 * d, 74);
    const Run r = forward_backward<Exec>(with_empty, x, rm, d_in, d, p);
    same("H", r.H, reference(with_empty, x, d_in, d, W_ih, W_hh, b_ih, b_hh), 1e-12);
    const Run r2 = forward_backward<Exec>(IV{0, 2, 5}, x, rm, d_in, d, p);
    same("H", r.H, r2.H, 0);
    same("dX", r.dX, r2.dX, 0);
    same("dW_hh", r.dW_hh, r2.dW_hh, 0);
    const Run t = forward_backward<Exec>(with_empty, x, rm, d_in, d, p, 1);
    same("H (teams)", t.H, r.H);
    same("dX (teams)", t.dX, r.dX);
  }
  for (const IV& empty : {IV{0}, IV{}}) {
    // B = 0 (offsets {0}) or no offsets at all: nothing computed, no gradient added.
    INFO("offsets of length " << empty.size());
    for (const int ts : {0, 1}) {
      const Run r = forward_backward<Exec>(empty, DV{}, DV{}, d_in, d, p, ts);
      CHECK(r.H.empty());
      CHECK(r.dX.empty());
      for (const DV* grad : {&r.dW_ih, &r.dW_hh, &r.db_ih, &r.db_hh})
        for (const double v : *grad) CHECK(v == 0.0);
    }
  }
}

// ------------------------------------------------------------------------------------ shapes

TEST_CASE("sequence_gru: bad shapes and offsets are rejected", "[layers][sequence_gru]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  const std::size_t d_in = 3, d = 4, R = static_cast<std::size_t>(kOffsets.back());
  const auto off = to_offsets<M>(kOffsets);
  const Params<M> params(d_in, d, 80), grads(d_in, d, 81);
  const auto p = params.refs(), g = grads.refs();
  Mat<M> X("X", R, d_in), H("H", R, d), dH("dH", R, d), dX("dX", R, d_in);
  Mat<M> X_cols("X_cols", R, d_in + 1), X_rows("X_rows", R + 1, d_in), H_rows("H_rows", R - 1, d),
      H_cols("H_cols", R, d + 1), dX_cols("dX_cols", R, d_in + 1), dX_rows("dX_rows", R - 1, d_in);
  Mat<M> W_ih_bad("W_ih_bad", 3 * d, d_in + 1), W_hh_bad("W_hh_bad", 3 * d + 1, d), W_hh_square("W_hh_sq", d, d);
  Vec<M> b_bad("b_bad", 3 * d - 1);
  embsr::SequenceGruCache<double, M> cache;
  CHECK_NOTHROW(embsr::sequence_gru_forward(Exec(), off, X, p, H, cache));
  CHECK_THROWS_AS(embsr::sequence_gru_forward(Exec(), off, X_cols, p, H, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_forward(Exec(), off, X_rows, p, H, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_forward(Exec(), off, X, p, H_rows, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_forward(Exec(), off, X, p, H_cols, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_forward(Exec(), off, X, p, H, cache, -1), embsr::InvalidArgument);

  std::vector<embsr::GruParams<double, M>> bad(5, p);
  bad[0].W_ih = W_ih_bad;
  bad[1].W_hh = W_hh_bad;
  bad[2].W_hh = W_hh_square;  // [d x d]: the width d would be consistent, the 3d rows are not
  bad[3].b_ih = b_bad;
  bad[4].b_hh = b_bad;
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("parameter " << i);
    CHECK_THROWS_AS(embsr::sequence_gru_forward(Exec(), off, X, bad[i], H, cache), embsr::InvalidArgument);
  }

  // Offsets: not from 0, decreasing, not ending at R, empty with rows.
  for (const IV& o : {IV{1, 4, 5, 12, 14}, IV{0, 4, 3, 12, 14}, IV{0, 4, 5, 12, 13}, IV{0, 4, 5, 12, 15}, IV{}}) {
    INFO("offsets of length " << o.size());
    CHECK_THROWS_AS(embsr::sequence_gru_forward(Exec(), to_offsets<M>(o), X, p, H, cache), embsr::InvalidArgument);
  }
  // A failed forward leaves no usable cache.
  CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X, p, cache, dH, dX, g), embsr::InvalidArgument);

  // The backward checks the cache, offsets, X, the parameters, the gradients, dH and dX.
  embsr::sequence_gru_forward(Exec(), off, X, p, H, cache);
  CHECK_NOTHROW(embsr::sequence_gru_backward(Exec(), off, X, p, cache, dH, dX, g));
  CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), to_offsets<M>(IV{0, 14}), X, p, cache, dH, dX, g),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X_rows, p, cache, dH, dX, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X_cols, p, cache, dH, dX, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X, p, cache, H_rows, dX, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X, p, cache, H_cols, dX, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X, p, cache, dH, dX_rows, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X, p, cache, dH, dX_cols, g), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X, p, cache, dH, dX, g, -1), embsr::InvalidArgument);
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("parameter " << i);
    CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X, bad[i], cache, dH, dX, g), embsr::InvalidArgument);
    CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X, p, cache, dH, dX, bad[i]), embsr::InvalidArgument);
  }
  embsr::SequenceGruCache<double, M> fresh;
  CHECK_THROWS_AS(embsr::sequence_gru_backward(Exec(), off, X, p, fresh, dH, dX, g), embsr::InvalidArgument);
}

}  // namespace test_sequence_gru
