#pragma once
// The scoring head of the model (MODEL.md 5, paper eq. 19-20): the normalised (cosine) scores of
// every item for the session vector m, and the softmax cross-entropy loss. (m comes from
// layers/fusion.hpp; top-K retrieval of the scores is layers/top_k.hpp, included here.)
//
// Memory. At B = 512 sessions and V = 183,562 items the scores alone are 376 MB in float, so the
// scoring keeps exactly one [B x V] buffer (ScoringCache::scores: the scores after the forward,
// overwritten by dL/dscores in the backward) and one [V x d] buffer (ScoringCache::items_hat: the
// normalised item table after the forward, overwritten by dL/d(items_hat) in the backward). These
// two are sized exactly (no growth slack) and freed before they are regrown.
//
// Norms. Every normalisation is v / max(|v|, 1e-12) (kNormEps), as PyTorch's F.normalize and the
// oracle compute it, so that a zero vector gives a zero direction (score 0) instead of NaN. Where
// the clamp is active the divisor is the constant 1e-12 and the Jacobian is I / 1e-12.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>

#include <Eigen/Core>
#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/layers/top_k.hpp>

namespace embsr {

// Lower bound of every norm the scoring divides by.
inline constexpr double kNormEps = 1e-12;

namespace detail {

// Row b of a host [B x V] LayoutRight View as an Eigen array (contiguous: no copy).
template <class SV>
auto scoring_host_row(const SV& scores, int b) {
  using S = typename SV::value_type;
  using A = Eigen::Array<std::remove_const_t<S>, Eigen::Dynamic, 1>;
  using MapT = std::conditional_t<std::is_const<S>::value, const A, A>;
  return Eigen::Map<MapT>(scores.data() + static_cast<std::size_t>(b) * scores.stride(0),
                          static_cast<Eigen::Index>(scores.extent(1)));
}

// sum_v exp(x[v] - shift) over a contiguous host row, in 16 interleaved partial sums that the
// compiler vectorises (a single running sum would be a serial chain); a fixed order for a given n.
template <class S>
S scoring_sum_exp_shifted(const S* x, int n, S shift) {
  constexpr int W = 16;
  S acc[W] = {};
  int v = 0;
  for (; v + W <= n; v += W)
    for (int k = 0; k < W; ++k) acc[k] += math::exp(x[v + k] - shift);
  S total = 0;
  for (; v < n; ++v) total += math::exp(x[v] - shift);
  for (int k = 0; k < W; ++k) total += acc[k];
  return total;
}

// Like embsr::ensure, but sized exactly and freeing the old buffer first: for the two buffers of
// the scoring whose size is dominated by V (hundreds of MB), where 25% slack or a transient second
// copy would matter.
template <class S, class M>
MatRef<S, M> scoring_ensure_exact(Mat<S, M>& storage, std::size_t n, std::size_t m, const std::string& label) {
  if (storage.extent(0) < n || storage.extent(1) != m) {
    storage = Mat<S, M>();
    storage = Mat<S, M>(Kokkos::view_alloc(label, Kokkos::WithoutInitializing), n, m);
  }
  return MatRef<S, M>(storage.data(), n, m);
}

// Xn[r] = X[r] / c_r with c_r = max(|X[r]|, kNormEps); norms[r] = c_r. With `centre` (SGNN-HN's
// scores, ScoreKind::CenteredCosine) the row is first centred: X[r] - mean_j X[r][j] takes X[r]'s
// place in both. One team per row.
template <class ExecSpace, class XV, class S, class M>
void scoring_normalise_rows(const ExecSpace& exec, const XV& X, const MatRef<S, M>& Xn, const VecRef<S, M>& norms,
                            const std::string& label, const bool centre = false) {
  const int n = static_cast<int>(X.extent(0)), d = static_cast<int>(X.extent(1));
  if (n == 0) return;
  const S eps = static_cast<S>(kNormEps);
  if constexpr (host_execution_space<ExecSpace>) {
    // Host: a row per iteration with plain loops over its d entries (a one-thread team per row
    // cost more in scheduling than the row's arithmetic at V = 75k).
    Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, n), KOKKOS_LAMBDA(const int r) {
      S mu = 0;
      if (centre) {
        for (int j = 0; j < d; ++j) mu += static_cast<S>(X(r, j));
        mu /= S(d);
      }
      S ss = 0;
      for (int j = 0; j < d; ++j) {
        const S v = static_cast<S>(X(r, j)) - mu;
        ss += v * v;
      }
      const S c = math::max(math::sqrt(ss), eps);
      for (int j = 0; j < d; ++j) Xn(r, j) = (static_cast<S>(X(r, j)) - mu) / c;
      norms(r) = c;
    });
    return;
  }
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using Member = typename Policy::member_type;
  Kokkos::parallel_for(
      label, Policy(exec, n, Kokkos::AUTO), KOKKOS_LAMBDA(const Member& team) {
        const int r = team.league_rank();
        S mu = 0;
        if (centre)
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, d), [&](const int j, S& acc) { acc += static_cast<S>(X(r, j)); }, mu);
        mu /= S(d);
        S ss = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, d),
            [&](const int j, S& acc) {
              const S v = static_cast<S>(X(r, j)) - mu;
              acc += v * v;
            },
            ss);
        const S c = math::max(math::sqrt(ss), eps);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, d),
                             [&](const int j) { Xn(r, j) = (static_cast<S>(X(r, j)) - mu) / c; });
        Kokkos::single(Kokkos::PerTeam(team), [&]() { norms(r) = c; });
      });
}

// Backward of Xn[r] = X[r] / c_r (see scoring_normalise_rows), given G[r] = dL/dXn[r]:
//   c_r = |X[r]| > eps:  dXn = (I - n n^T) dX / c_r with n = Xn[r], so (symmetric Jacobian)
//                        dX[r] += (G[r] - n (n . G[r])) / c_r
//   clamped (c_r = eps): Xn = X / eps, dX[r] += G[r] / eps.
// With `centre`, X[r] above is the centred row y = X[r] - mean(X[r]) and dL/dX[r] = dL/dy - mean(dL/dy)
// (the centring's Jacobian I - 11^T/d is symmetric).
// n is recomputed from X and c_r (the caller may have overwritten its copy of Xn). One team per row.
template <class ExecSpace, class XV, class S, class M, class GV, class DXV>
void scoring_normalise_rows_backward(const ExecSpace& exec, const XV& X, const VecRef<S, M>& norms, const GV& G, const DXV& dX,
                                     const std::string& label, const bool centre = false) {
  const int n = static_cast<int>(X.extent(0)), d = static_cast<int>(X.extent(1));
  if (n == 0) return;
  const S eps = static_cast<S>(kNormEps);
  if constexpr (host_execution_space<ExecSpace>) {  // as in scoring_normalise_rows
    Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, n), KOKKOS_LAMBDA(const int r) {
      const S c = norms(r);
      const bool clamped = !(c > eps);
      const S inv_c = S(1) / c;
      S mu = 0;
      if (centre) {
        for (int j = 0; j < d; ++j) mu += static_cast<S>(X(r, j));
        mu /= S(d);
      }
      S ng = 0;
      if (!clamped)
        for (int j = 0; j < d; ++j) ng += (static_cast<S>(X(r, j)) - mu) * inv_c * G(r, j);
      const S nscale = clamped ? S(0) : inv_c;
      S mean_dy = 0;
      if (centre) {
        for (int j = 0; j < d; ++j) mean_dy += (G(r, j) - (static_cast<S>(X(r, j)) - mu) * nscale * ng) * inv_c;
        mean_dy /= S(d);
      }
      for (int j = 0; j < d; ++j) dX(r, j) += (G(r, j) - (static_cast<S>(X(r, j)) - mu) * nscale * ng) * inv_c - mean_dy;
    });
    return;
  }
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using Member = typename Policy::member_type;
  Kokkos::parallel_for(
      label, Policy(exec, n, Kokkos::AUTO), KOKKOS_LAMBDA(const Member& team) {
        const int r = team.league_rank();
        const S c = norms(r);
        const bool clamped = !(c > eps);
        S mu = 0;
        if (centre)
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, d), [&](const int j, S& acc) { acc += static_cast<S>(X(r, j)); }, mu);
        mu /= S(d);
        S ng = 0;
        if (!clamped)
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, d),
              [&](const int j, S& acc) { acc += (static_cast<S>(X(r, j)) - mu) / c * G(r, j); }, ng);
        auto dy = [&](const int j) {
          const S nj = clamped ? S(0) : (static_cast<S>(X(r, j)) - mu) / c;
          return (G(r, j) - nj * ng) / c;
        };
        S mean_dy = 0;
        if (centre)
          Kokkos::parallel_reduce(Kokkos::TeamThreadRange(team, d), [&](const int j, S& acc) { acc += dy(j); }, mean_dy);
        mean_dy /= S(d);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, d), [&](const int j) { dX(r, j) += dy(j) - mean_dy; });
      });
}

// The mean of a loss per row, summed in row order by one thread: the loss does not depend on the
// thread count (B is at most a few thousand). Empty: 0.
template <class ExecSpace, class LV>
double mean_in_row_order(const ExecSpace& exec, const LV& row_loss, const char* label) {
  const int nb = static_cast<int>(row_loss.extent(0));
  if (nb == 0) return 0.0;
  double total = 0;
  Kokkos::parallel_reduce(
      label, Kokkos::RangePolicy<ExecSpace>(exec, 0, 1),
      KOKKOS_LAMBDA(const int, double& acc) {
        for (int b = 0; b < nb; ++b) acc += static_cast<double>(row_loss(b));
      },
      total);
  return total / static_cast<double>(nb);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Normalised scores, softmax cross-entropy
// ---------------------------------------------------------------------------------------------

// What a score is. Cosine: w_k (m / |m|) . (E_v / |E_v|) (EMBSR eq. 19). CenteredCosine: the same
// on centred rows, w_k nrm(m) . nrm(E_v) with nrm(x) = (x - mean(x)) / |x - mean(x)| (SGNN-HN, as
// its authors' code computes it, docs/GRAPH_MODELS.md). Dot: m . E_v (SR-GNN eq. 8, GC-SAN,
// MKM-SR; w_k is ignored, and no normalised table is kept). In every kind a norm is clamped below
// at kNormEps.
enum class ScoreKind { Cosine, CenteredCosine, Dot };

template <class Scalar, class MemorySpace>
struct ScoringCache {
  ScoreKind kind = ScoreKind::Cosine;     // set once by the model that owns the cache
  MatRef<Scalar, MemorySpace> scores;     // [B x V] w_k m_hat items_hat^T; after the backward: dL/dscores
  MatRef<Scalar, MemorySpace> items_hat;  // [V x d] E_v / |E_v|; after the backward: dL/d(items_hat)
  VecRef<Scalar, MemorySpace> item_norms; // [V]     max(|E_v|, kNormEps)
  MatRef<Scalar, MemorySpace> m_hat;      // [B x d] m_b / |m_b|
  VecRef<Scalar, MemorySpace> m_norms;    // [B]     max(|m_b|, kNormEps)
  MatRef<Scalar, MemorySpace> dm_hat;     // [B x d] backward workspace
  VecRef<Scalar, MemorySpace> lse;        // [B]     logsumexp_v scores[b] (only with targets)
  VecRef<Scalar, MemorySpace> row_loss;   // [B]     lse[b] - scores[b][target_b] (only with targets)
  bool has_loss = false;                  // the last forward had targets (the backward needs them)
  bool items_hat_current = false;         // items_hat holds E / |E| (not gradients) of items_hat_of
  const void* items_hat_of = nullptr;     // the table (E.data()) items_hat was normalised from

  Mat<Scalar, MemorySpace> scores_storage, items_hat_storage, m_hat_storage, dm_hat_storage;
  Vec<Scalar, MemorySpace> item_norms_storage, m_norms_storage, lse_storage, row_loss_storage;
};

// An additive term on some logits (EMBSR-R's repeat bonus, layers/repeat.hpp, docs/REPEAT.md):
// scores[session[c]][item[c]] += values[c] for c < C, each (session, item) pair at most once (the
// nodes of a batch: distinct items per session). The backward gathers dL/dvalues[c] =
// dL/dscores[session[c]][item[c]] into `gradients`. Empty Views: no term.
template <class Scalar, class MemorySpace>
struct ScoringBonus {
  Kokkos::View<const Scalar*, MemorySpace> values;     // [C]
  Kokkos::View<const index_t*, MemorySpace> items;     // [C]
  Kokkos::View<const index_t*, MemorySpace> sessions;  // [C]
  Kokkos::View<Scalar*, MemorySpace> gradients;        // [C] (backward; overwritten)
};

// scores[B x V] = w_k (m_b / |m_b|) . (E_v / |E_v|)  (m [B x d], E [V x d]) into cache.scores;
// with targets (int32 [B], each in [0, V)) returns loss = mean_b (logsumexp_v scores[b] - scores[b][target_b]),
// with an empty targets View returns 0 (scores only: evaluation).
// reuse_items_hat: the caller guarantees E is unchanged since the last forward on this cache (a
// frozen model serving requests): the normalised table is then not recomputed, which saves a
// pass over the whole [V x d] table per call (the dominant cost of a batch-1 request on a CPU).
// A bonus (see ScoringBonus) is added to the scores before the loss.
template <class ExecSpace, class MV, class EV, class TV, class S, class M>
double scoring_forward(const ExecSpace& exec, const MV& m, const EV& E, const TV& targets, double w_k,
                       ScoringCache<S, M>& cache, bool reuse_items_hat = false,
                       const ScoringBonus<S, M>& bonus = ScoringBonus<S, M>{}) {
  assert_accessible<ExecSpace, MV, EV, TV, MatRef<S, M>>();
  static_assert(MV::rank == 2 && EV::rank == 2 && TV::rank == 1, "scoring_forward: m and E are 2-D, targets 1-D");
  static_assert(std::is_integral<typename TV::non_const_value_type>::value, "scoring_forward: targets must be integers");
  const std::size_t B = m.extent(0), d = m.extent(1), V = E.extent(0);
  require_shape("scoring_forward", "E", E, V, d);
  const bool with_loss = targets.extent(0) != 0;
  if (with_loss) require_length("scoring_forward", "targets", targets, B);
  require(!with_loss || V > 0, "scoring_forward", "a loss over zero items");

  cache.scores = detail::scoring_ensure_exact(cache.scores_storage, B, V, "embsr::scoring::scores");
  cache.lse = ensure(cache.lse_storage, B, "embsr::scoring::lse");
  cache.row_loss = ensure(cache.row_loss_storage, B, "embsr::scoring::row_loss");
  cache.has_loss = with_loss;
  if (cache.kind == ScoreKind::Dot) {
    gemm(exec, Trans::No, Trans::Yes, S(1), m, E, S(0), cache.scores);
  } else {
    const bool centre = cache.kind == ScoreKind::CenteredCosine;
    const void* old_items_hat = cache.items_hat_storage.data();
    cache.items_hat = detail::scoring_ensure_exact(cache.items_hat_storage, V, d, "embsr::scoring::items_hat");
    if (cache.items_hat_storage.data() != old_items_hat || cache.items_hat_of != static_cast<const void*>(E.data()))
      cache.items_hat_current = false;
    cache.item_norms = ensure(cache.item_norms_storage, V, "embsr::scoring::item_norms");
    cache.m_hat = ensure(cache.m_hat_storage, B, d, "embsr::scoring::m_hat");
    cache.m_norms = ensure(cache.m_norms_storage, B, "embsr::scoring::m_norms");
    cache.dm_hat = ensure(cache.dm_hat_storage, B, d, "embsr::scoring::dm_hat");

    if (!(reuse_items_hat && cache.items_hat_current)) {
      detail::scoring_normalise_rows(exec, E, cache.items_hat, cache.item_norms, "embsr::scoring::normalise_items", centre);
      cache.items_hat_current = true;
      cache.items_hat_of = E.data();
    }
    detail::scoring_normalise_rows(exec, m, cache.m_hat, cache.m_norms, "embsr::scoring::normalise_m", centre);
    gemm(exec, Trans::No, Trans::Yes, static_cast<S>(w_k), cache.m_hat, cache.items_hat, S(0), cache.scores);
  }
  if (bonus.values.extent(0) != 0) {
    const std::size_t C = bonus.values.extent(0);
    require(bonus.items.extent(0) == C && bonus.sessions.extent(0) == C, "scoring_forward", "a bonus needs an item and a session per value");
    const auto scores = cache.scores;
    const auto values = bonus.values;
    const auto items = bonus.items;
    const auto sessions = bonus.sessions;
    Kokkos::parallel_for("embsr::scoring::bonus", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(C)),
                         KOKKOS_LAMBDA(const int c) { scores(sessions(c), items(c)) += values(c); });
  }
  if (!with_loss || B == 0) return 0.0;

  // Per row: lse = max + log sum exp(s - max), loss_b = lse - s[target].
  const auto scores = cache.scores;
  const auto lse = cache.lse;
  const auto row_loss = cache.row_loss;
  const int nv = static_cast<int>(V);
  if constexpr (host_execution_space<ExecSpace>) {
    // Host: one row per iteration, Eigen's vectorised max and our vectorisable float exp (AVX2: 8
    // floats per instruction; libm's scalar expf made this 27% of a training step). Each row's
    // result depends only on that row, so neither the batch nor the thread count changes it.
    Kokkos::parallel_for("embsr::scoring::logsumexp", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(B)),
                         [=](const int b) {
                           const auto row = detail::scoring_host_row(scores, b);
                           const S mx = row.maxCoeff();
                           const S l = mx + std::log(detail::scoring_sum_exp_shifted(row.data(), nv, mx));
                           lse(b) = l;
                           row_loss(b) = l - row(static_cast<Eigen::Index>(targets(b)));
                         });
  } else {
    using Policy = Kokkos::TeamPolicy<ExecSpace>;
    using Member = typename Policy::member_type;
    Kokkos::parallel_for(
        "embsr::scoring::logsumexp", Policy(exec, static_cast<int>(B), Kokkos::AUTO), KOKKOS_LAMBDA(const Member& team) {
          const int b = team.league_rank();
          S mx = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, nv), [&](const int v, S& acc) { acc = math::max(acc, scores(b, v)); },
              Kokkos::Max<S>(mx));
          S sum = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, nv), [&](const int v, S& acc) { acc += math::exp(scores(b, v) - mx); }, sum);
          Kokkos::single(Kokkos::PerTeam(team), [&]() {
            const S l = mx + math::log(sum);
            lse(b) = l;
            row_loss(b) = l - scores(b, targets(b));
          });
        });
  }
  return detail::mean_in_row_order(exec, row_loss, "embsr::scoring::loss");
}

// The part of the backward below dL/ds, for a loss the caller computed from the scores itself
// (EMBSR-R's repeat/explore mixture, layers/repeat_mixture.hpp): with dL/ds [B x V] written over
// cache.scores,
//   dL/dm_hat = w_k ds items_hat,  dL/ditems_hat = w_k ds^T m_hat  (written over cache.items_hat),
// then through the two normalisations into dm [B x d] and dE [V x d] (added into; either may be
// an empty View: not needed). Needs the cache of a scoring_forward with the same m, E and w_k.
// Dot scores (ScoreKind::Dot): dm += ds E, dE += ds^T m.
template <class ExecSpace, class MV, class EV, class S, class M, class DMV, class DEV>
void scoring_backward_from_dscores(const ExecSpace& exec, const MV& m, const EV& E, double w_k, ScoringCache<S, M>& cache,
                                   const DMV& dm, const DEV& dE) {
  assert_accessible<ExecSpace, MV, EV, DMV, DEV, MatRef<S, M>>();
  static_assert(MV::rank == 2 && EV::rank == 2 && DMV::rank == 2 && DEV::rank == 2,
                "scoring_backward_from_dscores: m, E, dm, dE are 2-D");
  const std::size_t B = m.extent(0), d = m.extent(1), V = E.extent(0);
  const bool dot = cache.kind == ScoreKind::Dot;
  require(cache.scores.extent(0) == B && cache.scores.extent(1) == V &&
              (dot || (cache.items_hat.extent(1) == d && cache.m_hat.extent(0) == B)),
          "scoring_backward_from_dscores", "needs the cache of a scoring_forward on the same batch");
  const bool want_dm = dm.extent(0) != 0, want_dE = dE.extent(0) != 0;
  if (want_dm) require_shape("scoring_backward_from_dscores", "dm", dm, B, d);
  if (want_dE) require_shape("scoring_backward_from_dscores", "dE", dE, V, d);
  cache.has_loss = false;
  if (B == 0 || V == 0) return;
  if (dot) {
    if (want_dm) gemm(exec, Trans::No, Trans::No, S(1), cache.scores, E, S(1), dm);
    if (want_dE) gemm(exec, Trans::Yes, Trans::No, S(1), cache.scores, m, S(1), dE);
    return;
  }
  const S wk = static_cast<S>(w_k);
  const bool centre = cache.kind == ScoreKind::CenteredCosine;
  if (want_dm) {
    gemm(exec, Trans::No, Trans::No, wk, cache.scores, cache.items_hat, S(0), cache.dm_hat);
    detail::scoring_normalise_rows_backward(exec, m, cache.m_norms, cache.dm_hat, dm, "embsr::scoring::dm", centre);
  }
  if (want_dE) {
    cache.items_hat_current = false;  // about to hold dL/d(items_hat)
    gemm(exec, Trans::Yes, Trans::No, wk, cache.scores, cache.m_hat, S(0), cache.items_hat);
    detail::scoring_normalise_rows_backward(exec, E, cache.item_norms, cache.items_hat, dE, "embsr::scoring::dE", centre);
  }
}

// From loss = (1/B) sum_b (lse_b - s[b][t_b]), s = w_k m_hat items_hat^T, m_hat = m / |m|,
// items_hat = E / |E| (row-wise):
//   dL/ds[b][v]      = (softmax(s[b])_v - [v == t_b]) / B                 (written over cache.scores)
//   dL/dm_hat        = w_k ds items_hat                                    [B x V][V x d]
//   dL/ditems_hat    = w_k ds^T m_hat                                      [V x B][B x d] (written over cache.items_hat)
//   dL/dm_b         += (dm_hat_b - m_hat_b (m_hat_b . dm_hat_b)) / |m_b|   (d(v/|v|) = (I - v_hat v_hat^T)/|v|)
//   dL/dE_v         += (ditems_hat_v - E_hat_v (E_hat_v . ditems_hat_v)) / |E_v|
// (a clamped norm, |v| <= 1e-12, gives dv += dv_hat / 1e-12). dE is dense: the softmax involves
// every item. dm [B x d], dE [V x d] are added into (either may be an empty View: not needed).
// Needs the cache of a scoring_forward with the same m, E, targets and w_k; leaves cache.scores
// and cache.items_hat overwritten (as noted above).
// With a bonus, dL/dvalues[c] = dL/ds[session[c]][item[c]] goes to bonus.gradients (the bonus's
// own gradients do not change dm or dE: d s / d(w_k cos) = 1).
template <class ExecSpace, class MV, class EV, class TV, class S, class M, class DMV, class DEV>
void scoring_backward(const ExecSpace& exec, const MV& m, const EV& E, const TV& targets, double w_k,
                      ScoringCache<S, M>& cache, const DMV& dm, const DEV& dE,
                      const ScoringBonus<S, M>& bonus = ScoringBonus<S, M>{}) {
  assert_accessible<ExecSpace, MV, EV, TV, DMV, DEV, MatRef<S, M>>();
  static_assert(MV::rank == 2 && EV::rank == 2 && TV::rank == 1 && DMV::rank == 2 && DEV::rank == 2,
                "scoring_backward: m, E, dm, dE are 2-D, targets 1-D");
  const std::size_t B = m.extent(0), d = m.extent(1), V = E.extent(0);
  require(cache.has_loss && targets.extent(0) == B && cache.scores.extent(0) == B && cache.scores.extent(1) == V &&
              (cache.kind == ScoreKind::Dot || cache.items_hat.extent(1) == d),
          "scoring_backward", "needs the cache of a scoring_forward with targets on the same batch");
  const bool want_dm = dm.extent(0) != 0, want_dE = dE.extent(0) != 0;
  if (want_dm) require_shape("scoring_backward", "dm", dm, B, d);
  if (want_dE) require_shape("scoring_backward", "dE", dE, V, d);
  if (bonus.gradients.extent(0) != 0)
    require(bonus.items.extent(0) == bonus.gradients.extent(0) && bonus.sessions.extent(0) == bonus.gradients.extent(0),
            "scoring_backward", "a bonus needs an item and a session per value");
  cache.has_loss = false;  // the scores are about to be overwritten
  if (B == 0 || V == 0) return;

  const auto scores = cache.scores;
  const auto lse = cache.lse;
  const S inv_b = S(1) / static_cast<S>(B);
  if constexpr (host_execution_space<ExecSpace>) {
    // Host: vectorised exp per row, as in the forward.
    const int nv = static_cast<int>(V);
    Kokkos::parallel_for("embsr::scoring::dscores", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(B)),
                         [=](const int b) {
                           S* row = scores.data() + static_cast<std::size_t>(b) * scores.stride(0);
                           const S l = lse(b);
                           EMBSR_IVDEP
                           for (int v = 0; v < nv; ++v) row[v] = math::exp(row[v] - l) * inv_b;
                           row[targets(b)] -= inv_b;
                         });
  } else {
    parallel_for_2d(exec, "embsr::scoring::dscores", static_cast<int>(B), static_cast<int>(V),
        KOKKOS_LAMBDA(const int b, const int v) {
          const S p = math::exp(scores(b, v) - lse(b));
          scores(b, v) = (v == static_cast<int>(targets(b)) ? p - S(1) : p) * inv_b;
        });
  }
  if (bonus.gradients.extent(0) != 0) {
    const std::size_t C = bonus.gradients.extent(0);
    const auto gradients = bonus.gradients;
    const auto items = bonus.items;
    const auto sessions = bonus.sessions;
    Kokkos::parallel_for("embsr::scoring::dbonus", Kokkos::RangePolicy<ExecSpace>(exec, 0, static_cast<int>(C)),
                         KOKKOS_LAMBDA(const int c) { gradients(c) = scores(sessions(c), items(c)); });
  }
  scoring_backward_from_dscores(exec, m, E, w_k, cache, dm, dE);
}

}  // namespace embsr
