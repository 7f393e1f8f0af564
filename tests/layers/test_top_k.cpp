// Retrieval from a score matrix (layers/top_k.hpp): top-K against a host sort (ties by smaller id,
// several team sizes so the merge path runs on every backend), and the target-rank kernel of
// MODEL.md 7 against a host count with planted ties.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <type_traits>
#include <vector>

#include <embsr/core/random.hpp>
#include <embsr/layers/top_k.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_top_k {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

template <class M>
using Mat = Kokkos::View<double**, Kokkos::LayoutRight, M>;
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

std::size_t at(int i, int cols, int j) { return static_cast<std::size_t>(i * cols + j); }

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

// 1 + #{v != t : s_v >= s_t}, or 0 when t is outside [0, V).
std::int64_t host_rank(const std::vector<double>& row, std::int64_t t) {
  const auto V = static_cast<std::int64_t>(row.size());
  if (t < 0 || t >= V) return 0;
  std::int64_t rank = 1;
  for (std::int64_t v = 0; v < V; ++v)
    if (v != t && row[static_cast<std::size_t>(v)] >= row[static_cast<std::size_t>(t)]) ++rank;
  return rank;
}

template <class Exec, class Rank>
std::vector<std::int64_t> device_ranks(const std::vector<std::vector<double>>& scores, const std::vector<int>& targets) {
  using M = typename Exec::memory_space;
  const std::size_t B = scores.size(), V = scores.empty() ? 0 : scores[0].size();
  Kokkos::View<double**, Kokkos::LayoutRight, M> s("scores", B, V);
  Kokkos::View<int*, M> t("targets", B);
  Kokkos::View<Rank*, M> r("ranks", B);
  auto hs = Kokkos::create_mirror_view(s);
  auto ht = Kokkos::create_mirror_view(t);
  for (std::size_t b = 0; b < B; ++b) {
    ht(b) = targets[b];
    for (std::size_t v = 0; v < V; ++v) hs(b, v) = scores[b][v];
  }
  Kokkos::deep_copy(s, hs);
  Kokkos::deep_copy(t, ht);
  Kokkos::deep_copy(r, Rank(-7));
  embsr::target_ranks(Exec(), s, t, r);
  auto hr = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), r);
  std::vector<std::int64_t> out(B);
  for (std::size_t b = 0; b < B; ++b) out[b] = static_cast<std::int64_t>(hr(b));
  return out;
}

}  // namespace

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

// --------------------------------------------------------------------------------- target ranks

TEMPLATE_LIST_TEST_CASE("target_ranks: hand-made rows (best, ties, constant, absent targets)", "[layers][target_ranks]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  const std::vector<std::vector<double>> scores{
      {0.1, 0.9, 0.3, 0.2, 0.0, -1.0},  // target 1 is the best           -> 1
      {0.5, 0.7, 0.5, 0.5, 0.1, 0.5},   // target 0 tied with 2, 3, 5     -> 1 + 1 + 3 = 5
      {2.0, 2.0, 2.0, 2.0, 2.0, 2.0},   // constant scores                -> V = 6
      {0.3, 0.1, 0.2, 0.4, 0.5, 0.6},   // target -1                      -> 0
      {0.3, 0.1, 0.2, 0.4, 0.5, 0.6},   // target 6 = V                   -> 0
      {0.3, 0.1, 0.2, 0.4, 0.5, 0.6},   // target 0 below 3 items         -> 4
      {0.3, 0.1, 0.2, 0.4, 0.5, 0.6},   // target 5 best, no ties         -> 1
      {0.3, 0.1, 0.2, 0.4, 0.5, 0.6},   // target 1 worst                 -> 6
  };
  const std::vector<int> targets{1, 0, 3, -1, 6, 0, 5, 1};
  const std::vector<std::int64_t> expected{1, 5, 6, 0, 0, 4, 1, 6};
  CHECK(device_ranks<Exec, std::int64_t>(scores, targets) == expected);
  CHECK(device_ranks<Exec, std::int32_t>(scores, targets) == expected);
  for (std::size_t b = 0; b < scores.size(); ++b) CHECK(host_rank(scores[b], targets[b]) == expected[b]);
}

TEMPLATE_LIST_TEST_CASE("target_ranks: random scores with planted ties match the host count", "[layers][target_ranks]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  std::mt19937 gen(20240611);
  for (const std::size_t V : {std::size_t(1), std::size_t(7), std::size_t(203), std::size_t(1031)}) {
    const std::size_t B = 37;
    std::vector<std::vector<double>> scores(B, std::vector<double>(V));
    std::vector<int> targets(B);
    std::uniform_int_distribution<int> level(0, 9);  // few distinct values: many ties
    std::uniform_real_distribution<double> real(-1.0, 1.0);
    std::uniform_int_distribution<int> item(-2, static_cast<int>(V) + 1);  // a few absent targets
    for (std::size_t b = 0; b < B; ++b) {
      for (std::size_t v = 0; v < V; ++v) scores[b][v] = b % 3 == 0 ? real(gen) : 0.25 * level(gen);
      targets[b] = item(gen);
      // Plant exact ties with the target in continuous rows.
      if (b % 3 == 0 && targets[b] >= 0 && targets[b] < static_cast<int>(V))
        for (std::size_t v = 0; v < V; v += 5) scores[b][v] = scores[b][static_cast<std::size_t>(targets[b])];
    }
    std::vector<std::int64_t> expected(B);
    for (std::size_t b = 0; b < B; ++b) expected[b] = host_rank(scores[b], targets[b]);
    CHECK(device_ranks<Exec, std::int64_t>(scores, targets) == expected);
    CHECK(device_ranks<Exec, std::int32_t>(scores, targets) == expected);
  }
}

TEMPLATE_LIST_TEST_CASE("target_ranks: shape mismatches throw, an empty batch is fine", "[layers][target_ranks]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  Kokkos::View<float**, Kokkos::LayoutRight, M> s("scores", 3, 4);
  Kokkos::View<int*, M> t("targets", 3), t2("targets", 2);
  Kokkos::View<std::int64_t*, M> r("ranks", 3), r2("ranks", 2);
  CHECK_THROWS_AS(embsr::target_ranks(Exec(), s, t2, r2), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::target_ranks(Exec(), s, t, r2), embsr::InvalidArgument);
  Kokkos::deep_copy(s, 1.0f);
  embsr::target_ranks(Exec(), s, t, r);  // float scores, all constant: rank V
  auto hr = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), r);
  for (int b = 0; b < 3; ++b) CHECK(hr(b) == 4);
  Kokkos::View<float**, Kokkos::LayoutRight, M> s0("scores", 0, 4);
  Kokkos::View<int*, M> t0("targets", 0);
  Kokkos::View<std::int64_t*, M> r0("ranks", 0);
  CHECK_NOTHROW(embsr::target_ranks(Exec(), s0, t0, r0));
}

}  // namespace test_top_k
