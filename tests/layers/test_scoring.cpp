// The model's head (MODEL.md 5): fusion gate (learned and fixed beta), normalised scores with the
// softmax cross-entropy loss, and top-K retrieval.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include <embsr/layers/scoring.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace {

template <class M>
using Mat = Kokkos::View<double**, Kokkos::LayoutRight, M>;
template <class M>
using Vec = Kokkos::View<double*, Kokkos::LayoutRight, M>;
template <class M>
using Ids = Kokkos::View<std::int32_t*, M>;
template <class M>
using IdMat = Kokkos::View<std::int32_t**, Kokkos::LayoutRight, M>;

template <class V>
std::vector<std::int32_t> to_int_vector(const V& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<std::int32_t>(h.data(), h.data() + h.span());
}

template <class V>
void set_values(const V& v, const std::vector<double>& values) {
  auto f = embsr::test::flat(v);
  auto h = Kokkos::create_mirror_view(f);
  REQUIRE(h.extent(0) == values.size());
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = values[i];
  Kokkos::deep_copy(f, h);
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::size_t at(int i, int cols, int j) { return static_cast<std::size_t>(i * cols + j); }

// Host reference of MODEL.md 5: scores[b][v] = w_k m_b.E_v / (max(|m_b|, eps) max(|E_v|, eps)).
std::vector<double> reference_scores(const std::vector<double>& m, const std::vector<double>& E, int B, int V, int d,
                                     double w_k) {
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
      s[at(b, V, v)] = w_k * dot / (norm(m, b) * norm(E, v));
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

// Host top-K: sort ids by (value desc, id asc).
std::vector<int> reference_top_k(const std::vector<double>& s, int r, int V, int K) {
  std::vector<int> ids(static_cast<std::size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int a, int b) {
    const double va = s[at(r, V, a)], vb = s[at(r, V, b)];
    return va > vb || (va == vb && a < b);
  });
  ids.resize(static_cast<std::size_t>(std::min(K, V)));
  return ids;
}

}  // namespace

// ------------------------------------------------------------------------------------- fusion

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
    embsr::fusion_forward(Exec(), z, x, p, -1.0, m, cache);
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

  embsr::fusion_backward(Exec(), z, x, p, -1.0, cache, R, dz, dx, g);
  Kokkos::fence();
  using T = embsr::test::GradTarget<M>;
  std::vector<T> targets{{"z", embsr::test::flat(z), embsr::test::to_vector(dz)},
                         {"x", embsr::test::flat(x), embsr::test::to_vector(dx)},
                         {"W_f", embsr::test::flat(W), embsr::test::to_vector(dW)},
                         {"b_f", embsr::test::flat(b), embsr::test::to_vector(db)}};
  embsr::test::check_gradients<M>(loss, targets);

  // The backward adds: a second call doubles every gradient.
  loss();
  embsr::fusion_backward(Exec(), z, x, p, -1.0, cache, R, dz, dx, g);
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
      embsr::fusion_forward(Exec(), z, x, none, fb, m, cache);
      Kokkos::fence();
      return embsr::test::dot(m, R);
    };
    loss();
    const auto zv = embsr::test::to_vector(z), xv = embsr::test::to_vector(x), mv = embsr::test::to_vector(m);
    for (std::size_t i = 0; i < mv.size(); ++i) CHECK(mv[i] == Approx(fb * zv[i] + (1 - fb) * xv[i]).epsilon(1e-14));
    Kokkos::deep_copy(dz, 0.0);
    Kokkos::deep_copy(dx, 0.0);
    embsr::fusion_backward(Exec(), z, x, none, fb, cache, R, dz, dx, none);
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
  CHECK_THROWS_AS(embsr::fusion_forward(Exec(), z, x, bad, -1.0, m, cache), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::fusion_forward(Exec(), z, x, bad, 1.5, m, cache), embsr::InvalidArgument);
  Mat<M> W6("W6", 3, 6), x3("x3", 3, 3);
  const embsr::FusionParams<double, M> good{W6, b};
  CHECK_THROWS_AS(embsr::fusion_forward(Exec(), z, x3, good, -1.0, m, cache), embsr::InvalidArgument);
  // Backward of the learned gate without its forward.
  CHECK_THROWS_AS(embsr::fusion_backward(Exec(), z, x, good, -1.0, cache, m, dz, dx, good), embsr::InvalidArgument);
}

// ------------------------------------------------------------------------------------ scoring

TEMPLATE_LIST_TEST_CASE("scoring: normalised scores, loss, and central-difference gradients of m and E",
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

  // Scores only (no targets): loss 0.
  const double none = embsr::scoring_forward(Exec(), m, E, Ids<M>(), w_k, cache);
  CHECK(none == 0.0);
  const auto ref = reference_scores(embsr::test::to_vector(m), embsr::test::to_vector(E), B, V, d, w_k);
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

// -------------------------------------------------------------------------------------- top-K

TEMPLATE_LIST_TEST_CASE("top_k: ties by smaller id, K = 1, K = V, K > V, against a host sort", "[layers][top_k]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int B = 3, V = 6;
  const std::vector<double> s{1, 3, 3, 2, 3, 0,    //
                              0, 0, 0, 0, 0, 0,    //
                              -1, 5, -2, 5, 4, -1};
  Mat<M> scores("scores", B, V);
  set_values(scores, s);
  const int most = std::is_same<Exec, Kokkos::Serial>::value ? 1 : std::min(Exec().concurrency(), 4);
  for (int team_size = 0; team_size <= most; ++team_size)  // more threads than items per row too
  for (int K : {1, 2, 3, 5, 6, 10}) {
    const int cols = std::min(K, V);
    IdMat<M> ids("ids", B, cols);
    Mat<M> values("values", B, cols);
    embsr::top_k(Exec(), scores, K, ids, values, team_size);
    Kokkos::fence();
    const auto gi = to_int_vector(ids);
    const auto gv = embsr::test::to_vector(values);
    for (int r = 0; r < B; ++r) {
      const auto want = reference_top_k(s, r, V, K);
      for (int j = 0; j < cols; ++j) {
        INFO("K " << K << " row " << r << " rank " << j << " team size " << team_size);
        CHECK(gi[at(r, cols, j)] == want[static_cast<std::size_t>(j)]);
        CHECK(gv[at(r, cols, j)] == s[at(r, V, want[static_cast<std::size_t>(j)])]);
      }
    }
  }
  {  // wider outputs than V: trailing columns are marked
    const int K = 9;
    IdMat<M> ids("ids", B, K);
    Mat<M> values("values", B, K);
    embsr::top_k(Exec(), scores, K, ids, values);
    Kokkos::fence();
    const auto gi = to_int_vector(ids);
    const auto gv = embsr::test::to_vector(values);
    for (int r = 0; r < B; ++r) {
      const auto want = reference_top_k(s, r, V, K);
      for (int j = 0; j < V; ++j) CHECK(gi[at(r, K, j)] == want[static_cast<std::size_t>(j)]);
      for (int j = V; j < K; ++j) {
        CHECK(gi[at(r, K, j)] == -1);
        CHECK(gv[at(r, K, j)] == std::numeric_limits<double>::lowest());
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("top_k: many items with many ties, small and large K", "[layers][top_k]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  const int B = 4, V = 1000;
  std::vector<double> s(static_cast<std::size_t>(B * V));
  embsr::Rng rng(81, 0);
  for (auto& v : s) v = std::floor(rng.uniform() * 20.0 - 8.0) / 4.0;  // 20 distinct values: many ties
  Mat<M> scores("scores", B, V);
  set_values(scores, s);
  // Team sizes: automatic, 1 (a single heap per row) and, where the backend allows, several
  // per-thread heaps merged (the GPU path; 2 on a 2-thread OpenMP, more on a GPU).
  std::vector<int> team_sizes{0, 1};
  const int most = std::is_same<Exec, Kokkos::Serial>::value ? 1 : std::min(Exec().concurrency(), 64);
  for (int t : {2, 3, 64})
    if (t <= most) team_sizes.push_back(t);
  for (const int team_size : team_sizes)
  for (int K : {1, 20, 999, 1000, 1500}) {
    const int cols = std::min(K, V);
    IdMat<M> ids("ids", B, cols);
    Mat<M> values("values", B, cols);
    embsr::top_k(Exec(), scores, K, ids, values, team_size);
    Kokkos::fence();
    const auto gi = to_int_vector(ids);
    const auto gv = embsr::test::to_vector(values);
    std::size_t mismatches = 0;
    for (int r = 0; r < B; ++r) {
      const auto want = reference_top_k(s, r, V, K);
      for (int j = 0; j < cols; ++j)
        if (gi[at(r, cols, j)] != want[static_cast<std::size_t>(j)] ||
            gv[at(r, cols, j)] != s[at(r, V, want[static_cast<std::size_t>(j)])])
          ++mismatches;
    }
    INFO("K " << K << ", team size " << team_size);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("top_k: bad arguments are rejected", "[layers][top_k]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  Mat<M> scores("scores", 2, 5), values("values", 2, 3);
  IdMat<M> ids("ids", 2, 3);
  CHECK_THROWS_AS(embsr::top_k(Exec(), scores, -1, ids, values), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::top_k(Exec(), scores, 4, ids, values), embsr::InvalidArgument);  // 3 < min(4, 5) columns
  Mat<M> values2("values2", 2, 2);
  CHECK_THROWS_AS(embsr::top_k(Exec(), scores, 2, ids, values2), embsr::InvalidArgument);
  embsr::top_k(Exec(), scores, 0, ids, values);  // K = 0: only the marker columns
  for (int r = 0; r < 2; ++r) CHECK(ids(r, 0) == -1);
}
