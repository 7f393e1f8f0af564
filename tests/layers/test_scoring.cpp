// The model's head (MODEL.md 5): normalised scores with the softmax cross-entropy loss. (Fusion:
// test_fusion.cpp; top-K: test_top_k.cpp.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include <embsr/layers/scoring.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_scoring {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

template <class M>
using Mat = Kokkos::View<double**, Kokkos::LayoutRight, M>;
template <class M>
using Vec = Kokkos::View<double*, Kokkos::LayoutRight, M>;
template <class M>
using Ids = Kokkos::View<std::int32_t*, M>;
template <class V>
void set_values(const V& v, const std::vector<double>& values) {
  auto f = embsr::test::flat(v);
  auto h = Kokkos::create_mirror_view(f);
  REQUIRE(h.extent(0) == values.size());
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = values[i];
  Kokkos::deep_copy(f, h);
}

std::size_t at(int i, int cols, int j) { return static_cast<std::size_t>(i * cols + j); }

// Host reference of MODEL.md 5: scores[b][v] = w_k m_b.E_v / (max(|m_b|, eps) max(|E_v|, eps));
// with ScoreKind::Dot (SR-GNN eq. 8) m_b.E_v; with ScoreKind::CenteredCosine (SGNN-HN) the cosine
// of the rows minus their means.
std::vector<double> reference_scores(const std::vector<double>& m_in, const std::vector<double>& E_in, int B, int V, int d,
                                     double w_k, embsr::ScoreKind kind = embsr::ScoreKind::Cosine) {
  auto centred = [&](std::vector<double> a, int rows) {
    if (kind != embsr::ScoreKind::CenteredCosine) return a;
    for (int r = 0; r < rows; ++r) {
      double mu = 0;
      for (int j = 0; j < d; ++j) mu += a[at(r, d, j)] / d;
      for (int j = 0; j < d; ++j) a[at(r, d, j)] -= mu;
    }
    return a;
  };
  const auto m = centred(m_in, B), E = centred(E_in, V);
  auto norm = [&](const std::vector<double>& a, int r) {
    double s = 0;
    for (int j = 0; j < d; ++j) s += a[at(r, d, j)] * a[at(r, d, j)];
    return std::max(std::sqrt(s), 1e-12);
  };
  std::vector<double> s(static_cast<std::size_t>(B * V));
  for (int b = 0; b < B; ++b)
    for (int v = 0; v < V; ++v) {
      double dot = 0;
      for (int j = 0; j < d; ++j) dot += m[at(b, d, j)] * E[at(v, d, j)];
      s[at(b, V, v)] = kind == embsr::ScoreKind::Dot ? dot : w_k * dot / (norm(m, b) * norm(E, v));
    }
  return s;
}

double reference_loss(const std::vector<double>& s, const std::vector<std::int32_t>& t, int B, int V) {
  double loss = 0;
  for (int b = 0; b < B; ++b) {
    double sum = 0;
    for (int v = 0; v < V; ++v) sum += std::exp(s[at(b, V, v)]);  // small scores: no overflow here
    loss += std::log(sum) - s[at(b, V, t[static_cast<std::size_t>(b)])];
  }
  return loss / B;
}

}  // namespace

// ------------------------------------------------------------------------------------ scoring

TEMPLATE_LIST_TEST_CASE("scoring: normalised, centred and dot-product scores, loss, and central-difference gradients of m and E",
                        "[layers][scoring]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int B = 3, V = 7, d = 4;
  const double w_k = 12.0;
  const std::vector<std::int32_t> t{2, 5, 2};  // repeated target
  Mat<M> m("m", B, d), E("E", V, d), dm("dm", B, d), dE("dE", V, d);
  embsr::test::fill_random(m, 61);
  embsr::test::fill_random(E, 62, 0.3);
  auto targets = embsr::test::to_ids<M>(t);
  embsr::ScoringCache<double, M> cache;
  SECTION("cosine (EMBSR eq. 19)") {}
  SECTION("centred cosine (SGNN-HN)") { cache.kind = embsr::ScoreKind::CenteredCosine; }
  SECTION("dot product (SR-GNN eq. 8): w_k ignored") { cache.kind = embsr::ScoreKind::Dot; }

  // Scores only (no targets): loss 0.
  const double none = embsr::scoring_forward(Exec(), m, E, Ids<M>(), w_k, cache);
  CHECK(none == 0.0);
  const auto ref = reference_scores(embsr::test::to_vector(m), embsr::test::to_vector(E), B, V, d, w_k, cache.kind);
  {
    REQUIRE(cache.scores.extent(0) == static_cast<std::size_t>(B));
    REQUIRE(cache.scores.extent(1) == static_cast<std::size_t>(V));
    const auto s = embsr::test::to_vector(cache.scores);
    for (std::size_t i = 0; i < ref.size(); ++i) CHECK(s[i] == Approx(ref[i]).epsilon(1e-12));
  }

  auto loss = [&] { return embsr::scoring_forward(Exec(), m, E, targets, w_k, cache); };
  const double l = loss();
  CHECK(l == Approx(reference_loss(ref, t, B, V)).epsilon(1e-12));
  const auto s = embsr::test::to_vector(cache.scores);
  for (std::size_t i = 0; i < ref.size(); ++i) CHECK(s[i] == Approx(ref[i]).epsilon(1e-12));

  embsr::scoring_backward(Exec(), m, E, targets, w_k, cache, dm, dE);
  Kokkos::fence();
  using T = embsr::test::GradTarget<M>;
  std::vector<T> grads{{"m", embsr::test::flat(m), embsr::test::to_vector(dm)},
                       {"E", embsr::test::flat(E), embsr::test::to_vector(dE)}};
  embsr::test::check_gradients<M>(loss, grads);

  // A second backward without a fresh forward is refused (the scores were overwritten).
  loss();
  embsr::scoring_backward(Exec(), m, E, targets, w_k, cache, dm, dE);
  CHECK_THROWS_AS(embsr::scoring_backward(Exec(), m, E, targets, w_k, cache, dm, dE), embsr::InvalidArgument);
}

TEMPLATE_LIST_TEST_CASE("scoring: large scores stay finite, zero vectors are clamped, buffers are reused",
                        "[layers][scoring]", embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int B = 2, V = 5, d = 3;
  Mat<M> m("m", B, d), E("E", V, d), dm("dm", B, d), dE("dE", V, d);
  embsr::test::fill_random(m, 71);
  embsr::test::fill_random(E, 72);
  // Item 3 and session 1 are zero vectors: score 0, no NaN.
  set_values(Kokkos::subview(E, 3, Kokkos::ALL), {0.0, 0.0, 0.0});
  set_values(Kokkos::subview(m, 1, Kokkos::ALL), {0.0, 0.0, 0.0});
  auto targets = embsr::test::to_ids<M>({3, 0});
  embsr::ScoringCache<double, M> cache;
  const double w_k = 1000.0;  // exp(1000) overflows: only a max-subtracted logsumexp survives
  const double l = embsr::scoring_forward(Exec(), m, E, targets, w_k, cache);
  CHECK(std::isfinite(l));
  const auto s = embsr::test::to_vector(cache.scores);
  for (int b = 0; b < B; ++b) CHECK(s[at(b, V, 3)] == 0.0);
  for (int v = 0; v < V; ++v) CHECK(s[at(1, V, v)] == 0.0);
  double expected = 0;  // log-sum-exp by hand, max subtracted
  for (int b = 0; b < B; ++b) {
    double mx = -std::numeric_limits<double>::infinity();
    for (int v = 0; v < V; ++v) mx = std::max(mx, s[at(b, V, v)]);
    double sum = 0;
    for (int v = 0; v < V; ++v) sum += std::exp(s[at(b, V, v)] - mx);
    expected += mx + std::log(sum) - s[at(b, V, b == 0 ? 3 : 0)];
  }
  CHECK(l == Approx(expected / B).epsilon(1e-12));
  embsr::scoring_backward(Exec(), m, E, targets, w_k, cache, dm, dE);
  Kokkos::fence();
  for (double v : embsr::test::to_vector(dm)) CHECK(std::isfinite(v));
  for (double v : embsr::test::to_vector(dE)) CHECK(std::isfinite(v));

  // The [B x V] and [V x d] buffers are allocated once and reused by smaller batches.
  const double* scores_data = cache.scores_storage.data();
  const double* items_data = cache.items_hat_storage.data();
  auto m1 = Kokkos::subview(m, Kokkos::make_pair(0, 1), Kokkos::ALL);
  embsr::scoring_forward(Exec(), m1, E, Ids<M>(), w_k, cache);
  CHECK(cache.scores_storage.data() == scores_data);
  CHECK(cache.items_hat_storage.data() == items_data);
  CHECK(cache.scores.extent(0) == 1);
  CHECK(cache.scores_storage.extent(0) == static_cast<std::size_t>(B));  // sized exactly, no slack
}

TEST_CASE("scoring: bad shapes are rejected", "[layers][scoring]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  Mat<M> m("m", 2, 3), E("E", 4, 3), E2("E2", 4, 2), dm("dm", 2, 3), dE("dE", 4, 3);
  auto targets = embsr::test::to_ids<M>({1, 2, 3});
  embsr::ScoringCache<double, M> cache;
  CHECK_THROWS_AS(embsr::scoring_forward(Exec(), m, E2, Ids<M>(), 12.0, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::scoring_forward(Exec(), m, E, targets, 12.0, cache), embsr::InvalidArgument);
  embsr::scoring_forward(Exec(), m, E, Ids<M>(), 12.0, cache);
  auto t2 = embsr::test::to_ids<M>({1, 2});
  CHECK_THROWS_AS(embsr::scoring_backward(Exec(), m, E, t2, 12.0, cache, dm, dE), embsr::InvalidArgument);  // no loss
}

}  // namespace test_scoring
