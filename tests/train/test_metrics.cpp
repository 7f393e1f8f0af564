// Ranking metrics (MODEL.md 7) on hand-made ranks, and the target-rank kernel against a host
// computation with planted ties.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <embsr/train/metrics.hpp>

#include "exec_spaces.hpp"

namespace {

embsr::RankingMetrics metrics_of(const std::vector<std::size_t>& ranks) {
  embsr::RankingMetrics m;
  for (const std::size_t r : ranks) m.add_rank(r);
  return m;
}

void require_same(const embsr::RankingMetrics& a, const embsr::RankingMetrics& b) {
  REQUIRE(a.sessions == b.sessions);
  for (int i = 0; i < embsr::kNumMetricKs; ++i) {
    CHECK(a.hits[i] == Approx(b.hits[i]).epsilon(1e-14));
    CHECK(a.rr[i] == Approx(b.rr[i]).epsilon(1e-14));
    CHECK(a.ndcg[i] == Approx(b.ndcg[i]).epsilon(1e-14));
  }
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

TEST_CASE("metrics: hand-made ranks give the hand-computed H, M and NDCG", "[train][metrics]") {
  const embsr::RankingMetrics m = metrics_of({1, 2, 4, 25, 0});
  REQUIRE(m.sessions == 5);
  const double l3 = 1.0 / std::log2(3.0), l5 = 1.0 / std::log2(5.0);
  // H@K
  CHECK(m.hit(1) == Approx(0.2));
  CHECK(m.hit(3) == Approx(0.4));
  CHECK(m.hit(5) == Approx(0.6));
  CHECK(m.hit(10) == Approx(0.6));
  CHECK(m.hit(20) == Approx(0.6));
  // M@K
  CHECK(m.mrr(1) == Approx(1.0 / 5));
  CHECK(m.mrr(3) == Approx((1 + 0.5) / 5));
  CHECK(m.mrr(5) == Approx((1 + 0.5 + 0.25) / 5));
  CHECK(m.mrr(10) == Approx((1 + 0.5 + 0.25) / 5));
  CHECK(m.mrr(20) == Approx((1 + 0.5 + 0.25) / 5));
  // NDCG@K: 1 / log2(rank + 1)
  CHECK(m.ndcg_at(1) == Approx(1.0 / 5));
  CHECK(m.ndcg_at(3) == Approx((1 + l3) / 5));
  CHECK(m.ndcg_at(5) == Approx((1 + l3 + l5) / 5));
  CHECK(m.ndcg_at(20) == Approx((1 + l3 + l5) / 5));
}

TEST_CASE("metrics: K boundaries are inclusive, 0 is a miss everywhere", "[train][metrics]") {
  const embsr::RankingMetrics m = metrics_of({3, 10, 20, 21, 0});
  CHECK(m.hit(1) == 0.0);
  CHECK(m.hit(3) == Approx(0.2));
  CHECK(m.hit(5) == Approx(0.2));
  CHECK(m.hit(10) == Approx(0.4));
  CHECK(m.hit(20) == Approx(0.6));
  CHECK(m.mrr(20) == Approx((1.0 / 3 + 1.0 / 10 + 1.0 / 20) / 5));
  CHECK(m.ndcg_at(10) == Approx((1.0 / std::log2(4.0) + 1.0 / std::log2(11.0)) / 5));
  CHECK(m.ndcg_at(20) == Approx((0.5 + 1.0 / std::log2(11.0) + 1.0 / std::log2(21.0)) / 5));

  const embsr::RankingMetrics misses = metrics_of({0, 0, 0});
  for (const int k : embsr::kMetricKs) {
    CHECK(misses.hit(k) == 0.0);
    CHECK(misses.mrr(k) == 0.0);
    CHECK(misses.ndcg_at(k) == 0.0);
  }
}

TEST_CASE("metrics: K larger than the catalogue saturates at the catalogue size", "[train][metrics]") {
  // A catalogue of 3 items: every rank is in 1..3, so every K >= 3 gives the same values and H = 1.
  const embsr::RankingMetrics m = metrics_of({1, 3, 2, 3});
  for (const int k : {3, 5, 10, 20}) {
    CHECK(m.hit(k) == Approx(1.0));
    CHECK(m.mrr(k) == Approx((1 + 1.0 / 3 + 0.5 + 1.0 / 3) / 4));
    CHECK(m.ndcg_at(k) == Approx((1 + 0.5 + 1.0 / std::log2(3.0) + 0.5) / 4));
  }
  CHECK(m.hit(1) == Approx(0.25));
}

TEST_CASE("metrics: empty accumulator, operator+=, invalid K, table", "[train][metrics]") {
  const embsr::RankingMetrics empty;
  CHECK(empty.sessions == 0);
  for (const int k : embsr::kMetricKs) {
    CHECK(empty.hit(k) == 0.0);
    CHECK(empty.mrr(k) == 0.0);
    CHECK(empty.ndcg_at(k) == 0.0);
  }

  embsr::RankingMetrics a = metrics_of({1, 2, 4});
  const embsr::RankingMetrics b = metrics_of({25, 0});
  a += b;
  require_same(a, metrics_of({1, 2, 4, 25, 0}));
  embsr::RankingMetrics c = metrics_of({7});
  c += empty;
  require_same(c, metrics_of({7}));

  for (const int bad : {0, 2, 4, 15, 50, -1}) {
    CHECK_THROWS_AS(a.hit(bad), embsr::InvalidArgument);
    CHECK_THROWS_AS(a.mrr(bad), embsr::InvalidArgument);
    CHECK_THROWS_AS(a.ndcg_at(bad), embsr::InvalidArgument);
  }

  const std::string t = a.table();
  std::istringstream lines(t);
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  REQUIRE(rows.size() == 4);
  for (const auto& row : rows) CHECK(row.size() == rows[0].size());  // fixed width
  CHECK(rows[0].find("@1") != std::string::npos);
  CHECK(rows[0].find("@20") != std::string::npos);
  CHECK(rows[1].rfind("H@K", 0) == 0);
  CHECK(rows[2].rfind("M@K", 0) == 0);
  CHECK(rows[3].rfind("NDCG@K", 0) == 0);
  CHECK(rows[1].find("20.00") != std::string::npos);  // H@1 = 1/5
  CHECK(rows[1].find("60.00") != std::string::npos);  // H@5 = 3/5
}

TEMPLATE_LIST_TEST_CASE("target_ranks: hand-made rows (best, ties, constant, absent targets)", "[train][metrics]",
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

TEMPLATE_LIST_TEST_CASE("target_ranks: random scores with planted ties match the host count", "[train][metrics]",
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

TEMPLATE_LIST_TEST_CASE("target_ranks: shape mismatches throw, an empty batch is fine", "[train][metrics]",
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
