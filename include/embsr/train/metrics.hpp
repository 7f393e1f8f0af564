#pragma once
// Ranking metrics of MODEL.md section 7: H@K, M@K (MRR@K) and NDCG@K for K in {1, 3, 5, 10, 20},
// one relevant item (the target) per session. The kernel that turns a [B x V] score matrix into the
// targets' ranks (target_ranks, pessimistic ties) is in layers/top_k.hpp, included here.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/layers/top_k.hpp>  // target_ranks

namespace embsr {

inline constexpr int kNumMetricKs = 5;
inline constexpr int kMetricKs[kNumMetricKs] = {1, 3, 5, 10, 20};

namespace detail {
// Position of k in kMetricKs, or -1.
constexpr int k_index(int k) {
  for (int i = 0; i < kNumMetricKs; ++i)
    if (kMetricKs[i] == k) return i;
  return -1;
}
inline int checked_k_index(int k, const char* what) {
  const int i = k_index(k);
  if (i < 0)
    throw InvalidArgument(std::string("RankingMetrics::") + what + ": K must be one of 1, 3, 5, 10, 20, got " +
                          std::to_string(k));
  return i;
}
}  // namespace detail

// Accumulates ranking metrics over sessions. rank is 1-based; 0 means "target not ranked" (absent
// from the catalogue): a miss for every K. Sums are kept, means are taken on demand, so
// accumulators of disjoint session sets combine exactly with +=.
struct RankingMetrics {
  std::size_t sessions = 0;
  double hits[kNumMetricKs] = {};  // sums of [rank <= K]
  double rr[kNumMetricKs] = {};    // sums of 1/rank if rank <= K
  double ndcg[kNumMetricKs] = {};  // sums of 1/log2(rank + 1) if rank <= K

  void add_rank(std::size_t rank) {
    ++sessions;
    if (rank == 0) return;
    const double r = static_cast<double>(rank);
    const double reciprocal = 1.0 / r, gain = 1.0 / std::log2(r + 1.0);
    for (int i = 0; i < kNumMetricKs; ++i)
      if (rank <= static_cast<std::size_t>(kMetricKs[i])) {
        hits[i] += 1.0;
        rr[i] += reciprocal;
        ndcg[i] += gain;
      }
  }

  RankingMetrics& operator+=(const RankingMetrics& other) {
    sessions += other.sessions;
    for (int i = 0; i < kNumMetricKs; ++i) {
      hits[i] += other.hits[i];
      rr[i] += other.rr[i];
      ndcg[i] += other.ndcg[i];
    }
    return *this;
  }

  // Means over the sessions, in [0, 1]; 0 when there are no sessions. k must be one of kMetricKs.
  double hit(int k) const { return mean(hits[detail::checked_k_index(k, "hit")]); }
  double mrr(int k) const { return mean(rr[detail::checked_k_index(k, "mrr")]); }
  double ndcg_at(int k) const { return mean(ndcg[detail::checked_k_index(k, "ndcg_at")]); }

  // Fixed-width table, values in %:
  //              @1      @3      @5     @10     @20
  //   H@K     12.34   ...
  //   M@K      ...
  //   NDCG@K   ...
  std::string table() const {
    char buf[32];
    std::string out = "        ";
    for (int i = 0; i < kNumMetricKs; ++i) {
      std::snprintf(buf, sizeof(buf), "%8s", ("@" + std::to_string(kMetricKs[i])).c_str());
      out += buf;
    }
    out += '\n';
    const char* labels[3] = {"H@K", "M@K", "NDCG@K"};
    const double* sums[3] = {hits, rr, ndcg};
    for (int row = 0; row < 3; ++row) {
      std::snprintf(buf, sizeof(buf), "%-8s", labels[row]);
      out += buf;
      for (int i = 0; i < kNumMetricKs; ++i) {
        std::snprintf(buf, sizeof(buf), "%8.2f", 100.0 * mean(sums[row][i]));
        out += buf;
      }
      out += '\n';
    }
    return out;
  }

 private:
  double mean(double sum) const { return sessions == 0 ? 0.0 : sum / static_cast<double>(sessions); }
};

}  // namespace embsr
