#pragma once
// The head of the model (MODEL.md 5, paper eq. 18-20): the fusion gate that mixes the attention
// output z = z'_0 with the last micro-behavior's vector x = x_t, the normalised (cosine) scores
// of every item, the softmax cross-entropy loss, and top-K retrieval of the scores.
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

#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

// Lower bound of every norm the scoring divides by.
inline constexpr double kNormEps = 1e-12;

// ---------------------------------------------------------------------------------------------
// Fusion gate
// ---------------------------------------------------------------------------------------------

template <class Scalar, class MemorySpace>
struct FusionParams {
  MatRef<Scalar, MemorySpace> W_f;  // [d x 2d]
  VecRef<Scalar, MemorySpace> b_f;  // [d] (an empty View: no bias)
};

template <class Scalar, class MemorySpace>
struct FusionCache {
  MatRef<Scalar, MemorySpace> zx;    // [B x 2d]  [z ; x], the gate's input
  MatRef<Scalar, MemorySpace> beta;  // [B x d]   the gate sigma([z ; x] W_f^T + b_f)
  MatRef<Scalar, MemorySpace> dpre;  // [B x d]   backward workspace: dL/d(pre-activation)
  MatRef<Scalar, MemorySpace> dzx;   // [B x 2d]  backward workspace: dL/d[z ; x] through the gate
  Mat<Scalar, MemorySpace> zx_storage, beta_storage, dpre_storage, dzx_storage;
};

namespace scoring_detail {

template <class AV, class BV>
void check_same_shape(const char* where, const char* a_name, const AV& a, const char* b_name, const BV& b) {
  if (a.extent(0) != b.extent(0) || a.extent(1) != b.extent(1))
    throw InvalidArgument(std::string(where) + ": " + a_name + " is " + std::to_string(a.extent(0)) + "x" +
                          std::to_string(a.extent(1)) + " but " + b_name + " is " + std::to_string(b.extent(0)) + "x" +
                          std::to_string(b.extent(1)));
}

inline void check_fixed_beta(const char* where, double fixed_beta) {
  if (fixed_beta > 1.0) throw InvalidArgument(std::string(where) + ": fixed_beta must lie in [0, 1] (or be negative: learned gate)");
}

template <class S, class M>
void check_fusion_params(const char* where, const FusionParams<S, M>& p, std::size_t d) {
  if (p.W_f.extent(0) != d || p.W_f.extent(1) != 2 * d)
    throw InvalidArgument(std::string(where) + ": W_f must be " + std::to_string(d) + "x" + std::to_string(2 * d) +
                          ", got " + std::to_string(p.W_f.extent(0)) + "x" + std::to_string(p.W_f.extent(1)));
  if (p.b_f.extent(0) != 0 && p.b_f.extent(0) != d)
    throw InvalidArgument(std::string(where) + ": b_f must have " + std::to_string(d) + " entries, got " +
                          std::to_string(p.b_f.extent(0)));
}

// Row b of a host [B x V] LayoutRight View as an Eigen array (contiguous: no copy).
template <class SV>
auto host_row(const SV& scores, int b) {
  using S = typename SV::value_type;
  using A = Eigen::Array<std::remove_const_t<S>, Eigen::Dynamic, 1>;
  using MapT = std::conditional_t<std::is_const<S>::value, const A, A>;
  return Eigen::Map<MapT>(scores.data() + static_cast<std::size_t>(b) * scores.stride(0),
                          static_cast<Eigen::Index>(scores.extent(1)));
}

// sum_v exp(x[v] - shift) over a contiguous host row, in 16 interleaved partial sums that the
// compiler vectorises (a single running sum would be a serial chain); a fixed order for a given n.
template <class S>
S sum_exp_shifted(const S* x, int n, S shift) {
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
MatRef<S, M> ensure_exact(Mat<S, M>& storage, std::size_t n, std::size_t m, const std::string& label) {
  if (storage.extent(0) < n || storage.extent(1) != m) {
    storage = Mat<S, M>();
    storage = Mat<S, M>(Kokkos::view_alloc(label, Kokkos::WithoutInitializing), n, m);
  }
  return MatRef<S, M>(storage.data(), n, m);
}

// Xn[r] = X[r] / c_r with c_r = max(|X[r]|, kNormEps); norms[r] = c_r. One team per row.
template <class ExecSpace, class XV, class S, class M>
void normalise_rows(const ExecSpace& exec, const XV& X, const MatRef<S, M>& Xn, const VecRef<S, M>& norms,
                    const std::string& label) {
  const int n = static_cast<int>(X.extent(0)), d = static_cast<int>(X.extent(1));
  if (n == 0) return;
  const S eps = static_cast<S>(kNormEps);
  if constexpr (host_execution_space<ExecSpace>) {
    // Host: a row per iteration with plain loops over its d entries (a one-thread team per row
    // cost more in scheduling than the row's arithmetic at V = 75k).
    Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, n), KOKKOS_LAMBDA(const int r) {
      S ss = 0;
      for (int j = 0; j < d; ++j) {
        const S v = static_cast<S>(X(r, j));
        ss += v * v;
      }
      const S c = math::max(math::sqrt(ss), eps);
      for (int j = 0; j < d; ++j) Xn(r, j) = static_cast<S>(X(r, j)) / c;
      norms(r) = c;
    });
    return;
  }
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using Member = typename Policy::member_type;
  Kokkos::parallel_for(
      label, Policy(exec, n, Kokkos::AUTO), KOKKOS_LAMBDA(const Member& team) {
        const int r = team.league_rank();
        S ss = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, d),
            [&](const int j, S& acc) {
              const S v = static_cast<S>(X(r, j));
              acc += v * v;
            },
            ss);
        const S c = math::max(math::sqrt(ss), eps);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, d), [&](const int j) { Xn(r, j) = static_cast<S>(X(r, j)) / c; });
        Kokkos::single(Kokkos::PerTeam(team), [&]() { norms(r) = c; });
      });
}

// Backward of Xn[r] = X[r] / c_r (see normalise_rows), given G[r] = dL/dXn[r]:
//   c_r = |X[r]| > eps:  dXn = (I - n n^T) dX / c_r with n = Xn[r], so (symmetric Jacobian)
//                        dX[r] += (G[r] - n (n . G[r])) / c_r
//   clamped (c_r = eps): Xn = X / eps, dX[r] += G[r] / eps.
// n is recomputed from X and c_r (the caller may have overwritten its copy of Xn). One team per row.
template <class ExecSpace, class XV, class S, class M, class GV, class DXV>
void normalise_rows_backward(const ExecSpace& exec, const XV& X, const VecRef<S, M>& norms, const GV& G, const DXV& dX,
                             const std::string& label) {
  const int n = static_cast<int>(X.extent(0)), d = static_cast<int>(X.extent(1));
  if (n == 0) return;
  const S eps = static_cast<S>(kNormEps);
  if constexpr (host_execution_space<ExecSpace>) {  // as in normalise_rows
    Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, n), KOKKOS_LAMBDA(const int r) {
      const S c = norms(r);
      const bool clamped = !(c > eps);
      const S inv_c = S(1) / c;
      S ng = 0;
      if (!clamped)
        for (int j = 0; j < d; ++j) ng += static_cast<S>(X(r, j)) * inv_c * G(r, j);
      const S nscale = clamped ? S(0) : inv_c;
      for (int j = 0; j < d; ++j) dX(r, j) += (G(r, j) - static_cast<S>(X(r, j)) * nscale * ng) * inv_c;
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
        S ng = 0;
        if (!clamped)
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, d),
              [&](const int j, S& acc) { acc += static_cast<S>(X(r, j)) / c * G(r, j); }, ng);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, d), [&](const int j) {
          const S nj = clamped ? S(0) : static_cast<S>(X(r, j)) / c;
          dX(r, j) += (G(r, j) - nj * ng) / c;
        });
      });
}

}  // namespace scoring_detail

// m[B x d] = beta * z + (1 - beta) * x,  beta[B x d] = sigma([z ; x] W_f^T + b_f)   (z, x [B x d]);
// fixed_beta >= 0: beta = fixed_beta everywhere (p and cache unused).
template <class ExecSpace, class ZV, class XV, class S, class M, class MV>
void fusion_forward(const ExecSpace& exec, const ZV& z, const XV& x, const FusionParams<S, M>& p, double fixed_beta,
                    const MV& m, FusionCache<S, M>& cache) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "fusion_forward: first argument must be an execution space");
  static_assert(ZV::rank == 2 && XV::rank == 2 && MV::rank == 2, "fusion_forward: z, x and m are 2-D");
  scoring_detail::check_same_shape("fusion_forward", "z", z, "x", x);
  scoring_detail::check_same_shape("fusion_forward", "z", z, "m", m);
  const std::size_t B = z.extent(0), d = z.extent(1);
  const int nb = static_cast<int>(B), nd = static_cast<int>(d);
  if (fixed_beta >= 0) {
    scoring_detail::check_fixed_beta("fusion_forward", fixed_beta);
    if (B == 0 || d == 0) return;
    const S fb = static_cast<S>(fixed_beta);
    parallel_for_2d(exec, "embsr::fusion::forward_fixed", nb, nd,
        KOKKOS_LAMBDA(const int b, const int j) { m(b, j) = fb * z(b, j) + (S(1) - fb) * x(b, j); });
    return;
  }
  scoring_detail::check_fusion_params("fusion_forward", p, d);
  cache.zx = ensure(cache.zx_storage, B, 2 * d, "embsr::fusion::zx");
  cache.beta = ensure(cache.beta_storage, B, d, "embsr::fusion::beta");
  cache.dpre = ensure(cache.dpre_storage, B, d, "embsr::fusion::dpre");
  cache.dzx = ensure(cache.dzx_storage, B, 2 * d, "embsr::fusion::dzx");
  if (B == 0 || d == 0) return;
  const auto zx = cache.zx;
  const auto beta = cache.beta;
  parallel_for_2d(exec, "embsr::fusion::concat", nb, 2 * nd,
      KOKKOS_LAMBDA(const int b, const int j) { zx(b, j) = j < nd ? z(b, j) : x(b, j - nd); });
  linear_forward(exec, zx, p.W_f, p.b_f, beta);  // beta holds the pre-activation here
  parallel_for_2d(exec, "embsr::fusion::gate", nb, nd,
      KOKKOS_LAMBDA(const int b, const int j) {
        const S g = math::sigmoid(beta(b, j));
        beta(b, j) = g;
        m(b, j) = g * z(b, j) + (S(1) - g) * x(b, j);
      });
}

// From m = beta * z + (1 - beta) * x, beta = sigma(pre), pre = [z ; x] W_f^T + b_f (elementwise
// products, per row b and coordinate j):
//   dbeta = dm * (z - x),   dpre = dbeta * beta * (1 - beta)            (sigma' = sigma (1 - sigma))
//   d[z ; x] (through the gate) = dpre W_f                              (linear_backward)
//   dz += beta * dm + (dpre W_f)[:, :d],   dx += (1 - beta) * dm + (dpre W_f)[:, d:]
//   dW_f += dpre^T [z ; x],   db_f += sum_b dpre[b]
// fixed_beta >= 0: beta is a constant, dz += beta dm, dx += (1 - beta) dm, no parameter gradients.
// dm, dz, dx [B x d]; dz, dx, g.W_f, g.b_f are added into (dz or dx may be empty Views: not needed).
// Needs the cache of the matching fusion_forward call.
template <class ExecSpace, class ZV, class XV, class S, class M, class DMV, class DZV, class DXV>
void fusion_backward(const ExecSpace& exec, const ZV& z, const XV& x, const FusionParams<S, M>& p, double fixed_beta,
                     const FusionCache<S, M>& cache, const DMV& dm, const DZV& dz, const DXV& dx,
                     const FusionParams<S, M>& g) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "fusion_backward: first argument must be an execution space");
  static_assert(ZV::rank == 2 && XV::rank == 2 && DMV::rank == 2 && DZV::rank == 2 && DXV::rank == 2,
                "fusion_backward: z, x, dm, dz and dx are 2-D");
  scoring_detail::check_same_shape("fusion_backward", "z", z, "x", x);
  scoring_detail::check_same_shape("fusion_backward", "z", z, "dm", dm);
  const bool want_dz = dz.extent(0) != 0, want_dx = dx.extent(0) != 0;
  if (want_dz) scoring_detail::check_same_shape("fusion_backward", "z", z, "dz", dz);
  if (want_dx) scoring_detail::check_same_shape("fusion_backward", "x", x, "dx", dx);
  const std::size_t B = z.extent(0), d = z.extent(1);
  const int nb = static_cast<int>(B), nd = static_cast<int>(d);
  if (fixed_beta >= 0) {
    scoring_detail::check_fixed_beta("fusion_backward", fixed_beta);
    if (B == 0 || d == 0) return;
    const S fb = static_cast<S>(fixed_beta);
    parallel_for_2d(exec, "embsr::fusion::backward_fixed", nb, nd,
        KOKKOS_LAMBDA(const int b, const int j) {
          if (want_dz) dz(b, j) += fb * dm(b, j);
          if (want_dx) dx(b, j) += (S(1) - fb) * dm(b, j);
        });
    return;
  }
  scoring_detail::check_fusion_params("fusion_backward", p, d);
  if (g.W_f.extent(0) != d || g.W_f.extent(1) != 2 * d || g.b_f.extent(0) != p.b_f.extent(0))
    throw InvalidArgument("fusion_backward: gradient buffers do not match the parameters' shapes");
  if (cache.beta.extent(0) != B || cache.beta.extent(1) != d || cache.zx.extent(0) != B)
    throw InvalidArgument("fusion_backward: the cache does not come from a fusion_forward on this batch (learned gate)");
  if (B == 0 || d == 0) return;
  const auto beta = cache.beta;
  const auto dpre = cache.dpre;
  const auto dzx = cache.dzx;
  parallel_for_2d(exec, "embsr::fusion::dpre", nb, nd,
      KOKKOS_LAMBDA(const int b, const int j) {
        const S gb = beta(b, j);
        dpre(b, j) = dm(b, j) * (z(b, j) - x(b, j)) * gb * (S(1) - gb);
      });
  gemm(exec, Trans::No, Trans::No, S(1), dpre, p.W_f, S(0), dzx);
  linear_backward(exec, cache.zx, p.W_f, dpre, MatRef<S, M>(), g.W_f, g.b_f);
  parallel_for_2d(exec, "embsr::fusion::dinputs", nb, nd,
      KOKKOS_LAMBDA(const int b, const int j) {
        const S gb = beta(b, j);
        if (want_dz) dz(b, j) += gb * dm(b, j) + dzx(b, j);
        if (want_dx) dx(b, j) += (S(1) - gb) * dm(b, j) + dzx(b, nd + j);
      });
}

// ---------------------------------------------------------------------------------------------
// Normalised scores, softmax cross-entropy
// ---------------------------------------------------------------------------------------------

template <class Scalar, class MemorySpace>
struct ScoringCache {
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

// scores[B x V] = w_k (m_b / |m_b|) . (E_v / |E_v|)  (m [B x d], E [V x d]) into cache.scores;
// with targets (int32 [B], each in [0, V)) returns loss = mean_b (logsumexp_v scores[b] - scores[b][target_b]),
// with an empty targets View returns 0 (scores only: evaluation).
// reuse_items_hat: the caller guarantees E is unchanged since the last forward on this cache (a
// frozen model serving requests): the normalised table is then not recomputed, which saves a
// pass over the whole [V x d] table per call (the dominant cost of a batch-1 request on a CPU).
template <class ExecSpace, class MV, class EV, class TV, class S, class M>
double scoring_forward(const ExecSpace& exec, const MV& m, const EV& E, const TV& targets, double w_k,
                       ScoringCache<S, M>& cache, bool reuse_items_hat = false) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "scoring_forward: first argument must be an execution space");
  static_assert(MV::rank == 2 && EV::rank == 2 && TV::rank == 1, "scoring_forward: m and E are 2-D, targets 1-D");
  static_assert(std::is_integral<typename TV::non_const_value_type>::value, "scoring_forward: targets must be integers");
  const std::size_t B = m.extent(0), d = m.extent(1), V = E.extent(0);
  if (E.extent(1) != d)
    throw InvalidArgument("scoring_forward: m has " + std::to_string(d) + " columns but E has " + std::to_string(E.extent(1)));
  const bool with_loss = targets.extent(0) != 0;
  if (with_loss && targets.extent(0) != B)
    throw InvalidArgument("scoring_forward: " + std::to_string(targets.extent(0)) + " targets for " + std::to_string(B) +
                          " sessions");
  if (with_loss && V == 0) throw InvalidArgument("scoring_forward: a loss over zero items");

  cache.scores = scoring_detail::ensure_exact(cache.scores_storage, B, V, "embsr::scoring::scores");
  const void* old_items_hat = cache.items_hat_storage.data();
  cache.items_hat = scoring_detail::ensure_exact(cache.items_hat_storage, V, d, "embsr::scoring::items_hat");
  if (cache.items_hat_storage.data() != old_items_hat || cache.items_hat_of != static_cast<const void*>(E.data()))
    cache.items_hat_current = false;
  cache.item_norms = ensure(cache.item_norms_storage, V, "embsr::scoring::item_norms");
  cache.m_hat = ensure(cache.m_hat_storage, B, d, "embsr::scoring::m_hat");
  cache.m_norms = ensure(cache.m_norms_storage, B, "embsr::scoring::m_norms");
  cache.dm_hat = ensure(cache.dm_hat_storage, B, d, "embsr::scoring::dm_hat");
  cache.lse = ensure(cache.lse_storage, B, "embsr::scoring::lse");
  cache.row_loss = ensure(cache.row_loss_storage, B, "embsr::scoring::row_loss");
  cache.has_loss = with_loss;

  if (!(reuse_items_hat && cache.items_hat_current)) {
    scoring_detail::normalise_rows(exec, E, cache.items_hat, cache.item_norms, "embsr::scoring::normalise_items");
    cache.items_hat_current = true;
    cache.items_hat_of = E.data();
  }
  scoring_detail::normalise_rows(exec, m, cache.m_hat, cache.m_norms, "embsr::scoring::normalise_m");
  gemm(exec, Trans::No, Trans::Yes, static_cast<S>(w_k), cache.m_hat, cache.items_hat, S(0), cache.scores);
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
                           const auto row = scoring_detail::host_row(scores, b);
                           const S mx = row.maxCoeff();
                           const S l = mx + std::log(scoring_detail::sum_exp_shifted(row.data(), nv, mx));
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
  // Mean over the batch, summed in row order by one thread: the loss does not depend on the
  // thread count (B is at most a few thousand).
  const int nb = static_cast<int>(B);
  double total = 0;
  Kokkos::parallel_reduce(
      "embsr::scoring::loss", Kokkos::RangePolicy<ExecSpace>(exec, 0, 1),
      KOKKOS_LAMBDA(const int, double& acc) {
        for (int b = 0; b < nb; ++b) acc += static_cast<double>(row_loss(b));
      },
      total);
  return total / static_cast<double>(B);
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
template <class ExecSpace, class MV, class EV, class TV, class S, class M, class DMV, class DEV>
void scoring_backward(const ExecSpace& exec, const MV& m, const EV& E, const TV& targets, double w_k,
                      ScoringCache<S, M>& cache, const DMV& dm, const DEV& dE) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "scoring_backward: first argument must be an execution space");
  static_assert(MV::rank == 2 && EV::rank == 2 && TV::rank == 1 && DMV::rank == 2 && DEV::rank == 2,
                "scoring_backward: m, E, dm, dE are 2-D, targets 1-D");
  const std::size_t B = m.extent(0), d = m.extent(1), V = E.extent(0);
  if (!cache.has_loss || targets.extent(0) != B || cache.scores.extent(0) != B || cache.scores.extent(1) != V ||
      cache.items_hat.extent(1) != d)
    throw InvalidArgument("scoring_backward: needs the cache of a scoring_forward with targets on the same batch");
  const bool want_dm = dm.extent(0) != 0, want_dE = dE.extent(0) != 0;
  if (want_dm) scoring_detail::check_same_shape("scoring_backward", "m", m, "dm", dm);
  if (want_dE) scoring_detail::check_same_shape("scoring_backward", "E", E, "dE", dE);
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
  const S wk = static_cast<S>(w_k);
  if (want_dm) {
    gemm(exec, Trans::No, Trans::No, wk, scores, cache.items_hat, S(0), cache.dm_hat);
    scoring_detail::normalise_rows_backward(exec, m, cache.m_norms, cache.dm_hat, dm, "embsr::scoring::dm");
  }
  if (want_dE) {
    cache.items_hat_current = false;  // about to hold dL/d(items_hat)
    gemm(exec, Trans::Yes, Trans::No, wk, scores, cache.m_hat, S(0), cache.items_hat);
    scoring_detail::normalise_rows_backward(exec, E, cache.item_norms, cache.items_hat, dE, "embsr::scoring::dE");
  }
}

// ---------------------------------------------------------------------------------------------
// Top-K
// ---------------------------------------------------------------------------------------------

namespace scoring_detail {

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

}  // namespace scoring_detail

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
  static_assert(Kokkos::is_execution_space<ExecSpace>::value, "top_k: first argument must be an execution space");
  static_assert(SV::rank == 2 && IV::rank == 2 && VV::rank == 2, "top_k: scores, ids and values are 2-D");
  static_assert(std::is_integral<typename IV::non_const_value_type>::value, "top_k: ids must be integers");
  using S = typename VV::non_const_value_type;
  if (k < 0) throw InvalidArgument("top_k: k must be non-negative, got " + std::to_string(k));
  const std::size_t B = scores.extent(0), V = scores.extent(1);
  const std::size_t keff = std::min(static_cast<std::size_t>(k), V);
  if (ids.extent(0) != B || values.extent(0) != B || ids.extent(1) != values.extent(1) || ids.extent(1) < keff)
    throw InvalidArgument("top_k: ids and values must both be " + std::to_string(B) + " x (at least " +
                          std::to_string(keff) + "), got " + std::to_string(ids.extent(0)) + "x" +
                          std::to_string(ids.extent(1)) + " and " + std::to_string(values.extent(0)) + "x" +
                          std::to_string(values.extent(1)));
  if (team_size < 0) throw InvalidArgument("top_k: team_size must be >= 0, got " + std::to_string(team_size));
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
        using scoring_detail::topk_offer;
        using scoring_detail::topk_sift_down_raw;
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

}  // namespace embsr
