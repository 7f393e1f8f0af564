#pragma once
// Retrieval from a [B x V] score matrix (MODEL.md 5 and 7):
//   - top_k: the K best items of every row, best first (serving, evaluation);
//   - target_ranks: the rank of each row's target with the pessimistic tie rule of MODEL.md 7 (an
//     item scoring exactly the target's score ranks above it), so constant scores never look good.
// Neither has a backward: they read scores, they are not part of the loss.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/parallel.hpp>

namespace embsr {

// ---------------------------------------------------------------------------------------------
// Top-K
// ---------------------------------------------------------------------------------------------

namespace detail {

// Ranking order of (value, id) pairs: higher value first, smaller id first among equal values.
template <class S>
KOKKOS_INLINE_FUNCTION bool topk_worse(S a, int ia, S b, int ib) {
  return b > a || (b == a && ib < ia);
}

// Sift-down in a heap of n (value, id) pairs at vals[0..n), ids[0..n), the worst at the root.
template <class S>
KOKKOS_INLINE_FUNCTION void topk_sift_down_raw(S* vals, int* ids, int i, int n) {
  for (;;) {
    int c = 2 * i + 1;
    if (c >= n) return;
    if (c + 1 < n && topk_worse(vals[c + 1], ids[c + 1], vals[c], ids[c])) ++c;
    if (!topk_worse(vals[c], ids[c], vals[i], ids[i])) return;
    const S tv = vals[c];
    const int ti = ids[c];
    vals[c] = vals[i];
    ids[c] = ids[i];
    vals[i] = tv;
    ids[i] = ti;
    i = c;
  }
}

// Offers (v, id) to a full heap of size n (worst at the root): replaces the root if better.
template <class S>
KOKKOS_INLINE_FUNCTION void topk_offer(S* vals, int* ids, int n, S v, int id) {
  if (n > 0 && topk_worse(vals[0], ids[0], v, id)) {
    vals[0] = v;
    ids[0] = id;
    topk_sift_down_raw(vals, ids, 0, n);
  }
}

}  // namespace detail

// ids[B x K] (int32), values[B x K] = the K best items of each row of scores[B x V], best first;
// equal scores rank the smaller item id first. K = min(k, V); columns of ids/values beyond K get
// id -1 and the lowest representable value. Scores must not be NaN.
// One team per row: each of its T threads keeps a size-K heap (worst at the root) of its strided
// share of the row in team scratch, then one thread merges the T heaps into a final heap and
// heap-sorts it into the output row. O(V/T log K + T K log K) per row; T is 1 on host backends (a
// plain heap scan per row, rows in parallel) and up to 128 on GPUs, where one thread per row would
// leave a batch-1 request on a single GPU thread. team_size (0: automatic) is for the tests.
template <class ExecSpace, class SV, class IV, class VV>
void top_k(const ExecSpace& exec, const SV& scores, int k, const IV& ids, const VV& values, int team_size = 0) {
  assert_accessible<ExecSpace, SV, IV, VV>();
  static_assert(SV::rank == 2 && IV::rank == 2 && VV::rank == 2, "top_k: scores, ids and values are 2-D");
  static_assert(std::is_integral<typename IV::non_const_value_type>::value, "top_k: ids must be integers");
  using S = typename VV::non_const_value_type;
  require(k >= 0, "top_k", "k must be non-negative, got " + std::to_string(k));
  const std::size_t B = scores.extent(0), V = scores.extent(1);
  const std::size_t keff = std::min(static_cast<std::size_t>(k), V);
  require(ids.extent(0) == B && ids.extent(1) >= keff, "top_k",
          "ids is " + shape_of(ids) + ", expected [" + std::to_string(B) + " x (at least " + std::to_string(keff) + ")]");
  require_shape("top_k", "values", values, B, ids.extent(1));
  require(team_size >= 0, "top_k", "team_size must be >= 0, got " + std::to_string(team_size));
  if (B == 0) return;
  const int K = static_cast<int>(keff), nv = static_cast<int>(V), cols = static_cast<int>(ids.extent(1));
  const S lowest = std::numeric_limits<S>::lowest();
  const int worst_id = std::numeric_limits<int>::max();  // with `lowest`: below every real entry

  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using member_type = typename Policy::member_type;
  using ScratchS = Kokkos::View<S*, typename ExecSpace::scratch_memory_space, Kokkos::MemoryUnmanaged>;
  using ScratchI = Kokkos::View<int*, typename ExecSpace::scratch_memory_space, Kokkos::MemoryUnmanaged>;
  int T = team_size > 0 ? team_size : (host_execution_space<ExecSpace> ? 1 : 128);
  // Per-thread heaps plus the merge heap; keep level-0 scratch (shared memory on GPUs) under 40 KB.
  const auto bytes_for = [&](int t) {
    return ScratchS::shmem_size(static_cast<std::size_t>((t + 1) * K)) +
           ScratchI::shmem_size(static_cast<std::size_t>((t + 1) * K));
  };
  if (team_size == 0)
    while (T > 1 && bytes_for(T) > 40000) T /= 2;
  const int level = bytes_for(T) > 40000 ? 1 : 0;
  Policy policy(exec, static_cast<int>(B), T);
  policy.set_scratch_size(level, Kokkos::PerTeam(bytes_for(T)));
  Kokkos::parallel_for(
      "embsr::top_k", policy, KOKKOS_LAMBDA(const member_type& team) {
        using detail::topk_offer;
        using detail::topk_sift_down_raw;
        const int r = team.league_rank(), t = team.team_rank(), nt = team.team_size();
        ScratchS vals(team.team_scratch(level), static_cast<std::size_t>((nt + 1) * K));
        ScratchI idx(team.team_scratch(level), static_cast<std::size_t>((nt + 1) * K));
        if (K > 0) {
          // This thread's heap: items t, t + nt, t + 2 nt, ...; padded with the worst pair.
          S* hv = vals.data() + t * K;
          int* hi = idx.data() + t * K;
          for (int j = 0; j < K; ++j) {
            const int v = t + j * nt;
            hv[j] = v < nv ? static_cast<S>(scores(r, v)) : lowest;
            hi[j] = v < nv ? v : worst_id;
          }
          for (int i = K / 2 - 1; i >= 0; --i) topk_sift_down_raw(hv, hi, i, K);
          int v = t + K * nt;
          if (nt == 1) {
            // One thread per row (host backends): blocks of 16 scores are first compared with the
            // heap's worst entry in a branch-free, vectorisable pass; only a block holding a
            // candidate (>=: an equal score with a smaller id also ranks higher) is offered entry by
            // entry. Once the heap holds good scores nearly every block is skipped.
            constexpr int W = 16;
            for (; v + W <= nv; v += W) {
              const S worst = hv[0];
              int any = 0;
              for (int c = 0; c < W; ++c) any |= static_cast<S>(scores(r, v + c)) >= worst;
              if (any)
                for (int c = 0; c < W; ++c) topk_offer(hv, hi, K, static_cast<S>(scores(r, v + c)), v + c);
            }
          }
          for (; v < nv; v += nt) topk_offer(hv, hi, K, static_cast<S>(scores(r, v)), v);
        }
        team.team_barrier();
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          if (K > 0) {
            // Merge: thread 0's heap is already a valid heap of K; offer everyone else's entries.
            S* mv = vals.data() + nt * K;
            int* mi = idx.data() + nt * K;
            for (int j = 0; j < K; ++j) {
              mv[j] = vals(j);
              mi[j] = idx(j);
            }
            for (int j = K; j < nt * K; ++j) topk_offer(mv, mi, K, vals(j), idx(j));
            // Heap sort: the worst remaining goes to the end, so the row ends best first.
            for (int end = K - 1; end > 0; --end) {
              const S tv = mv[0];
              const int ti = mi[0];
              mv[0] = mv[end];
              mi[0] = mi[end];
              mv[end] = tv;
              mi[end] = ti;
              topk_sift_down_raw(mv, mi, 0, end);
            }
            for (int j = 0; j < K; ++j) {
              values(r, j) = mv[j];
              ids(r, j) = mi[j];
            }
          }
          for (int j = K; j < cols; ++j) {
            ids(r, j) = -1;
            values(r, j) = lowest;
          }
        });
      });
}

// ---------------------------------------------------------------------------------------------
// Rank of the target
// ---------------------------------------------------------------------------------------------

// ranks[b] = 1 + #{ v != targets[b] : scores(b, v) >= scores(b, targets[b]) } (MODEL.md 7: ties
// count above the target, so constant scores give rank V). A NaN on either side of a comparison
// also counts above the target (the test is !(score_v < score_target)): a NaN never looks good.
// targets[b] outside [0, V) -> ranks[b] = 0. One team per row, a reduction over the V items.
// scores [B x V], targets [B] (integer), ranks [B] (int32 or int64), all accessible from ExecSpace.
template <class ExecSpace, class ScoresV, class TargetsV, class RanksV>
void target_ranks(const ExecSpace& exec, const ScoresV& scores, const TargetsV& targets, const RanksV& ranks) {
  assert_accessible<ExecSpace, ScoresV, TargetsV, RanksV>();
  static_assert(Kokkos::is_view<ScoresV>::value && ScoresV::rank == 2, "target_ranks: scores must be a rank-2 View");
  static_assert(Kokkos::is_view<TargetsV>::value && TargetsV::rank == 1, "target_ranks: targets must be a rank-1 View");
  static_assert(Kokkos::is_view<RanksV>::value && RanksV::rank == 1, "target_ranks: ranks must be a rank-1 View");
  static_assert(std::is_integral<typename TargetsV::non_const_value_type>::value, "target_ranks: targets must be integers");
  using Rank = typename RanksV::non_const_value_type;
  static_assert(std::is_same<typename RanksV::value_type, Rank>::value, "target_ranks: ranks must be writable");
  static_assert(std::is_same<Rank, std::int32_t>::value || std::is_same<Rank, std::int64_t>::value,
                "target_ranks: ranks must hold int32 or int64");
  const std::size_t B = targets.extent(0);
  require_shape("target_ranks", "scores", scores, B, scores.extent(1));
  require_length("target_ranks", "ranks", ranks, B);
  if (B == 0) return;
  using S = typename ScoresV::non_const_value_type;
  const std::int64_t V = static_cast<std::int64_t>(scores.extent(1));
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using Member = typename Policy::member_type;
  Kokkos::parallel_for(
      "embsr::top_k::target_ranks", Policy(exec, static_cast<int>(B), Kokkos::AUTO),
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
