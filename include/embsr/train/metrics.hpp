#pragma once
// Ranking metrics of MODEL.md section 7: H@K, M@K (MRR@K) and NDCG@K for K in {1, 3, 5, 10, 20},
// one relevant item (the target) per session, and the kernel that turns a [B x V] score matrix
// into the targets' ranks with the pessimistic tie rule (an item scoring exactly the target's
// score ranks above it), so constant scores never look good.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>

namespace embsr {

inline constexpr int kNumMetricKs = 5;
inline constexpr int kMetricKs[kNumMetricKs] = {1, 3, 5, 10, 20};

namespace metrics_detail {
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
}  // namespace metrics_detail

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
  double hit(int k) const { return mean(hits[metrics_detail::checked_k_index(k, "hit")]); }
  double mrr(int k) const { return mean(rr[metrics_detail::checked_k_index(k, "mrr")]); }
  double ndcg_at(int k) const { return mean(ndcg[metrics_detail::checked_k_index(k, "ndcg_at")]); }

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

// ranks[b] = 1 + #{ v != targets[b] : scores(b, v) >= scores(b, targets[b]) } (MODEL.md 7: ties
// count above the target, so constant scores give rank V). A NaN on either side of a comparison
// also counts above the target (the test is !(score_v < score_target)): a NaN never looks good.
// targets[b] outside [0, V) -> ranks[b] = 0. One team per row, a reduction over the V items.
// scores [B x V], targets [B] (integer), ranks [B] (int32 or int64), all accessible from ExecSpace.
template <class ExecSpace, class ScoresV, class TargetsV, class RanksV>
void target_ranks(const ExecSpace& exec, const ScoresV& scores, const TargetsV& targets, const RanksV& ranks) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "target_ranks: ExecSpace must be a Kokkos execution space");
  static_assert(Kokkos::is_view<ScoresV>::value && ScoresV::rank == 2, "target_ranks: scores must be a rank-2 View");
  static_assert(Kokkos::is_view<TargetsV>::value && TargetsV::rank == 1, "target_ranks: targets must be a rank-1 View");
  static_assert(Kokkos::is_view<RanksV>::value && RanksV::rank == 1, "target_ranks: ranks must be a rank-1 View");
  static_assert(std::is_integral<typename TargetsV::non_const_value_type>::value, "target_ranks: targets must be integers");
  using Rank = typename RanksV::non_const_value_type;
  static_assert(std::is_same<typename RanksV::value_type, Rank>::value, "target_ranks: ranks must be writable");
  static_assert(std::is_same<Rank, std::int32_t>::value || std::is_same<Rank, std::int64_t>::value,
                "target_ranks: ranks must hold int32 or int64");
  static_assert(Kokkos::SpaceAccessibility<ExecSpace, typename ScoresV::memory_space>::accessible &&
                    Kokkos::SpaceAccessibility<ExecSpace, typename TargetsV::memory_space>::accessible &&
                    Kokkos::SpaceAccessibility<ExecSpace, typename RanksV::memory_space>::accessible,
                "target_ranks: views must be accessible from ExecSpace");
  const std::size_t B = targets.extent(0);
  if (scores.extent(0) != B || ranks.extent(0) != B)
    throw InvalidArgument("target_ranks: scores have " + std::to_string(scores.extent(0)) + " rows, targets " +
                          std::to_string(B) + " entries, ranks " + std::to_string(ranks.extent(0)) +
                          " entries (must all agree)");
  if (B == 0) return;
  using S = typename ScoresV::non_const_value_type;
  const std::int64_t V = static_cast<std::int64_t>(scores.extent(1));
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using Member = typename Policy::member_type;
  Kokkos::parallel_for(
      "embsr::metrics::target_ranks", Policy(exec, static_cast<int>(B), Kokkos::AUTO),
      KOKKOS_LAMBDA(const Member& team) {
        const int b = team.league_rank();
        const std::int64_t t = static_cast<std::int64_t>(targets(b));
        if (t < 0 || t >= V) {
          Kokkos::single(Kokkos::PerTeam(team), [&]() { ranks(b) = Rank(0); });
          return;
        }
        const S st = scores(b, t);
        std::int64_t above = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, V),
            [&](const std::int64_t v, std::int64_t& count) { count += (v != t && !(scores(b, v) < st)) ? 1 : 0; },
            above);
        Kokkos::single(Kokkos::PerTeam(team), [&]() { ranks(b) = static_cast<Rank>(above + 1); });
      });
}

}  // namespace embsr
