// Attention pooling with a learned context vector (layers/context_attention.hpp, RIB's attention
// layer): the forward against a host loop written from the equations, central differences on
// every coordinate of H and of W, b, c (sessions of lengths 4, 1, 7, 2; A = D and A != D), the
// backward adding into its outputs, session invariance, a strided output, empty sessions and an
// empty batch, bad shapes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/context_attention.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_context_attention {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

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

// Sessions of lengths 4, 1, 7, 2.
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

template <class M>
struct Params {
  Mat<M> W;
  Vec<M> b, c;
  Params(std::size_t a, std::size_t d, std::uint64_t seed, double scale = 0.8) : W("W", a, d), b("b", a), c("c", a) {
    embsr::test::fill_random(W, seed, scale);
    embsr::test::fill_random(b, seed + 1, scale);
    embsr::test::fill_random(c, seed + 2, 1.5);
  }
  void zero() const {
    Kokkos::deep_copy(W, 0.0);
    Kokkos::deep_copy(b, 0.0);
    Kokkos::deep_copy(c, 0.0);
  }
  embsr::ContextAttentionParams<double, M> refs() const { return {W, b, c}; }
};

// Straight from the equations, one session at a time: u_i = tanh(W h_i + b), e_i = u_i . c,
// alpha = softmax over the session (plain exp / sum), s = sum alpha_i h_i. Also returns alpha.
std::pair<DV, DV> reference(const IV& offsets, const DV& h, std::size_t D, std::size_t A, const DV& W, const DV& b,
                            const DV& c) {
  const std::size_t B = offsets.size() - 1, R = static_cast<std::size_t>(offsets.back());
  DV S(B * D, 0.0), alpha(R, 0.0);
  for (std::size_t s = 0; s < B; ++s) {
    const auto r0 = static_cast<std::size_t>(offsets[s]), r1 = static_cast<std::size_t>(offsets[s + 1]);
    double total = 0;
    for (std::size_t i = r0; i < r1; ++i) {
      double e = 0;
      for (std::size_t a = 0; a < A; ++a) {
        double z = b[a];
        for (std::size_t j = 0; j < D; ++j) z += W[a * D + j] * h[i * D + j];
        e += std::tanh(z) * c[a];
      }
      alpha[i] = std::exp(e);
      total += alpha[i];
    }
    for (std::size_t i = r0; i < r1; ++i) {
      alpha[i] /= total;
      for (std::size_t j = 0; j < D; ++j) S[s * D + j] += alpha[i] * h[i * D + j];
    }
  }
  return {S, alpha};
}

struct Run {
  DV S, dH, dW, db, dc;
};

// Forward, then backward with dS = Rm into zeroed gradients.
template <class Exec>
Run forward_backward(const IV& offsets, const DV& h, const DV& rm, std::size_t D, const Params<typename Exec::memory_space>& p) {
  using M = typename Exec::memory_space;
  const std::size_t R = static_cast<std::size_t>(offsets.back()), B = offsets.size() - 1, A = p.W.extent(0);
  const auto off = to_offsets<M>(offsets);
  const auto H = from_vector<Mat<M>>("H", h, R, D);
  const auto dS = from_vector<Mat<M>>("dS", rm, B, D);
  Mat<M> S("S", B, D), dH("dH", R, D);
  const Params<M> g(A, D, 0);
  g.zero();
  embsr::ContextAttentionCache<double, M> cache;
  embsr::context_attention_forward(Exec(), off, H, p.refs(), S, cache);
  embsr::context_attention_backward(Exec(), off, H, p.refs(), cache, dS, dH, g.refs());
  Kokkos::fence();
  using embsr::test::to_vector;
  return {to_vector(S), to_vector(dH), to_vector(g.W), to_vector(g.b), to_vector(g.c)};
}

void same(const char* name, const DV& a, const DV& b, double eps = 1e-13) {
  INFO(name);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(eps).margin(eps));
}

const std::size_t kDims[][2] = {{4, 4}, {3, 5}};  // (D, A)

}  // namespace

TEMPLATE_LIST_TEST_CASE("context_attention: forward against the per-session host loop", "[layers][context_attention]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  for (const auto& dims : kDims) {
    const std::size_t D = dims[0], A = dims[1], R = static_cast<std::size_t>(kOffsets.back()), B = kOffsets.size() - 1;
    INFO("D = " << D << ", A = " << A);
    const DV h = random_values(R * D, 10 + D);
    const Params<M> p(A, D, 20 + A);
    using embsr::test::to_vector;
    const auto ref = reference(kOffsets, h, D, A, to_vector(p.W), to_vector(p.b), to_vector(p.c));
    // The weights must not be uniform: a test of an attention stuck at 1/n could not fail.
    double spread = 0;
    for (std::size_t s = 0; s < B; ++s)
      for (auto i = kOffsets[s]; i < kOffsets[s + 1]; ++i)
        spread = std::max(spread, std::abs(ref.second[static_cast<std::size_t>(i)] -
                                           1.0 / static_cast<double>(kOffsets[s + 1] - kOffsets[s])));
    REQUIRE(spread > 0.05);
    const Run r = forward_backward<Exec>(kOffsets, h, DV(B * D, 0.0), D, p);
    same("S", r.S, ref.first, 1e-12);
    // A zero dS adds nothing.
    for (const DV* g : {&r.dH, &r.dW, &r.db, &r.dc})
      for (const double v : *g) CHECK(v == 0.0);
  }
}

TEMPLATE_LIST_TEST_CASE("context_attention: central-difference gradients of H, W, b and c", "[layers][context_attention]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  for (const auto& dims : kDims) {
    const std::size_t D = dims[0], A = dims[1];
    DYNAMIC_SECTION("D = " << D << ", A = " << A) {
      const std::size_t R = static_cast<std::size_t>(kOffsets.back()), B = kOffsets.size() - 1;
      const auto off = to_offsets<M>(kOffsets);
      Mat<M> H("H", R, D), S("S", B, D), Rm("R", B, D), dH("dH", R, D);
      embsr::test::fill_random(H, 30 + D);
      embsr::test::fill_random(Rm, 31 + D);
      const Params<M> p(A, D, 40 + A), g(A, D, 0);
      g.zero();
      embsr::ContextAttentionCache<double, M> cache;
      auto loss = [&]() {
        embsr::context_attention_forward(Exec(), off, H, p.refs(), S, cache);
        Kokkos::fence();
        return embsr::test::dot(S, Rm);
      };
      loss();
      embsr::context_attention_backward(Exec(), off, H, p.refs(), cache, Rm, dH, g.refs());
      Kokkos::fence();
      using embsr::test::flat;
      using embsr::test::to_vector;
      std::vector<embsr::test::GradTarget<M>> targets{{"H", flat(H), to_vector(dH)},
                                                      {"W", flat(p.W), to_vector(g.W)},
                                                      {"b", flat(p.b), to_vector(g.b)},
                                                      {"c", flat(p.c), to_vector(g.c)}};
      for (const auto& t : targets) {
        double m = 0;
        for (const double v : t.analytic) m = std::max(m, std::abs(v));
        INFO(t.name);
        CHECK(m > 1e-3);
      }
      const double worst = embsr::test::check_gradients(loss, targets);
      CHECK(worst < 1e-6);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("context_attention: the backward adds into dH and the gradients; dH may be empty",
                        "[layers][context_attention]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t D = 3, A = 5, R = static_cast<std::size_t>(kOffsets.back()), B = kOffsets.size() - 1;
  const auto off = to_offsets<M>(kOffsets);
  const DV h = random_values(R * D, 50), rm = random_values(B * D, 51);
  const Params<M> p(A, D, 52);
  const Run fresh = forward_backward<Exec>(kOffsets, h, rm, D, p);

  const auto H = from_vector<Mat<M>>("H", h, R, D);
  const auto dS = from_vector<Mat<M>>("dS", rm, B, D);
  Mat<M> S("S", B, D), dH("dH", R, D);
  embsr::test::fill_random(dH, 53);
  const Params<M> g(A, D, 54);  // nonzero starting gradients
  using embsr::test::to_vector;
  const DV dH0 = to_vector(dH), W0 = to_vector(g.W), b0 = to_vector(g.b), c0 = to_vector(g.c);
  embsr::ContextAttentionCache<double, M> cache;
  embsr::context_attention_forward(Exec(), off, H, p.refs(), S, cache);
  embsr::context_attention_backward(Exec(), off, H, p.refs(), cache, dS, dH, g.refs());
  Kokkos::fence();
  auto added = [](const DV& a, const DV& b) {
    DV s(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) s[i] = a[i] + b[i];
    return s;
  };
  same("dH", to_vector(dH), added(dH0, fresh.dH), 1e-12);
  same("dW", to_vector(g.W), added(W0, fresh.dW), 1e-12);
  same("db", to_vector(g.b), added(b0, fresh.db), 1e-12);
  same("dc", to_vector(g.c), added(c0, fresh.dc), 1e-12);

  // An empty dH: the parameter gradients only, the same as with dH.
  const Params<M> g2(A, D, 0);
  g2.zero();
  embsr::context_attention_backward(Exec(), off, H, p.refs(), cache, dS, Mat<M>(), g2.refs());
  Kokkos::fence();
  CHECK(to_vector(g2.W) == fresh.dW);
  CHECK(to_vector(g2.b) == fresh.db);
  CHECK(to_vector(g2.c) == fresh.dc);

  // Deterministic: a second run gives the same bits.
  const Run again = forward_backward<Exec>(kOffsets, h, rm, D, p);
  CHECK(again.S == fresh.S);
  CHECK(again.dH == fresh.dH);
  CHECK(again.dW == fresh.dW);
  CHECK(again.dc == fresh.dc);
}

TEMPLATE_LIST_TEST_CASE("context_attention: a session's output and gradients do not depend on the other sessions",
                        "[layers][context_attention]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t D = 4, A = 3, R = static_cast<std::size_t>(kOffsets.back()), B = kOffsets.size() - 1;
  const DV h = random_values(R * D, 60), rm = random_values(B * D, 61);
  const Params<M> p(A, D, 62);
  const Run all = forward_backward<Exec>(kOffsets, h, rm, D, p);
  DV dW(all.dW.size(), 0.0), dc(all.dc.size(), 0.0);
  for (std::size_t s = 0; s < B; ++s) {
    INFO("session " << s);
    const auto r0 = static_cast<std::size_t>(kOffsets[s]), r1 = static_cast<std::size_t>(kOffsets[s + 1]);
    const DV hs(h.begin() + static_cast<long>(r0 * D), h.begin() + static_cast<long>(r1 * D));
    const DV rs(rm.begin() + static_cast<long>(s * D), rm.begin() + static_cast<long>((s + 1) * D));
    const Run one = forward_backward<Exec>(IV{0, static_cast<index_t>(r1 - r0)}, hs, rs, D, p);
    same("S", one.S, DV(all.S.begin() + static_cast<long>(s * D), all.S.begin() + static_cast<long>((s + 1) * D)), 0);
    same("dH", one.dH, DV(all.dH.begin() + static_cast<long>(r0 * D), all.dH.begin() + static_cast<long>(r1 * D)),
         1e-12);
    for (std::size_t i = 0; i < dW.size(); ++i) dW[i] += one.dW[i];
    for (std::size_t i = 0; i < dc.size(); ++i) dc[i] += one.dc[i];
  }
  same("dW", dW, all.dW, 1e-11);
  same("dc", dc, all.dc, 1e-11);
}

TEMPLATE_LIST_TEST_CASE("context_attention: a strided output, empty sessions, an empty batch, bad shapes",
                        "[layers][context_attention]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const std::size_t D = 3, A = 4;
  const Params<M> p(A, D, 70);
  using embsr::test::to_vector;
  {
    // S as the first D columns of a [B x (D+1)] matrix (RIB's [s ; 1]); the last column untouched.
    const std::size_t R = static_cast<std::size_t>(kOffsets.back()), B = kOffsets.size() - 1;
    const DV h = random_values(R * D, 71), rm = random_values(B * D, 72);
    const Run plain = forward_backward<Exec>(kOffsets, h, rm, D, p);
    const auto off = to_offsets<M>(kOffsets);
    const auto H = from_vector<Mat<M>>("H", h, R, D);
    Mat<M> wide("wide", B, D + 1), dwide("dwide", B, D + 1), dH("dH", R, D);
    Kokkos::deep_copy(wide, 7.0);
    auto dwh = Kokkos::create_mirror_view(dwide);
    for (std::size_t s = 0; s < B; ++s) {
      for (std::size_t j = 0; j < D; ++j) dwh(s, j) = rm[s * D + j];
      dwh(s, D) = 100.0;  // must not leak into anything
    }
    Kokkos::deep_copy(dwide, dwh);
    const Params<M> g(A, D, 0);
    g.zero();
    embsr::ContextAttentionCache<double, M> cache;
    const auto cols = std::make_pair(0, static_cast<int>(D));
    embsr::context_attention_forward(Exec(), off, H, p.refs(), Kokkos::subview(wide, Kokkos::ALL, cols), cache);
    embsr::context_attention_backward(Exec(), off, H, p.refs(), cache, Kokkos::subview(dwide, Kokkos::ALL, cols), dH,
                                      g.refs());
    Kokkos::fence();
    const auto wh = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), wide);
    for (std::size_t s = 0; s < B; ++s) {
      for (std::size_t j = 0; j < D; ++j) CHECK(wh(s, j) == plain.S[s * D + j]);
      CHECK(wh(s, D) == 7.0);
    }
    CHECK(to_vector(dH) == plain.dH);
    CHECK(to_vector(g.W) == plain.dW);
  }
  {
    // Empty sessions between and around others: s = 0 for them, nothing else changes.
    const IV with_empty{0, 0, 2, 2, 5, 5};
    const DV h = random_values(5 * D, 73), rm = random_values(5 * D, 74);
    const Run r = forward_backward<Exec>(with_empty, h, rm, D, p);
    DV rm2;
    for (const std::size_t s : {1, 3}) rm2.insert(rm2.end(), rm.begin() + static_cast<long>(s * D), rm.begin() + static_cast<long>((s + 1) * D));
    const Run r2 = forward_backward<Exec>(IV{0, 2, 5}, h, rm2, D, p);
    for (const std::size_t s : {0, 2, 4})
      for (std::size_t j = 0; j < D; ++j) CHECK(r.S[s * D + j] == 0.0);
    for (std::size_t j = 0; j < D; ++j) {
      CHECK(r.S[1 * D + j] == r2.S[0 * D + j]);
      CHECK(r.S[3 * D + j] == r2.S[1 * D + j]);
    }
    same("dH", r.dH, r2.dH, 0);
    same("dW", r.dW, r2.dW, 0);
  }
  {
    // One row: alpha = 1, s = h, and the attention parameters get no gradient.
    const DV h = random_values(D, 75), rm = random_values(D, 76);
    const Run r = forward_backward<Exec>(IV{0, 1}, h, rm, D, p);
    same("S", r.S, h, 1e-15);
    same("dH", r.dH, rm, 1e-15);
    for (const DV* g : {&r.dW, &r.db, &r.dc})
      for (const double v : *g) CHECK(std::abs(v) < 1e-15);
  }
  {
    // B = 0: nothing computed, no gradient added.
    const Run r = forward_backward<Exec>(IV{0}, DV{}, DV{}, D, p);
    CHECK(r.S.empty());
    CHECK(r.dH.empty());
    for (const DV* g : {&r.dW, &r.db, &r.dc})
      for (const double v : *g) CHECK(v == 0.0);
  }
  {
    // Bad shapes say which argument is wrong.
    using Catch::Matchers::Contains;
    const auto off = to_offsets<M>(kOffsets);
    const std::size_t R = static_cast<std::size_t>(kOffsets.back()), B = kOffsets.size() - 1;
    Mat<M> H("H", R, D), S("S", B, D), S_bad("S", B + 1, D), H_bad("H", R, D + 1), dS_bad("dS", B, D + 1);
    embsr::ContextAttentionCache<double, M> cache;
    CHECK_THROWS_WITH(embsr::context_attention_forward(Exec(), off, H, p.refs(), S_bad, cache), Contains("S"));
    CHECK_THROWS_WITH(embsr::context_attention_forward(Exec(), off, H_bad, p.refs(), S, cache), Contains("W"));
    CHECK_THROWS_AS(embsr::context_attention_backward(Exec(), off, H, p.refs(), cache, S, Mat<M>(), p.refs()),
                    embsr::InvalidArgument);  // the cache holds no forward
    embsr::context_attention_forward(Exec(), off, H, p.refs(), S, cache);
    CHECK_THROWS_WITH(embsr::context_attention_backward(Exec(), off, H, p.refs(), cache, dS_bad, Mat<M>(), p.refs()),
                      Contains("dS"));
    const Params<M> wrong(A + 1, D, 0);
    CHECK_THROWS_AS(embsr::context_attention_backward(Exec(), off, H, p.refs(), cache, S, Mat<M>(), wrong.refs()),
                    embsr::InvalidArgument);
  }
}

}  // namespace test_context_attention
