// Bidirectional multi-head self-attention over ragged sessions, layers/multi_head_attention.hpp
// (BERT4Rec, Sun et al., CIKM 2019, Sec. 3.3 eqs. (1)-(2), with the projections' biases of the
// authors' code): the forward against a host computation of the equations, central-difference
// gradients of every coordinate of X and of the eight parameters, that the backward adds, session
// independence, and shape / head / offset checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/layers/multi_head_attention.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_multi_head_attention {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;
using IV = std::vector<index_t>;
using DV = std::vector<double>;
template <class M>
using Mat = embsr::Mat<double, M>;
template <class M>
using Vec = embsr::Vec<double, M>;

constexpr int kDim = 6, kHeads = 2;  // head size 3: 1 / sqrt(3) is not exact

// Sessions of 3, 1, 0, 5 and 2 rows (an empty session in the middle owns no rows).
const IV kLengths{3, 1, 0, 5, 2};

IV offsets_of(const IV& lengths) {
  IV off{0};
  for (const index_t n : lengths) off.push_back(off.back() + n);
  return off;
}

template <class M>
struct Params {
  Mat<M> W_Q{"W_Q", kDim, kDim}, W_K{"W_K", kDim, kDim}, W_V{"W_V", kDim, kDim}, W_O{"W_O", kDim, kDim};
  Vec<M> b_Q{"b_Q", kDim}, b_K{"b_K", kDim}, b_V{"b_V", kDim}, b_O{"b_O", kDim};
  explicit Params(unsigned seed) {
    embsr::test::fill_random(W_Q, seed + 1, 1.0);  // large enough for attention far from uniform
    embsr::test::fill_random(W_K, seed + 2, 1.0);
    embsr::test::fill_random(W_V, seed + 3, 0.7);
    embsr::test::fill_random(W_O, seed + 4, 0.7);
    embsr::test::fill_random(b_Q, seed + 5, 0.3);
    embsr::test::fill_random(b_K, seed + 6, 0.3);
    embsr::test::fill_random(b_V, seed + 7, 0.3);
    embsr::test::fill_random(b_O, seed + 8, 0.3);
  }
  embsr::MultiHeadAttentionParams<double, M> refs() const { return {W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, b_O}; }
  std::vector<DV> host() const {
    return {embsr::test::to_vector(W_Q), embsr::test::to_vector(W_K), embsr::test::to_vector(W_V),
            embsr::test::to_vector(W_O), embsr::test::to_vector(b_Q), embsr::test::to_vector(b_K),
            embsr::test::to_vector(b_V), embsr::test::to_vector(b_O)};
  }
};

// y = W x + b, W [d x d] row-major.
DV affine(const DV& W, const DV& b, const double* x) {
  DV y(b);
  for (int o = 0; o < kDim; ++o)
    for (int k = 0; k < kDim; ++k) y[static_cast<std::size_t>(o)] += W[static_cast<std::size_t>(o * kDim + k)] * x[k];
  return y;
}

// The equations on the host, session by session and head by head: Y [R x d].
DV reference(const IV& off, const DV& X, const std::vector<DV>& p) {
  const int B = static_cast<int>(off.size()) - 1, dh = kDim / kHeads;
  DV Y(X.size(), 0.0);
  for (int b = 0; b < B; ++b) {
    const int s = off[static_cast<std::size_t>(b)], n = off[static_cast<std::size_t>(b) + 1] - s;
    std::vector<DV> q, k, v;
    for (int i = 0; i < n; ++i) {
      const double* x = &X[static_cast<std::size_t>((s + i) * kDim)];
      q.push_back(affine(p[0], p[4], x));
      k.push_back(affine(p[1], p[5], x));
      v.push_back(affine(p[2], p[6], x));
    }
    for (int i = 0; i < n; ++i) {
      DV c(kDim, 0.0);
      for (int a = 0; a < kHeads; ++a) {
        DV e(static_cast<std::size_t>(n));
        double z = 0;
        for (int j = 0; j < n; ++j) {
          double dot = 0;
          for (int t = a * dh; t < (a + 1) * dh; ++t)
            dot += q[static_cast<std::size_t>(i)][static_cast<std::size_t>(t)] * k[static_cast<std::size_t>(j)][static_cast<std::size_t>(t)];
          e[static_cast<std::size_t>(j)] = std::exp(dot / std::sqrt(static_cast<double>(dh)));
          z += e[static_cast<std::size_t>(j)];
        }
        for (int j = 0; j < n; ++j)
          for (int t = a * dh; t < (a + 1) * dh; ++t)
            c[static_cast<std::size_t>(t)] += e[static_cast<std::size_t>(j)] / z * v[static_cast<std::size_t>(j)][static_cast<std::size_t>(t)];
      }
      const DV y = affine(p[3], p[7], c.data());
      for (int t = 0; t < kDim; ++t) Y[static_cast<std::size_t>((s + i) * kDim + t)] = y[static_cast<std::size_t>(t)];
    }
  }
  return Y;
}

DV added(const DV& now, const DV& before) {
  DV out(now);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] -= before[i];
  return out;
}

const char* const kNames[8] = {"W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O"};

}  // namespace

TEMPLATE_LIST_TEST_CASE("multi_head_attention: forward against the equations and central-difference gradients",
                        "[layers][multi_head_attention]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const IV off = offsets_of(kLengths);
  const int R = off.back();
  const auto offsets = embsr::test::to_ids<M>(off);
  Params<M> p(10), g(20);  // g: gradient buffers, pre-filled (the backward adds)
  Mat<M> X("X", R, kDim), Y("Y", R, kDim), Rm("R", R, kDim), dX("dX", R, kDim);
  embsr::test::fill_random(X, 30);
  embsr::test::fill_random(Rm, 31);
  embsr::test::fill_random(dX, 32);
  embsr::MultiHeadAttentionCache<double, M> cache;
  auto loss = [&] {
    embsr::multi_head_attention_forward(Exec(), offsets, X, p.refs(), kHeads, Y, cache);
    Kokkos::fence();
    return embsr::test::dot(Y, Rm);
  };
  loss();
  const DV want = reference(off, embsr::test::to_vector(X), p.host());
  const DV got = embsr::test::to_vector(Y);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("Y[" << i << "]");
    CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
  }
  // Attention far from uniform in the 5-row session, for both heads; rows sum to 1.
  REQUIRE(cache.num_scores == 9u + 1u + 0u + 25u + 4u);
  const DV P = embsr::test::to_vector(cache.P);
  for (int a = 0; a < kHeads; ++a) {
    double spread = 0;
    for (std::size_t r = 0; r < 5; ++r) {
      const std::size_t base = static_cast<std::size_t>(a) * cache.num_scores + 10 + r * 5;
      double sum = 0, lo = 1, hi = 0;
      for (std::size_t j = 0; j < 5; ++j) {
        sum += P[base + j];
        lo = std::min(lo, P[base + j]);
        hi = std::max(hi, P[base + j]);
      }
      CHECK(sum == Approx(1.0).epsilon(1e-14));
      spread = std::max(spread, hi - lo);
    }
    CHECK(spread > 0.2);
  }

  const auto g0 = g.host();
  const DV dX0 = embsr::test::to_vector(dX);
  embsr::multi_head_attention_backward(Exec(), offsets, X, p.refs(), cache, Rm, dX, g.refs());
  Kokkos::fence();
  const auto g1 = g.host();
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"X", embsr::test::flat(X), added(embsr::test::to_vector(dX), dX0)}};
  const auto pr = p.refs();
  const std::vector<Kokkos::View<double*, M, Kokkos::MemoryTraits<Kokkos::Unmanaged>>> values{
      embsr::test::flat(pr.W_Q), embsr::test::flat(pr.W_K), embsr::test::flat(pr.W_V), embsr::test::flat(pr.W_O),
      embsr::test::flat(pr.b_Q), embsr::test::flat(pr.b_K), embsr::test::flat(pr.b_V), embsr::test::flat(pr.b_O)};
  for (std::size_t t = 0; t < 8; ++t)
    if (t != 5) targets.push_back({kNames[t], values[t], added(g1[t], g0[t])});
  embsr::test::check_gradients<M>(loss, targets);
  // b_K shifts every score of a softmax row by the same amount: its gradient is zero (to round-off),
  // and the finite differences see only noise, so it is compared absolutely (floor 1e-3: 1e-9).
  const DV gbk = added(g1[5], g0[5]);
  for (const double x : gbk) CHECK(std::abs(x) < 1e-12);
  embsr::test::check_gradients<M>(loss, std::vector<T>{{"b_K", values[5], gbk}}, 1e-6, 1e-5, 0, 1e-3);

  // dX may be empty: the parameter gradients are the same.
  loss();
  Params<M> g2(20), g3(20);
  embsr::multi_head_attention_backward(Exec(), offsets, X, p.refs(), cache, Rm, dX, g2.refs());
  embsr::multi_head_attention_backward(Exec(), offsets, X, p.refs(), cache, Rm, Mat<M>(), g3.refs());
  Kokkos::fence();
  const auto h2 = g2.host(), h3 = g3.host();
  for (std::size_t t = 0; t < 8; ++t) CHECK(h2[t] == h3[t]);
}

TEMPLATE_LIST_TEST_CASE("multi_head_attention: a session's output does not depend on the other sessions",
                        "[layers][multi_head_attention]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const IV off = offsets_of(kLengths);
  const int R = off.back();
  Params<M> p(40);
  Mat<M> X("X", R, kDim), Y("Y", R, kDim);
  embsr::test::fill_random(X, 41);
  embsr::MultiHeadAttentionCache<double, M> cache;
  embsr::multi_head_attention_forward(Exec(), embsr::test::to_ids<M>(off), X, p.refs(), kHeads, Y, cache);
  const DV all = embsr::test::to_vector(Y), x = embsr::test::to_vector(X);
  // Session 3 (rows 4..8) alone.
  Mat<M> X1("X1", 5, kDim), Y1("Y1", 5, kDim);
  auto h = Kokkos::create_mirror_view(X1);
  for (int i = 0; i < 5; ++i)
    for (int c = 0; c < kDim; ++c) h(i, c) = x[static_cast<std::size_t>((4 + i) * kDim + c)];
  Kokkos::deep_copy(X1, h);
  embsr::MultiHeadAttentionCache<double, M> cache1;
  embsr::multi_head_attention_forward(Exec(), embsr::test::to_ids<M>(IV{0, 5}), X1, p.refs(), kHeads, Y1, cache1);
  const DV alone = embsr::test::to_vector(Y1);
  for (std::size_t i = 0; i < alone.size(); ++i) CHECK(alone[i] == all[4 * kDim + i]);
}

TEST_CASE("multi_head_attention: argument errors", "[layers][multi_head_attention]") {
  using Exec = Kokkos::DefaultHostExecutionSpace;
  using M = Exec::memory_space;
  Params<M> p(1);
  Mat<M> X("X", 4, kDim), Y("Y", 4, kDim);
  embsr::MultiHeadAttentionCache<double, M> cache;
  const auto off = embsr::test::to_ids<M>(IV{0, 2, 4});
  CHECK_THROWS_AS(embsr::multi_head_attention_forward(Exec(), off, X, p.refs(), 4, Y, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::multi_head_attention_forward(Exec(), off, X, p.refs(), 0, Y, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::multi_head_attention_forward(Exec(), off, X, p.refs(), kHeads, X, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::multi_head_attention_forward(Exec(), embsr::test::to_ids<M>(IV{0, 2, 3}), X, p.refs(), kHeads, Y, cache),
                  embsr::InvalidArgument);
  Mat<M> bad("bad", 3, kDim);
  CHECK_THROWS_AS(embsr::multi_head_attention_forward(Exec(), off, X, p.refs(), kHeads, bad, cache), embsr::InvalidArgument);
  embsr::multi_head_attention_forward(Exec(), off, X, p.refs(), kHeads, Y, cache);
  CHECK_THROWS_AS(embsr::multi_head_attention_backward(Exec(), off, X, p.refs(), cache, bad, X, p.refs()),
                  embsr::InvalidArgument);
  // An empty batch computes nothing.
  Mat<M> X0("X0", 0, kDim), Y0("Y0", 0, kDim);
  CHECK_NOTHROW(embsr::multi_head_attention_forward(Exec(), embsr::test::to_ids<M>(IV{0}), X0, p.refs(), kHeads, Y0, cache));
}

}  // namespace test_multi_head_attention
