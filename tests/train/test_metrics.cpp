// Ranking metrics (MODEL.md 7) on hand-made ranks. (The target-rank kernel: tests/layers/test_top_k.cpp.)
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include <embsr/train/metrics.hpp>

namespace test_metrics {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

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

}  // namespace test_metrics
